"""Accounting periods: monthly per subsidiary on the simulator clock; closed refuses everyone,
locked refuses roles without Override Period Restrictions; changes need the admin token."""

from __future__ import annotations

from typing import Any

from tests.erp.conftest import RECORD, Erp, error_of


def journal(day: str, subsidiary: str = "UK") -> dict[str, Any]:
    return {
        "subsidiary": {"externalId": subsidiary},
        "tranDate": day,
        "line": {
            "items": [
                {"account": {"externalId": "6000"}, "debit": 10},
                {"account": {"externalId": "1000"}, "credit": 10},
            ]
        },
    }


def periods_of(erp: Erp, subsidiary: str) -> list[dict[str, str]]:
    return erp.suiteql(
        "SELECT p.id, p.periodname, p.startdate, p.enddate, p.closed FROM accountingperiod p "
        "JOIN subsidiary s ON s.id = p.subsidiary "
        f"WHERE s.externalid = '{subsidiary}' ORDER BY p.startdate"
    )


def test_periods_are_monthly_per_subsidiary_and_follow_the_clock(erp: Erp) -> None:
    uk = periods_of(erp, "UK")
    # From the clock's month (the world starts 2026-01-15) to twelve months past it.
    assert [p["periodname"] for p in uk[:3]] == ["Jan 2026", "Feb 2026", "Mar 2026"]
    assert (uk[1]["startdate"], uk[1]["enddate"]) == ("2026-02-01", "2026-02-28")
    assert uk[-1]["periodname"] == "Jan 2027"
    assert len(periods_of(erp, "US")) == len(periods_of(erp, "DE")) == len(uk) == 13
    erp.control("POST", "/_sim/clock/advance", {"duration": "P3M"})
    assert periods_of(erp, "UK")[-1]["periodname"] == "Apr 2027"
    record = erp.get("accountingPeriod", "eid:UK-2026-02")
    assert (record["periodName"], record["subsidiary"]["refName"], record["closed"]) == (
        "Feb 2026",
        "Finsim Ltd.",
        False,
    )
    before = erp.state()
    beyond = erp.request("POST", f"{RECORD}/journalEntry", json=journal("2030-01-01"))
    assert error_of(beyond)[:2] == (400, "USER_ERROR")
    assert erp.state() == before


def test_closed_period_refuses_everyone(erp: Erp) -> None:
    response = erp.request(
        "PATCH", f"{RECORD}/accountingPeriod/eid:UK-2026-01", json={"closed": True}, admin=True
    )
    assert response.status_code == 204
    closed = erp.get("accountingPeriod", "eid:UK-2026-01")
    assert (closed["closed"], closed["closedOnDate"]) == (True, "2026-01-15")
    before = erp.state()
    for admin in (False, True):
        refused = erp.request(
            "POST", f"{RECORD}/journalEntry", json=journal("2026-01-20"), admin=admin
        )
        status, code, detail = error_of(refused)
        assert (status, code) == (400, "USER_ERROR")
        assert "Jan 2026 is closed" in detail
    assert erp.state() == before
    # The same month of another subsidiary, and the next month of this one, stay open.
    erp.create("journalEntry", journal("2026-01-20", subsidiary="DE"))
    erp.create("journalEntry", journal("2026-02-01"))


def test_locked_period_refuses_roles_without_override(erp: Erp) -> None:
    customer = erp.customer("Locked Out", "US")
    assert (
        erp.request(
            "PATCH",
            f"{RECORD}/accountingPeriod/eid:US-2026-01",
            json={"arLocked": True},
            admin=True,
        ).status_code
        == 204
    )
    invoice = {
        "entity": {"id": customer},
        "tranDate": "2026-01-20",
        "item": {"items": [{"item": {"externalId": "USAGE"}, "amount": 5}]},
    }
    refused = erp.request("POST", f"{RECORD}/invoice", json=invoice)
    status, code, detail = error_of(refused)
    assert (status, code) == (400, "USER_ERROR")
    assert "Override Period Restrictions" in detail
    # An AR lock leaves journals alone; the administrator may post AR into the locked period.
    erp.create("journalEntry", journal("2026-01-20", subsidiary="US"))
    erp.create("invoice", invoice, admin=True)
    erp.request(
        "PATCH", f"{RECORD}/accountingPeriod/eid:US-2026-01", json={"allLocked": True}, admin=True
    )
    assert (
        error_of(erp.request("POST", f"{RECORD}/journalEntry", json=journal("2026-01-20", "US")))[0]
        == 400
    )
    erp.create("journalEntry", journal("2026-01-20", subsidiary="US"), admin=True)


def test_period_changes_need_the_admin_token_and_go_in_order(erp: Erp) -> None:
    before = erp.state()
    forbidden = erp.request(
        "PATCH", f"{RECORD}/accountingPeriod/eid:DE-2026-01", json={"closed": True}
    )
    assert error_of(forbidden)[:2] == (403, "INSUFFICIENT_PERMISSION")
    out_of_order = erp.request(
        "PATCH", f"{RECORD}/accountingPeriod/eid:DE-2026-02", json={"closed": True}, admin=True
    )
    status, code, detail = error_of(out_of_order)
    assert (status, code) == (400, "USER_ERROR") and "Jan 2026" in detail
    assert erp.state() == before
    for month in ("01", "02"):
        path = f"{RECORD}/accountingPeriod/eid:DE-2026-{month}"
        assert erp.request("PATCH", path, json={"closed": True}, admin=True).status_code == 204
    reopen_early = erp.request(
        "PATCH", f"{RECORD}/accountingPeriod/eid:DE-2026-01", json={"closed": False}, admin=True
    )
    assert error_of(reopen_early)[:2] == (400, "USER_ERROR")
    for month in ("02", "01"):
        path = f"{RECORD}/accountingPeriod/eid:DE-2026-{month}"
        assert erp.request("PATCH", path, json={"closed": False}, admin=True).status_code == 204
    erp.create("journalEntry", journal("2026-01-20", subsidiary="DE"))


def test_changes_in_a_closed_period_are_refused_too(erp: Erp) -> None:
    customer = erp.customer("Frozen", "UK")
    invoice = erp.create(
        "invoice",
        {
            "entity": {"id": customer},
            "tranDate": "2026-01-20",
            "item": {"items": [{"item": {"externalId": "USAGE"}, "amount": 5}]},
        },
    )
    erp.request(
        "PATCH", f"{RECORD}/accountingPeriod/eid:UK-2026-01", json={"closed": True}, admin=True
    )
    before = erp.state()
    for method, path, body in (
        ("PATCH", f"{RECORD}/invoice/{invoice}", {"memo": "late note"}),
        ("DELETE", f"{RECORD}/invoice/{invoice}", None),
    ):
        response = erp.request(method, path, json=body, admin=True)
        assert error_of(response)[:2] == (400, "USER_ERROR")
    assert erp.state() == before
    # Voiding posts in today's period (the clock's), which is the closed January here.
    assert error_of(erp.request("POST", f"{RECORD}/invoice/{invoice}/@void"))[:2] == (
        400,
        "USER_ERROR",
    )
    erp.control("POST", "/_sim/clock/set", {"to": "2026-02-03T00:00:00Z"})
    void = erp.request("POST", f"{RECORD}/invoice/{invoice}/@void")
    assert void.status_code == 200
    assert erp.get("journalEntry", void.json()["result"])["postingPeriod"]["refName"] == "Feb 2026"


def _period_count(erp: Erp) -> int:
    with erp.world.lock:
        return len(erp.sim.store.periods)


def test_moving_the_clock_far_makes_a_window_of_periods_not_every_month(erp: Erp) -> None:
    subsidiaries = len(erp.sim.store.subsidiaries)
    start = _period_count(erp)
    assert start == 13 * subsidiaries  # Jan 2026 .. Jan 2027
    erp.control("POST", "/_sim/clock/set", {"to": "2040-06-15T00:00:00Z"})
    near = _period_count(erp) - start
    erp.control("POST", "/_sim/clock/set", {"to": "9999-12-31T23:59:59Z"})
    far = _period_count(erp) - start - near
    # Each jump made today's month up to twelve months past it (capped at December 9999):
    # the same work whether the clock moved 14 years or 7,959.
    assert near == 13 * subsidiaries
    assert far == 1 * subsidiaries
    assert len(erp.snapshot()["store"]["periods"]) == start + near + far


def test_a_month_the_clock_jumped_over_exists_when_needed(erp: Erp) -> None:
    erp.control("POST", "/_sim/clock/set", {"to": "2031-03-10T00:00:00Z"})
    assert erp.sim.store.period_at(erp.sim.store.subsidiaries["1"].id, "2029-07") is None
    # A lookup, a posting and a close each make the month they name.
    record = erp.get("accountingPeriod", "eid:UK-2029-07")
    assert (record["periodName"], record["closed"]) == ("Jul 2029", False)
    posted = erp.create("journalEntry", journal("2028-02-14"))
    assert erp.get("journalEntry", posted)["postingPeriod"]["refName"] == "Feb 2028"
    # Beyond the window there is still no period.
    beyond = erp.request("GET", f"{RECORD}/accountingPeriod/eid:UK-2032-04")
    assert beyond.status_code == 404


def test_months_never_made_count_as_open_when_closing_in_order(erp: Erp) -> None:
    for month in range(1, 13):
        path = f"{RECORD}/accountingPeriod/eid:DE-2026-{month:02d}"
        assert erp.request("PATCH", path, json={"closed": True}, admin=True).status_code == 204
    erp.control("POST", "/_sim/clock/set", {"to": "2030-06-15T00:00:00Z"})
    refused = erp.request(
        "PATCH", f"{RECORD}/accountingPeriod/eid:DE-2030-06", json={"closed": True}, admin=True
    )
    status, code, detail = error_of(refused)
    assert (status, code) == (400, "USER_ERROR")
    # January 2027 was made at the start; February and March 2027 never were, and are open.
    assert "Jan 2027, Feb 2027, Mar 2027 …" in detail

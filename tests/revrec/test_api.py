"""Revrec end to end over a real loopback socket: contracts, billing, clock, closes, reports.

Expected figures come from the cited publications (Stripe Revenue Recognition examples,
ASC 606 Example 33) or are computed here with ``decimal`` and ``fractions``, never read back
from the simulator. Every test also checks (in the fixture) that no response was a 5xx, so
each response matched the contract.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest

from tests.revrec.conftest import Harness, at

Rows = dict[tuple[str, str], tuple[int, int, int, int]]


# --- helpers --------------------------------------------------------------------------------
def entity(h: Harness, name: str = "us", currency: str = "usd") -> None:
    h.ok("PUT", f"/v1/entities/{name}", {"functional_currency": currency})


def ratable(ext: str, amount: int, start: str, end: str, **extra: Any) -> dict[str, Any]:
    return {
        "external_id": ext,
        "product": extra.pop("product", ext),
        "pattern": "ratable",
        "unit_price_minor": amount,
        "service_start_at": at(start),
        "service_end_at": at(end),
        **extra,
    }


def book(h: Harness, ext: str, lines: list[dict[str, Any]], **extra: Any) -> Any:
    body = {
        "external_id": ext,
        "customer": "cus_1",
        "entity": extra.pop("entity", "us"),
        "currency": extra.pop("currency", "usd"),
        "lines": lines,
        **extra,
    }
    return h.ok("POST", "/v1/contracts", body)


def bill(
    h: Harness, ext: str, contract: str, line: str, amount: int, **extra: Any
) -> dict[str, Any]:
    return {
        "external_id": ext,
        "type": extra.pop("type", "invoice"),
        "contract": contract,
        "currency": extra.pop("currency", "usd"),
        "lines": [{"line": line, "amount_minor": amount}],
        **extra,
    }


def close(h: Harness, period: str, name: str = "us") -> Any:
    return h.ok("POST", f"/v1/periods/{name}/{period}/close")


def rows(period: dict[str, Any]) -> Rows:
    """Journal lines as {(currency, role): (debit, credit, functional debit, functional credit)}."""
    out: Rows = {}
    for line in period["journal_summary"]["lines"]:
        out[(line["currency"], line["account_role"])] = (
            line["debit_minor"],
            line["credit_minor"],
            line["functional_debit_minor"],
            line["functional_credit_minor"],
        )
    return out


def assert_balanced(period: dict[str, Any]) -> None:
    lines = period["journal_summary"]["lines"]
    assert sum(x["debit_minor"] for x in lines) == sum(x["credit_minor"] for x in lines)
    assert sum(x["functional_debit_minor"] for x in lines) == sum(
        x["functional_credit_minor"] for x in lines
    )


def totals(h: Harness, contract: str, as_of: str) -> dict[str, int]:
    result: dict[str, int] = h.ok(
        "GET", f"/v1/contracts/{contract}/balances", params={"as_of": at(as_of)}
    )["totals"]
    return result


def half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


# --- the main flow --------------------------------------------------------------------------
def test_annual_subscription_billed_recognised_closed_and_posted(revrec: Harness) -> None:
    h = revrec
    entity(h)
    endpoint = h.control(
        "POST",
        "/_sim/webhooks/endpoints",
        {"url": f"{h.urls['receiver']}/hooks/revrec", "events": ["period.closed", "schedule.*"]},
    )
    # Stripe's annual example (docs.stripe.com/revenue-recognition/examples/subscriptions):
    # 365 USD from January 1, per-day basis → 31, 28 and 31 USD in January to March and
    # 334 USD deferred at the end of January. 2026 is not a leap year, like 2019.
    contract = book(
        h, "opp_annual", [ratable("sub", 36500, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")]
    )
    assert contract["lines"][0]["allocated_minor"] == 36500
    h.ok("POST", "/v1/billing_events", bill(h, "in_1", contract["id"], "sub", 36500))

    closed = {}
    for period, revenue in [("2026-01", 3100), ("2026-02", 2800), ("2026-03", 3100)]:
        h.control("POST", "/_sim/clock/advance", {"duration": "P1M"})
        closed[period] = close(h, period)
        assert closed[period]["status"] == "closed"
        assert rows(closed[period]) == {
            ("usd", "deferred_revenue"): (revenue, 0, revenue, 0),
            ("usd", "revenue"): (0, revenue, 0, revenue),
        }
    assert totals(h, contract["id"], "2026-01-31T23:59:59Z") == {
        "recognised_minor": 3100,
        "billed_minor": 36500,
        "deferred_minor": 33400,
        "unbilled_minor": 0,
    }

    # Waterfall: booked 365 = 31 + 28 + 31 recognised + 275 remaining, all billed up front so
    # remaining is the deferred revenue balance.
    waterfall = h.ok(
        "GET", "/v1/reports/waterfall", params={"entity": "us", "as_of": at("2026-03-31T23:59:59Z")}
    )
    [row] = waterfall["rows"]
    assert row["booking_period"] == "2026-01"
    assert row["booked_minor"] == 36500
    assert [(c["period"], c["amount_minor"]) for c in row["recognised"]] == [
        ("2026-01", 3100),
        ("2026-02", 2800),
        ("2026-03", 3100),
    ]
    assert row["remaining_minor"] == 36500 - 9000
    assert waterfall["totals"][0]["deferred_minor"] == row["remaining_minor"]

    # The closes went out as signed period.closed events carrying the same journal.
    assert h.control("POST", "/_sim/webhooks/drain", {"timeout_s": 10})["drained"]
    received: dict[str, list[dict[str, Any]]] = {}
    for body, headers in h.receiver.received():
        stamp, signature = (part.split("=", 1)[1] for part in headers["x-sim-signature"].split(","))
        expected = hmac.new(
            endpoint["secret"].encode(), f"{stamp}.".encode() + body, hashlib.sha256
        ).hexdigest()
        assert hmac.compare_digest(signature, expected)
        event = json.loads(body)
        received.setdefault(event["type"], []).append(event["data"]["object"])
    by_period = {p["period"]: p for p in received["period.closed"]}
    assert set(by_period) == set(closed)
    for period, result in closed.items():
        assert by_period[period]["journal_summary"] == result["journal_summary"]
    assert received["schedule.updated"][0]["contract"] == contract["id"]


def test_fx_revenue_and_deferred_revenue_stay_at_the_booking_rate(revrec: Harness) -> None:
    h = revrec
    entity(h, "eu", "eur")
    booking, billing = Decimal("0.9137"), Decimal("0.9561")
    contract = book(
        h,
        "opp_fx",
        [ratable("sub", 36500, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")],
        entity="eu",
        exchange_rate=str(booking),
    )
    h.ok(
        "POST",
        "/v1/billing_events",
        bill(h, "in_fx", contract["id"], "sub", 36500, exchange_rate=str(billing)),
    )
    h.control("POST", "/_sim/clock/set", {"to": "2026-03-01T00:00:00Z"})
    jan, feb = close(h, "2026-01", "eu"), close(h, "2026-02", "eu")
    # Independent: functional revenue converts the cumulative recognised at the booking rate,
    # half-up; the invoice reached deferred revenue at its own rate, and the difference to the
    # booking rate goes to FX gain/loss in the period of the invoice.
    rev_jan = half_up(3100 * booking)
    rev_feb = half_up(5900 * booking) - rev_jan
    fx = half_up(36500 * billing) - half_up(36500 * booking)
    assert rows(jan) == {
        ("usd", "deferred_revenue"): (3100, 0, rev_jan + fx, 0),
        ("usd", "revenue"): (0, 3100, 0, rev_jan),
        ("usd", "fx_gain_loss"): (0, 0, 0, fx),
    }
    assert rows(feb) == {
        ("usd", "deferred_revenue"): (2800, 0, rev_feb, 0),
        ("usd", "revenue"): (0, 2800, 0, rev_feb),
    }
    assert jan["functional_currency"] == "eur"
    for period in (jan, feb):
        assert_balanced(period)
    functional = h.ok(
        "GET",
        f"/v1/contracts/{contract['id']}/balances",
        params={"as_of": at("2026-02-28T23:59:59Z")},
    )["functional"]
    # Deferred revenue is never remeasured: what was billed at the booking rate less revenue.
    assert functional["deferred_minor"] == half_up(36500 * booking) - half_up(5900 * booking)
    assert functional["fx_minor"] == fx


def test_closed_periods_are_never_restated_and_late_changes_land_in_the_first_open_one(
    revrec: Harness,
) -> None:
    h = revrec
    entity(h)
    first = book(h, "c1", [ratable("sub", 36500, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")])
    h.control("POST", "/_sim/clock/set", {"to": "2026-02-01T00:00:00Z"})
    jan = close(h, "2026-01")
    # Recognised without an invoice: a contract asset.
    assert rows(jan) == {
        ("usd", "unbilled_receivable"): (3100, 0, 3100, 0),
        ("usd", "revenue"): (0, 3100, 0, 3100),
    }
    # Late facts dated inside the closed January: an invoice, and a contract booked then.
    h.ok(
        "POST",
        "/v1/billing_events",
        bill(h, "in_late", first["id"], "sub", 36500, issued_at=at("2026-01-15T00:00:00Z")),
    )
    second = book(
        h,
        "c2",
        [ratable("sub", 3650, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")],
        booked_at=at("2026-01-20T00:00:00Z"),
    )
    assert h.ok("GET", "/v1/periods/us/2026-01") == jan
    assert totals(h, first["id"], "2026-01-31T23:59:59Z") == {
        "recognised_minor": 3100,
        "billed_minor": 0,
        "deferred_minor": 0,
        "unbilled_minor": 3100,
    }
    late = h.ok("GET", f"/v1/contracts/{second['id']}/schedule")["lines"][0]["periods"]
    # 10 a day: January's 310 is caught up in February (the first open period) with its 280.
    assert late[:2] == [
        {"period": "2026-02", "amount_minor": 310 + 280, "closed": False},
        {"period": "2026-03", "amount_minor": 310, "closed": False},
    ]
    h.control("POST", "/_sim/clock/set", {"to": "2026-03-01T00:00:00Z"})
    feb = close(h, "2026-02")
    # c1: recognised +2800; unbilled 3100 → 0 once billed. c2: 590 recognised, unbilled.
    assert rows(feb) == {
        ("usd", "deferred_revenue"): (2800 + 3100, 0, 5900, 0),
        ("usd", "unbilled_receivable"): (0, 3100 - 590, 0, 2510),
        ("usd", "revenue"): (0, 2800 + 590, 0, 3390),
    }
    assert h.ok("GET", "/v1/entities/us")["first_open_period"] == "2026-03"


def test_upgrade_mid_month_is_prospective_as_in_stripes_example(revrec: Harness) -> None:
    # docs.stripe.com/revenue-recognition/examples/subscriptions ("Upgrade"): a 90 USD monthly
    # subscription from April 1, upgraded on April 21 to 120 USD: 20 days of 90 USD (60 USD)
    # and 10 days of 120 USD (40 USD) are recognised in April. The line's consideration after
    # the upgrade is 90 − 30 (unused time credited) + 40 (remaining time at 120) = 100 USD.
    h = revrec
    entity(h)
    h.advance_to("2026-04-01T00:00:00Z")
    contract = book(
        h, "opp_up", [ratable("sub", 9000, "2026-04-01T00:00:00Z", "2026-05-01T00:00:00Z")]
    )
    h.ok("POST", "/v1/billing_events", bill(h, "in_apr", contract["id"], "sub", 9000))
    h.advance_to("2026-04-21T00:00:00Z")
    mod = h.api(
        "POST",
        f"/v1/contracts/{contract['id']}/modifications",
        {"external_id": "upgrade", "changes": [{"line": "sub", "amount_minor": 10000}]},
    )
    assert mod.status_code == 201, mod.text
    assert mod.json()["treatment"] == "prospective"
    assert mod.json()["adjustments"][0]["recognised_before_minor"] == 6000
    assert mod.json()["adjustments"][0]["catch_up_minor"] == 0
    # After the upgrade the line earns the 120 USD rate, 4 USD a day: 60 + 5 × 4 by April 25.
    assert totals(h, contract["id"], "2026-04-25T23:59:59Z")["recognised_minor"] == 8000
    h.advance_to("2026-05-01T00:00:00Z")
    april = close(h, "2026-04")
    # Billed 90 in April (the proration items are invoiced in May): 10 USD is unbilled.
    assert rows(april) == {
        ("usd", "deferred_revenue"): (9000, 0, 9000, 0),
        ("usd", "unbilled_receivable"): (1000, 0, 1000, 0),
        ("usd", "revenue"): (0, 10000, 0, 10000),
    }
    schedule = h.ok("GET", f"/v1/contracts/{contract['id']}/schedule")
    assert schedule["periods"] == [{"period": "2026-04", "amount_minor": 10000, "closed": True}]


def test_a_prospective_change_taking_back_more_than_is_left_reverses_at_once(
    revrec: Harness,
) -> None:
    # 300 USD over April (30 days, 10 USD a day); on April 11 (10 days, 100 USD recognised)
    # the price falls to 40 USD (a concession after a cancellation, say). The pool is
    # (300 − 100) + (40 − 300) = −60: no day can earn a negative amount, so 60 USD is reversed
    # on April 11 and nothing more is earned: 40 USD recognised, none above the allocation.
    h = revrec
    entity(h)
    h.advance_to("2026-04-01T00:00:00Z")
    contract = book(
        h, "opp_back", [ratable("sub", 30000, "2026-04-01T00:00:00Z", "2026-05-01T00:00:00Z")]
    )
    h.advance_to("2026-04-11T00:00:00Z")
    assert totals(h, contract["id"], "2026-04-11T00:00:00Z")["recognised_minor"] == 10000
    h.ok(
        "POST",
        f"/v1/contracts/{contract['id']}/modifications",
        {"external_id": "back", "changes": [{"line": "sub", "amount_minor": 4000}]},
    )
    for when in ("2026-04-11T00:00:00Z", "2026-04-20T00:00:00Z", "2026-04-30T23:59:59Z"):
        assert totals(h, contract["id"], when)["recognised_minor"] == 4000, when
    (line,) = h.ok("GET", f"/v1/contracts/{contract['id']}")["lines"]
    assert line["allocated_minor"] == 4000


def test_single_obligation_change_catches_up_cumulatively(revrec: Harness) -> None:
    # A 304-day implementation (one obligation, not a series: series=false) priced 304 USD,
    # 1 USD a day. On March 1 (59 days done) the price doubles. Cumulative catch-up (ASC
    # 606-10-25-13(b)): 59 days × 2 USD − 59 USD = 59 USD recognised at once in March, then
    # 2 USD a day: March = 59 + 31 × 2 = 121 USD. January and February stay as closed.
    h = revrec
    entity(h)
    contract = book(
        h,
        "opp_impl",
        [ratable("impl", 30400, "2026-01-01T00:00:00Z", "2026-11-01T00:00:00Z", series=False)],
    )
    h.advance_to("2026-03-01T00:00:00Z")
    jan, feb = close(h, "2026-01"), close(h, "2026-02")
    mod = h.ok(
        "POST",
        f"/v1/contracts/{contract['id']}/modifications",
        {"changes": [{"line": "impl", "amount_minor": 60800}]},
    )
    assert mod["treatment"] == "cumulative_catch_up"
    assert mod["adjustments"][0]["catch_up_minor"] == 5900
    h.advance_to("2026-04-01T00:00:00Z")
    march = close(h, "2026-03")
    assert rows(march)[("usd", "revenue")] == (0, 12100, 0, 12100)
    lines = h.ok("GET", f"/v1/contracts/{contract['id']}/schedule")["lines"][0]
    assert lines["periods"][:3] == [
        {"period": "2026-01", "amount_minor": 3100, "closed": True},
        {"period": "2026-02", "amount_minor": 2800, "closed": True},
        {"period": "2026-03", "amount_minor": 12100, "closed": True},
    ]
    assert lines["total_minor"] == lines["allocated_minor"] == 60800
    assert h.ok("GET", "/v1/periods/us/2026-01") == jan
    assert h.ok("GET", "/v1/periods/us/2026-02") == feb


def test_bundle_allocation_example_33_and_recognition_on_delivery(revrec: Harness) -> None:
    # ASC 606-10-55-256..258 (Example 33): SSPs 50, 25, 75 and a price of 100 → 33, 17, 50.
    h = revrec
    entity(h, "jp", "jpy")
    lines = [
        {
            "external_id": x,
            "product": x,
            "pattern": "point_in_time",
            "unit_price_minor": price,
            "unit_ssp_minor": ssp,
        }
        for x, price, ssp in [("A", 40, 50), ("B", 30, 25), ("C", 30, 75)]
    ]
    contract = book(h, "bundle", lines, entity="jp", currency="jpy")
    assert [ln["allocated_minor"] for ln in contract["lines"]] == [33, 17, 50]
    assert contract["transaction_price_minor"] == 100
    h.ok("POST", f"/v1/contracts/{contract['id']}/lines/B/deliveries", {"external_id": "ship-b"})
    recognised = totals(h, contract["id"], "2026-01-01T00:00:00Z")["recognised_minor"]
    assert recognised == 17
    again = h.api(
        "POST", f"/v1/contracts/{contract['id']}/lines/B/deliveries", {"external_id": "ship-b"}
    )
    assert again.status_code == 200  # a retried delivery is not a second delivery
    for name in ("A", "C"):
        h.ok("POST", f"/v1/contracts/{contract['id']}/lines/{name}/deliveries", {})
    assert totals(h, contract["id"], "2026-01-01T00:00:00Z")["recognised_minor"] == 100


def test_usage_is_unbilled_receivable_until_invoiced(revrec: Harness) -> None:
    h = revrec
    entity(h)
    usage = {"external_id": "api", "product": "api", "pattern": "usage", "unit_price_minor": 2}
    contract = book(h, "opp_usage", [usage])
    h.advance_to("2026-01-10T00:00:00Z")
    h.ok(
        "POST",
        f"/v1/contracts/{contract['id']}/lines/api/usage_records",
        {"quantity": 1000, "external_id": "m1"},
    )
    h.ok(
        "POST",
        f"/v1/contracts/{contract['id']}/lines/api/usage_records",
        {"quantity": 1000, "external_id": "m1"},
    )
    h.advance_to("2026-02-03T00:00:00Z")
    jan = close(h, "2026-01")
    assert rows(jan) == {
        ("usd", "unbilled_receivable"): (2000, 0, 2000, 0),
        ("usd", "revenue"): (0, 2000, 0, 2000),
    }
    h.ok("POST", "/v1/billing_events", bill(h, "in_use", contract["id"], "api", 2000))
    h.advance_to("2026-03-01T00:00:00Z")
    feb = close(h, "2026-02")
    # Invoicing reclassifies the contract asset; no new revenue.
    assert rows(feb) == {
        ("usd", "deferred_revenue"): (2000, 0, 2000, 0),
        ("usd", "unbilled_receivable"): (0, 2000, 0, 2000),
    }


# --- bad input ------------------------------------------------------------------------------
def test_bad_input_gets_a_clear_error_and_changes_nothing(revrec: Harness) -> None:
    h = revrec
    entity(h)
    entity(h, "eu", "eur")
    base = [ratable("sub", 12000, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")]
    contract = book(h, "good", base)
    cid = contract["id"]
    h.ok("POST", "/v1/billing_events", bill(h, "in_ok", cid, "sub", 1000))
    jan_end = "2026-02-01T00:00:00Z"
    inverted = ratable("x", 100, "2026-03-01T00:00:00Z", "2026-02-01T00:00:00Z")
    overlapping = [
        base[0],
        ratable("y", 100, "2026-06-01T00:00:00Z", "2027-06-01T00:00:00Z", product="sub"),
    ]
    negative_ssp = [{**base[0], "unit_ssp_minor": -1}]

    def contract_body(lines: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {
            "external_id": "bad",
            "customer": "c",
            "entity": "us",
            "currency": "usd",
            "lines": lines,
            **extra,
        }

    cases: list[tuple[str, str, Any, int, str, str | None]] = [
        (
            "POST",
            "/v1/contracts",
            contract_body([inverted]),
            422,
            "inverted_period",
            "lines[0][service_end_at]",
        ),
        (
            "POST",
            "/v1/contracts",
            contract_body(overlapping),
            422,
            "overlapping_service_periods",
            "lines[1][service_start_at]",
        ),
        (
            "POST",
            "/v1/contracts",
            contract_body(negative_ssp),
            400,
            "parameter_invalid",
            "lines[0][unit_ssp_minor]",
        ),
        (
            "POST",
            "/v1/contracts",
            contract_body(base, entity="nowhere"),
            404,
            "resource_missing",
            "entity",
        ),
        (
            "POST",
            "/v1/contracts",
            contract_body(base, entity="eu"),
            422,
            "exchange_rate_required",
            "exchange_rate",
        ),
        (
            "POST",
            "/v1/contracts",
            contract_body(base, exchange_rate="1.2"),
            422,
            "invalid_exchange_rate",
            "exchange_rate",
        ),
        (
            "POST",
            "/v1/contracts",
            {**contract_body(base), "external_id": "good"},
            409,
            "external_id_conflict",
            "customer",
        ),
        (
            "POST",
            "/v1/contracts",
            contract_body(
                [{**base[0], "unit_price_minor": 0, "unit_ssp_minor": 0, "amount_minor": 5}]
            ),
            422,
            "ssp_required",
            "lines",
        ),
        (
            "POST",
            "/v1/contracts",
            contract_body(base, booked_at=at("2027-01-01T00:00:00Z")),
            422,
            "instant_in_future",
            "booked_at",
        ),
        (
            "POST",
            "/v1/billing_events",
            bill(h, "b", "rc_nope", "sub", 1),
            404,
            "resource_missing",
            "contract",
        ),
        (
            "POST",
            "/v1/billing_events",
            bill(h, "b", cid, "nope", 1),
            404,
            "resource_missing",
            "lines[0][line]",
        ),
        (
            "POST",
            "/v1/billing_events",
            bill(h, "b", cid, "sub", 1, currency="eur"),
            422,
            "currency_mismatch",
            "currency",
        ),
        (
            "POST",
            "/v1/billing_events",
            bill(h, "b", cid, "sub", 1001, type="credit_note"),
            422,
            "credit_exceeds_billed",
            "lines[0][amount_minor]",
        ),
        (
            "POST",
            "/v1/billing_events",
            {
                **bill(h, "b", cid, "sub", 5),
                "lines": [
                    {"line": "sub", "amount_minor": 5, "period_start_at": 10, "period_end_at": 5}
                ],
            },
            422,
            "inverted_period",
            "lines[0][period_end_at]",
        ),
        (
            "POST",
            f"/v1/contracts/{cid}/modifications",
            {"changes": [{"line": "nope"}]},
            404,
            "resource_missing",
            "changes[0][line]",
        ),
        (
            "POST",
            f"/v1/contracts/{cid}/modifications",
            {"changes": [{"line": "sub", "service_end_at": at("2025-12-01T00:00:00Z")}]},
            422,
            "inverted_period",
            "changes[0][service_end_at]",
        ),
        (
            "POST",
            f"/v1/contracts/{cid}/modifications",
            {
                "changes": [
                    {"line": "sub", "quantity": 0, "unit_ssp_minor": 0, "amount_minor": 100}
                ],
                "treatment": "prospective",
            },
            422,
            "ssp_required",
            "changes",
        ),
        (
            "POST",
            f"/v1/contracts/{cid}/modifications",
            {
                "add_lines": [
                    ratable("z", 1, "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", product="sub")
                ]
            },
            422,
            "overlapping_service_periods",
            "add_lines[0][service_start_at]",
        ),
        ("POST", f"/v1/contracts/{cid}/lines/sub/deliveries", {}, 422, "wrong_pattern", "line"),
        ("POST", "/v1/periods/us/2026-01/close", None, 409, "period_not_ended", "period"),
        ("POST", "/v1/periods/us/2026-13/close", None, 400, "parameter_invalid", "period"),
        ("GET", "/v1/contracts/rc_nope/schedule", None, 404, "resource_missing", "contract"),
    ]
    before = h.store()
    for method, path, body, status, code, param in cases:
        response = h.api(method, path, body)
        assert response.status_code == status, (path, code, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert (problem["code"], problem["param"]) == (code, param), (path, problem)
        assert problem["status"] == status and problem["detail"], problem
        assert h.store() == before, f"{code} changed the state"

    h.advance_to(jan_end)
    close(h, "2026-01")
    after_close = h.store()
    for period, code in [("2026-01", "period_closed"), ("2026-03", "period_out_of_order")]:
        h.advance_to("2026-04-01T00:00:00Z")
        refused = h.api("POST", f"/v1/periods/us/{period}/close")
        assert (refused.status_code, refused.json()["code"]) == (409, code)
        assert h.store() == after_close


# --- retries, upserts, auth, faults, snapshots ----------------------------------------------
def test_external_ids_and_idempotency_keys_never_duplicate(revrec: Harness) -> None:
    h = revrec
    entity(h)
    body = {
        "external_id": "opp_1",
        "customer": "cus_1",
        "entity": "us",
        "currency": "usd",
        "lines": [ratable("sub", 12000, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")],
    }
    first = h.api("POST", "/v1/contracts", body)
    again = h.api("POST", "/v1/contracts", {**body, "metadata": {"crm": "opp_1"}})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["metadata"] == {"crm": "opp_1"}  # metadata is upserted
    cid = first.json()["id"]
    invoice = bill(h, "in_1", cid, "sub", 12000)
    keyed = [
        h.api("POST", "/v1/billing_events", invoice, headers={"Idempotency-Key": "k1"})
        for _ in range(2)
    ]
    assert keyed[1].headers["idempotent-replayed"] == "true"
    assert keyed[1].json() == keyed[0].json()
    unkeyed = h.api("POST", "/v1/billing_events", invoice)
    assert unkeyed.status_code == 200 and unkeyed.json()["id"] == keyed[0].json()["id"]
    changed = h.api("POST", "/v1/billing_events", bill(h, "in_1", cid, "sub", 999))
    assert (changed.status_code, changed.json()["code"], changed.json()["param"]) == (
        409,
        "external_id_conflict",
        "lines",
    )
    assert totals(h, cid, "2026-01-01T00:00:00Z")["billed_minor"] == 12000
    listed = h.ok("GET", "/v1/contracts", params={"external_id": "opp_1"})
    assert len(listed["data"]) == 1


def test_contracts_are_found_by_external_id_with_the_other_filters(revrec: Harness) -> None:
    h = revrec
    entity(h)
    entity(h, "uk", "gbp")
    line = [ratable("sub", 1200, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")]
    ids = {ext: book(h, ext, line)["id"] for ext in ("opp_1", "opp_2")}
    book(h, "opp_3", line, entity="uk", currency="gbp")

    def found(**params: str) -> list[str]:
        return [c["id"] for c in h.ok("GET", "/v1/contracts", params=params)["data"]]

    assert found(external_id="opp_2") == [ids["opp_2"]]
    assert found(external_id="opp_2", entity="us") == [ids["opp_2"]]
    assert found(external_id="opp_2", entity="uk") == []
    assert found(external_id="opp_2", customer="cus_other") == []
    assert found(external_id="nothing") == []
    assert len(found(entity="us")) == 2 and len(found()) == 3


def test_an_ambiguous_commit_is_safe_to_retry_by_external_id(revrec: Harness) -> None:
    h = revrec
    entity(h)
    cid = book(h, "c", [ratable("sub", 12000, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")])[
        "id"
    ]
    h.control(
        "POST",
        "/_sim/faults",
        {
            "system": "revrec",
            "operation": "createBillingEvent",
            "kind": "ambiguous_commit",
            "max_hits": 1,
        },
    )
    invoice = bill(h, "in_amb", cid, "sub", 12000)
    with pytest.raises(httpx.TransportError):
        h.api("POST", "/v1/billing_events", invoice)  # written, then the connection drops
    assert len(h.ok("GET", "/v1/billing_events", params={"contract": cid})["data"]) == 1
    retried = h.api("POST", "/v1/billing_events", invoice)
    assert retried.status_code == 200  # found, not created twice
    assert len(h.ok("GET", "/v1/billing_events", params={"contract": cid})["data"]) == 1


def test_requests_need_the_bearer_token(revrec: Harness) -> None:
    response = revrec.client.get(
        f"{revrec.url}/v1/entities", headers={"Authorization": "Bearer nope"}
    )
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert revrec.client.get(f"{revrec.url}/v1/entities").status_code == 401


def test_snapshot_restores_the_subledger(revrec: Harness) -> None:
    h = revrec
    entity(h)
    cid = book(h, "c", [ratable("sub", 36500, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")])[
        "id"
    ]
    h.advance_to("2026-02-01T00:00:00Z")
    close(h, "2026-01")
    snapshot = h.control("GET", "/_sim/snapshot")
    schedule = h.ok("GET", f"/v1/contracts/{cid}/schedule")
    reports = snapshot["systems"]["revrec"]["reports"]
    assert reports["contracts"][cid]["schedule"] == schedule
    assert reports["contracts"][cid]["balances"] == h.ok("GET", f"/v1/contracts/{cid}/balances")
    waterfall = h.ok("GET", "/v1/reports/waterfall", params={"entity": "us"})
    assert reports["entities"]["us"]["waterfall"] == waterfall
    [january] = reports["entities"]["us"]["closed_periods"]
    assert january == h.ok("GET", "/v1/periods/us/2026-01")
    h.control("POST", "/_sim/reset", {})
    assert h.api("GET", f"/v1/contracts/{cid}/schedule").status_code == 404
    h.control("POST", "/_sim/snapshot", snapshot)
    assert h.ok("GET", f"/v1/contracts/{cid}/schedule") == schedule
    assert h.ok("GET", "/v1/entities/us")["closed_through"] == "2026-01"
    events = h.ok("GET", "/v1/events", params={"type": "period.closed"})["data"]
    assert [e["data"]["object"]["period"] for e in events] == ["2026-01"]

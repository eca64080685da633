"""The connector's pure parts and its durable queue, each against hand-worked examples."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from examples.stripe_netsuite_connector.mapping import (
    ErpLine,
    Period,
    credit_note_lines,
    drawn_credit,
    erp_lines,
    posting_period,
    utc_day,
)
from examples.stripe_netsuite_connector.money import json_number, to_decimal, to_minor
from examples.stripe_netsuite_connector.throttle import Gate, backoff_s, parse_retry_after
from examples.stripe_netsuite_connector.web import route
from examples.stripe_netsuite_connector.workqueue import QueueFull, Work, WorkQueue


def _line(
    line_id: str, amount: int, item: str | None, *, proration: bool = False
) -> dict[str, Any]:
    """A Stripe invoice line: on subscription item ``item``, or a one-off invoice item."""
    if item is None:
        parent = {
            "type": "invoice_item_details",
            "invoice_item_details": {"invoice_item": f"ii_{line_id}", "proration": proration},
            "subscription_item_details": None,
        }
    else:
        parent = {
            "type": "subscription_item_details",
            "subscription_item_details": {"subscription_item": item, "proration": proration},
            "invoice_item_details": None,
        }
    return {"id": line_id, "amount": amount, "description": f"line {line_id}", "parent": parent}


# lines ------------------------------------------------------------------------------------
def test_prorations_net_into_their_item_and_one_offs_go_to_services() -> None:
    lines = [
        _line("renew", 50000, "si_a"),
        _line("credit", -20323, "si_a", proration=True),
        _line("debit", 33871, "si_a", proration=True),
        _line("setup", 15000, None),
    ]
    assert erp_lines(lines) == [
        ErpLine("SUBSCRIPTION", 50000 - 20323 + 33871, "line renew"),
        ErpLine("SERVICES", 15000, "line setup"),
    ]


def test_a_negative_item_is_taken_from_the_largest_line_of_the_same_erp_item_first() -> None:
    # A downgrade from item a to item b: a's unused time (-300) exceeds what is left on a.
    lines = [
        _line("a_credit", -300, "si_a", proration=True),
        _line("b_charge", 100, "si_b", proration=True),
        _line("c", 1000, "si_c"),
        _line("setup", 500, None),
    ]
    result = erp_lines(lines)
    assert result == [
        ErpLine("SUBSCRIPTION", 100, "line b_charge"),
        ErpLine("SUBSCRIPTION", 700, "line c"),
        ErpLine("SERVICES", 500, "line setup"),
    ]
    assert sum(line.amount_minor for line in result) == -300 + 100 + 1000 + 500
    assert all(line.amount_minor > 0 for line in result)


def test_credit_beyond_its_erp_item_comes_off_another_item_and_a_negative_total_is_refused() -> (
    None
):
    lines = [_line("sub", 200, "si_a"), _line("refund", -500, "si_a"), _line("setup", 900, None)]
    assert erp_lines(lines) == [ErpLine("SERVICES", 600, "line setup")]
    with pytest.raises(ValueError):
        erp_lines([_line("x", 100, "si_a"), _line("y", -150, None)])


def test_a_negative_invoice_mirrors_into_positive_credit_memo_lines() -> None:
    lines = [_line("unused", -13548, "si_a", proration=True)]
    assert erp_lines(lines, sign=-1) == [ErpLine("SUBSCRIPTION", 13548, "line unused")]


def test_credit_note_lines_follow_the_line_they_credit() -> None:
    invoice = {
        "parent": {"type": "subscription_details", "subscription_details": {"subscription": "s"}},
    }
    invoice_lines = [_line("il_1", 1000, "si_a"), _line("il_2", 500, None)]
    note = {
        "number": "CN-1",
        "lines": [
            {"amount": 300, "invoice_line_item": "il_2", "description": None},
            {"amount": 200, "invoice_line_item": None, "description": "goodwill"},
        ],
    }
    assert credit_note_lines(note, invoice_lines, invoice) == [
        ErpLine("SERVICES", 300, "Credit note CN-1"),
        ErpLine("SUBSCRIPTION", 200, "goodwill"),  # custom credit on a subscription invoice
    ]
    assert credit_note_lines(note, invoice_lines, {"parent": None})[1].item == "SERVICES"


# dates, periods, credit ----------------------------------------------------------------------
def test_dates_are_utc_days_and_periods_skip_closed_months() -> None:
    assert utc_day(1767225599) == "2025-12-31"  # 2025-12-31T23:59:59Z
    assert utc_day(1767225600) == "2026-01-01"
    periods = [
        Period("3", "2026-03-01", True),
        Period("1", "2026-01-01", False),
        Period("2", "2026-02-01", True),
    ]
    assert posting_period(periods, "2026-01-31") == periods[2]  # January closed → February
    assert posting_period(periods, "2026-02-28") == periods[2]
    assert posting_period(periods, "2026-03-15") == periods[0]
    assert posting_period(periods, "2026-04-01") is None
    # AR locked while January closes: January's documents wait in it (the ledger refuses
    # them until the unlock); they do not slip into February.
    locked = [Period("1", "2026-01-01", True, ar_locked=True), Period("2", "2026-02-01", True)]
    assert posting_period(locked, "2026-01-20") == locked[0]


def test_drawn_credit_is_what_the_balance_moved_towards_zero() -> None:
    def inv(total: int, start: int, end: int | None) -> dict[str, Any]:
        return {"total": total, "starting_balance": start, "ending_balance": end}

    assert drawn_credit(inv(40000, -8000, 0)) == 8000
    assert drawn_credit(inv(10000, -13548, -3548)) == 10000
    assert drawn_credit(inv(10000, 500, 0)) == 0  # a debt carried, not credit drawn
    assert drawn_credit(inv(-13548, 0, -13548)) == 0  # a negative invoice adds credit
    assert drawn_credit(inv(10000, 0, None)) == 0  # a draft


def test_money_converts_once_and_exactly() -> None:
    assert to_decimal(123456, "usd") == Decimal("1234.56")
    assert to_decimal(1000, "JPY") == Decimal("1000")
    assert to_decimal(1005, "kwd") == Decimal("1.005")
    assert to_minor(Decimal("80.00"), "usd") == 8000 and to_minor("0.1", "usd") == 10
    with pytest.raises(ValueError):
        to_minor(Decimal("10.005"), "usd")
    assert json_number(Decimal("10.01")) == 10.01 and json_number(Decimal("300.00")) == 300
    assert repr(json_number(Decimal("999999999.99"))) == "999999999.99"


# Retry-After and backoff ------------------------------------------------------------------
def test_retry_after_reads_seconds_and_dates_and_is_bounded() -> None:
    assert parse_retry_after("2") == 2.0 and parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("-4") == 0.0 and parse_retry_after("99999") == 600.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    seconds = parse_retry_after(later)
    assert seconds is not None and 28 <= seconds <= 30


def test_backoff_grows_to_its_cap_with_jitter() -> None:
    assert 0.1 <= backoff_s(0) <= 0.2
    assert 0.4 <= backoff_s(2) <= 0.8
    assert all(1.5 <= backoff_s(n) <= 3.0 for n in (5, 40, 10**6))


def test_a_gate_holds_every_caller_and_a_remembered_hold_survives_a_restart() -> None:
    kept: dict[str, float] = {}
    gate = Gate("erp", remember=kept.__setitem__)
    with gate.turn():
        gate.note("0.3")
    started = time.monotonic()
    with gate.turn():
        waited = time.monotonic() - started
    assert waited >= 0.29
    assert kept["erp"] == pytest.approx(time.time() + 0.3 - waited, abs=0.1)
    restarted = Gate("erp", closed_until=time.time() + 0.3)
    started = time.monotonic()
    with restarted.turn():
        assert time.monotonic() - started >= 0.29


def test_gate_turns_are_one_at_a_time() -> None:
    gate, inside, most = Gate("x"), [0], [0]
    lock = threading.Lock()

    def call() -> None:
        with gate.turn():
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.01)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1


# the work queue ------------------------------------------------------------------------------
def test_events_about_one_object_coalesce_and_duplicates_are_dropped(tmp_path: Path) -> None:
    queue = WorkQueue(tmp_path / "q.sqlite")
    work = Work("invoice", "in_1", "cus_1")
    assert queue.accept("evt_1", work) == "queued"
    assert queue.accept("evt_1", work) == "duplicate"
    assert queue.accept("evt_2", work) == "queued"  # the same job, not a second one
    assert queue.accept("evt_3", None) == "ignored"
    assert queue.open_jobs() == 1
    claim = queue.claim(set())
    assert claim is not None and (claim.kind, claim.object_id) == ("invoice", "in_1")
    assert queue.claim(set()) is None
    queue.done(claim)
    assert queue.open_jobs() == 0 and queue.counts() == {"done": 1}
    assert queue.accept("evt_4", work) == "queued"  # a later event re-arms it
    assert queue.open_jobs() == 1


def test_an_event_during_a_run_makes_the_job_run_again(tmp_path: Path) -> None:
    queue = WorkQueue(tmp_path / "q.sqlite")
    queue.accept("evt_1", Work("invoice", "in_1", "cus_1"))
    claim = queue.claim(set())
    assert claim is not None
    queue.accept("evt_2", Work("invoice", "in_1", "cus_1"))
    assert queue.claim(set()) is None  # still running: not twice at once
    queue.done(claim)
    again = queue.claim(set())
    assert again is not None and again.generation == claim.generation + 1
    queue.park(again, "refused", "Stripe invoice in_1 not posted to NetSuite: refused")
    assert queue.open_jobs() == 0 and queue.counts() == {"parked": 1}


def test_one_lane_at_a_time_and_retries_wait_their_turn(tmp_path: Path) -> None:
    queue = WorkQueue(tmp_path / "q.sqlite")
    queue.accept("e1", Work("invoice", "in_1", "cus_a"))
    queue.accept("e2", Work("credit_note", "cn_1", "cus_a"))
    queue.accept("e3", Work("invoice", "in_2", "cus_b"))
    first = queue.claim(set())
    assert first is not None and first.object_id == "in_1"
    second = queue.claim({"cus_a"})
    assert second is not None and second.object_id == "in_2"  # cus_a is busy: skip cn_1
    queue.retry(first, 60.0, "503")
    third = queue.claim({"cus_b"})
    assert third is not None and third.object_id == "cn_1"
    assert queue.claim(set()) is None  # in_1 is not due for a minute
    due = queue.next_due_in()
    assert due is not None and 59 <= due <= 60


def test_a_killed_process_leaves_its_running_jobs_to_the_next(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    queue = WorkQueue(path)
    queue.accept("e1", Work("invoice", "in_1", "cus_a"))
    assert queue.claim(set()) is not None
    queue.remember_hold("netsuite", 123.0)
    reopened = WorkQueue(path)  # as after kill -9: nothing was finished
    assert reopened.counts() == {"ready": 1}
    assert reopened.accept("e1", Work("invoice", "in_1", "cus_a")) == "duplicate"
    assert reopened.hold_until("netsuite") == 123.0 and reopened.hold_until("stripe") == 0.0


def test_a_full_queue_refuses_and_keeps_nothing(tmp_path: Path) -> None:
    queue = WorkQueue(tmp_path / "q.sqlite", max_open_jobs=2)
    queue.accept("e1", Work("invoice", "in_1", "c"))
    queue.accept("e2", Work("invoice", "in_2", "c"))
    with pytest.raises(QueueFull):
        queue.accept("e3", Work("invoice", "in_3", "c"))
    assert queue.open_jobs() == 2
    claim = queue.claim(set())
    assert claim is not None
    queue.done(claim)
    assert queue.accept("e3", Work("invoice", "in_3", "c")) == "queued"  # the refusal kept nothing


def test_events_route_to_the_object_they_name() -> None:
    invoice = {"id": "in_1", "customer": "cus_1"}
    assert route({"type": "invoice.paid", "data": {"object": invoice}}) == Work(
        "invoice", "in_1", "cus_1"
    )
    assert route(
        {"type": "credit_note.voided", "data": {"object": {"id": "cn_1", "customer": "c"}}}
    ) == Work("credit_note", "cn_1", "c")
    assert route({"type": "invoice.created", "data": {"object": invoice}}) is None
    assert route({"type": "invoice.paid", "data": {}}) is None

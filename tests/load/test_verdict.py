"""The load verdict: the checks follow the flow, backlog is not loss, late is not lost."""

from __future__ import annotations

from typing import Any

from harness.load.checks import match
from harness.load.verdict import (
    EXIT_BACKLOG,
    EXIT_FAIL,
    EXIT_PASS,
    Timeline,
    invoice_sla,
    judge_documents,
    percentiles,
    verdict,
)
from tests.load.helpers import books, invoice

AR, PAYMENT = "erp_ar_document_per_finalised_invoice", "erp_payment_per_paid_invoice"


def _judge(b: Any, *, settled: bool, at_stop: frozenset[str] = frozenset()):
    results, unexpected = match(b)
    timeline = Timeline(100.0, at_stop, {}, settled)
    documents, unexpected_json = judge_documents(results, unexpected, timeline)
    summary = {
        "documents": documents,
        "unexpected": unexpected_json,
        "settle": {"settled": settled, "integration_alive": True, "why": "bound passed"},
        "locust": {"available": True, "requests": 10},
        "invariants": {"checked": False},
    }
    return {d["rule"]: d for d in documents}, verdict(summary)


def test_a_zero_total_invoice_owes_nothing_and_is_not_lost() -> None:
    # The month-end disagreement: zero-total invoices reported lost, which the flow never posts.
    b = books([invoice("in_zero", 0), invoice("in_pos", 4900)], [("invoice", "in_pos")])
    rules, result = _judge(b, settled=True)
    assert rules[AR]["owed"] == 1
    assert rules[AR]["exempt"] == {"total 0: the flow posts nothing": 1}
    assert rules[AR]["lost"] == 0
    assert result["passed"] is True and result["exit_code"] == EXIT_PASS


def test_a_negative_invoice_owes_a_credit_memo_under_its_id() -> None:
    as_memo = books([invoice("in_neg", -1200)], [("creditMemo", "in_neg")])
    assert _judge(as_memo, settled=True)[1]["passed"] is True
    as_invoice = books([invoice("in_neg", -1200)], [("invoice", "in_neg")])
    rules, result = _judge(as_invoice, settled=True)
    assert rules[AR]["lost"] == 1 and rules[AR]["lost_ids"] == ["in_neg"]
    assert result["unexpected"] == 1  # the ERP invoice no source owes
    assert result["exit_code"] == EXIT_FAIL


def test_a_paid_invoice_with_nothing_paid_owes_no_payment() -> None:
    paid_by_credit = invoice("in_credit", 4900, status="paid", paid=0)
    paid = invoice("in_paid", 4900, status="paid", paid=4900)
    b = books(
        [paid_by_credit, paid],
        [("invoice", "in_credit"), ("invoice", "in_paid"), ("customerPayment", "pay_in_paid")],
    )
    rules, result = _judge(b, settled=True)
    assert rules[PAYMENT]["owed"] == 1 and rules[PAYMENT]["lost"] == 0
    assert rules[PAYMENT]["exempt"] == {"paid from credit (amount_paid 0): no payment": 1}
    assert result["passed"] is True


def test_backlog_is_not_loss() -> None:
    # The world had not settled: a missing document is still on its way, not lost.
    b = books([invoice("in_1", 4900), invoice("in_2", 4900)], [("invoice", "in_1")])
    rules, result = _judge(b, settled=False)
    assert (rules[AR]["lost"], rules[AR]["backlog"]) == (0, 1)
    assert rules[AR]["backlog_ids"] == ["in_2"]
    assert result["lost"] == 0 and result["backlog"] == 1
    assert result["exit_code"] == EXIT_BACKLOG
    assert result["reasons"][0].startswith("backlog: not caught up")
    # The same books once everything settled: now it is lost.
    rules, result = _judge(b, settled=True)
    assert (rules[AR]["lost"], rules[AR]["backlog"]) == (1, 0)
    assert result["exit_code"] == EXIT_FAIL


def test_a_document_posted_after_the_load_stopped_is_late_with_its_catch_up_time() -> None:
    b = books(
        [invoice("in_1", 4900), invoice("in_2", 4900)], [("invoice", "in_1"), ("invoice", "in_2")]
    )
    results, unexpected = match(b)
    # in_1's transaction ("1") existed when the load stopped at t=100; in_2's was written at 112.5.
    timeline = Timeline(100.0, frozenset({"Transaction:1"}), {("invoice", "in_2"): 112.5}, True)
    documents, _ = judge_documents(results, unexpected, timeline)
    ar = next(d for d in documents if d["rule"] == AR)
    assert (ar["posted"], ar["late"], ar["lost"]) == (1, 1, 0)
    assert ar["late_catch_up_s"]["max"] == 12.5


def test_invoice_sla_counts_unposted_invoices_apart() -> None:
    finalised = {"in_1": 10.0, "in_2": 20.0, "in_3": 30.0, "in_4": 40.0, "in_after": 200.0}
    # in_3 has no document (-1), in_4's was written by a call the taps did not see (None).
    posted = {"in_1": 11.0, "in_2": 24.0, "in_3": -1.0, "in_4": None, "in_after": 201.0}
    sla = invoice_sla(finalised, posted, stop_wall=100.0)
    assert (sla["finalised_during_load"], sla["not_posted"], sla["not_observed"]) == (4, 1, 1)
    assert sla["invoice_finalised_to_erp_posted_s"] == {
        "count": 2,
        "p50": 1.0,
        "p90": 4.0,
        "p95": 4.0,
        "p99": 4.0,
        "max": 4.0,
    }


def test_percentiles_are_nearest_rank() -> None:
    assert percentiles([]) == {"count": 0}
    values = [float(v) for v in range(1, 101)]
    assert percentiles(values) == {
        "count": 100,
        "p50": 50.0,
        "p90": 90.0,
        "p95": 95.0,
        "p99": 99.0,
        "max": 100.0,
    }

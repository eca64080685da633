"""Expectations from scenarios alone, against hand computations; figures; independence."""

from __future__ import annotations

import ast
import math
import subprocess
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from harness.oracle import OracleError, compare, expect, figure
from harness.scenario import Scenario

Make = Callable[[str], Scenario]
ORACLE = Path(__file__).resolve().parents[2] / "harness" / "oracle"


def half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def trunc(value: Fraction) -> int:
    return math.trunc(value)


def test_oracle_modules_import_no_simulator() -> None:
    for path in sorted(ORACLE.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                assert not module.startswith("simulators"), (path.name, module)
    # And at run time: importing the oracle loads no simulator module, even transitively.
    code = (
        "import sys, harness.oracle; "
        "bad = [m for m in sys.modules if m.startswith('simulators')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_new_deal_renews_monthly_from_a_month_end_anchor(scenario: Make) -> None:
    expected = expect(
        scenario("""\
        name: renewals
        start_at: 2026-01-31T10:00:00Z
        steps:
          - crm.create_opportunity:
              {key: deal, customer: acme, lines: [{price: pro_usd, quantity: 2}]}
          - crm.close_won: {opportunity: deal}
          - clock.advance: {to: 2026-03-31T10:30:00Z}
        """)
    )
    invoices = expected.invoices["deal"]
    assert [(i.billing_reason, i.total_minor) for i in invoices] == [
        ("subscription_create", 20000),
        ("subscription_cycle", 20000),
        ("subscription_cycle", 20000),
    ]
    first, second, third = invoices
    # Periods from the Jan 31 anchor: Feb 28, then Mar 31 again.
    assert second.lines[0].period_start == third.period_start
    assert (second.created_at, third.created_at) == (1772272800, 1774951200)  # Feb 28, Mar 31
    # The renewal draft finalises an hour later: the last one is still a draft at 10:30.
    assert (first.status, second.status, third.status) == ("open", "open", "draft")
    # Counted as the runner reads it: finalised invoices only; the ERP has none for a draft.
    assert figure(expected, "invoice_count:deal") == 2
    assert figure(expected, "erp_invoice_total:deal:2") == 20000
    with pytest.raises(OracleError):
        figure(expected, "erp_invoice_total:deal:3")
    # A draft shows its total as due (Stripe's convention): 2 × 10000, no balance applied yet.
    assert (third.amount_due_minor, figure(expected, "amount_due:deal:3")) == (20000, 20000)
    assert [d.kind for d in expected.erp] == ["invoice", "invoice"]


def test_create_prorations_wait_for_the_renewal(scenario: Make) -> None:
    expected = expect(
        scenario("""\
        name: mid-cycle upgrade
        start_at: 2026-04-01T00:00:00Z
        steps:
          - crm.create_opportunity:
              {key: deal, customer: acme, lines: [{price: pro_usd, quantity: 9}]}
          - crm.close_won: {opportunity: deal}
          - clock.advance: P20DT6H
          - billing.update_subscription:
              {opportunity: deal, lines: [{price: pro_usd, quantity: 12}]}
          - clock.advance: P10DT1H
        """)
    )
    # April has 30 days; 9 days 18 hours are left of it at the change.
    left = Fraction(9 * 86400 + 18 * 3600, 30 * 86400)
    credit, debit = half_up(90000 * left), half_up(120000 * left)
    assert (credit, debit) == (29250, 39000)
    renewal = expected.invoices["deal"][1]
    assert sorted(line.amount_minor for line in renewal.lines) == [-credit, debit, 120000]
    assert figure(expected, "invoice_total:deal:2") == 120000 - credit + debit
    # Changed in billing: the contract follows prospectively. Its consideration becomes what
    # the customer pays in all: the booked 9 seats × 12 months, the net prorations, and 3 more
    # seats for the 11 months after April.
    booked = 9 * 10000 * 12
    consideration = booked - credit + debit + 3 * 10000 * 11
    assert figure(expected, "allocated:deal:pro_usd") == consideration == 1419750
    # Apr 1 2026 – Apr 1 2027 is 365 days. By the change, April 1–20 have ended: 20 of the 30
    # days of April's share, trunc(1080000 × 30 / 365).
    april_share = trunc(Fraction(booked * 30, 365))
    earned = trunc(Fraction(april_share * 20, 30))
    assert (april_share, earned) == (88767, 59178)
    # What is not yet recognised, plus the added consideration, is spread over the 345 days
    # left (Apr 21 – Mar 31); April keeps 10 of them.
    pool = booked - earned + consideration - booked
    april = earned + trunc(Fraction(pool * 10, 345))
    assert figure(expected, "recognised:us:2026-04") == april == 98614
    (line,) = expected.contracts["deal"].lines
    assert sum(line.schedule.values()) == consideration  # all of it by the end of the term
    # By May 1 07:00 April's 90000 and May's renewal with the net prorations are billed, and
    # no day of May has ended yet.
    assert figure(expected, "deferred:us") == 90000 + 120000 - credit + debit - april


def test_a_billing_change_that_changes_nothing_keeps_the_prediction(scenario: Make) -> None:
    expected = expect(
        scenario("""\
        name: same items again
        start_at: 2026-04-01T00:00:00Z
        steps:
          - crm.create_opportunity:
              {key: deal, customer: acme, lines: [{price: pro_usd, quantity: 9}]}
          - crm.close_won: {opportunity: deal}
          - billing.update_subscription:
              {opportunity: deal, lines: [{price: pro_usd, quantity: 9}]}
        """)
    )
    # No change for the contract to follow: its schedule is the booking's. April 2026 – March
    # 2027 is 365 days; April's share is trunc(1080000 × 30 / 365).
    assert expected.changes == []
    (line,) = expected.contracts["deal"].lines
    assert line.schedule["2026-04"] == 1080000 * 30 // 365
    assert len(line.segments) == 1


def test_a_zero_invoice_posts_nothing_to_the_erp(scenario: Make) -> None:
    expected = expect(
        scenario("""\
        name: usage only
        start_at: 2026-01-01T00:00:00Z
        steps:
          - crm.create_opportunity: {key: deal, customer: acme, lines: [{price: api_usd}]}
          - crm.close_won: {opportunity: deal}
        """)
    )
    (first,) = expected.invoices["deal"]
    assert (first.total_minor, first.status) == (0, "paid")
    assert expected.erp == []
    with pytest.raises(OracleError):
        figure(expected, "erp_invoice_total:deal:1")


def test_always_invoice_downgrade_becomes_customer_credit(scenario: Make) -> None:
    expected = expect(
        scenario("""\
        name: downgrade now
        start_at: 2026-02-01T00:00:00Z
        steps:
          - crm.create_opportunity:
              {key: deal, customer: acme, lines: [{price: pro_usd, quantity: 3}]}
          - crm.close_won: {opportunity: deal}
          - clock.advance: P7D
          - billing.update_subscription:
              {opportunity: deal, lines: [{price: pro_usd, quantity: 1}],
               proration_behavior: always_invoice}
          - clock.advance: P21DT2H
        """)
    )
    # 21 of 28 days left: credit 3 seats, charge 1; the negative invoice is customer credit,
    # which the renewal (1 seat) then uses.
    net = -30000 * 21 // 28 + 10000 * 21 // 28
    assert net == -15000
    update = expected.invoices["deal"][1]
    assert (update.billing_reason, update.total_minor, update.amount_due_minor) == (
        "subscription_update",
        net,
        0,
    )
    renewal = expected.invoices["deal"][2]
    assert (renewal.total_minor, renewal.amount_due_minor) == (10000, 0)
    assert figure(expected, "balance:acme") == net + 10000


def test_immediate_cancellation_and_usage_deduplication(scenario: Make) -> None:
    expected = expect(
        scenario("""\
        name: cancel now
        start_at: 2026-01-01T00:00:00Z
        steps:
          - crm.create_opportunity:
              key: deal
              customer: acme
              lines: [{price: pro_usd, quantity: 1}, {price: api_usd}]
          - crm.close_won: {opportunity: deal}
          - billing.report_usage:
              {customer: acme, price: api_usd, value: 40, identifier: x, repeat: 5}
          - billing.report_usage: {customer: acme, price: api_usd, value: 2, identifier: x}
          - clock.advance: P15DT12H
          - billing.report_usage: {customer: acme, price: api_usd, value: 1}
          - clock.advance: PT1S
          - billing.cancel: {opportunity: deal, prorate: true, invoice_now: true}
          - billing.pay: {customer: acme, invoice: all_open}
        """)
    )
    final = expected.invoices["deal"][-1]
    # Usage 40 (x counted once) + 1, at 3 cents; credit for 15.5 days less one second of 31.
    unused = Fraction(31 * 86400 - (15 * 86400 + 12 * 3600 + 1), 31 * 86400)
    assert sorted(line.amount_minor for line in final.lines) == [-half_up(10000 * unused), 123]
    assert final.total_minor == 123 - 5000  # half_up(10000 × unused) is 5000
    assert final.amount_due_minor == 0
    assert figure(expected, "balance:acme") == final.total_minor
    first = expected.invoices["deal"][0]
    assert (first.status, first.amount_paid_minor) == ("paid", 10000)
    # The negative final invoice is a credit memo under the invoice id, for 5000 − 123.
    assert [(d.kind, d.source, d.total_minor) for d in expected.erp] == [
        ("invoice", "deal#1", 10000),
        ("customerPayment", "deal#1", 10000),
        ("creditMemo", "deal#2", 4877),
    ]
    # Cancelled: the contract ends at once. The seat line's consideration is what was billed
    # for it (10000 less the 5000 credit; the 11 later months are never billed), all of it
    # recognised by the cancellation; the usage line recognises the 41 calls it billed.
    seats, calls = expected.contracts["deal"].lines
    assert (seats.terminated_at, seats.allocated_minor) == (final.created_at, 10000 - 5000)
    assert seats.schedule == {"2026-01": 5000} and calls.schedule == {"2026-01": 41 * 3}
    assert figure(expected, "recognised:us:2026-01") == 5000 + 123
    assert figure(expected, "deferred:us") == 0


def test_credit_notes_before_and_after_payment(scenario: Make) -> None:
    expected = expect(
        scenario("""\
        name: credits
        start_at: 2026-01-01T00:00:00Z
        steps:
          - crm.create_opportunity:
              {key: deal, customer: acme, lines: [{price: pro_usd, quantity: 1}]}
          - crm.close_won: {opportunity: deal}
          - billing.credit_note: {customer: acme, amount: 4000}
          - billing.pay: {customer: acme}
          - billing.credit_note: {customer: acme, amount: 1000, credit_to: refund}
          - billing.credit_note: {customer: acme, amount: 500}
          - billing.credit_note: {customer: acme, amount: 9000}
        """)
    )
    (inv,) = expected.invoices["deal"]
    pre, refund, credit = inv.credit_notes
    assert (pre.pre_payment_minor, inv.amount_due_minor, inv.amount_paid_minor) == (
        4000,
        6000,
        6000,
    )
    assert (refund.refund_minor, credit.credit_minor) == (1000, 500)
    # 4000 + 1000 + 500 credited; 9000 more would exceed the 10000 invoice: refused.
    assert len(inv.credit_notes) == 3
    assert any("exceeds" in note for note in expected.notes)
    assert figure(expected, "balance:acme") == -500


def test_contract_allocation_and_recognised_revenue(scenario: Make) -> None:
    expected = expect(
        scenario("""\
        name: two obligations
        start_at: 2026-03-01T00:00:00Z
        steps:
          - crm.create_opportunity:
              key: deal
              customer: acme
              lines: [{price: pro_usd, quantity: 2}, {price: support_usd, quantity: 1}]
          - crm.close_won: {opportunity: deal}
          - clock.advance: {to: 2026-04-10T12:00:00Z}
        """)
    )
    # Price over 12 monthly periods: (2·10000 + 2500)·12 = 270000, allocated by SSP
    # 2·12000 : 3000 (per month, ×12 alike) = 8 : 1.
    price = (2 * 10000 + 2500) * 12
    pro = Fraction(price * 24000, 27000)
    assert (pro, price - pro) == (240000, 30000)
    assert figure(expected, "allocated:deal:pro_usd") == 240000
    assert figure(expected, "allocated:deal:support_usd") == 30000
    # 365 days from Mar 1 2026: March earns trunc(x·31/365) per line, April trunc(x·30/365),
    # of which 9 days (Apr 1–9) have ended by Apr 10 12:00.
    march = trunc(Fraction(240000 * 31, 365)) + trunc(Fraction(30000 * 31, 365))
    april = sum(trunc(Fraction(trunc(Fraction(x * 30, 365)) * 9, 30)) for x in (240000, 30000))
    assert figure(expected, "recognised:us:2026-03") == march
    assert figure(expected, "recognised:us:2026-04") == april
    assert figure(expected, "recognised:us:2030-01") == 0
    assert sum(sum(x.schedule.values()) for x in expected.contracts["deal"].lines) == price
    # Two months billed (the Mar 1 and Apr 1 invoices), each line ahead of its revenue.
    assert figure(expected, "deferred:us") == 2 * 22500 - march - april


def test_figure_names_are_checked(scenario: Make) -> None:
    expected = expect(
        scenario("""\
        name: figures
        steps:
          - crm.create_opportunity:
              {key: deal, customer: acme, lines: [{price: pro_usd}, {price: api_usd}]}
          - crm.close_won: {opportunity: deal}
        """)
    )
    assert figure(expected, "invoice_total:deal:1") == 10000
    for name in (
        "invoice_total:deal:2",
        "invoice_total:nobody:1",
        "balance:nobody",
        "allocated:deal:nothing",
        "recognised:us",
        "deferred:us:2026-01",
        "turnover:2026",
    ):
        with pytest.raises(OracleError):
            figure(expected, name)


def _books(expected: Any, **changes: Any) -> dict[str, Any]:
    """Books shaped like a world snapshot, written by hand for one invoice of 10000."""
    books: dict[str, Any] = {
        "systems": {
            "billing": {
                "store": {
                    "invoices": [
                        {
                            "id": "in_1",
                            "subscription": "sub_1",
                            "created": 1,
                            "billing_reason": "subscription_create",
                            "status": "open",
                            "amount_due": 10000,
                            "amount_paid": 0,
                            "lines": [{"amount": 10000, "proration": False}],
                        }
                    ],
                    "customers": [{"id": "cus_1", "balance": 0}],
                    "credit_notes": [],
                    "subscription_items": [{"id": "si_1", "price": "price_1"}],
                    "prices": [{"id": "price_1", "lookup_key": "pro_usd"}],
                }
            },
            "erp": {
                "store": {
                    "transactions": [
                        {
                            "id": "7",
                            "kind": "invoice",
                            "external_id": "in_1",
                            "items": [{"amount_minor": changes.get("erp_total", 10000)}],
                        }
                    ]
                }
            },
            "revrec": {
                "store": {"contracts": [{"id": "rc_1", "external_id": "sub_1"}]},
                "reports": {
                    "contracts": {
                        "rc_1": {
                            "schedule": {
                                "lines": [
                                    {
                                        "line": "rcl_1",
                                        "external_id": "si_1",
                                        "allocated_minor": changes.get("allocated", 120000),
                                        "periods": [
                                            {"period": m, "amount_minor": a}
                                            for m, a in expected.contracts["deal"]
                                            .lines[0]
                                            .schedule.items()
                                        ],
                                    }
                                ]
                            }
                        }
                    }
                },
            },
        }
    }
    return books


def test_compare_reads_erp_and_revrec_and_names_the_records(scenario: Make) -> None:
    expected = expect(
        scenario("""\
        name: one deal
        start_at: 2026-01-01T00:00:00Z
        steps:
          - crm.create_opportunity:
              {key: deal, customer: acme, lines: [{price: pro_usd, quantity: 1}]}
          - crm.close_won: {opportunity: deal}
        """)
    )
    names = {"opportunity:deal": "sub_1", "customer:acme": "cus_1"}
    assert compare(expected, _books(expected), names) == []
    revrec, erp = compare(expected, _books(expected, erp_total=9999, allocated=119999), names)
    assert (erp.records, erp.details) == (
        ("erp:invoice/7", "billing:in_1"),
        {"expected": 10000, "actual": 9999},
    )
    assert revrec.records == ("revrec:rc_1", "revrec:rcl_1")
    assert revrec.details["expected"]["allocated"] == 120000
    assert revrec.details["actual"]["allocated"] == 119999
    missing = compare(expected, _books(expected), {"customer:acme": "cus_1"})
    # Both the invoices and the contract of the unnamed subscription are missing.
    assert [v.records for v in missing] == [("scenario:opportunity:deal",)] * 2


def test_compare_expects_a_credit_memo_for_a_negative_invoice(scenario: Make) -> None:
    expected = expect(
        scenario("""\
        name: cancel now
        start_at: 2026-01-01T00:00:00Z
        steps:
          - crm.create_opportunity:
              {key: deal, customer: acme, lines: [{price: pro_usd, quantity: 1}]}
          - crm.close_won: {opportunity: deal}
          - clock.advance: P10D
          - billing.cancel: {opportunity: deal, prorate: true, invoice_now: true}
        """)
    )
    # 21 of January's 31 days unused: round½↑(10000 × 21 / 31) = round½↑(6774.19) = 6774.
    final = expected.invoices["deal"][1]
    assert final.total_minor == -6774
    assert [(d.kind, d.source, d.total_minor) for d in expected.erp] == [
        ("invoice", "deal#1", 10000),
        ("creditMemo", "deal#2", 6774),
    ]

    def books(memo_minor: int) -> dict[str, Any]:
        invoice = {"subscription": "sub_1", "status": "open", "amount_paid": 0}
        return {
            "systems": {
                "billing": {
                    "store": {
                        "invoices": [
                            invoice
                            | {
                                "id": "in_1",
                                "created": 1,
                                "billing_reason": "subscription_create",
                                "amount_due": 10000,
                                "lines": [{"amount": 10000, "proration": False}],
                            },
                            invoice
                            | {
                                "id": "in_2",
                                "created": 2,
                                "billing_reason": "subscription_cycle",
                                "status": "paid",
                                "amount_due": 0,
                                "lines": [{"amount": -6774, "proration": True}],
                            },
                        ],
                        "customers": [{"id": "cus_1", "balance": -6774}],
                        "credit_notes": [],
                    }
                },
                "erp": {
                    "store": {
                        "transactions": [
                            {
                                "id": "7",
                                "kind": "invoice",
                                "external_id": "in_1",
                                "items": [{"amount_minor": 10000}],
                            },
                            {
                                "id": "8",
                                "kind": "creditMemo",
                                "external_id": "in_2",
                                "items": [{"amount_minor": memo_minor}],
                            },
                        ]
                    }
                },
            }
        }

    names = {"opportunity:deal": "sub_1", "customer:acme": "cus_1"}
    assert compare(expected, books(6774), names) == []
    (wrong,) = compare(expected, books(6700), names)
    assert (wrong.records, wrong.details) == (
        ("erp:creditMemo/8", "billing:in_2"),
        {"expected": 6774, "actual": 6700},
    )

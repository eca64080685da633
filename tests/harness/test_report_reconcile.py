"""reconciliation(books): billing invoiced vs ERP posted vs subledger billed, per entity and day."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.reconcile import reconciliation
from tests.invariants import flow
from tests.invariants.stack import SEED, START_AT, Stack, serve


@pytest.fixture(scope="module")
def served() -> Iterator[Stack]:
    yield from serve()


@pytest.fixture
def stack(served: Stack) -> Stack:
    served.world.reset(seed=SEED, start_at=START_AT)
    return served


DAY = START_AT[:10]  # the flow finalises its first invoice at the world's start


def test_a_synced_deal_ties_out_in_all_three_systems(stack: Stack) -> None:
    flow.new_deal(stack, quantity=3, unit_amount=1250)
    (row,) = reconciliation(stack.books())
    invoiced = 3 * 1250  # three seats at 12.50
    assert (row["entity"], row["day"], row["currency"]) == ("US", DAY, "USD")
    assert row["billing_invoiced_minor"] == invoiced and row["billing_invoices"] == 1
    assert row["erp_posted_minor"] == invoiced and row["erp_documents"] == 1
    assert row["subledger_billed_minor"] == invoiced and row["subledger_events"] == 1
    assert row["ties"] is True


def test_an_erp_posting_off_by_one_cent_does_not_tie(stack: Stack) -> None:
    deal = flow.new_deal(stack, quantity=2, unit_amount=1000, sync=False)
    flow.sync_invoice(stack, deal.invoices[0], amount_delta=1)
    (row,) = reconciliation(stack.books())
    assert row["billing_invoiced_minor"] == 2000
    assert row["erp_posted_minor"] == 2001
    assert row["subledger_billed_minor"] == 2000
    assert row["ties"] is False


def test_a_posting_on_another_day_shows_as_two_rows(stack: Stack) -> None:
    deal = flow.new_deal(stack, quantity=1, unit_amount=500, sync=False)
    flow.sync_invoice(stack, deal.invoices[0], tran_on="2026-01-16", subledger=False)
    rows = reconciliation(stack.books())
    assert [(r["day"], r["billing_invoiced_minor"], r["erp_posted_minor"]) for r in rows] == [
        (DAY, 500, 0),
        ("2026-01-16", 0, 500),
    ]
    assert not any(r["ties"] for r in rows)


def test_an_empty_world_has_nothing_to_reconcile(stack: Stack) -> None:
    assert reconciliation(stack.books()) == []

"""Every rule that says what it reads reads nothing else: what lets a step skip it holds."""

from __future__ import annotations

import dataclasses

import pytest

from harness.books import Books
from harness.invariants import REGISTRY, check_all
from harness.invariants.registry import Memo
from harness.violations import Violation
from tests.invariants import flow
from tests.invariants.reads import recording
from tests.invariants.stack import Stack


def _matches(resource: str, reads: tuple[str, ...]) -> bool:
    return any(resource == r or (r.endswith("*") and resource.startswith(r[:-1])) for r in reads)


def _world(stack: Stack) -> Books:
    deal = flow.new_deal(stack)
    flow.new_deal(stack, quantity=3, entity="UK")
    credit = flow.new_deal(stack, quantity=1, sync=False)
    flow.sync_invoice(stack, credit.invoices[0], amount_delta=1)
    stack.advance_to("2026-02-01T00:00:00Z")
    stack.revrec("POST", "/v1/periods/US/2026-01/close", harness=True)
    flow.cancel_now(stack, deal, "2026-02-10T00:00:00Z")
    stack.drain()
    return stack.books()


def test_each_rule_reads_only_what_it_says(stack: Stack) -> None:
    books = _world(stack)
    assert books.invoices and books.erp_transactions and books.rr_contracts
    beyond = {}
    for rule, inv in REGISTRY.items():
        recorded, seen = recording(books)
        list(inv.check(recorded))
        assert seen, f"{rule} read nothing: the recorder missed its reads"
        if inv.reads is not None:
            extra = sorted(r for r in seen if not _matches(r, inv.reads))
            if extra:
                beyond[rule] = extra
    assert beyond == {}


def test_the_recorder_sees_what_a_rule_reads_below_the_books(stack: Stack) -> None:
    books = _world(stack)
    recorded, seen = recording(books)
    recorded.erp_period_at("1", "2026-01")
    assert "erp_periods" in seen  # read inside the store's own method
    recorded, seen = recording(books)
    assert recorded.opportunity_lines
    assert "crm.OpportunityLineItem" in seen
    recorded, seen = recording(books)
    recorded.rr_line_balances(next(iter(books.rr_contracts.values())))
    assert {"now", "revrec.lines"} <= seen


@pytest.mark.parametrize(
    ("changed", "reads", "unmoved"),
    [
        ({"erp_periods", "journal.erp"}, ("billing.*", "erp.*", "now"), True),
        ({"erp_periods"}, ("billing.*", "erp_periods"), False),
        ({"erp.transactions"}, ("billing.*", "erp.*"), False),
        ({"now"}, ("revrec.*", "now"), False),
        ({"journal.billing"}, ("journal.*",), False),
        (set(), ("billing.*",), True),
    ],
)
def test_a_rule_is_unmoved_only_when_nothing_it_reads_changed(
    changed: set[str], reads: tuple[str, ...], unmoved: bool
) -> None:
    inv = dataclasses.replace(REGISTRY["INV-06"], reads=reads)
    assert inv.unmoved(changed) is unmoved
    assert dataclasses.replace(inv, reads=None).unmoved(changed) is False


def _by_rule(found: list[Violation]) -> dict[str, list[Violation]]:
    out: dict[str, list[Violation]] = {}
    for v in found:
        out.setdefault(v.rule, []).append(v)
    return out


def test_a_step_that_changed_only_periods_rejudges_only_the_rules_that_read_them(
    stack: Stack,
) -> None:
    deal = flow.new_deal(stack, sync=False)
    flow.sync_invoice(stack, deal.invoices[0], amount_delta=1)  # the ERP invoice is off by 1
    stack.advance_to("2026-02-01T00:00:00Z")
    memo: Memo = {}
    first = stack.books()
    found = _by_rule(check_all(first, memo=memo))
    assert "INV-06" in found
    stack.control("erp", "POST", "/_sim/periods/US/2026-01", {"state": "closed"})
    closed = stack.books(before=first)
    assert closed.changed == {"erp_periods", "journal.erp"}
    again = check_all(closed, memo=memo)
    assert [v.as_json() for v in again] == [v.as_json() for v in check_all(closed)]
    kept = _by_rule(again)
    assert all(a is b for a, b in zip(kept["INV-06"], found["INV-06"], strict=True))
    # A change to what a rule reads judges it again, on the books as they now are.
    stack.billing("POST", f"/v1/invoices/{deal.invoices[0]}/void", harness=True)
    stack.drain()
    voided = stack.books(before=closed)
    assert "billing.invoices" in (voided.changed or ())
    third = check_all(voided, memo=memo)
    assert [v.as_json() for v in third] == [v.as_json() for v in check_all(voided)]
    assert not any(a is b for a in _by_rule(third).get("INV-06", []) for b in found["INV-06"])
    # Books taken from nothing, or after books the memo never judged, are judged whole.
    fresh = stack.books()
    assert fresh.changed is None
    skipped = stack.books(before=stack.books(before=voided))
    assert skipped.since != voided.generation

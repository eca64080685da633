"""Books: a frozen snapshot that survives JSON and does not move with the world."""

from __future__ import annotations

import json

from harness.books import Books
from harness.invariants import check_all
from tests.invariants import flow
from tests.invariants.stack import Stack


def test_books_round_trip_through_json_and_check_the_same(stack: Stack) -> None:
    deal = flow.new_deal(stack, sync=False)
    flow.sync_invoice(stack, deal.invoices[0], amount_delta=1)
    stack.advance_to("2026-02-01T00:00:00Z")
    stack.revrec("POST", "/v1/periods/US/2026-01/close", harness=True)
    books = stack.books()
    found = [v.as_json() for v in check_all(books)]
    assert any(v["rule"] == "INV-06" for v in found)
    again = Books.from_json(json.loads(json.dumps(books.to_json())))
    assert [v.as_json() for v in check_all(again)] == found
    assert again.to_json() == books.to_json()


def test_books_do_not_move_with_the_world(stack: Stack) -> None:
    deal = flow.new_deal(stack)
    books = stack.books()
    stack.billing("POST", f"/v1/invoices/{deal.invoices[0]}/void", harness=True)
    stack.crm("PATCH", f"/sobjects/Opportunity/{deal.opportunity}", {"Name": "Renamed"})
    assert books.invoices[deal.invoices[0]].status == "open"
    opp = books.crm_record(deal.opportunity)
    assert opp is not None and opp.get("Name") != "Renamed"
    assert stack.books().invoices[deal.invoices[0]].status == "void"


def test_books_taken_after_others_share_only_the_rows_that_did_not_change(stack: Stack) -> None:
    deal = flow.new_deal(stack)
    first = stack.books()
    other = flow.new_deal(stack, quantity=3)
    stack.billing("POST", f"/v1/invoices/{deal.invoices[0]}/void", harness=True)
    stack.crm("PATCH", f"/sobjects/Opportunity/{deal.opportunity}", {"Name": "Renamed"})
    stack.drain()
    fresh = stack.books()
    lent = stack.books(before=first)
    # The same books as a snapshot taken from nothing, whatever was lent.
    assert lent.to_json() == fresh.to_json()
    assert [v.as_json() for v in check_all(lent)] == [v.as_json() for v in check_all(fresh)]
    # What changed is a new copy; what did not is the earlier copy itself.
    voided, kept = lent.invoices[deal.invoices[0]], first.invoices[deal.invoices[0]]
    assert voided is not kept and voided.status == "void" and kept.status == "open"
    opp = lent.crm_record(deal.opportunity)
    assert opp is not None and opp.get("Name") == "Renamed"
    assert first.crm_record(deal.opportunity) is not opp
    customer = first.invoices[deal.invoices[0]].customer
    assert lent.billing_store.customers[customer] is first.billing_store.customers[customer]
    assert other.invoices[0] in lent.invoices and other.invoices[0] not in first.invoices
    # What changed is named; books taken again with nothing done in between name nothing.
    assert lent.changed is not None and fresh.changed is None
    assert {"billing.invoices", "crm.Opportunity", "journal.billing"} <= lent.changed
    assert "erp_periods" not in lent.changed and "now" not in lent.changed
    again = stack.books(before=lent)
    assert again.changed == frozenset() and again.since == lent.generation
    assert again.billing_store.invoices == lent.billing_store.invoices
    # and the lent books still do not move with the world
    stack.billing("POST", f"/v1/invoices/{other.invoices[0]}/void", harness=True)
    assert lent.invoices[other.invoices[0]].status == "open"


def test_books_resolve_account_roles_to_erp_ids(stack: Stack) -> None:
    books = stack.books()
    deferred = books.account_ids["deferred_revenue"]
    assert books.erp_accounts[deferred].number == books.accounts["deferred_revenue"]

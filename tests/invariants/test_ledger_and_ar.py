"""Ledger and billing ↔ AR invariants: each holds after a correct flow and fires on one bug."""

from __future__ import annotations

import dataclasses

from tests.invariants import flow
from tests.invariants.helpers import fires, holds
from tests.invariants.stack import Stack


def _erp_invoice(stack: Stack, invoice_id: str) -> str:
    txn = stack.books().erp_by_external_id("invoice", invoice_id)
    assert txn is not None
    return txn.id


def _pay(stack: Stack, invoice_id: str) -> None:
    stack.billing(
        "POST", f"/v1/invoices/{invoice_id}/pay", {"paid_out_of_band": True}, harness=True
    )


# --- INV-01 -----------------------------------------------------------------------------------
def test_inv01_holds(stack: Stack) -> None:
    deal = flow.new_deal(stack)
    _pay(stack, deal.invoices[0])
    flow.sync_payment(stack, deal.invoices[0])
    holds(stack, "INV-01")


def test_inv01_violated(stack: Stack) -> None:
    # The ERP refuses unbalanced postings, so a broken ledger can only be made by hand.
    deal = flow.new_deal(stack)
    erp_id = _erp_invoice(stack, deal.invoices[0])
    lines = stack.erp_sim.store.gl[erp_id]
    lines[0] = dataclasses.replace(lines[0], debit_minor=lines[0].debit_minor + 1)
    fires(stack, "INV-01", f"erp:invoice/{erp_id}", "erp:subsidiary/1")


# --- INV-02 -----------------------------------------------------------------------------------
def test_inv02_holds(stack: Stack) -> None:
    flow.new_deal(stack)
    holds(stack, "INV-02")


def test_inv02_violated(stack: Stack) -> None:
    # One line of a balanced invoice moved to February: each transaction still balances,
    # but January's and February's trial balances do not.
    deal = flow.new_deal(stack)
    erp_id = _erp_invoice(stack, deal.invoices[0])
    books = stack.books()
    january = books.erp_by_external_id("invoice", deal.invoices[0])
    assert january is not None
    february = books.erp_period_at(january.subsidiary, "2026-02")
    assert february is not None
    lines = stack.erp_sim.store.gl[erp_id]
    lines[0] = dataclasses.replace(lines[0], period=february.id)
    fires(
        stack,
        "INV-02",
        f"erp:accountingPeriod/{january.period}",
        f"erp:accountingPeriod/{february.id}",
    )
    holds(stack, "INV-01")


# --- INV-03 -----------------------------------------------------------------------------------
def test_inv03_holds(stack: Stack) -> None:
    deal = flow.new_deal(stack, sync=False)
    stack.advance_to("2026-02-02T00:00:00Z")
    # January is closed: the January invoice keeps its date and posts in February.
    stack.erp("PATCH", "/accountingPeriod/eid:US-2026-01", {"closed": True}, admin=True)
    flow.sync_invoice(
        stack, deal.invoices[0], extra={"postingPeriod": {"externalId": "US-2026-02"}}
    )
    holds(stack, "INV-03")


def test_inv03_violated(stack: Stack) -> None:
    # January is open, and the integration dates the January invoice on the day it syncs.
    deal = flow.new_deal(stack, sync=False)
    stack.advance_to("2026-02-02T00:00:00Z")
    erp_id = flow.sync_invoice(stack, deal.invoices[0], tran_on="2026-02-02")
    fires(stack, "INV-03", f"billing:{deal.invoices[0]}", f"erp:invoice/{erp_id}")


def test_inv03_violated_posting_after_an_open_period(stack: Stack) -> None:
    deal = flow.new_deal(stack, sync=False)
    stack.advance_to("2026-02-02T00:00:00Z")
    erp_id = flow.sync_invoice(
        stack, deal.invoices[0], extra={"postingPeriod": {"externalId": "US-2026-02"}}
    )
    fires(stack, "INV-03", f"erp:invoice/{erp_id}")


def test_inv03_holds_past_a_locked_period(stack: Stack) -> None:
    # January is locked for everyone, not closed: it takes no postings either, so the January
    # invoice keeps its date and posts in February, the first period that takes it.
    deal = flow.new_deal(stack, sync=False)
    stack.advance_to("2026-02-02T00:00:00Z")
    stack.erp("PATCH", "/accountingPeriod/eid:US-2026-01", {"allLocked": True}, admin=True)
    flow.sync_invoice(
        stack, deal.invoices[0], extra={"postingPeriod": {"externalId": "US-2026-02"}}
    )
    holds(stack, "INV-03")


# --- INV-05 -----------------------------------------------------------------------------------
def test_inv05_holds(stack: Stack) -> None:
    flow.new_deal(stack, entity="UK")
    holds(stack, "INV-05")


def test_inv05_violated(stack: Stack) -> None:
    # The customer's metadata says US; the integration routes its ERP customer to the UK.
    deal = flow.new_deal(stack, sync=False)
    stack.erp_write(
        "PUT",
        f"/customer/eid:{deal.customer}",
        {
            "companyName": "Acme",
            "subsidiary": {"externalId": "UK"},
            "currency": {"externalId": "USD"},
        },
    )
    erp_id = flow.sync_invoice(stack, deal.invoices[0], extra={"subsidiary": {"externalId": "UK"}})
    fires(
        stack,
        "INV-05",
        f"billing:{deal.customer}",
        f"erp:customer/{deal.erp_customer}",
        f"erp:invoice/{erp_id}",
    )


# --- INV-06 -----------------------------------------------------------------------------------
def test_inv06_holds(stack: Stack) -> None:
    deal = flow.new_deal(stack)
    # A voided invoice is reversed in the ERP too.
    stack.billing("POST", f"/v1/invoices/{deal.invoices[0]}/void", harness=True)
    stack.erp("POST", f"/invoice/eid:{deal.invoices[0]}/@void")
    holds(stack, "INV-06")


def test_inv06_violated_by_a_second_copy(stack: Stack) -> None:
    deal = flow.new_deal(stack)
    copy = flow.sync_invoice(
        stack, deal.invoices[0], external_id=f"{deal.invoices[0]}-2", subledger=False
    )
    fires(stack, "INV-06", f"erp:invoice/{copy}")


def test_inv06_violated(stack: Stack) -> None:
    deal = flow.new_deal(stack, sync=False)
    erp_id = flow.sync_invoice(stack, deal.invoices[0], amount_delta=1)
    fires(stack, "INV-06", f"billing:{deal.invoices[0]}", f"erp:invoice/{erp_id}")


def test_inv06_violated_by_a_void_not_reversed(stack: Stack) -> None:
    deal = flow.new_deal(stack)
    stack.billing("POST", f"/v1/invoices/{deal.invoices[0]}/void", harness=True)
    fires(
        stack,
        "INV-06",
        f"billing:{deal.invoices[0]}",
        f"erp:invoice/{_erp_invoice(stack, deal.invoices[0])}",
    )


# --- INV-40 -----------------------------------------------------------------------------------
def test_inv40_holds(stack: Stack) -> None:
    flow.new_deal(stack)
    holds(stack, "INV-40")


def test_inv40_violated(stack: Stack) -> None:
    deal = flow.new_deal(stack, sync=False)
    erp_id = flow.sync_invoice(stack, deal.invoices[0], write_back=False)
    fires(stack, "INV-40", f"billing:{deal.invoices[0]}", f"erp:invoice/{erp_id}")


def test_inv40_violated_by_another_documents_id(stack: Stack) -> None:
    deal = flow.new_deal(stack)
    stack.billing(
        "POST", f"/v1/invoices/{deal.invoices[0]}", {"metadata": {"erp_document_id": "999"}}
    )
    (found,) = fires(stack, "INV-40", f"billing:{deal.invoices[0]}")
    assert found.details["metadata"] == "999"


# --- INV-07 -----------------------------------------------------------------------------------
def test_inv07_holds(stack: Stack) -> None:
    deal = flow.new_deal(stack)
    _pay(stack, deal.invoices[0])
    flow.sync_payment(stack, deal.invoices[0])
    holds(stack, "INV-07")


def test_inv07_violated(stack: Stack) -> None:
    # The ERP keeps its arithmetic; a paid amount no application explains is made by hand.
    deal = flow.new_deal(stack)
    erp_id = _erp_invoice(stack, deal.invoices[0])
    stack.erp_sim.store.transactions[erp_id].paid_minor += 500
    fires(stack, "INV-07", f"erp:invoice/{erp_id}")


# --- INV-08 -----------------------------------------------------------------------------------
def _credit(stack: Stack, invoice_id: str, amount: int) -> str:
    cn = stack.billing(
        "POST", "/v1/credit_notes", {"invoice": invoice_id, "amount": amount}, harness=True
    )
    return str(cn["id"])


def _sync_credit_note(stack: Stack, cn_id: str, amount_delta: int = 0) -> str:
    books = stack.books()
    cn = books.credit_notes[cn_id]
    amount = flow.major(cn.total + amount_delta)
    return stack.erp_write(
        "PUT",
        f"/creditMemo/eid:{cn_id}",
        {
            "entity": {"externalId": cn.customer},
            "subsidiary": {"externalId": books.customer_entity(cn.customer)},
            "currency": {"externalId": cn.currency.upper()},
            "tranDate": flow.utc_day(cn.created),
            "createdFrom": {"externalId": cn.invoice},
            "item": {"items": [{"item": {"externalId": "SUBSCRIPTION"}, "amount": amount}]},
            "apply": {
                "items": [{"doc": {"externalId": cn.invoice}, "apply": True, "amount": amount}]
            },
        },
    )


def test_inv08_holds(stack: Stack) -> None:
    deal = flow.new_deal(stack)
    cn = _credit(stack, deal.invoices[0], 500)
    _sync_credit_note(stack, cn)
    holds(stack, "INV-08")


def test_inv08_violated(stack: Stack) -> None:
    deal = flow.new_deal(stack)
    cn = _credit(stack, deal.invoices[0], 500)
    memo = _sync_credit_note(stack, cn, amount_delta=-100)
    fires(stack, "INV-08", f"billing:{cn}", f"erp:creditMemo/{memo}")


# --- INV-09 -----------------------------------------------------------------------------------
def test_inv09_holds(stack: Stack) -> None:
    deal = flow.new_deal(stack)
    _pay(stack, deal.invoices[0])
    flow.sync_payment(stack, deal.invoices[0])
    holds(stack, "INV-09")


def test_inv09_violated(stack: Stack) -> None:
    # Paid in billing; the integration never posts the payment, so the ERP still shows it open.
    deal = flow.new_deal(stack)
    _pay(stack, deal.invoices[0])
    fires(
        stack,
        "INV-09",
        f"billing:{deal.invoices[0]}",
        f"erp:invoice/{_erp_invoice(stack, deal.invoices[0])}",
    )


# --- negative and zero invoices (INV-06, INV-08, INV-09) --------------------------------------
def _credit_invoice(stack: Stack) -> tuple[flow.Deal, str]:
    """A deal cancelled 10 days into its month with the unused time invoiced at once: 2 seats
    × 1000 for Jan 15 – Feb 15 (31 days), 21 days unused → round½↑(2000 × 21 / 31) = 1355."""
    deal = flow.new_deal(stack)
    final = flow.cancel_now(stack, deal, "2026-01-25T00:00:00Z")
    inv = stack.books().invoices[final]
    assert (inv.total, inv.finalized_at is not None) == (-1355, True)
    return deal, final


def test_inv06_holds_for_a_credit_invoice_as_a_credit_memo(stack: Stack) -> None:
    _, final = _credit_invoice(stack)
    memo = flow.sync_credit_invoice(stack, final)
    assert stack.books().erp_transactions[memo].total_minor == 1355
    holds(stack, "INV-06")
    holds(stack, "INV-08")  # the memo names a negative invoice: no orphan
    holds(stack, "INV-03")  # dated by finalisation


def test_inv06_violated_by_a_credit_invoice_never_posted(stack: Stack) -> None:
    _, final = _credit_invoice(stack)
    found = fires(stack, "INV-06", f"billing:{final}")
    assert "no ERP credit memo" in found[0].message


def test_inv06_violated_by_a_credit_memo_of_another_total(stack: Stack) -> None:
    _, final = _credit_invoice(stack)
    memo = flow.sync_credit_invoice(stack, final, amount_delta=-55)
    fires(stack, "INV-06", f"billing:{final}", f"erp:creditMemo/{memo}")


def test_inv06_holds_for_a_zero_invoice_with_nothing_posted(stack: Stack) -> None:
    # A usage-only subscription's first invoice bills nothing in advance: total 0.
    deal = flow.new_deal(stack, metered=True, sync=False)
    inv = stack.books().invoices[deal.invoices[0]]
    assert (inv.total, inv.finalized_at is not None) == (0, True)
    holds(stack, "INV-06")
    holds(stack, "INV-03")


def test_inv08_violated_by_a_memo_under_a_positive_invoice(stack: Stack) -> None:
    # The positive first invoice posted as a credit memo under its id: it copies no credit
    # note and no negative invoice.
    deal = flow.new_deal(stack, sync=False)
    inv = stack.books().invoices[deal.invoices[0]]
    memo = stack.erp_write(
        "PUT",
        f"/creditMemo/eid:{inv.id}",
        {
            "entity": {"externalId": inv.customer},
            "subsidiary": {"externalId": "US"},
            "currency": {"externalId": "USD"},
            "tranDate": "2026-01-15",
            "item": {"items": [{"item": {"externalId": "SUBSCRIPTION"}, "amount": 20}]},
        },
    )
    fires(stack, "INV-08", f"erp:creditMemo/{memo}")


def _balance_invoice(stack: Stack, *, apply: bool) -> tuple[str, str]:
    """Paid January, then 500 credited to the customer balance; the February renewal (2000)
    draws the 500, so billing says 1500 due. The credit memo's 500 is unapplied in the ERP
    until the integration applies it to the renewal: (renewal id, ERP invoice id)."""
    deal = flow.new_deal(stack)
    first = deal.invoices[0]
    _pay(stack, first)
    flow.sync_payment(stack, first)
    cn = stack.billing(
        "POST",
        "/v1/credit_notes",
        {"invoice": first, "amount": 500, "credit_amount": 500},
        harness=True,
    )["id"]
    books = stack.books()
    note = books.credit_notes[cn]
    stack.erp_write(
        "PUT",
        f"/creditMemo/eid:{cn}",
        {
            "entity": {"externalId": note.customer},
            "subsidiary": {"externalId": "US"},
            "currency": {"externalId": "USD"},
            "tranDate": flow.utc_day(note.created),
            "createdFrom": {"externalId": first},
            "item": {"items": [{"item": {"externalId": "SUBSCRIPTION"}, "amount": 5}]},
        },
    )
    stack.advance_to("2026-02-15T02:00:00Z")
    renewal = next(
        inv
        for inv in stack.books().invoices.values()
        if inv.subscription == deal.subscription and inv.id != first
    )
    assert (renewal.total, renewal.applied_balance, renewal.amount_remaining) == (2000, -500, 1500)
    erp_id = flow.sync_invoice(stack, renewal.id)
    if apply:
        stack.erp_write(
            "PUT",
            f"/creditMemo/eid:{cn}",
            {"apply": {"items": [{"doc": {"externalId": renewal.id}, "apply": True, "amount": 5}]}},
        )
    return renewal.id, erp_id


def test_inv09_holds_when_customer_credit_is_applied(stack: Stack) -> None:
    _balance_invoice(stack, apply=True)
    holds(stack, "INV-09")


def test_inv09_violated_when_customer_credit_is_not_applied(stack: Stack) -> None:
    renewal, erp_id = _balance_invoice(stack, apply=False)
    found = fires(stack, "INV-09", f"billing:{renewal}", f"erp:invoice/{erp_id}")
    assert found[0].details["erp_remaining_minor"] == 2000
    assert found[0].details["billing_remaining"] == 1500

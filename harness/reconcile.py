"""Reconciliation per entity, day and currency: billing invoiced vs ERP posted vs subledger
billed, with credits, tax and document counts — the table a finance reader ties out first."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from harness.books import Books

NO_ENTITY = "-"  # a document whose entity cannot be told (no entity metadata, unknown subsidiary)


@dataclass
class Row:
    entity: str
    day: str
    currency: str
    billing_invoiced_minor: int = 0  # finalised invoices, signed totals
    billing_subscription_minor: int = 0  # their subscription lines: what the subledger bills
    billing_invoices: int = 0
    billing_credited_minor: int = 0  # credit notes (not void)
    billing_credit_notes: int = 0
    erp_posted_minor: int = 0  # AR documents of billing invoices: invoices +, credit memos −
    erp_documents: int = 0
    erp_credited_minor: int = 0  # credit memos of billing credit notes
    erp_credit_memos: int = 0
    erp_tax_minor: int = 0
    subledger_billed_minor: int = 0  # billing events of invoices: invoice +, credit_note −
    subledger_events: int = 0
    subledger_credited_minor: int = 0  # billing events of credit notes
    ties: bool = True


def reconciliation(books: Books) -> list[dict[str, Any]]:
    """One row per (entity, day, currency) that any system holds a document for, in that
    order. ``ties`` holds when the ERP posted what billing invoiced and credited, and the
    subledger billed the subscription lines and credits — for the systems that are present."""
    rows: dict[tuple[str, str, str], Row] = {}

    def row(entity: str | None, day: str, currency: str) -> Row:
        key = (entity or NO_ENTITY, day, currency.upper())
        if key not in rows:
            rows[key] = Row(*key)
        return rows[key]

    if "billing" in books.systems:
        _billing(books, row)
    if "erp" in books.systems:
        _erp(books, row)
    if "revrec" in books.systems:
        _subledger(books, row)
    for found in rows.values():
        found.ties = _ties(found, books.systems)
    return [asdict(rows[key]) for key in sorted(rows)]


def _day(epoch_s: int) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).date().isoformat()


def _billing(books: Books, row: Any) -> None:
    for inv in books.finalised_invoices:
        assert inv.finalized_at is not None  # finalised_invoices holds only those
        target = row(books.customer_entity(inv.customer), _day(inv.finalized_at), inv.currency)
        target.billing_invoiced_minor += inv.total
        target.billing_subscription_minor += sum(
            line.amount for line in inv.lines if line.subscription_item
        )
        target.billing_invoices += 1
    for note in books.credit_notes.values():
        if note.status == "void":
            continue
        target = row(books.customer_entity(note.customer), _day(note.created), note.currency)
        target.billing_credited_minor += note.total
        target.billing_credit_notes += 1


def _erp(books: Books, row: Any) -> None:
    links = books.links
    for kind in ("invoice", "creditMemo"):
        for txn in books.erp_by_kind.get(kind, []):
            if txn.voided:
                continue
            subsidiary = books.erp_subsidiaries.get(txn.subsidiary)
            entity = subsidiary.external_id if subsidiary else None
            target = row(entity, txn.tran_on, books.currency_code(txn.currency))
            copies = dict(links.copies(f"erp.{kind}", txn))  # link → source, as declared
            if copies.keys() & {"erp.invoice", "erp.invoice_credit"}:
                sign = 1 if kind == "invoice" else -1
                target.erp_posted_minor += sign * txn.total_minor
                target.erp_documents += 1
                target.erp_tax_minor += sign * txn.tax_minor
            elif "erp.credit_memo" in copies:
                target.erp_credited_minor += txn.total_minor
                target.erp_credit_memos += 1
                target.erp_tax_minor -= txn.tax_minor


# The billing events an invoice's billed amounts travel by, with the sign each carries.
_INVOICE_EVENTS = ("revrec.billing_event", "revrec.billing_charge", "revrec.billing_credit")


def _subledger(books: Books, row: Any) -> None:
    links = books.links
    for event in books.rr_billing_events.values():
        contract = books.rr_contracts.get(event.contract)
        target = row(contract.entity if contract else None, _day(event.issued_at), event.currency)
        amount = sum(int(line.get("amount_minor", 0)) for line in event.lines)
        signed = amount if event.type == "invoice" else -amount
        copies = dict(links.copies("revrec.billing_event", event))
        if copies.keys() & set(_INVOICE_EVENTS):
            target.subledger_billed_minor += signed
            target.subledger_events += 1
        elif "revrec.credit_event" in copies:
            target.subledger_credited_minor += amount
            target.subledger_events += 1


def _ties(found: Row, systems: frozenset[str]) -> bool:
    ok = True
    if {"billing", "erp"} <= systems:
        ok = (found.erp_posted_minor, found.erp_credited_minor) == (
            found.billing_invoiced_minor,
            found.billing_credited_minor,
        )
    if {"billing", "revrec"} <= systems:
        ok = ok and found.subledger_billed_minor == found.billing_subscription_minor
    return ok

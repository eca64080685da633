"""Delivery invariants: nothing twice, nothing acknowledged and lost, no key mismatch as success."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from harness.books import Books, ar_kind, event_source
from harness.invariants import refs
from harness.invariants.ledger import owes_journal
from harness.invariants.registry import invariant
from harness.violations import Violation
from simulators.common.journal import JournalEntry


@invariant("INV-26", group="delivery")
def no_document_twice(books: Books) -> Iterator[Violation]:
    """Replaying a message changes nothing: no source has two copies. At most one Stripe
    customer per CRM account and one subscription per opportunity; every ERP customer, payment
    and journal entry, every subledger contract and billing event carries the external id of
    the one source it copies (Stripe customer, ``pay_<invoice>``, period close, subscription,
    invoice or credit note; a billing event may also be an invoice's ``<invoice>-credit``,
    ``-void`` or ``-charge``, as the flow sends them) — a copy without one is a duplicate.
    (ERP invoices and credit memos: INV-06, INV-08.)"""
    for account, customers in books.customers_by_crm_account.items():
        if len(customers) > 1:
            yield Violation(
                "INV-26",
                f"CRM account {account} has {len(customers)} Stripe customers",
                (refs.crm(account), *(refs.billing(c.id) for c in customers)),
            )
    for opp, subs in books.subscriptions_by_opportunity.items():
        if len(subs) > 1:
            yield Violation(
                "INV-26",
                f"opportunity {opp} has {len(subs)} subscriptions",
                (refs.crm(opp), *(refs.billing(s.id) for s in subs)),
            )
    for customer in books.erp_customers.values():
        if customer.external_id not in books.customers:
            yield Violation(
                "INV-26",
                f"ERP customer {customer.id} ({customer.company_name}) names no Stripe customer "
                f"(external id {customer.external_id})",
                (refs.erp("customer", customer.id),),
            )
    closes = set(books.rr_period_closes)
    for txn in books.erp_transactions.values():
        if txn.system:
            continue
        eid = txn.external_id or ""
        if txn.kind == "customerPayment":
            ok = eid.startswith("pay_") and eid[4:] in books.invoices
        elif txn.kind == "journalEntry":
            ok = eid in closes
        else:
            continue
        if not ok:
            yield Violation(
                "INV-26",
                f"ERP {txn.kind} {txn.id} (external id {txn.external_id}) copies no source",
                (refs.erp_txn(txn),),
            )
    for contract in books.rr_contracts.values():
        if contract.external_id not in books.subscriptions:
            yield Violation(
                "INV-26",
                f"contract {contract.id} (external id {contract.external_id}) names no "
                "subscription",
                (refs.revrec(contract.id),),
            )
    for event in books.rr_billing_events.values():
        eid = event.external_id
        if eid in books.invoices or eid in books.credit_notes:
            continue
        source = event_source(eid)
        if source == eid or source not in books.invoices:
            yield Violation(
                "INV-26",
                f"billing event {event.id} (external id {eid}) names no invoice or credit "
                "note (nor an invoice's -credit, -void or -charge event)",
                (refs.revrec(event.id),),
            )


def _acknowledged(books: Books, system: str) -> Iterator[tuple[Any, str]]:
    for d in books.deliveries:
        if d.system == system and d.status == "delivered":
            yield d, d.event_type


@invariant("INV-28", group="delivery")
def acknowledged_events_are_applied(books: Books) -> Iterator[Violation]:
    """Nothing acknowledged is lost: for every webhook delivery the integration acknowledged
    (2xx), the document the flow owes for it exists — ``invoice.finalized`` → the ERP invoice
    (a credit memo under the invoice id for a negative total, nothing for 0), ``invoice.paid``
    (with money paid) → the ERP payment ``pay_<invoice>``, ``invoice.voided`` → the ERP invoice
    voided, ``credit_note.created`` → the ERP credit memo, subledger ``period.closed`` (of a
    close that recognised anything) → the ERP journal under the close id. CRM pushes carry no
    record id in the delivery log and are judged by INV-24."""
    events = books.billing_store.events_by_id
    for d, kind in _acknowledged(books, "billing"):
        event = events.get(d.event_id)
        if event is None:
            continue
        # Billing keeps the event's object itself as ``data`` (rendered as data.object).
        obj = event.data
        oid = str(obj.get("id", ""))
        owed: tuple[str, str] | None = None
        if kind == "invoice.finalized":
            # The invoice as it is now (its total does not change after finalisation).
            inv = books.invoices.get(oid)
            total = inv.total if inv is not None else int(obj.get("total") or 0)
            ar = ar_kind(total)
            owed = None if ar is None else (ar, oid)
        elif kind == "invoice.paid" and int(obj.get("amount_paid") or 0) > 0:
            owed = ("customerPayment", f"pay_{oid}")
        elif kind == "invoice.voided":
            owed = ("invoice", oid)
        elif kind == "credit_note.created":
            owed = ("creditMemo", oid)
        if owed is None:
            continue
        txn = books.erp_by_external_id(*owed)
        named = (refs.delivery(d), refs.billing(event.id), refs.billing(oid))
        if txn is None:
            yield Violation(
                "INV-28",
                f"{kind} for {oid} was acknowledged, and the ERP has no {owed[0]} {owed[1]}",
                named,
                {"event_type": kind},
            )
        elif kind == "invoice.voided" and not txn.voided:
            yield Violation(
                "INV-28",
                f"invoice.voided for {oid} was acknowledged, and ERP invoice {txn.id} is live",
                (*named, refs.erp_txn(txn)),
            )
    rr_events = {e.id: e for e in books.revrec_store.events}
    for d, kind in _acknowledged(books, "revrec"):
        rr_event = rr_events.get(d.event_id)
        if kind != "period.closed" or rr_event is None:
            continue
        obj = rr_event.data.get("object", {})
        close = next(
            (
                c
                for c in books.rr_period_closes.values()
                if c.entity == obj.get("entity") and c.period == obj.get("period")
            ),
            None,
        )
        if close is None or not owes_journal(close):
            continue
        if books.erp_by_external_id("journalEntry", close.id) is None:
            yield Violation(
                "INV-28",
                f"period.closed for {close.entity} {close.period} was acknowledged, and "
                f"the ERP has no journal {close.id}",
                (refs.delivery(d), refs.revrec(rr_event.id), refs.revrec(close.id)),
            )


def _idempotency_refusal(system: str, entry: JournalEntry) -> bool:
    """Billing and the subledger refuse a reused key with 400 (other parameters) or 409 (in
    flight). The journal records no error code, but it records the key only when a request
    runs, and a contract violation on the request itself: a 400 to a POST that ran no key,
    broke no contract and met no fault is the kernel's idempotency refusal."""
    if system not in ("billing", "revrec") or entry.method != "POST" or entry.control:
        return False
    if entry.status == 409:
        return True
    return (
        entry.status == 400
        and entry.idempotency_key is None
        and not entry.violations
        and not entry.faults
        and not entry.replayed
    )


@invariant("INV-29", group="delivery")
def key_mismatch_is_never_success(books: Books) -> Iterator[Violation]:
    """A write the integration sent that was refused for its idempotency key (a key reused
    with other parameters, or still in flight) did not happen: the integration must send it
    again until it succeeds (a later 2xx to the same method and path), never move on as if it
    had. Detected on billing and the subledger (see ``_idempotency_refusal``); the ERP's
    IDEMPOTENCY_ERROR cannot be told from its other 400s in the journal."""
    for system in ("billing", "revrec"):
        entries = [e for e in books.journal(system) if e.actor == "integration" and not e.control]
        last_ok: dict[tuple[str, str], int] = {}
        for e in entries:
            if 200 <= e.status < 300:
                last_ok[(e.method, e.path)] = e.seq
        for e in entries:
            if _idempotency_refusal(system, e) and last_ok.get((e.method, e.path), 0) < e.seq:
                yield Violation(
                    "INV-29",
                    f"{e.method} {e.path} was refused for its idempotency key ({e.status}) and "
                    "never succeeded afterwards",
                    (refs.journal(e),),
                    {"status": e.status, "operation_id": e.operation_id, "sim_at": e.sim_at},
                )


@invariant("CONTRACT", group="contract")
def integration_requests_honour_the_contracts(books: Books) -> Iterator[Violation]:
    """Every request the integration sent honours the vendor's contract: the journal marks
    none of them with a contract violation (harness and control-plane calls are left out)."""
    for entry in books.journal_entries():
        if entry.actor == "integration" and not entry.control and entry.violations:
            yield Violation(
                "CONTRACT",
                f"{entry.method} {entry.path} broke the {entry.system} contract: "
                + "; ".join(entry.violations),
                (refs.journal(entry),),
                {
                    "method": entry.method,
                    "path": entry.path,
                    "status": entry.status,
                    "operation_id": entry.operation_id,
                    "violations": list(entry.violations),
                },
            )

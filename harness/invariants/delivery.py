"""Delivery invariants: nothing twice, nothing acknowledged and lost, no key mismatch as success."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from harness.books import Books, ar_link
from harness.handoffs import LINKS
from harness.invariants import refs
from harness.invariants.ledger import owes_journal
from harness.invariants.registry import DOCUMENTS, invariant
from harness.violations import Violation
from simulators.common.journal import JournalEntry

# Links whose copies INV-26 counts (ERP invoices and credit memos: INV-06 and INV-08).
_ONCE = (
    "billing.customer",
    "billing.subscription",
    "erp.customer",
    "erp.payment",
    "erp.journal",
    "revrec.contract",
    "revrec.billing_event",
    "revrec.billing_credit",
    "revrec.billing_charge",
    "revrec.billing_void",
    "revrec.credit_event",
)
# Target kinds every document of which must copy a source, and the hand-off that writes them.
_COPIES = {
    "erp.customer": "erp.customers",
    "erp.customerPayment": "erp.payments",
    "erp.journalEntry": "erp.journals",
    "revrec.contract": "revrec.contracts",
    "revrec.billing_event": "revrec.billing",
}


@invariant(
    "INV-26",
    group="delivery",
    handoffs=(
        "crm.provision",
        "erp.customers",
        "erp.payments",
        "erp.journals",
        "revrec.contracts",
        "revrec.billing",
    ),
    reads=DOCUMENTS,
)
def no_document_twice(books: Books) -> Iterator[Violation]:
    """Replaying a message changes nothing: no source has two copies. At most one Stripe
    customer per CRM account and one subscription per opportunity; one ERP customer per
    billing customer, one payment per paid invoice, one journal per period close, one
    subledger contract per subscription and one billing event per invoice, credit note and
    flow-made variant (``-credit``, ``-void``, ``-charge``), each found through its declared
    link; and every ERP customer, payment and journal entry, every subledger contract and
    billing event copies a source through some link — one that copies none is a duplicate
    (a copy whose id did not survive). (ERP invoices and credit memos: INV-06, INV-08.)"""
    links = books.links
    for link_id in _ONCE:
        spec = LINKS[link_id]
        if not books.owns(spec.handoff):
            continue
        for source in list(links.sources(link_id)):
            copies = links.targets(link_id, source)
            if len(copies) > 1:
                yield Violation(
                    "INV-26",
                    f"{spec.source.replace('_', ' ')} {source} has {len(copies)} copies "
                    f"({spec.what})",
                    (_source_ref(spec.source, source), *(_ref(spec.target, c) for c in copies)),
                    {"link": link_id},
                )
    for kind, handoff in _COPIES.items():
        if not books.owns(handoff):
            continue
        for target in _documents(books, kind):
            if not links.copies(kind, target):
                yield Violation(
                    "INV-26",
                    f"{kind.replace('.', ' ')} {target.id} (external id "
                    f"{target.external_id}) copies no source",
                    (_ref(kind, target),),
                )


def _documents(books: Books, kind: str) -> Iterator[Any]:
    if kind == "erp.customer":
        yield from books.erp_customers.values()
    elif kind == "revrec.contract":
        yield from books.rr_contracts.values()
    elif kind == "revrec.billing_event":
        yield from books.rr_billing_events.values()
    else:
        yield from (t for t in books.erp_by_kind.get(kind[4:], []) if not t.system)


def _ref(kind: str, doc: Any) -> str:
    system, _, what = kind.partition(".")
    if system == "erp":
        return refs.erp(what, doc.id)
    return refs.revrec(doc.id) if system == "revrec" else refs.billing(doc.id)


def _source_ref(kind: str, source: str) -> str:
    if kind in ("account", "opportunity"):
        return refs.crm(source)
    return refs.revrec(source) if kind == "close" else refs.billing(source)


# The billing events whose delivery owes an ERP document, and the hand-off that owes it.
_HANDOFF_OF = {
    "invoice.finalized": "erp.invoices",
    "invoice.paid": "erp.payments",
    "invoice.voided": "erp.invoices",
    "credit_note.created": "erp.credit_memos",
}


@invariant(
    "INV-28",
    group="delivery",
    handoffs=("erp.invoices", "erp.payments", "erp.credit_memos", "erp.journals"),
    reads=(*DOCUMENTS, "deliveries"),
)
def acknowledged_events_are_applied(books: Books) -> Iterator[Violation]:
    """Nothing acknowledged is lost: for every webhook delivery the integration acknowledged
    (2xx), the document the flow owes for it exists, found through its declared link —
    ``invoice.finalized`` → the ERP invoice (a credit memo for a negative total, nothing for
    0), ``invoice.paid`` (with money paid) → the ERP payment, ``invoice.voided`` → the ERP
    invoice voided, ``credit_note.created`` → the ERP credit memo, subledger
    ``period.closed`` (of a close that recognised anything) → the ERP journal. Only hand-offs
    the integration owns, and only deliveries to its own receivers, are judged. CRM pushes
    carry no record id in the delivery log and are judged by INV-24."""
    events = books.billing_store.events_by_id
    links = books.links
    for d, kind in _acknowledged(books, "billing"):
        event = events.get(d.event_id)
        handoff = _HANDOFF_OF.get(kind)
        if event is None or handoff is None or not books.owns(handoff):
            continue
        # The event's object as it was at the event (rendered as data.object), decoded only
        # for a delivery that owes a document.
        obj = event.data
        oid = str(obj.get("id", ""))
        owed: str | None = None
        if kind == "invoice.finalized":
            # The invoice as it is now (its total does not change after finalisation).
            inv = books.invoices.get(oid)
            owed = ar_link(inv.total if inv is not None else int(obj.get("total") or 0))
        elif kind == "invoice.paid" and int(obj.get("amount_paid") or 0) > 0:
            owed = "erp.payment"
        elif kind == "invoice.voided":
            owed = "erp.invoice"
        elif kind == "credit_note.created":
            owed = "erp.credit_memo"
        if owed is None:
            continue
        txn = links.target(owed, oid)
        named = (refs.delivery(d), refs.billing(event.id), refs.billing(oid))
        if txn is None:
            yield Violation(
                "INV-28",
                f"{kind} for {oid} was acknowledged, and the ERP has no "
                f"{LINKS[owed].target[4:]} ({links.describe(owed, oid)})",
                named,
                {"event_type": kind, "link": owed},
            )
        elif kind == "invoice.voided" and not txn.voided:
            yield Violation(
                "INV-28",
                f"invoice.voided for {oid} was acknowledged, and ERP invoice {txn.id} is live",
                (*named, refs.erp_txn(txn)),
            )
    if not books.owns("erp.journals"):
        return
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
        if links.target("erp.journal", close.id) is None:
            yield Violation(
                "INV-28",
                f"period.closed for {close.entity} {close.period} was acknowledged, and "
                f"the ERP has no journal ({links.describe('erp.journal', close.id)})",
                (refs.delivery(d), refs.revrec(rr_event.id), refs.revrec(close.id)),
            )


def _acknowledged(books: Books, system: str) -> Iterator[tuple[Any, str]]:
    for d in books.judged_deliveries(system):
        if d.status == "delivered":
            yield d, d.event_type


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


@invariant("INV-29", group="delivery", reads=("journal.*",))
def key_mismatch_is_never_success(books: Books) -> Iterator[Violation]:
    """A write the integration sent that was refused for its idempotency key (a key reused
    with other parameters, or still in flight) did not happen: the integration must send it
    again until it succeeds (a later 2xx to the same method and path), never move on as if it
    had. Detected on billing and the subledger (see ``_idempotency_refusal``); the ERP's
    IDEMPOTENCY_ERROR cannot be told from its other 400s in the journal."""
    for system in ("billing", "revrec"):
        journal = books.journal(system)
        # The status first: it rules out nearly every entry with one comparison.
        refused = [
            e
            for e in journal
            if e.status in (400, 409)
            and e.actor == "integration"
            and not e.control
            and _idempotency_refusal(system, e)
        ]
        if not refused:  # the usual case: nothing to follow up, so no index of successes
            continue
        entries = [e for e in journal if e.actor == "integration" and not e.control]
        asked = {(e.method, e.path) for e in refused}
        last_ok: dict[tuple[str, str], int] = {}
        for e in entries:
            if 200 <= e.status < 300 and (e.method, e.path) in asked:
                last_ok[(e.method, e.path)] = e.seq
        for e in refused:
            if last_ok.get((e.method, e.path), 0) < e.seq:
                yield Violation(
                    "INV-29",
                    f"{e.method} {e.path} was refused for its idempotency key ({e.status}) and "
                    "never succeeded afterwards",
                    (refs.journal(e),),
                    {"status": e.status, "operation_id": e.operation_id, "sim_at": e.sim_at},
                )


@invariant("CONTRACT", group="contract", reads=("journal.*",))
def integration_requests_honour_the_contracts(books: Books) -> Iterator[Violation]:
    """Every request the integration sent honours the vendor's contract: the journal marks
    none of them with a contract violation (harness and control-plane calls are left out)."""
    for entry in books.journal_entries():
        if entry.violations and entry.actor == "integration" and not entry.control:
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

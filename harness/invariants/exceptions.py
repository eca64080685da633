"""Exceptions and replay: what an integration sets aside is surfaced, whole, true and readable
(the declared exception list, docs/exceptions.md). Judged only when one is declared."""

from __future__ import annotations

import re
from collections.abc import Iterator

from harness.books import Books
from harness.exceptions import Exceptions, Item
from harness.invariants import refs
from harness.invariants.registry import DOCUMENTS, invariant
from harness.violations import Violation

# What a reason must not read like: a stack trace, an exception's repr, a raw JSON body.
# A trace, an ``…Error(``/``…Exception(`` repr anywhere, any class's repr as the whole reason
# (``Refusal('…')``), or a JSON body.
_UNREADABLE = re.compile(
    r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+|\b\w+(Error|Exception)\(|"
    r"^\s*[A-Z]\w*\(\s*['\"]|^\s*[\[{]"
)
MAX_REASON = 1000


def _listed(books: Books) -> Exceptions | None:
    """The list to judge: None when none is declared, or it could not be read while the
    integration was down (judged on the books alone then)."""
    listed = books.exceptions
    if listed is None or listed.down:
        return None
    return listed


def _owed(books: Books) -> Iterator[tuple[str, str, str, tuple[str, ...]]]:
    """(hand-off, source document, what is owed, records) for every document the flow owes
    and the books lack, in the hand-offs the integration owns."""
    links = books.links
    for inv in books.finalised_invoices:
        if inv.total == 0:
            continue
        link = "erp.invoice" if inv.total > 0 else "erp.invoice_credit"
        posted = links.targets(link, inv.id)
        if books.owns("erp.invoices") and not posted:
            yield "erp.invoices", inv.id, "its ERP document", (refs.billing(inv.id),)
        if (
            books.owns("erp.payments")
            and inv.status == "paid"
            and inv.amount_paid > 0
            and inv.total > 0
            and not links.targets("erp.payment", inv.id)
        ):
            yield "erp.payments", inv.id, "its ERP payment", (refs.billing(inv.id),)
    if books.owns("crm.provision"):
        sub_field = books.writeback("opportunity_subscription")
        for opp in books.crm_records("Opportunity"):
            if not opp.get("IsWon") or opp.get("Type") in ("Amendment", "Renewal"):
                continue
            if opp.get(sub_field) or links.targets("billing.subscription", opp.id):
                continue
            yield "crm.provision", opp.id, "its subscription", (refs.crm(opp.id),)


@invariant(
    "EXC-01",
    group="exceptions",
    handoffs=("crm.provision", "erp.invoices", "erp.payments"),
    reads=(*DOCUMENTS, "exceptions"),
)
def owed_documents_are_surfaced(books: Books) -> Iterator[Violation]:
    """Every document the flow owes and the integration did not post (a finalised invoice's
    ERP document, a paid invoice's ERP payment, a won deal's subscription) is in its exception
    list, open, with the source document named — else it was lost quietly. Judged when an
    exception list is declared; the list itself must be readable in the documented shape."""
    listed = _listed(books)
    if listed is None:
        return
    if listed.error is not None:
        yield Violation("EXC-01", f"the declared exception list: {listed.error}")
        return
    open_items = list(listed.open())
    for handoff, document, what, records in _owed(books):
        if any(_names(item, document) for item in open_items):
            continue
        yield Violation(
            "EXC-01",
            f"{document} has no {what.removeprefix('its ')} ({handoff}) and the exception "
            "list has no open item naming it: lost quietly",
            records,
            {"handoff": handoff, "document": document},
        )


def _names(item: Item, document: str) -> bool:
    return item.source.document == document or document in item.reason


@invariant(
    "EXC-02",
    group="exceptions",
    handoffs=("crm.provision", "erp.invoices"),
    reads=(*DOCUMENTS, "exceptions"),
)
def no_partial_document_after_a_refusal(books: Books) -> Iterator[Violation]:
    """A posting refused at a control point leaves nothing in part: while an item is open for a
    won deal, no billing subscription was made for it; while one is open for an invoice, its
    ERP document and its subledger billing event are both there or both absent (one without
    the other is half a posting), and an ERP document there has its item lines."""
    listed = _listed(books)
    if listed is None or listed.error is not None:
        return
    links = books.links
    for item in listed.open():
        doc = item.source.document
        label = f"open exception {item.id} ({doc})"
        if item.source.system == "crm" and books.owns("crm.provision"):
            subs = links.targets("billing.subscription", doc)
            if subs:
                yield Violation(
                    "EXC-02",
                    f"{label}: the deal was refused, yet billing has subscription(s) "
                    f"{', '.join(s.id for s in subs)} for it: half a provisioning",
                    (refs.crm(doc), *(refs.billing(s.id) for s in subs)),
                )
            continue
        inv = books.invoices.get(doc)
        if inv is None or inv.total == 0 or not books.owns("erp.invoices"):
            continue
        link = "erp.invoice" if inv.total > 0 else "erp.invoice_credit"
        erp_docs = links.targets(link, inv.id)
        for txn in erp_docs:
            if not txn.items:
                yield Violation(
                    "EXC-02",
                    f"{label}: ERP document {txn.id} has no item lines: half a document",
                    (refs.billing(doc), refs.erp_txn(txn)),
                )
        if not books.owns("revrec.billing") or inv.subscription is None:
            continue
        billed = links.targets("revrec.billing_event", inv.id) if inv.total > 0 else []
        if inv.total > 0 and bool(erp_docs) != bool(billed):
            where = "the ERP" if erp_docs else "the subledger"
            yield Violation(
                "EXC-02",
                f"{label}: invoice {doc} is posted in {where} only: half a posting",
                (refs.billing(doc), *(refs.erp_txn(t) for t in erp_docs)),
            )


@invariant(
    "EXC-03",
    group="exceptions",
    handoffs=("crm.provision", "erp.invoices", "erp.payments"),
    reads=(*DOCUMENTS, "exceptions"),
)
def open_items_are_still_owed(books: Books) -> Iterator[Violation]:
    """The list is true: no item is open for a document the books already have in full (once
    the cause is mended and the replay has run, the item is resolved and the list has nothing
    open), and no document has two open items for the same event."""
    listed = _listed(books)
    if listed is None or listed.error is not None:
        return
    owed = {document for _, document, _, _ in _owed(books)}
    seen: dict[tuple[str, str | None], str] = {}
    for item in listed.open():
        doc = item.source.document
        key = (doc, item.event_id)
        if key in seen:
            yield Violation(
                "EXC-03",
                f"open exceptions {seen[key]} and {item.id} are the same event "
                f"({item.event_id} on {doc}): a replay listed it twice",
                (_ref(item),),
            )
        seen[key] = item.id
        if not _is_owed_kind(books, item) or doc in owed:
            continue
        yield Violation(
            "EXC-03",
            f"open exception {item.id} names {doc}, which the books already have in full: "
            "the list is stale (after a replay it should be resolved)",
            (_ref(item),),
            {"reason": item.reason, "attempts": item.attempts},
        )


def _is_owed_kind(books: Books, item: Item) -> bool:
    """Items about documents this rule can tell are owed (invoices, won deals)."""
    if item.source.system == "crm":
        return books.owns("crm.provision")
    return item.source.document in books.invoices and books.owns("erp.invoices", "erp.payments")


def _ref(item: Item) -> str:
    return f"{item.source.system}:{item.source.document}"


@invariant("EXC-04", group="exceptions", reads=(*DOCUMENTS, "exceptions"))
def reasons_are_business_readable(books: Books) -> Iterator[Violation]:
    """Every exception's reason is for a finance user: it names the source document and the
    cause in one short text (at most 1000 characters) — never a stack trace, an exception's
    repr or a raw response body."""
    listed = _listed(books)
    if listed is None or listed.error is not None:
        return
    for item in listed.items:
        reason = item.reason
        problems = []
        if item.source.document not in reason:
            problems.append("does not name the document")
        if _UNREADABLE.search(reason):
            problems.append("reads like a stack trace, a repr or a raw body")
        if len(reason) > MAX_REASON or not reason.strip():
            problems.append(f"is {len(reason)} characters")
        if problems:
            yield Violation(
                "EXC-04",
                f"exception {item.id} ({item.source.document}): its reason "
                f"{' and '.join(problems)}: {reason[:160]!r}",
                (_ref(item),),
            )

"""Billing ↔ AR invariants: every invoice, credit note and payment reaches the ERP once."""

from __future__ import annotations

from collections.abc import Iterator

from harness.books import Books, ar_kind, ar_link
from harness.invariants import refs
from harness.invariants.registry import DOCUMENTS, invariant
from harness.violations import Violation
from simulators.billing.models import CreditNote, Invoice
from simulators.erp.models import Transaction


def _currency(books: Books, txn: Transaction) -> str:
    return books.currency_code(txn.currency)


@invariant("INV-06", group="billing_ar", handoffs=("erp.invoices",), reads=DOCUMENTS)
def one_erp_invoice_per_finalised_invoice(books: Books) -> Iterator[Violation]:
    """Every finalised billing invoice has exactly one ERP AR document, linked as declared
    (default: external id = the invoice id), for the ERP customer of its Stripe customer, in
    its currency: an ERP invoice of the same total when positive, a credit memo of the negated
    total when negative (a cancellation's credit, left as customer credit), nothing when 0,
    its lines on the declared ERP items (``[links.erp_items]``: subscription lines on
    ``subscription``, others on ``other``); a voided invoice's document is voided (and only
    then); every ERP invoice copies a finalised invoice of positive total (a second copy, or
    one naming no invoice, is a duplicate)."""
    finalised = {inv.id: inv for inv in books.finalised_invoices}
    links = books.links
    for inv in finalised.values():
        link = ar_link(inv.total)
        if link is None:
            continue  # a zero invoice posts nothing (docs/reference-flow.md)
        copies = links.targets(link, inv.id)
        label = "ERP invoice" if link == "erp.invoice" else "ERP credit memo"
        if not copies:
            yield Violation(
                "INV-06",
                f"finalised invoice {inv.id} (total {inv.total}) has no {label} "
                f"({links.describe(link, inv.id)})",
                (refs.billing(inv.id),),
                {"status": inv.status, "total": inv.total, "currency": inv.currency},
            )
            continue
        if len(copies) > 1:
            yield Violation(
                "INV-06",
                f"finalised invoice {inv.id} has {len(copies)} {label}s",
                (refs.billing(inv.id), *(refs.erp_txn(t) for t in copies)),
                {"copies": [t.id for t in copies]},
            )
        txn = copies[0]
        named = (refs.billing(inv.id), refs.erp_txn(txn))
        want = abs(inv.total)
        if txn.total_minor != want or _currency(books, txn) != inv.currency.upper():
            yield Violation(
                "INV-06",
                f"{label} for {inv.id} is {txn.total_minor} {_currency(books, txn)}, "
                f"billing says {want} {inv.currency.upper()}",
                named,
                {
                    "erp_total_minor": txn.total_minor,
                    "billing_total": inv.total,
                    "erp_currency": _currency(books, txn),
                    "billing_currency": inv.currency.upper(),
                },
            )
        customer = links.target("erp.customer", inv.customer)
        if customer is not None and txn.entity != customer.id:
            yield Violation(
                "INV-06",
                f"{label} for {inv.id} is for customer {txn.entity}, not {customer.id} "
                f"({inv.customer})",
                (*named, refs.erp("customer", customer.id)),
                {"erp_customer": txn.entity},
            )
        yield from _items_as_declared(books, inv, txn, named, label)
        if (inv.status == "void") != txn.voided:
            what = "is not voided" if inv.status == "void" else "is voided"
            yield Violation(
                "INV-06",
                f"{label} for {inv.id} {what}; billing status is {inv.status}",
                named,
                {"status": inv.status, "erp_voided": txn.voided},
            )
    for txn in books.erp_by_kind.get("invoice", []):
        source = finalised.get(links.source("erp.invoice", txn) or "")
        if source is None or ar_kind(source.total) != "invoice":
            why = "names no finalised" if source is None else f"totals {source.total}: no"
            yield Violation(
                "INV-06",
                f"ERP invoice {txn.id} (external id {txn.external_id}) {why} billing invoice "
                "of positive total",
                (refs.erp_txn(txn), *((refs.billing(source.id),) if source else ())),
                {"external_id": txn.external_id, "total_minor": txn.total_minor},
            )


def _items_as_declared(
    books: Books, inv: Invoice, txn: Transaction, named: tuple[str, ...], label: str
) -> Iterator[Violation]:
    """The ERP document's lines sit on the items declared for the invoice's kinds of line."""
    allowed = set()
    if any(line.subscription_item for line in inv.lines):
        allowed.add(books.declared_item("subscription"))
    if any(not line.subscription_item for line in inv.lines):
        allowed.add(books.declared_item("other"))
    used = {books.erp_item_names.get(line.item, line.item) for line in txn.items}
    odd = sorted(used - allowed)
    if odd:
        yield Violation(
            "INV-06",
            f"{label} for {inv.id} has lines on ERP item(s) {', '.join(odd)}; the invoice's "
            f"lines go to {', '.join(sorted(allowed))} ([links.erp_items])",
            named,
            {"items": sorted(used), "declared": sorted(allowed)},
        )


@invariant("INV-40", group="billing_ar", handoffs=("billing.writeback",), reads=DOCUMENTS)
def erp_document_ids_written_back(books: Books) -> Iterator[Violation]:
    """Every finalised invoice whose ERP AR document exists (linked as declared) carries that
    document's internal id in its metadata (the declared key, default ``erp_document_id``), so
    a reader of billing finds the ERP record: traceability from billing to the ledger."""
    key = books.declared_links.billing_writeback["invoice_erp_document"]
    for inv in books.finalised_invoices:
        link = ar_link(inv.total)
        txn = books.links.target(link, inv.id) if link is not None else None
        if txn is None:
            continue  # none owed (total 0) or none yet: INV-06's to judge
        written = inv.metadata.get(key)
        if written != str(txn.id):
            yield Violation(
                "INV-40",
                f"invoice {inv.id} metadata {key} is {written!r}, not its ERP document's id "
                f"{txn.id}",
                (refs.billing(inv.id), refs.erp_txn(txn)),
                {"metadata": written, "erp_id": str(txn.id)},
            )


@invariant(
    "INV-07",
    group="billing_ar",
    handoffs=("erp.invoices", "erp.payments", "erp.credit_memos"),
    reads=DOCUMENTS,
)
def invoice_arithmetic(books: Books) -> Iterator[Violation]:
    """Billing: amount_due = max(0, total + applied balance) − pre-payment credit notes,
    amount_paid ≤ amount_due, a paid invoice has nothing remaining. ERP: an invoice's paid
    amount is the sum of what live payments and credit memos apply to it, 0 ≤ remaining ≤
    total, and no payment or memo applies more than its own total."""
    for inv in books.finalised_invoices:
        due = max(0, inv.total + inv.applied_balance) - inv.pre_payment_credit_notes_amount
        problems = []
        if inv.status != "void" and inv.amount_due != due:
            problems.append(f"amount_due {inv.amount_due} ≠ {due}")
        if inv.amount_paid > max(inv.amount_due, 0):
            problems.append(f"amount_paid {inv.amount_paid} > amount_due {inv.amount_due}")
        if inv.status == "paid" and inv.amount_remaining != 0:
            problems.append(f"paid with {inv.amount_remaining} remaining")
        if problems:
            yield Violation(
                "INV-07",
                f"invoice {inv.id}: {'; '.join(problems)}",
                (refs.billing(inv.id),),
                {"amount_due": inv.amount_due, "expected_due": due, "amount_paid": inv.amount_paid},
            )
    applied: dict[str, int] = {}
    for txn in books.erp_transactions.values():
        if txn.kind not in ("customerPayment", "creditMemo") or txn.voided:
            continue
        for app in txn.applies:
            applied[app.doc] = applied.get(app.doc, 0) + app.amount_minor
        if txn.applied_minor > txn.total_minor:
            yield Violation(
                "INV-07",
                f"ERP {txn.kind} {txn.id} applies {txn.applied_minor}, more than its total "
                f"{txn.total_minor}",
                (refs.erp_txn(txn),),
                {"applied_minor": txn.applied_minor, "total_minor": txn.total_minor},
            )
    for txn in books.erp_by_kind.get("invoice", []):
        if txn.voided:
            continue
        expected = applied.get(txn.id, 0)
        if txn.paid_minor != expected or not 0 <= txn.amount_remaining_minor <= txn.total_minor:
            yield Violation(
                "INV-07",
                f"ERP invoice {txn.id}: paid {txn.paid_minor}, applications {expected}, "
                f"remaining {txn.amount_remaining_minor} of {txn.total_minor}",
                (refs.erp_txn(txn),),
                {"paid_minor": txn.paid_minor, "applied_minor": expected},
            )


@invariant("INV-08", group="billing_ar", handoffs=("erp.credit_memos",), reads=DOCUMENTS)
def credit_notes_conserved(books: Books) -> Iterator[Violation]:
    """A credit note's total = pre-payment + refund + balance credit + out-of-band; the credit
    notes on an invoice never exceed its total; every credit note has exactly one ERP credit
    memo, linked as declared (default: external id = the credit note id), same total and
    currency, created from or applied to the ERP invoice it credits, voided when it is; every
    ERP credit memo copies one (or a finalised invoice of negative total, which the flow posts
    as a credit memo: INV-06)."""
    for inv_id, notes in books.credit_notes_by_invoice.items():
        inv = books.invoices.get(inv_id)
        issued = sum(cn.total for cn in notes if cn.status != "void")
        if inv is not None and issued > inv.total:
            yield Violation(
                "INV-08",
                f"credit notes on {inv_id} total {issued}, more than the invoice's {inv.total}",
                (refs.billing(inv_id), *(refs.billing(cn.id) for cn in notes)),
                {"credited": issued, "invoice_total": inv.total},
            )
        for cn in notes:
            yield from _credit_note(books, cn, inv)
    credit_invoices = {inv.id for inv in books.finalised_invoices if inv.total < 0}
    links = books.links
    for txn in books.erp_by_kind.get("creditMemo", []):
        if txn.system or links.source("erp.credit_memo", txn) is not None:
            continue
        if links.source("erp.invoice_credit", txn) in credit_invoices:
            continue
        yield Violation(
            "INV-08",
            f"ERP credit memo {txn.id} (external id {txn.external_id}) copies no credit note "
            "and no finalised invoice of negative total",
            (refs.erp_txn(txn),),
            {"external_id": txn.external_id},
        )


def _credit_note(books: Books, cn: CreditNote, inv: Invoice | None) -> Iterator[Violation]:
    if cn.total != cn.pre_payment_amount + cn.post_payment_amount:
        yield Violation(
            "INV-08",
            f"credit note {cn.id} totals {cn.total}, its parts {cn.pre_payment_amount} + "
            f"{cn.post_payment_amount}",
            (refs.billing(cn.id),),
            {"total": cn.total},
        )
    memos = books.links.targets("erp.credit_memo", cn.id)
    if not memos:
        yield Violation(
            "INV-08",
            f"credit note {cn.id} has no ERP credit memo "
            f"({books.links.describe('erp.credit_memo', cn.id)})",
            (refs.billing(cn.id),),
        )
        return
    memo = memos[0]
    if len(memos) > 1:
        yield Violation(
            "INV-08",
            f"credit note {cn.id} has {len(memos)} ERP credit memos",
            (refs.billing(cn.id), *(refs.erp_txn(m) for m in memos)),
        )
    named = (refs.billing(cn.id), refs.erp_txn(memo))
    if memo.total_minor != cn.total or _currency(books, memo) != cn.currency.upper():
        yield Violation(
            "INV-08",
            f"ERP credit memo for {cn.id} is {memo.total_minor} {_currency(books, memo)}, "
            f"billing says {cn.total} {cn.currency.upper()}",
            named,
            {"erp_total_minor": memo.total_minor, "billing_total": cn.total},
        )
    erp_invoice = books.links.target("erp.invoice", cn.invoice)
    if erp_invoice is not None:
        linked = memo.created_from == erp_invoice.id or any(
            app.doc == erp_invoice.id for app in memo.applies
        )
        if not linked and not memo.voided:
            yield Violation(
                "INV-08",
                f"ERP credit memo for {cn.id} neither comes from nor applies to the ERP invoice "
                f"of {cn.invoice}",
                (*named, refs.erp_txn(erp_invoice)),
            )
    if (cn.status == "void") != memo.voided:
        yield Violation(
            "INV-08",
            f"ERP credit memo for {cn.id}: voided {memo.voided}, credit note {cn.status}",
            named,
        )


@invariant(
    "INV-09", group="billing_ar", handoffs=("erp.payments", "erp.credit_memos"), reads=DOCUMENTS
)
def open_ar_matches_billing(books: Books) -> Iterator[Violation]:
    """Cash applied never exceeds an invoice's total, and each ERP invoice's open amount equals
    its billing invoice's ``amount_remaining`` — also when it drew on the customer's credit
    balance, which the flow covers by applying the customer's unapplied ERP credit memos.
    Convention: an invoice that carried a customer debt (``applied_balance`` > 0) is skipped,
    as the flow posts the debt nowhere."""
    for inv in books.finalised_invoices:
        txn = books.links.target("erp.invoice", inv.id)
        if txn is None or inv.applied_balance > 0:
            continue
        named = (refs.billing(inv.id), refs.erp_txn(txn))
        if txn.paid_minor > txn.total_minor or inv.amount_paid > inv.total:
            yield Violation(
                "INV-09",
                f"more cash applied to {inv.id} than its total",
                named,
                {"erp_paid_minor": txn.paid_minor, "billing_paid": inv.amount_paid},
            )
        if txn.amount_remaining_minor != inv.amount_remaining:
            yield Violation(
                "INV-09",
                f"ERP open AR for {inv.id} is {txn.amount_remaining_minor}, billing "
                f"amount_remaining is {inv.amount_remaining}",
                named,
                {
                    "erp_remaining_minor": txn.amount_remaining_minor,
                    "billing_remaining": inv.amount_remaining,
                    "status": inv.status,
                },
            )

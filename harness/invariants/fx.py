"""FX invariants: rates come from the ERP's dated table, and one currency per document family."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from harness.books import Books
from harness.invariants import refs
from harness.invariants.registry import DOCUMENTS, invariant
from harness.violations import Violation


@invariant(
    "INV-22",
    group="fx",
    handoffs=("erp.invoices", "erp.payments", "erp.credit_memos", "erp.journals"),
    reads=DOCUMENTS,
)
def rates_have_provenance(books: Books) -> Iterator[Violation]:
    """Every ERP transaction in a currency other than its subsidiary's base uses the ERP's own
    dated rate for its date (the latest effective on or before it); deferred revenue is never
    remeasured: no ledger line on the deferred-revenue account carries a base amount without a
    transaction-currency amount."""
    for txn in books.erp_transactions.values():
        sub = books.erp_subsidiaries.get(txn.subsidiary)
        if sub is None or txn.currency == sub.currency or txn.system:
            continue
        dated = books.dated_rate(txn.currency, sub.currency, txn.tran_on)
        if dated is None or Decimal(txn.exchange_rate) != dated:
            yield Violation(
                "INV-22",
                f"ERP {txn.kind} {txn.id} uses rate {txn.exchange_rate} "
                f"{books.currency_code(txn.currency)}→{books.currency_code(sub.currency)}; "
                f"the dated rate on {txn.tran_on} is {dated}",
                (refs.erp_txn(txn),),
                {"rate": txn.exchange_rate, "dated_rate": None if dated is None else str(dated)},
            )
    deferred = books.account_ids.get("deferred_revenue")
    if deferred is None:
        return
    for line in books.gl_lines():
        if (
            line.account == deferred
            and not (line.debit_minor or line.credit_minor)
            and (line.debit_base_minor or line.credit_base_minor)
        ):
            yield Violation(
                "INV-22",
                f"ERP {line.kind} {line.transaction} remeasures deferred revenue",
                (refs.erp(line.kind, line.transaction),),
                {"base_minor": line.debit_base_minor - line.credit_base_minor},
            )


@invariant(
    "INV-23",
    group="fx",
    handoffs=(
        "erp.invoices",
        "erp.payments",
        "erp.credit_memos",
        "revrec.contracts",
        "revrec.billing",
    ),
    reads=DOCUMENTS,
)
def one_currency_per_document_family(books: Books) -> Iterator[Violation]:
    """A subscription, its invoices and credit notes, their ERP invoices, credit memos and
    payments, its subledger contract and billing events are all in one currency."""
    for sub in books.subscriptions.values():
        family: list[tuple[str, str]] = [(refs.billing(sub.id), sub.currency.upper())]
        contract = books.links.target("revrec.contract", sub.id)
        if contract is not None and books.owns("revrec.contracts"):
            family.append((refs.revrec(contract.id), contract.currency.upper()))
        for inv in books.invoices_by_subscription.get(sub.id, []):
            family += _invoice_family(books, inv.id)
        currencies = {c for _, c in family}
        if len(currencies) > 1:
            odd = [r for r, c in family if c != sub.currency.upper()]
            yield Violation(
                "INV-23",
                f"the documents of {sub.id} are in {', '.join(sorted(currencies))}",
                (refs.billing(sub.id), *odd),
                {"currencies": dict(family)},
            )
    for inv in books.invoices.values():
        if inv.subscription:
            continue
        family = _invoice_family(books, inv.id)
        if len({c for _, c in family}) > 1:
            yield Violation(
                "INV-23",
                f"the documents of {inv.id} are in more than one currency",
                tuple(r for r, _ in family),
                {"currencies": dict(family)},
            )


def _invoice_family(books: Books, invoice_id: str) -> list[tuple[str, str]]:
    inv = books.invoices[invoice_id]
    family = [(refs.billing(inv.id), inv.currency.upper())]
    erp = [
        ("erp.invoices", "erp.invoice", inv.id),
        ("erp.invoices", "erp.invoice_credit", inv.id),
        ("erp.payments", "erp.payment", inv.id),
    ]
    revrec = [(link, inv.id) for link in _INVOICE_EVENTS]
    for cn in books.credit_notes_by_invoice.get(inv.id, []):
        family.append((refs.billing(cn.id), cn.currency.upper()))
        erp.append(("erp.credit_memos", "erp.credit_memo", cn.id))
        revrec.append(("revrec.credit_event", cn.id))
    for handoff, link, source in erp:
        if books.owns(handoff):
            for txn in books.links.targets(link, source):
                family.append((refs.erp_txn(txn), books.currency_code(txn.currency)))
    if books.owns("revrec.billing"):
        for link, source in revrec:
            for event in books.links.targets(link, source):
                family.append((refs.revrec(event.id), event.currency.upper()))
    return family


_INVOICE_EVENTS = (
    "revrec.billing_event",
    "revrec.billing_credit",
    "revrec.billing_charge",
    "revrec.billing_void",
)

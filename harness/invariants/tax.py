"""Tax and discount invariants: the ERP owes the tax billing invoiced, revenue never holds it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from harness.books import Books, ar_link
from harness.invariants import refs
from harness.invariants.registry import invariant
from harness.violations import Violation
from simulators.billing.amounts import LineTax as _LineTax
from simulators.billing.models import CreditNoteLine, InvoiceLine
from simulators.erp.models import Transaction


def earned(line: InvoiceLine | CreditNoteLine) -> int:
    """What a billing line earns: its gross amount less its discounts and the tax included in
    it (exclusive tax is on top of the amount). A line with neither earns its amount."""
    inclusive = sum(t.amount for t in line.taxes if t.inclusive)
    return line.amount - sum(line.discount_amounts.values()) - inclusive


def _by_rate(taxes: Iterable[_LineTax]) -> dict[str, int]:
    found: dict[str, int] = {}
    for t in taxes:
        found[t.tax_rate] = found.get(t.tax_rate, 0) + t.amount
    return {k: v for k, v in found.items() if v}


def _by_code(txn: Transaction) -> dict[str, int]:
    found: dict[str, int] = {}
    for line in txn.items:
        code = line.tax_code or "(none)"
        found[code] = found.get(code, 0) + line.tax_minor
    return {k: v for k, v in found.items() if v}


def _codes_match(billed: Mapping[str, int], posted: Mapping[str, int], rates: set[str]) -> bool:
    """Per tax code: by billing tax rate id when the ERP codes are rate ids (the reference's
    convention), else (an integration mapping rates to its own codes) amount for amount."""
    if set(posted) <= rates:
        return dict(billed) == dict(posted)
    return sorted(billed.values()) == sorted(posted.values())


def _compare(
    books: Books, source: str, taxes: list[_LineTax], txn: Transaction, sign: int
) -> Iterator[Violation]:
    billed = {k: sign * v for k, v in _by_rate(taxes).items()}
    posted = _by_code(txn)
    named = (refs.billing(source), refs.erp_txn(txn))
    want, got = sum(billed.values()), txn.tax_minor
    if got != want:
        yield Violation(
            "INV-50",
            f"ERP {txn.kind} {txn.id} for {source} posts tax {got}; billing invoiced {want}",
            named,
            {"erp_tax_minor": got, "billing_tax": want, "erp_by_code": posted, "billed": billed},
        )
    elif not _codes_match(billed, posted, set(books.billing_store.tax_rates)):
        yield Violation(
            "INV-50",
            f"ERP {txn.kind} {txn.id} for {source} splits its tax {posted} by code; billing "
            f"invoiced {billed} by tax rate",
            named,
            {"erp_by_code": posted, "billed": billed},
        )


@invariant("INV-50", group="billing_ar", handoffs=("erp.invoices", "erp.credit_memos"))
def erp_tax_equals_invoiced_tax(books: Books) -> Iterator[Violation]:
    """The tax on every ERP document copying a billing invoice or credit note (Σ line
    ``tax1Amt``, which the ERP credits to the tax-liability account) is the tax billing
    invoiced on it (inclusive and exclusive, negated for a negative invoice's credit memo),
    and so per tax code: the ERP lines' ``taxCode`` sums equal billing's tax per tax rate
    (codes named by tax rate id; an integration with codes of its own, amount for amount)."""
    if books.owns("erp.invoices"):
        for inv in books.finalised_invoices:
            link = ar_link(inv.total)
            if link is None:
                continue
            copies = books.links.targets(link, inv.id)
            if copies:
                taxes = [t for line in inv.lines for t in line.taxes]
                yield from _compare(books, inv.id, taxes, copies[0], 1 if inv.total > 0 else -1)
    if books.owns("erp.credit_memos"):
        for cn in books.credit_notes.values():
            memos = books.links.targets("erp.credit_memo", cn.id)
            if memos:
                taxes = [t for x in cn.lines for t in x.taxes]
                yield from _compare(books, cn.id, taxes, memos[0], 1)


_SIGN = {"invoice": 1, "credit_note": -1}
_INVOICE_EVENTS = ("revrec.billing_event", "revrec.billing_credit", "revrec.billing_charge")


@invariant("INV-51", group="subledger", handoffs=("revrec.billing",))
def revenue_excludes_tax(books: Books) -> Iterator[Violation]:
    """Recognised revenue never includes tax: the subledger billing events copying a taxed
    invoice (its ``invoice`` and ``credit_note`` events, net) bill what its subscription
    lines earned — amounts less discounts and included tax, exclusive tax left out — and a
    taxed credit note's event credits what its lines earned, never its total with tax."""
    for inv in books.finalised_invoices:
        taxed = [line for line in inv.lines if line.subscription_item and line.taxes]
        if not taxed or inv.total == 0:
            continue
        events = [e for link in _INVOICE_EVENTS for e in books.links.targets(link, inv.id)]
        if not events:
            continue  # a missing event is INV-16's
        sent = sum(_SIGN.get(e.type, 0) * int(x["amount_minor"]) for e in events for x in e.lines)
        want = sum(earned(line) for line in inv.lines if line.subscription_item)
        if sent != want:
            tax = sum(t.amount for line in taxed for t in line.taxes)
            yield Violation(
                "INV-51",
                f"the subledger bills {sent} for invoice {inv.id}; its subscription lines earn "
                f"{want} excluding tax ({tax} tax)",
                (refs.billing(inv.id), *(refs.revrec(e.id) for e in events)),
                {"subledger_minor": sent, "earned": want, "tax": tax},
            )
    for cn in books.credit_notes.values():
        if cn.status == "void" or not any(x.taxes for x in cn.lines):
            continue
        event = books.links.target("revrec.credit_event", cn.id)
        if event is None:
            continue
        sent = sum(int(x["amount_minor"]) for x in event.lines)
        want = sum(earned(x) for x in cn.lines)
        if sent != want:
            yield Violation(
                "INV-51",
                f"the subledger credits {sent} for credit note {cn.id}; its lines earn {want} "
                "excluding tax",
                (refs.billing(cn.id), refs.revrec(event.id)),
                {"subledger_minor": sent, "earned": want},
            )

"""Tax and discount invariants: the ERP owes the tax billing invoiced, revenue never holds it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from fractions import Fraction

from harness.books import Books, ar_link
from harness.invariants import refs
from harness.invariants.registry import DOCUMENTS, invariant
from harness.violations import Violation
from simulators.billing import models as bm
from simulators.billing.amounts import LineTax as _LineTax
from simulators.billing.amounts import allocate
from simulators.billing.models import CreditNoteLine, InvoiceLine
from simulators.erp.models import Transaction
from simulators.revrec import models as rm


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


@invariant(
    "INV-50", group="billing_ar", handoffs=("erp.invoices", "erp.credit_memos"), reads=DOCUMENTS
)
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


@invariant("INV-51", group="subledger", handoffs=("revrec.billing",), reads=DOCUMENTS)
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


def periods_in_term(sub: bm.Subscription, price: bm.Price) -> int:
    """Billing periods in the contract term: 12 for a monthly price over 12 months, 1 yearly."""
    try:
        term = int(sub.metadata.get("term_months") or 12)
    except ValueError:
        term = 12
    recurring = price.recurring
    months = {"month": 1, "year": 12}.get(recurring.interval if recurring else "month", 1)
    months *= recurring.interval_count if recurring else 1
    return max(1, term // months)


def _half_up(value: Fraction) -> int:
    return int(value + Fraction(1, 2)) if value >= 0 else -_half_up(-value)


def _coupons(books: Books, sub: bm.Subscription) -> list[bm.Coupon] | None:
    """The subscription's live coupons, or None when one is a discount this rule does not
    follow (an amount off, a ``once`` or ``repeating`` coupon)."""
    store = books.billing_store
    found = []
    for d in sub.discounts:
        discount = store.discounts.get(d)
        if discount is None or discount.end is not None:
            continue
        coupon = store.coupons[discount.coupon]
        if coupon.duration != "forever" or coupon.percent_off is None:
            return None
        found.append(coupon)
    return found


def _term_price(
    books: Books, sub: bm.Subscription, item: bm.SubscriptionItem, coupons: list[bm.Coupon]
) -> int:
    """What billing charges for an item over the contract term less ``coupons`` (each off
    every period, rounded half-up per period) and less the tax its inclusive rates hold
    (none for an exempt customer)."""
    store = books.billing_store
    price = books.prices[item.price]
    gross = price.unit_amount * item.quantity
    net = gross
    for coupon in coupons:
        net -= _half_up(gross * Fraction(Decimal(coupon.percent_off or "0")) / 100)
    exempt = books.customers[sub.customer].tax_exempt != "none"
    share = sum(
        (
            Fraction(Decimal(store.tax_rates[r].percentage))
            for r in sub.default_tax_rates
            if store.tax_rates[r].inclusive
        ),
        Fraction(0),
    )
    if share and not exempt:
        net = _half_up(net / (1 + share / 100))
    return net * periods_in_term(sub, price)


def _specific_off(
    books: Books,
    sub: bm.Subscription,
    items: dict[str, bm.SubscriptionItem],
    lines: list[rm.Line],
    coupons: list[bm.Coupon],
) -> dict[str, int]:
    """Each line's share of the coupons restricted to products (ASC 606-10-32-37): what a
    coupon takes off its products' lines over the term (after the coupons for every product,
    then the earlier restricted ones), split between those lines by relative SSP."""
    spread = [c for c in coupons if c.applies_to is None]
    taken = {ln.id: list(spread) for ln in lines if ln.id in items}
    off: dict[str, int] = {}
    for coupon in coupons:
        named = [
            ln
            for ln in lines
            if ln.id in items and coupon.applies(books.prices[items[ln.id].price].product)
        ]
        if coupon.applies_to is None or not named:
            continue
        total = 0
        for ln in named:
            before = _term_price(books, sub, items[ln.id], taken[ln.id])
            taken[ln.id].append(coupon)
            total += before - _term_price(books, sub, items[ln.id], taken[ln.id])
        weights = [ln.quantity * ln.unit_ssp_minor for ln in named]
        if total and sum(weights) > 0:
            for ln, part in zip(named, allocate(total, weights), strict=True):
                off[ln.id] = off.get(ln.id, 0) + part
    return off


@invariant("INV-52", group="subledger", handoffs=("revrec.contracts",), reads=DOCUMENTS)
def price_net_of_discounts_allocated_by_ssp(books: Books) -> Iterator[Violation]:
    """A contract's transaction price is what the customer pays for what was sold, less tax:
    for a subscription with a percentage coupon for ever or an inclusive tax rate, each
    fixed line's consideration is the term's price net of the coupons for every product
    (off every period, rounded half-up per period) and of the tax it includes — a discount
    never left in the price. A coupon restricted to products (``applies_to``) is a discount
    on those obligations alone (ASC 606-10-32-37): it is the lines' ``discount_minor``,
    split between them by relative SSP, and never spread over the others. Until a
    modification, the undiscounted price is allocated by relative standalone selling price
    (quantity × unit SSP, largest remainder: ASC 606-10-32-36) less each line's own
    discount."""
    modified = {m.contract for m in books.rr_modifications.values()}
    for sub in books.subscriptions.values():
        if not sub.discounts and not sub.default_tax_rates:
            continue
        contract = books.links.target("revrec.contract", sub.id)
        if contract is None or contract.id in modified:
            continue
        lines = [ln for ln in books.rr_contract_lines(contract) if ln.pattern != "usage"]
        named = (refs.billing(sub.id), refs.revrec(contract.id))
        coupons = _coupons(books, sub)
        items = {
            ln.id: item
            for ln in lines
            if (item := books.subscription_items.get(books.links.source("revrec.line", ln) or ""))
        }
        off = {} if coupons is None else _specific_off(books, sub, items, lines, coupons)
        for line in lines:
            item = items.get(line.id)
            if item is None or coupons is None:
                continue
            spread = [c for c in coupons if c.applies_to is None]
            want = _term_price(books, sub, item, spread)
            if line.amount_minor + line.discount_minor != want:
                yield Violation(
                    "INV-52",
                    f"contract line {line.id} of {contract.id} is priced {line.amount_minor} "
                    f"(+ {line.discount_minor} specific discount); billing charges {want} for "
                    f"item {item.id} over the term, net of discounts for every product and tax",
                    (*named, refs.revrec(line.id)),
                    {
                        "line_amount_minor": line.amount_minor + line.discount_minor,
                        "term_price": want,
                    },
                )
            if line.discount_minor != off.get(line.id, 0):
                yield Violation(
                    "INV-52",
                    f"contract line {line.id} of {contract.id} takes {line.discount_minor} of "
                    f"discounts on specific obligations; the coupons restricted to products give "
                    f"it {off.get(line.id, 0)} (item {item.id})",
                    (*named, refs.revrec(line.id)),
                    {"discount_minor": line.discount_minor, "specific": off.get(line.id, 0)},
                )
        price = sum(ln.amount_minor + ln.discount_minor for ln in lines)
        weights = [ln.quantity * ln.unit_ssp_minor for ln in lines]
        if sum(weights) <= 0:
            continue
        wanted = [
            part - ln.discount_minor
            for ln, part in zip(lines, allocate(price, weights), strict=True)
        ]
        got = [ln.allocated_minor for ln in lines]
        if got != wanted:
            yield Violation(
                "INV-52",
                f"contract {contract.id} allocates {got}; relative SSP less each line's own "
                f"discount gives {wanted}",
                named,
                {"allocated": got, "by_ssp": wanted},
            )

"""Pure translation of Stripe documents into NetSuite ones: ids, items, lines, dates, periods."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Json = dict[str, Any]

# ERP items (seed external ids). Subscription revenue, licensed or metered, is deferred and
# released by the subledger, so both sit on SUBSCRIPTION; one-off charges are services.
SUBSCRIPTION_ITEM = "SUBSCRIPTION"
ONE_OFF_ITEM = "SERVICES"


def customer_key(customer_id: str) -> str:
    return f"STRIPE-{customer_id}"


def document_key(stripe_id: str) -> str:
    """Invoices, credit notes and a negative invoice's credit memo: STRIPE-<stripe id>."""
    return f"STRIPE-{stripe_id}"


def payment_key(invoice_id: str) -> str:
    return f"PMT-{invoice_id}"


def utc_day(timestamp: int) -> str:
    """The calendar day (UTC) of a Stripe timestamp: the ERP's tranDate."""
    return datetime.fromtimestamp(timestamp, UTC).date().isoformat()


def finalised_on(invoice: Json) -> str:
    return utc_day(int(invoice["status_transitions"]["finalized_at"]))


def paid_on(invoice: Json) -> str:
    return utc_day(int(invoice["status_transitions"]["paid_at"]))


def subscription_of(invoice: Json) -> str | None:
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    found = details.get("subscription")
    return str(found) if found else None


def item_for(line: Json) -> str:
    """Lines of a subscription item (licensed, metered and their prorations) → SUBSCRIPTION."""
    parent = line.get("parent") or {}
    return SUBSCRIPTION_ITEM if parent.get("subscription_item_details") else ONE_OFF_ITEM


def drawn_credit(invoice: Json) -> int:
    """What a positive invoice took from the customer's credit balance at finalisation."""
    if int(invoice["total"]) <= 0 or invoice.get("ending_balance") is None:
        return 0
    return max(0, int(invoice["ending_balance"]) - int(invoice["starting_balance"]))


@dataclass(frozen=True)
class ErpLine:
    item: str
    amount_minor: int  # ≥ 0: NetSuite refuses negative line amounts; 0 only on a tax line
    description: str
    tax_minor: int = 0  # tax1Amt, owed under tax_code
    tax_code: str | None = None


def revenue_of(line: Json) -> int:
    """A Stripe line's revenue: ``amount`` less its ``discount_amounts`` and the tax that
    inclusive rates hold inside it."""
    taken = [int(d["amount"]) for d in line.get("discount_amounts") or []]
    taken += [
        int(t["amount"]) for t in line.get("taxes") or [] if t.get("tax_behavior") == "inclusive"
    ]
    return int(line["amount"]) - sum(taken)


def tax_lines(lines: Iterable[Json], item: str, sign: int = 1) -> list[ErpLine]:
    """One zero-amount ERP line per tax rate carrying the document's tax under that rate's
    id as tax code, so the ERP credits each code's tax to the tax account."""
    owed: dict[str, int] = {}
    for line in lines:
        for tax in line.get("taxes") or []:
            details = tax.get("tax_rate_details") or {}
            code = str(details.get("tax_rate"))
            owed[code] = owed.get(code, 0) + sign * int(tax["amount"])
    return [
        ErpLine(item, 0, f"Tax {code}", amount, code) for code, amount in owed.items() if amount
    ]


@dataclass
class _Group:
    item: str
    description: str
    amount: int = 0
    has_charge: bool = False


def _is_proration(line: Json) -> bool:
    parent = line.get("parent") or {}
    details = parent.get("subscription_item_details") or parent.get("invoice_item_details") or {}
    return bool(details.get("proration"))


def _line_key(line: Json) -> str:
    details = (line.get("parent") or {}).get("subscription_item_details")
    return f"si:{details['subscription_item']}" if details else f"line:{line['id']}"


def erp_lines(lines: list[Json], sign: int = 1) -> list[ErpLine]:
    """One ERP line per subscription item (its prorations netted in) and per other line.

    A group that nets negative (a downgrade's unused time) is taken out of the largest lines
    of the same ERP item, then of any item, so totals stay exact and no line is negative.
    ``sign=-1`` mirrors a negative invoice into the lines of a credit memo."""
    groups: dict[str, _Group] = {}
    for line in lines:
        description = str(line.get("description") or f"Stripe line {line['id']}")
        group = groups.setdefault(_line_key(line), _Group(item_for(line), description))
        group.amount += sign * revenue_of(line)
        if not _is_proration(line) and not group.has_charge:
            group.description, group.has_charge = description, True
    positive = [g for g in groups.values() if g.amount > 0]
    for group in groups.values():
        if group.amount >= 0:
            continue
        owed = _absorb(-group.amount, [g for g in positive if g.item == group.item])
        if _absorb(owed, positive):
            raise ValueError("the lines net to a total that is not positive")
    found = [ErpLine(g.item, g.amount, g.description[:999]) for g in positive if g.amount > 0]
    return found + tax_lines(lines, found[0].item if found else ONE_OFF_ITEM, sign)


def _absorb(owed: int, groups: list[_Group]) -> int:
    for group in sorted(groups, key=lambda g: -g.amount):
        if owed == 0:
            break
        take = min(owed, group.amount)
        group.amount -= take
        owed -= take
    return owed


def credit_note_lines(credit_note: Json, invoice_lines: list[Json], invoice: Json) -> list[ErpLine]:
    """A line per credit note line, on the ERP item of the invoice line it credits; an
    amount-only (custom) credit goes to SUBSCRIPTION on a subscription invoice."""
    by_id = {line["id"]: line for line in invoice_lines}
    custom_item = SUBSCRIPTION_ITEM if subscription_of(invoice) else ONE_OFF_ITEM
    result = []
    for line in credit_note["lines"]:
        credited = by_id.get(line.get("invoice_line_item") or "")
        item = item_for(credited) if credited is not None else custom_item
        description = str(line.get("description") or f"Credit note {credit_note['number']}")
        result.append(ErpLine(item, revenue_of(line), description[:999]))
    return result + tax_lines(credit_note["lines"], result[0].item if result else custom_item)


@dataclass(frozen=True)
class Period:
    id: str
    start_on: str  # YYYY-MM-DD
    takes_ar: bool  # neither closed nor locked for everyone
    # AR locked while finance closes the month, the period otherwise open: AR documents of
    # it wait for the unlock (they belong in it) instead of moving to a later month.
    ar_locked: bool = False
    name: str = ""  # NetSuite's period name ("Jan 2026"), for the reason of a wait


def posting_period(periods: Iterable[Period], day: str) -> Period | None:
    """The month of ``day`` when it takes AR postings, else the first later month that does
    (NetSuite refuses closed periods; the late document lands in the first open one). The
    period found may be AR-locked: then the document waits (``Ledger.period_for``)."""
    month = day[:7]
    for period in sorted(periods, key=lambda p: p.start_on):
        if period.start_on[:7] >= month and period.takes_ar:
            return period
    return None

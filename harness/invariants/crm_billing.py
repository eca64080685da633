"""CRM ↔ billing invariants: one subscription per won deal, amounts that add up."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from harness.books import Books
from harness.invariants import refs
from harness.invariants.registry import DOCUMENTS, invariant
from harness.violations import Violation
from simulators.crm.models import Record

# The CRM stores currency fields in cents and Quantity in hundredths (simulators/crm/schema.py:
# scale 2 on Amount, UnitPrice, TotalPrice and Quantity).
MONEY_SCALE = 2
QUANTITY_SCALE = 2


def _money(value: Any) -> Decimal:
    return Decimal(int(value)).scaleb(-MONEY_SCALE) if value is not None else Decimal(0)


def _is_new_business(books: Books, opp: Record) -> bool:
    """New business unless typed an amendment or renewal, or written back with a subscription
    made for another opportunity."""
    if opp.get("Type") in ("Amendment", "Renewal"):
        return False
    sub = books.subscriptions.get(str(opp.get(books.writeback("opportunity_subscription")) or ""))
    return sub is None or books.links.source("billing.subscription", sub) in (None, opp.id)


def _licensed_amount(books: Books, opp: Record) -> Decimal:
    """The opportunity's amount less its lines on metered prices (usage is not in a
    subscription's recurring amount)."""
    amount = _money(opp.get("Amount"))
    for line in books.opportunity_lines.get(opp.id, []):
        price = books.prices.get(str(line.get("Billing_Price_Id__c") or ""))
        if price is not None and price.metered:
            amount -= _money(line.get("TotalPrice"))
    return amount


@invariant(
    "INV-24",
    group="crm_billing",
    handoffs=("crm.provision", "crm.amend", "crm.writeback"),
    reads=(*DOCUMENTS, "journal.*"),
)
def one_subscription_per_won_opportunity(books: Books) -> Iterator[Violation]:
    """Every won new-business opportunity has exactly one subscription (linked as declared,
    default ``metadata.crm_opportunity_id``), written back (default fields
    ``Billing_Subscription_Id__c``, ``Synced_To_Billing__c``, the account's
    ``Billing_Customer_Id__c``), whose recurring amount per period (Σ unit amount × quantity of
    licensed items) equals the latest won opportunity on it (by close date) — unless billing's
    own users changed the subscription (a self-serve change the CRM does not describe, seen in
    billing's request journal); a won amendment or renewal is synced and names an existing
    subscription; no subscription names an opportunity that is not won."""
    sub_field = books.writeback("opportunity_subscription")
    synced_field = books.writeback("opportunity_synced")
    customer_field = books.writeback("account_customer")
    provision = books.owns("crm.provision")
    amends = books.owns("crm.amend")
    writeback = books.owns("crm.writeback")
    won = [o for o in books.crm_records("Opportunity") if o.get("IsWon")]
    changed_in_billing = _changed_in_billing(books)
    latest: dict[str, Record] = {}
    for opp in sorted(won, key=lambda o: (str(o.get("CloseDate")), o.get("CreatedDate") or 0)):
        if opp.get(synced_field) and opp.get(sub_field):
            latest[str(opp.get(sub_field))] = opp
    for opp in won:
        sub_id = opp.get(sub_field)
        if not _is_new_business(books, opp):
            applied = opp.get(synced_field) and sub_id in books.subscriptions
            if (amends or writeback) and not applied:
                yield Violation(
                    "INV-24",
                    f"won {opp.get('Type') or 'amendment'} {opp.id} is not applied to an "
                    "existing subscription",
                    (refs.crm(opp.id), *((refs.billing(str(sub_id)),) if sub_id else ())),
                )
            continue
        subs = books.links.targets("billing.subscription", opp.id)
        if len(subs) != 1:
            if provision:
                yield Violation(
                    "INV-24",
                    f"won opportunity {opp.id} has {len(subs)} subscriptions "
                    f"({books.links.describe('billing.subscription', opp.id)})",
                    (refs.crm(opp.id), *(refs.billing(s.id) for s in subs)),
                )
            continue
        sub = subs[0]
        named: tuple[str, ...] = (refs.crm(opp.id), refs.billing(sub.id))
        account = books.crm_record(str(opp.get("AccountId") or ""))
        problems = []
        if sub_id != sub.id:
            problems.append(f"{sub_field} is {sub_id!r}")
        if not opp.get(synced_field):
            problems.append(f"{synced_field} is not set")
        if account is not None and account.get(customer_field) != sub.customer:
            problems.append(
                f"account {account.id} {customer_field} is {account.get(customer_field)!r}"
            )
            named = (*named, refs.crm(account.id))
        if problems and writeback:
            yield Violation("INV-24", f"write-back of {opp.id}: {'; '.join(problems)}", named)
        basis = latest.get(sub.id, opp)
        expected = refs.minor(_licensed_amount(books, basis), sub.currency)
        actual = 0
        for item_id in sub.items:
            item = books.subscription_items.get(item_id)
            price = books.prices.get(item.price) if item else None
            if item is not None and price is not None and not price.metered:
                actual += price.unit_amount * item.quantity
        judged = amends if basis.id != opp.id else provision
        if actual != expected and sub.id not in changed_in_billing and judged:
            yield Violation(
                "INV-24",
                f"subscription {sub.id} bills {actual} a period; opportunity {basis.id} says "
                f"{expected}",
                (*named, refs.crm(basis.id)) if basis.id != opp.id else named,
                {"subscription_minor": actual, "opportunity_minor": expected},
            )
    if not provision:
        return
    won_ids = {o.id for o in won}
    for opp_id in list(books.links.sources("billing.subscription")):
        if opp_id not in won_ids:
            for sub in books.links.targets("billing.subscription", opp_id):
                yield Violation(
                    "INV-24",
                    f"subscription {sub.id} names opportunity {opp_id}, which is not won",
                    (refs.billing(sub.id), refs.crm(opp_id)),
                )


@invariant("INV-25", group="crm_billing", reads=DOCUMENTS)
def opportunity_amount_is_the_sum_of_its_lines(books: Books) -> Iterator[Violation]:
    """An opportunity with line items has Amount = Σ TotalPrice of its lines, and each line's
    TotalPrice = Quantity × UnitPrice (to the cent, half-up)."""
    for opp in books.crm_records("Opportunity"):
        lines = books.opportunity_lines.get(opp.id, [])
        if not lines:
            continue
        total = Decimal(0)
        for line in lines:
            price = _money(line.get("TotalPrice"))
            total += price
            quantity = Decimal(int(line.get("Quantity") or 0)).scaleb(-QUANTITY_SCALE)
            expected = (quantity * _money(line.get("UnitPrice"))).quantize(
                Decimal("0.01"), ROUND_HALF_UP
            )
            if line.get("Discount") is None and price != expected:
                yield Violation(
                    "INV-25",
                    f"line {line.id} totals {price}, {quantity} × {_money(line.get('UnitPrice'))}"
                    f" = {expected}",
                    (refs.crm(opp.id), refs.crm(line.id)),
                )
        amount = _money(opp.get("Amount"))
        if amount != total:
            yield Violation(
                "INV-25",
                f"opportunity {opp.id} Amount is {amount}; its lines sum to {total}",
                (refs.crm(opp.id), *(refs.crm(line.id) for line in lines)),
                {"amount": str(amount), "lines_total": str(total)},
            )


def _changed_in_billing(books: Books) -> set[str]:
    """Subscriptions a billing user (not the integration) updated or cancelled directly."""
    changed = set()
    for entry in books.journal("billing"):
        if entry.actor != "harness" or entry.method not in ("POST", "DELETE"):
            continue
        if entry.path.startswith("/v1/subscriptions/") and 200 <= entry.status < 300:
            changed.add(entry.path.split("/")[3])
    return changed

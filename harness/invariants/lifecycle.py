"""Lifecycle invariants: prorations, renewals, cancellations and usage, as billed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from harness.books import Books
from harness.invariants import refs
from harness.invariants.registry import DOCUMENTS, invariant
from harness.violations import Violation
from simulators.billing.models import Recurring, Subscription, period_end

DAY = 86400


def _half_up(numerator: int, denominator: int) -> int:
    """Non-negative ``numerator / denominator`` rounded half-up, in integers (our own, so the
    check does not lean on the billing simulator's arithmetic)."""
    return (2 * numerator + denominator) // (2 * denominator)


def _period_start(sub: Subscription, recurring: Recurring, end: int) -> int | None:
    """Start of the subscription period that ends at ``end`` (periods follow the anchor)."""
    bounds = {sub.start_date, sub.billing_cycle_anchor}
    k = 0
    while k < 10_000:
        e = period_end(sub.billing_cycle_anchor, recurring, k)
        if e > end:
            break
        bounds.add(e)
        k += 1
    earlier = [b for b in bounds if b < end]
    return max(earlier) if earlier else None


@invariant("INV-11", group="lifecycle", reads=DOCUMENTS)
def prorations_follow_the_formula(books: Books) -> Iterator[Violation]:
    """A proration for a change at t in the period [s, e) is ±round_half_up(unit amount ×
    quantity × (e − t) / (e − s)), to the second, per line (billed lines and pending items)."""
    rows = [
        (
            line.id,
            line.subscription,
            line.price,
            line.quantity,
            line.amount,
            line.period_start,
            line.period_end,
        )
        for inv in books.invoices.values()
        for line in inv.lines
        if line.proration
    ]
    rows += [
        (ii.id, ii.subscription, ii.price, ii.quantity, ii.amount, ii.period_start, ii.period_end)
        for ii in books.invoice_items.values()
        if ii.proration and ii.invoice is None and not ii.deleted
    ]
    for rid, sub_id, price_id, quantity, amount, t, e in rows:
        sub = books.subscriptions.get(sub_id or "")
        price = books.prices.get(price_id or "")
        if sub is None or price is None or price.recurring is None or price.metered:
            continue
        s = _period_start(sub, price.recurring, e)
        if s is None or not s <= t <= e:
            yield Violation(
                "INV-11",
                f"proration {rid} covers [{t}, {e}), which lies in no period of {sub.id}",
                (refs.billing(rid), refs.billing(sub.id)),
            )
            continue
        expected = _half_up(price.unit_amount * quantity * (e - t), e - s)
        if abs(amount) != expected:
            yield Violation(
                "INV-11",
                f"proration {rid} is {amount}; the formula gives ±{expected}",
                (refs.billing(rid), refs.billing(sub.id), refs.billing(price.id)),
                {"amount": amount, "expected": expected, "s": s, "t": t, "e": e},
            )


def _day(ms_or_text: object) -> str:
    return str(ms_or_text)[:10]


@invariant("INV-13", group="lifecycle", handoffs=("crm.amend",), reads=DOCUMENTS)
def renewals_make_no_prorations(books: Books) -> Iterator[Violation]:
    """A won renewal opportunity changes its subscription at the period end without
    prorations: no proration is dated from the renewal's close date until a later won
    amendment of the same subscription (dates in UTC days)."""
    by_sub: dict[str, list[tuple[str, str, str]]] = {}  # sub → (close day, type, opp id)
    for opp in books.crm_records("Opportunity"):
        sub_id = opp.get(books.writeback("opportunity_subscription"))
        kind = opp.get("Type")
        if opp.get("IsWon") and sub_id and kind in ("Renewal", "Amendment"):
            by_sub.setdefault(str(sub_id), []).append((_day(opp.get("CloseDate")), kind, opp.id))
    prorations: dict[str, list[tuple[str, str]]] = {}
    for ii in books.invoice_items.values():
        if ii.proration and ii.subscription and not ii.deleted:
            day = datetime.fromtimestamp(ii.period_start, UTC).date().isoformat()
            prorations.setdefault(ii.subscription, []).append((day, ii.id))
    for sub_id, opps in by_sub.items():
        opps.sort()
        for n, (day, kind, opp_id) in enumerate(opps):
            if kind != "Renewal":
                continue
            until = next((d for d, k, _ in opps[n + 1 :] if k == "Amendment"), "9999-12-31")
            for pday, item in prorations.get(sub_id, []):
                if day <= pday < until:
                    yield Violation(
                        "INV-13",
                        f"renewal {opp_id} of {sub_id} made proration {item} on {pday}",
                        (refs.crm(opp_id), refs.billing(sub_id), refs.billing(item)),
                        {"renewal_closed_on": day, "proration_on": pday},
                    )


@invariant("INV-14", group="lifecycle", reads=DOCUMENTS)
def cancellations_end_billing(books: Books) -> Iterator[Violation]:
    """A canceled subscription has ``canceled_at`` and ``ended_at`` set (and only a canceled one
    has ``ended_at``), and nothing is billed for service after it ended: no non-proration line
    of a live invoice, and no pending item, starts at or after ``ended_at``."""
    for sub in books.subscriptions.values():
        canceled = sub.status in ("canceled", "incomplete_expired")
        if canceled != (sub.ended_at is not None) or (
            sub.status == "canceled" and sub.canceled_at is None
        ):
            yield Violation(
                "INV-14",
                f"subscription {sub.id} is {sub.status} with ended_at {sub.ended_at} and "
                f"canceled_at {sub.canceled_at}",
                (refs.billing(sub.id),),
            )
        if sub.ended_at is None:
            continue
        for inv in books.invoices_by_subscription.get(sub.id, []):
            if inv.status == "void":
                continue
            for line in inv.lines:
                if not line.proration and line.period_start >= sub.ended_at:
                    yield Violation(
                        "INV-14",
                        f"{inv.id} bills {sub.id} from {line.period_start}, after it ended "
                        f"at {sub.ended_at}",
                        (refs.billing(sub.id), refs.billing(inv.id), refs.billing(line.id)),
                    )
        for ii in books.invoice_items.values():
            if (
                ii.subscription == sub.id
                and ii.invoice is None
                and not ii.deleted
                and not ii.proration
                and ii.period_start >= sub.ended_at
            ):
                yield Violation(
                    "INV-14",
                    f"pending item {ii.id} bills {sub.id} after it ended",
                    (refs.billing(sub.id), refs.billing(ii.id)),
                )


@invariant("INV-15", group="lifecycle", reads=DOCUMENTS)
def billed_usage_matches_meter_events(books: Books) -> Iterator[Violation]:
    """Each metered invoice line bills the customer's meter events of its period, counted once
    per identifier and aggregated by the meter's formula (whole units, half-up), at the unit
    amount; no two stored meter events share an identifier."""
    seen: dict[str, int] = {}
    for event in books.meter_events:
        seen[event.identifier] = seen.get(event.identifier, 0) + 1
    for identifier, count in seen.items():
        if count > 1:
            yield Violation(
                "INV-15",
                f"meter event {identifier} is stored {count} times",
                (refs.billing(identifier),),
            )
    meters = {m.id: m for m in books.meters.values()}
    by_key: dict[tuple[str, str], list[tuple[int, float, str]]] = {}
    for event in books.meter_events:
        by_key.setdefault((event.event_name, event.customer), []).append(
            (event.timestamp, event.value, event.identifier)
        )
    for inv in books.invoices.values():
        for line in inv.lines:
            price = books.prices.get(line.price or "")
            if price is None or not price.metered or price.recurring is None:
                continue
            meter = meters.get(price.recurring.meter or "")
            if meter is None:
                continue
            # Store order, as reported: the ``last`` formula takes the latest report.
            values = [
                value
                for ts, value, _ in by_key.get((meter.event_name, inv.customer), [])
                if line.period_start <= ts < line.period_end
            ]
            if meter.formula == "count":
                total = float(len(values))
            elif meter.formula == "last":
                total = values[-1] if values else 0.0
            else:
                total = float(sum(values))
            quantity = int(total + 0.5) if total >= 0 else -int(-total + 0.5)
            if line.quantity != quantity or line.amount != quantity * price.unit_amount:
                yield Violation(
                    "INV-15",
                    f"usage line {line.id} bills {line.quantity} units ({line.amount}); the meter "
                    f"events give {quantity} ({quantity * price.unit_amount})",
                    (refs.billing(inv.id), refs.billing(line.id), refs.billing(meter.id)),
                    {"billed_quantity": line.quantity, "metered_quantity": quantity},
                )

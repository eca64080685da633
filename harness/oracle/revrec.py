"""Subledger contracts the integration books and keeps: allocation, prospective modifications,
billing and usage per line, by day — the oracle's own ASC 606 arithmetic (docs/oracle.md)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

from harness.oracle.arithmetic import (
    add_months,
    days_left,
    largest_remainder,
    month_bounds,
    month_of,
    months_from,
    round_half_up,
    whole_months,
)
from harness.oracle.model import (
    Change,
    Consumption,
    ExpectedContract,
    ExpectedContractLine,
    ExpectedInvoice,
    Segment,
)

if TYPE_CHECKING:
    from harness.oracle.billing import Booking
    from harness.scenario import Scenario


@dataclass
class Terms:
    """A fixed line's terms as a change leaves them."""

    quantity: int
    amount_minor: int
    unit_ssp_minor: int
    start_at: int
    end_at: int


class Contracts:
    """Books one contract per new-business subscription, then follows every change, bill,
    credit and consumption of it, the way docs/reference-flow.md says the flow keeps it."""

    def __init__(self, scenario: Scenario) -> None:
        fx = scenario.fixtures
        self.prices = {p.key: p for p in fx.prices}
        self.products = {p.key: p for p in fx.products}
        self.customers = {c.key: c for c in fx.customers}
        self.contracts: dict[str, ExpectedContract] = {}
        self.notes: list[str] = []

    def replay(
        self,
        bookings: list[Booking],
        changes: list[Change],
        invoices: list[ExpectedInvoice],
        consumption: list[Consumption],
        as_of: int | None = None,
    ) -> dict[str, ExpectedContract]:
        for booking in bookings:
            if booking.term_months % booking.interval_months:
                # Its lines cannot be priced over the term: its entity's revenue is unknown.
                self.notes.append(f"{booking.opportunity}: term is not whole billing periods")
                unknown = self.book(replace(booking, items=[], term_months=0))
                unknown.predicted = False
                self.contracts[booking.opportunity] = unknown
                continue
            self.contracts[booking.opportunity] = self.book(booking)
        followed = {k: c for k, c in self.contracts.items() if c.predicted}
        # Modifications apply in effective order (a renewal takes effect at the period end);
        # one effective after ``as_of`` is not in the books yet (a subledger takes no
        # modification dated in the future: a renewal reaches it when its period starts).
        # Credit notes and voids are price concessions, modifications at their own dates.
        for change in sorted([*changes, *concessions(invoices)], key=lambda c: c.at):
            if as_of is not None and change.at > as_of:
                continue
            contract = followed.get(change.opportunity)
            if contract is not None:
                self.follow(contract, change)
        for inv in invoices:
            contract = followed.get(inv.opportunity)
            if contract is not None and inv.finalized_at is not None:
                self.bill(contract, inv, inv.finalized_at)
        for used in consumption:
            contract = followed.get(used.opportunity)
            line = _line_at(contract, used.price, used.at) if contract else None
            # Usage reaches the subledger with the invoice that bills it (in arrears), dated
            # when it was consumed: until then the books cannot know it.
            if line is not None and line.pattern == "usage" and _invoiced(used, invoices):
                line.consumed.append((used.at, used.amount_minor))
        for contract in self.contracts.values():
            for line in contract.lines:
                line.schedule = monthly(line)
        return self.contracts

    # --- booking ------------------------------------------------------------------------------
    def book(self, booking: Booking) -> ExpectedContract:
        """One line per subscription item, priced over the whole term, allocated by relative SSP
        (largest remainder) and, for ratable lines, earned by day over the term."""
        # Unit price and SSP are per billing interval; over the term both scale alike, so the
        # allocation ratios do not depend on this choice (docs/oracle.md).
        intervals = booking.term_months // booking.interval_months
        end = add_months(booking.start_at, booking.term_months)
        lines = []
        for item in booking.items:
            price = self.prices[item.price]
            product = self.products[price.product]
            pattern = "usage" if price.usage else product.recognition
            lines.append(
                ExpectedContractLine(
                    item.price,
                    product.key,
                    pattern,
                    item.quantity,
                    price.unit_amount * intervals,
                    self._ssp(item.price) * intervals,
                    booking.start_at,
                    end,
                    amount_minor=_discounted(
                        booking
                        if booking.applies_to is None
                        else replace(booking, percent_off=None),
                        item.quantity * price.unit_amount,
                        intervals,
                    ),
                )
            )
        fixed = [line for line in lines if line.pattern != "usage"]
        parts = largest_remainder(
            sum(line.amount_minor for line in fixed),
            [line.quantity * line.unit_ssp_minor for line in fixed],
        )
        off = _specific(booking, fixed, intervals)
        for line, part in zip(fixed, parts, strict=True):
            line.amount_minor -= off.get(id(line), 0)
            part -= off.get(id(line), 0)
            line.allocated_minor = part
            ratable = line.pattern == "ratable"
            line.segments.append(
                Segment(
                    booking.start_at,
                    0,
                    part,
                    line.service_start_at if ratable else None,
                    line.service_end_at if ratable else None,
                )
            )
        return ExpectedContract(
            booking.opportunity,
            booking.customer,
            self.customers[booking.customer].entity.upper(),
            booking.currency,
            booking.start_at,
            lines,
            booking.interval_months,
            booking.term_months,
        )

    def _ssp(self, price_key: str) -> int:
        """Standalone selling price per billing period: the product's, else the unit price."""
        price = self.prices[price_key]
        ssp = self.products[price.product].ssp_minor
        return price.unit_amount if ssp is None else ssp

    # --- changes --------------------------------------------------------------------------------
    def follow(self, contract: ExpectedContract, change: Change) -> None:
        """The change as a prospective modification at ``change.at``.

        Each line's consideration becomes what the customer pays for it in all: what it was,
        plus the prorations billing made for it at the change, plus the change in quantity
        for the billing periods of the term still to be invoiced after the current one (the
        current one is always invoiced by then). A line that leaves ends at the change; a
        scheduled cancellation ends every line at the period end, less what would have been
        billed after it."""
        terms: dict[int, Terms] = {
            id(x): _terms_of(x) for x in contract.lines if x.pattern != "usage"
        }
        if change.kind == "concession":
            # What the customer no longer pays for each line comes off its consideration.
            for price, amount in change.prorations.items():
                # A line already terminated takes no change (the subledger's 409).
                line = _line_at(contract, price, change.at)
                if line is not None and line.pattern != "usage" and line.terminated_at is None:
                    terms[id(line)].amount_minor -= amount
            self._modify(contract, change.at, terms, [])
            return
        service_end = max(x.service_end_at for x in contract.lines)
        later = max(0, whole_months(change.period_end, service_end)) // contract.interval_months
        added: list[ExpectedContractLine] = []
        if change.kind == "cancel_at_period_end":
            ends = change.period_end
            for line in _live(contract):
                if line.pattern == "usage" or line.service_end_at <= ends:
                    continue
                unbilled = whole_months(ends, line.service_end_at) // contract.interval_months
                t = terms[id(line)]
                t.amount_minor -= self.prices[line.price].unit_amount * line.quantity * unbilled
                t.end_at = ends
            self._modify(contract, change.at, terms, [])
            return
        after = {} if change.kind == "cancel" else change.after
        for price in dict.fromkeys([*change.before, *after]):
            live = contract.live(price)
            if live is None:
                if price in after:
                    added.append(self._added(contract, price, after[price], change, later))
                continue
            if live.pattern == "usage":
                # Usage stops with billing; a usage line only ends when its item leaves.
                if price not in after and change.kind != "cancel":
                    live.terminated_at = change.at
                continue
            unit = self.prices[price].unit_amount
            t = terms[id(live)]
            new_qty = after.get(price, 0)
            t.amount_minor += (
                change.prorations.get(price, 0) + (new_qty - live.quantity) * unit * later
            )
            if price in after:
                t.quantity = new_qty
                continue
            # Ended at the change: a point-in-time line keeps what was delivered (nothing).
            t.end_at = max(t.start_at, min(t.end_at, change.at))
            t.quantity = 0 if live.pattern == "point_in_time" else t.quantity
            live.terminated_at = change.at
        for line in added:
            if line.pattern != "usage":
                terms[id(line)] = _terms_of(line)
        contract.lines.extend(added)
        self._modify(contract, change.at, terms, added)

    def _added(
        self, contract: ExpectedContract, price: str, quantity: int, change: Change, later: int
    ) -> ExpectedContractLine:
        """A line for an item the change adds: from the change to the contract's end, valued
        at the prorations made for it plus the later periods, its SSP for the same span."""
        unit = self.prices[price].unit_amount
        product = self.products[self.prices[price].product]
        proration = change.prorations.get(price, 0)
        ssp = self._ssp(price)
        unused = Fraction(change.period_end - change.at, change.period_end - change.period_start)
        unit_ssp = ssp * later + (round_half_up(ssp * unused) if proration else 0)
        intervals = contract.term_months // contract.interval_months
        end = max(x.service_end_at for x in contract.lines)
        return ExpectedContractLine(
            price,
            product.key,
            "usage" if self.prices[price].usage else product.recognition,
            quantity,
            unit * intervals,
            unit_ssp,
            change.at,
            max(end, change.at),
            amount_minor=proration + unit * quantity * later,
        )

    def _modify(
        self,
        contract: ExpectedContract,
        at: int,
        terms: dict[int, Terms],
        added: list[ExpectedContractLine],
    ) -> None:
        """Prospective (ASC 606-10-25-13(a)): revenue before ``at`` stays; the allocation not
        yet recognised plus the change in consideration is re-allocated over what remains to
        perform, by the SSP of what remains of each line, and earned over what remains."""
        fixed = [x for x in contract.lines if x.pattern != "usage"]
        new = {id(x) for x in added}
        earned = {id(x): 0 if id(x) in new else x.earned(at) for x in fixed}
        left = {id(x): 0 if id(x) in new else x.allocated_minor - earned[id(x)] for x in fixed}
        change = {
            id(x): terms[id(x)].amount_minor - (0 if id(x) in new else x.amount_minor)
            for x in fixed
        }
        pool = sum(left.values()) + sum(change.values())
        share = {id(x): _remaining(x, terms[id(x)], at) for x in fixed}
        remaining = [x for x in fixed if share[id(x)] > 0]
        parts: dict[int, int] = {}
        if remaining:
            weights = [
                terms[id(x)].unit_ssp_minor * terms[id(x)].quantity * share[id(x)]
                for x in remaining
            ]
            parts = dict(
                zip((id(x) for x in remaining), largest_remainder(pool, weights), strict=True)
            )
        for x in fixed:
            t = terms[id(x)]
            x.quantity, x.amount_minor, x.unit_ssp_minor = (
                t.quantity,
                t.amount_minor,
                t.unit_ssp_minor,
            )
            x.service_end_at = t.end_at
            if not remaining:
                # Nothing left to perform: what the change leaves unrecognised is earned now.
                base = earned[id(x)] + left[id(x)] + change[id(x)]
                x.segments.append(Segment(at, base))
                x.allocated_minor = base
                continue
            part = parts.get(id(x), 0)
            x.allocated_minor = earned[id(x)] + part
            if pool < 0 and id(x) in parts:
                # More taken back than is left to recognise: reversed at once, and nothing
                # more to earn (docs/revrec.md).
                x.segments.append(Segment(at, earned[id(x)] + part))
                continue
            if id(x) not in parts or x.pattern != "ratable":
                x.segments.append(Segment(at, earned[id(x)], part))
                continue
            # What remains starts at the change; a last part inside one day earns over it.
            start = max(t.start_at, at)
            x.segments.append(Segment(at, earned[id(x)], part, start, max(t.end_at, start + 1)))

    # --- billing --------------------------------------------------------------------------------
    def bill(self, contract: ExpectedContract, inv: ExpectedInvoice, at: int) -> None:
        """An invoice bills each line its net (a negative net is credited); an invoice of total
        0 posts nothing. Each credit note credits the lines in proportion to what the invoice
        billed them (largest remainder), at its own date; a void credits its positive nets
        back when it was voided."""
        if inv.total_minor == 0:
            return
        net: dict[str, int] = {}
        for line in inv.lines:
            net[line.price] = net.get(line.price, 0) + line.earned_minor
        for price, amount in net.items():
            target = _line_at(contract, price, at)
            if amount and target is not None:
                target.billed.append((at, amount))
        for when, credited in _credits(inv):
            for price, part in credited.items():
                target = _line_at(contract, price, when)
                if part and target is not None:
                    target.billed.append((when, -part))


def _credits(inv: ExpectedInvoice) -> Iterator[tuple[int, dict[str, int]]]:
    """What each credit note (and a void) takes back from the invoice's lines, by price, and
    when: a credit note in proportion to what the invoice billed them (largest remainder), a
    void every positive net."""
    net: dict[str, int] = {}
    for line in inv.lines:
        net[line.price] = net.get(line.price, 0) + line.earned_minor
    positive = {price: amount for price, amount in net.items() if amount > 0}
    if inv.total_minor == 0 or not positive:
        return
    for cn in inv.credit_notes:
        parts = largest_remainder(cn.total_minor, list(positive.values()))
        yield cn.created_at, dict(zip(positive, parts, strict=True))
    if inv.voided_at is not None:
        yield inv.voided_at, positive


def concessions(invoices: Iterable[ExpectedInvoice]) -> list[Change]:
    """Each credit note and void of a subscription's finalised invoice as a price concession
    (docs/reference-flow.md): the credited lines' consideration lowered by what was credited,
    a prospective modification at its date (``prorations`` holds the amounts by price)."""
    found = []
    for inv in invoices:
        if inv.finalized_at is None:
            continue
        for at, credited in _credits(inv):
            found.append(Change(inv.opportunity, "concession", at, {}, {}, credited, at, at))
    return found


def _discounted(booking: Booking, per_period: int, periods: int) -> int:
    """A line's consideration over the term: what billing charges for it less tax. The
    subscription's percentage coupon takes ``round½↑(per period × p)`` off each period's line
    (``forever``) or off the first (``once``); inclusive tax rates then hold ``net −
    round½↑(net / (1 + Σp))`` of each period's net."""
    first = later = per_period
    if booking.percent_off is not None:
        off = round_half_up(per_period * Fraction(Decimal(booking.percent_off)) / 100)
        first, later = per_period - off, per_period - (off if booking.forever else 0)
    if booking.inclusive_percent:
        first = round_half_up(first / (1 + booking.inclusive_percent / 100))
        later = round_half_up(later / (1 + booking.inclusive_percent / 100))
    return first + later * (periods - 1)


def _specific(booking: Booking, fixed: list[ExpectedContractLine], periods: int) -> dict[int, int]:
    """A coupon restricted to products as a discount on those lines alone (ASC
    606-10-32-37): what it takes off each of them over the term (net of included tax),
    summed, then split between them by relative SSP (largest remainder); by ``id`` of line."""
    if booking.applies_to is None or booking.percent_off is None:
        return {}
    named = [line for line in fixed if line.product in booking.applies_to]
    total = 0
    for line in named:
        per_period = line.quantity * line.unit_price_minor // periods
        undiscounted = _discounted(replace(booking, percent_off=None), per_period, periods)
        total += undiscounted - _discounted(booking, per_period, periods)
    weights = [line.quantity * line.unit_ssp_minor for line in named]
    if not total or not any(weights):
        return {}
    return {id(ln): part for ln, part in zip(named, largest_remainder(total, weights), strict=True)}


def _terms_of(line: ExpectedContractLine) -> Terms:
    return Terms(
        line.quantity,
        line.amount_minor,
        line.unit_ssp_minor,
        line.service_start_at,
        line.service_end_at,
    )


def _invoiced(used: Consumption, invoices: list[ExpectedInvoice]) -> bool:
    """Some finalised invoice of the subscription bills the usage period holding ``used``."""
    return any(
        inv.opportunity == used.opportunity
        and inv.finalized_at is not None
        and any(
            x.kind == "usage" and x.price == used.price and x.period_start <= used.at < x.period_end
            for x in inv.lines
        )
        for inv in invoices
    )


def _live(contract: ExpectedContract) -> list[ExpectedContractLine]:
    return [x for x in contract.lines if x.terminated_at is None]


def _remaining(line: ExpectedContractLine, terms: Terms, at: int) -> Fraction:
    """The share of the obligation, under its new terms, still to perform at ``at``."""
    if line.pattern == "point_in_time":
        return Fraction(1 if terms.quantity else 0)  # nothing is ever delivered in a scenario
    if terms.end_at <= terms.start_at:
        return Fraction(0)
    return days_left(terms.start_at, terms.end_at, at)


def _line_at(contract: ExpectedContract, price: str, at: int) -> ExpectedContractLine | None:
    """The line that served ``price`` at ``at``: the latest one started by then."""
    candidates = [x for x in contract.lines if x.price == price]
    started = [x for x in candidates if x.service_start_at <= at] or candidates
    return started[-1] if started else None


def monthly(line: ExpectedContractLine) -> dict[str, int]:
    """Revenue per calendar month over the line's whole life (months of 0 left out)."""
    schedule = {}
    for month in months_from(month_of(line.service_start_at), month_of(line.last_at)):
        start, end = month_bounds(month)
        amount = line.earned(end) - line.earned(start)
        if amount:
            schedule[month] = amount
    return schedule


def recognised_by_month(
    contracts: list[ExpectedContract], as_of: int
) -> dict[tuple[str, str], int]:
    """Revenue per (ENTITY, YYYY-MM) recognised by the instant ``as_of`` (included)."""
    totals: dict[tuple[str, str], int] = {}
    for contract in contracts:
        if not contract.predicted:
            continue
        for line in contract.lines:
            if line.service_start_at > as_of:
                continue
            for month in months_from(month_of(line.service_start_at), month_of(as_of)):
                start, end = month_bounds(month)
                amount = line.earned(min(end, as_of + 1)) - line.earned(start)
                if amount:
                    key = (contract.entity, month)
                    totals[key] = totals.get(key, 0) + amount
    return dict(sorted(totals.items()))


def deferred_by_entity(contracts: list[ExpectedContract], as_of: int) -> dict[str, int]:
    """Deferred revenue per ENTITY at ``as_of`` (included): billed beyond recognised, per line."""
    totals: dict[str, int] = {}
    for contract in contracts:
        if not contract.predicted:
            continue
        for line in contract.lines:
            deferred = max(line.billed_before(as_of + 1) - line.earned(as_of + 1), 0)
            totals[contract.entity] = totals.get(contract.entity, 0) + deferred
    return totals

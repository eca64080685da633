"""Revenue-recognition records and pure ASC 606 arithmetic: allocation, schedules, modifications."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

from simulators.common.clock import month_start_at
from simulators.common.money import div_round_half_up, exponent

DAY = 86400
CONVENTIONS = ("day", "second", "even_months")
PATTERNS = ("ratable", "point_in_time", "usage")
TREATMENTS = ("prospective", "cumulative_catch_up")
# Knowledge cut-off meaning "everything recorded so far" (record sequence numbers are smaller).
ALL_KNOWN = 1 << 62
ROLES = ("deferred_revenue", "unbilled_receivable", "revenue", "fx_gain_loss")

Convention = Literal["day", "second", "even_months"]


# --- periods --------------------------------------------------------------------------------
def month_index(at: int) -> int:
    """Months since year 0 of the UTC calendar month holding instant ``at``."""
    moment = datetime.fromtimestamp(at, UTC)
    return moment.year * 12 + moment.month - 1


def month_start(index: int) -> int:
    """The first instant (00:00:00 UTC on the 1st) of month ``index``."""
    year, month0 = divmod(index, 12)
    return month_start_at(year, month0 + 1)


def period_name(index: int) -> str:
    year, month0 = divmod(index, 12)
    return f"{year:04d}-{month0 + 1:02d}"


def parse_period(name: str) -> int:
    """``YYYY-MM`` to a month index; ValueError on anything else."""
    year, _, month = name.partition("-")
    if len(year) != 4 or len(month) != 2 or not (year + month).isdigit():
        raise ValueError(f"not a period (YYYY-MM): {name!r}")
    if not 1 <= int(month) <= 12:
        raise ValueError(f"not a period (YYYY-MM): {name!r}")
    # The clock's range bounds what a period can be: 1970-01 up to 9999-12.
    if not 1970 <= int(year) <= 9999:
        raise ValueError(f"periods run from 1970-01 to 9999-12, not {name!r}")
    return int(year) * 12 + int(month) - 1


# --- allocation -----------------------------------------------------------------------------
def largest_remainder(total: int, weights: Sequence[int | Fraction]) -> list[int]:
    """``total`` split in proportion to ``weights``; the parts sum to ``total`` exactly.

    Hamilton's method: every part gets the floor of its exact quota, and the units left go
    one each to the largest fractional remainders, ties to the earlier part. A negative total
    is split as its absolute value and negated, so signs never mix.
    """
    if total < 0:
        return [-part for part in largest_remainder(-total, weights)]
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    whole = sum(weights, Fraction(0))
    if whole == 0:
        if total == 0:
            return [0] * len(weights)
        raise ValueError("cannot split a non-zero amount over weights that are all zero")
    quotas = [Fraction(total) * w / whole for w in weights]
    parts = [q.numerator // q.denominator for q in quotas]
    left = total - sum(parts)
    by_remainder = sorted(range(len(parts)), key=lambda i: (parts[i] - quotas[i], i))
    for i in by_remainder[:left]:
        parts[i] += 1
    return parts


def allocate(price_minor: int, ssp_minor: Sequence[int]) -> list[int]:
    """ASC 606-10-32-31: the transaction price in proportion to standalone selling prices."""
    if any(s < 0 for s in ssp_minor):
        raise ValueError("standalone selling prices must not be negative")
    return largest_remainder(price_minor, ssp_minor)


def _trunc_div(numerator: int, denominator: int) -> int:
    """Division rounding toward zero, so a negative schedule mirrors the positive one."""
    quotient = abs(numerator) // denominator
    return quotient if numerator >= 0 else -quotient


# --- ratable schedules ----------------------------------------------------------------------
def unit_index(at: int, convention: str) -> int:
    """The convention's unit (second, UTC day or calendar month) holding instant ``at``."""
    if convention == "second":
        return at
    if convention == "day":
        return at // DAY
    if convention == "even_months":
        return month_index(at)
    raise ValueError(f"unknown convention {convention!r}")


def _unit_month(unit: int, convention: str) -> int:
    if convention == "second":
        return month_index(unit)
    if convention == "day":
        return month_index(unit * DAY)
    return unit


def _month_units(month: int, convention: str) -> tuple[int, int]:
    return unit_index(month_start(month), convention), unit_index(
        month_start(month + 1), convention
    )


def unit_span(start_at: int, end_at: int, convention: str) -> tuple[int, int]:
    """Units [first, last) a service period [start_at, end_at) earns over.

    The unit holding the start counts whole and the unit holding the end is cut off (Stripe's
    "cut off the last day / month"); a period inside one unit earns over that unit alone.
    """
    first, last = unit_index(start_at, convention), unit_index(end_at, convention)
    return first, max(last, first + 1)


@functools.lru_cache(maxsize=8192)
def _plan(
    amount_minor: int, start_at: int, end_at: int, convention: str
) -> tuple[tuple[int, int, int, int], ...]:
    # Cached: reports ask for the same schedules once per period and per line.
    first, last = unit_span(start_at, end_at, convention)
    total = last - first
    rows: list[tuple[int, int, int]] = []
    for month in range(_unit_month(first, convention), _unit_month(last - 1, convention) + 1):
        low, high = _month_units(month, convention)
        lo, hi = max(low, first), min(high, last)
        if hi > lo:
            rows.append((month, lo, hi - lo))
    amounts = [_trunc_div(amount_minor * n, total) for _, _, n in rows[:-1]]
    amounts.append(amount_minor - sum(amounts))
    return tuple((m, lo, n, a) for (m, lo, n), a in zip(rows, amounts, strict=True))


@dataclass(frozen=True)
class Ratable:
    """``amount_minor`` earned evenly per unit over [start_at, end_at) under a convention.

    Each calendar month gets its share of units, truncated toward zero; the last month takes
    the rounding remainder, so the months sum to the amount exactly.
    """

    amount_minor: int
    start_at: int
    end_at: int
    convention: str

    @property
    def span(self) -> tuple[int, int]:
        return unit_span(self.start_at, self.end_at, self.convention)

    @property
    def months(self) -> tuple[tuple[int, int, int, int], ...]:
        """(month, first unit, units, amount) for every month holding units, in order."""
        return _plan(self.amount_minor, self.start_at, self.end_at, self.convention)

    def cumulative(self, before: int) -> int:
        """Earned over the units that end at or before instant ``before``."""
        first, last = self.span
        done = unit_index(before, self.convention)
        if done <= first:
            return 0
        if done >= last:
            return self.amount_minor
        earned = 0
        for _, lo, n, amount in self.months:
            if lo + n <= done:
                earned += amount
            elif lo < done:
                earned += _trunc_div(amount * (done - lo), n)
        return earned


def schedule(
    amount_minor: int, start_at: int, end_at: int, convention: str
) -> list[tuple[str, int]]:
    """(period, amount) per month of a ratable obligation, remainder in the last month."""
    plan = Ratable(amount_minor, start_at, end_at, convention)
    return [(period_name(m), a) for m, _, _, a in plan.months]


def remaining_units(start_at: int, end_at: int, convention: str, at: int) -> tuple[int, int]:
    """(units not yet earned at instant ``at``, all units) of a service period."""
    first, last = unit_span(start_at, end_at, convention)
    done = min(max(unit_index(at, convention) - first, 0), last - first)
    return last - first - done, last - first


def delivered_share(amount_minor: int, quantity: int, before_qty: int, delivered: int) -> int:
    """Point-in-time earning: ``amount_minor`` over the units delivered since ``before_qty``."""
    open_qty = quantity - before_qty
    done = min(max(delivered - before_qty, 0), max(open_qty, 0))
    if open_qty <= 0 or done == open_qty:
        return amount_minor
    return _trunc_div(amount_minor * done, open_qty)


# --- records --------------------------------------------------------------------------------
@dataclass
class Version:
    """How a line earns from ``effective_at`` on: ``base_minor + segment(before) − offset_minor``.

    Versions are appended by modifications and never edited, so revenue earned before a
    version's ``effective_at`` is never changed. ``seq`` orders what was known when.
    """

    effective_at: int
    seq: int
    base_minor: int = 0
    amount_minor: int = 0
    offset_minor: int = 0
    start_at: int | None = None  # ratable segment; None with quantity 0 means no segment
    end_at: int | None = None
    convention: str = "day"
    quantity: int = 0  # point in time: units to deliver under this version
    delivered_before: int = 0
    unit_price_minor: int = 0  # usage: the rate for consumption from effective_at on
    modification: str | None = None

    @property
    def allocated_minor(self) -> int:
        return self.base_minor + self.amount_minor - self.offset_minor


@dataclass
class Delivery:
    id: str
    contract: str
    line: str
    quantity: int
    delivered_at: int
    created_at: int
    seq: int
    external_id: str | None = None


@dataclass
class UsageRecord:
    id: str
    contract: str
    line: str
    quantity: int
    amount_minor: int
    consumed_at: int
    created_at: int
    seq: int
    external_id: str | None = None


@dataclass
class BillingEntry:
    """One billing-event line as the contract line sees it: signed amount and its rate."""

    billing_event: str
    issued_at: int
    seq: int
    amount_minor: int  # invoices positive, credit notes negative
    exchange_rate: str


@dataclass
class Line:
    id: str
    contract: str
    external_id: str
    product: str
    pattern: str
    unit_price_minor: int
    quantity: int
    amount_minor: int
    unit_ssp_minor: int
    allocated_minor: int
    created_at: int
    seq: int
    service_start_at: int | None = None
    service_end_at: int | None = None
    series: bool = True
    discount_minor: int = 0  # its share of discounts given on specific obligations
    terminated_at: int | None = None
    versions: list[Version] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    usage: list[UsageRecord] = field(default_factory=list)
    billing: list[BillingEntry] = field(default_factory=list)

    @property
    def fixed(self) -> bool:
        """Fixed consideration, allocated by SSP; usage is variable and allocated to itself."""
        return self.pattern != "usage"


@dataclass
class Contract:
    id: str
    external_id: str
    customer: str
    entity: str
    currency: str
    functional_currency: str
    exchange_rate: str
    convention: str
    booked_at: int
    created_at: int
    seq: int
    terms: dict[str, Any]  # the request as first sent, for upsert comparison
    metadata: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    modifications: list[str] = field(default_factory=list)


@dataclass
class Modification:
    id: str
    contract: str
    effective_at: int
    created_at: int
    seq: int
    requested_treatment: str
    treatment: str
    terms: dict[str, Any]
    external_id: str | None = None
    added_lines: list[str] = field(default_factory=list)
    adjustments: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class BillingEvent:
    id: str
    external_id: str
    type: str  # invoice | credit_note
    contract: str
    currency: str
    exchange_rate: str
    issued_at: int
    created_at: int
    seq: int
    terms: dict[str, Any]
    lines: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Entity:
    id: str
    functional_currency: str
    created_at: int
    name: str | None = None
    closed_through: str | None = None


@dataclass
class RevenueMapping:
    """A product's revenue mapping withdrawn or restored; a product with no row is mapped."""

    id: str  # the product id
    mapped: bool
    updated_at: int


@dataclass
class PeriodClose:
    id: str
    entity: str
    period: str
    closed_at: int
    seq: int
    journal: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Event:
    id: str
    type: str
    created_at: int
    data: dict[str, Any]


# --- recognition as known at a point ----------------------------------------------------------
def delivered(line: Line, before: int, known: int = ALL_KNOWN) -> int:
    return sum(d.quantity for d in line.deliveries if d.delivered_at < before and d.seq <= known)


def version_at(line: Line, at: int, known: int = ALL_KNOWN) -> Version | None:
    """The version in force at instant ``at`` among those recorded by ``known``."""
    found = None
    for v in line.versions:
        if v.seq <= known and v.effective_at <= at:
            found = v
    return found


def segment(line: Line, v: Version, before: int, known: int = ALL_KNOWN) -> int:
    """What version ``v``'s own segment has earned before instant ``before``."""
    if line.pattern == "point_in_time":
        if v.quantity == 0:
            return 0
        return delivered_share(
            v.amount_minor, v.quantity, v.delivered_before, delivered(line, before, known)
        )
    if v.start_at is None or v.end_at is None:
        return 0
    return Ratable(v.amount_minor, v.start_at, v.end_at, v.convention).cumulative(before)


def recognised(line: Line, before: int, known: int = ALL_KNOWN) -> int:
    """Revenue earned on the line before instant ``before``, as known at record ``known``."""
    if line.seq > known:
        return 0
    if line.pattern == "usage":
        return sum(u.amount_minor for u in line.usage if u.consumed_at < before and u.seq <= known)
    v = version_at(line, before - 1, known)
    if v is None:
        return 0
    return v.base_minor + segment(line, v, before, known) - v.offset_minor


def billed(line: Line, before: int, known: int = ALL_KNOWN) -> int:
    return sum(b.amount_minor for b in line.billing if b.issued_at < before and b.seq <= known)


def allocated(line: Line, at: int, known: int = ALL_KNOWN) -> int:
    """The line's share of the transaction price under the terms in force at ``at``."""
    if line.seq > known:
        return 0
    if line.pattern == "usage":
        return recognised(line, at + 1, known)
    v = version_at(line, at, known)
    return 0 if v is None else v.allocated_minor


def usage_rate(line: Line, at: int) -> int:
    v = version_at(line, at)
    return line.unit_price_minor if v is None else v.unit_price_minor


# --- modifications --------------------------------------------------------------------------
@dataclass(frozen=True)
class Terms:
    """A fixed-consideration obligation's terms as a modification leaves them."""

    pattern: str
    quantity: int
    amount_minor: int
    unit_ssp_minor: int
    start_at: int | None
    end_at: int | None


def _segment_from(terms: Terms, start_at: int | None, convention: str) -> Version:
    ratable = (
        terms.pattern == "ratable"
        and start_at is not None
        and terms.end_at is not None
        and start_at < terms.end_at
    )
    return Version(
        effective_at=0,
        seq=0,
        start_at=start_at if ratable else None,
        end_at=terms.end_at if ratable else None,
        convention=convention,
        quantity=terms.quantity if terms.pattern == "point_in_time" else 0,
    )


def remaining_fraction(line: Line, terms: Terms, at: int, convention: str) -> Fraction:
    """The share of the obligation, under its new terms, not yet performed at ``at``."""
    if terms.pattern == "point_in_time":
        if terms.quantity == 0:
            return Fraction(0)
        return Fraction(max(terms.quantity - delivered(line, at), 0), terms.quantity)
    assert terms.start_at is not None and terms.end_at is not None
    if terms.end_at <= terms.start_at:
        return Fraction(0)  # terminated before it began
    left, total = remaining_units(terms.start_at, terms.end_at, convention, at)
    return Fraction(left, total)


def modify(
    lines: Sequence[Line],
    terms: dict[str, Terms],
    at: int,
    treatment: str,
    convention: str,
    seq: int,
    modification: str | None = None,
) -> dict[str, Version]:
    """New versions, effective at ``at``, for every fixed-consideration line of a contract.

    ``lines`` are the contract's fixed lines with any new ones (no versions yet); ``terms``
    holds every line's terms after the change. Revenue earned before ``at`` is kept as each
    version's base, so earlier periods never change under either treatment.

    - ``prospective`` (ASC 606-10-25-13(a), terminate-and-new): the consideration not yet
      recognised plus the change in price is re-allocated over the obligations still to be
      performed, by the relative SSP of what remains of each, and earned over what remains.
    - ``cumulative_catch_up`` (ASC 606-10-25-13(b)): the new price is allocated over all
      obligations by SSP as at inception; each line jumps at ``at`` to what it would have
      earned under the new terms from the start, then follows the new schedule.
    """
    earned = {ln.id: recognised(ln, at) if ln.versions else 0 for ln in lines}
    versions: dict[str, Version] = {}
    if treatment == "cumulative_catch_up":
        weights = [terms[ln.id].unit_ssp_minor * terms[ln.id].quantity for ln in lines]
        price = sum(terms[ln.id].amount_minor for ln in lines)
        for ln, share in zip(lines, allocate(price, weights), strict=True):
            t = terms[ln.id]
            v = _segment_from(t, t.start_at, convention)
            if t.pattern == "ratable" and v.start_at is None:
                # No service left at all: the whole share is earned at the modification.
                versions[ln.id] = _stamp(v, at, seq, share, 0, modification)
                continue
            v.amount_minor = share
            base = segment(ln, v, at)
            versions[ln.id] = _stamp(v, at, seq, base, base, modification)
        return versions
    if treatment != "prospective":
        raise ValueError(f"unknown treatment {treatment!r}")
    # Per line: allocation not yet recognised, and the change in its consideration.
    left = {ln.id: (ln.allocated_minor - earned[ln.id]) if ln.versions else 0 for ln in lines}
    added = {
        ln.id: terms[ln.id].amount_minor - (ln.amount_minor if ln.versions else 0) for ln in lines
    }
    pool = sum(left.values()) + sum(added.values())
    fractions = {ln.id: remaining_fraction(ln, terms[ln.id], at, convention) for ln in lines}
    remaining = [ln for ln in lines if fractions[ln.id] > 0]
    if not remaining:
        # Nothing left to perform: whatever the change leaves unrecognised is earned now.
        for ln in lines:
            now = earned[ln.id] + left[ln.id] + added[ln.id]
            versions[ln.id] = _stamp(Version(0, 0), at, seq, now, 0, modification)
        return versions
    remaining_ssp = [
        terms[ln.id].unit_ssp_minor * terms[ln.id].quantity * fractions[ln.id] for ln in remaining
    ]
    shares = dict(
        zip((ln.id for ln in remaining), largest_remainder(pool, remaining_ssp), strict=True)
    )
    for ln in lines:
        t = terms[ln.id]
        if ln.id not in shares:
            versions[ln.id] = _stamp(Version(0, 0), at, seq, earned[ln.id], 0, modification)
            continue
        if pool < 0:
            # The change takes back more than is left to recognise (a concession after a
            # cancellation, say): no service can earn a negative amount, so the excess already
            # recognised is reversed at once and the rest of the service earns nothing.
            now = earned[ln.id] + shares[ln.id]
            versions[ln.id] = _stamp(Version(0, 0), at, seq, now, 0, modification)
            continue
        start = end = None
        if t.start_at is not None and t.end_at is not None:
            # What remains starts at ``at``; a period inside one unit that has not ended yet
            # (a few hours on one day) keeps earning over that unit.
            start = max(t.start_at, at)
            end = max(t.end_at, start + 1)
        v = _segment_from(replace(t, end_at=end), start, convention)
        v.amount_minor = shares[ln.id]
        v.delivered_before = delivered(ln, at) if t.pattern == "point_in_time" else 0
        versions[ln.id] = _stamp(v, at, seq, earned[ln.id], 0, modification)
    return versions


def _stamp(v: Version, at: int, seq: int, base: int, offset: int, mod: str | None) -> Version:
    v.effective_at, v.seq, v.base_minor, v.offset_minor, v.modification = at, seq, base, offset, mod
    return v


# --- positions, FX and journals -------------------------------------------------------------
def convert(amount_minor: int, rate: str, source: str, target: str) -> int:
    """Minor units of ``source`` to minor units of ``target`` at ``rate``, half-up, exactly."""
    factor = Fraction(Decimal(rate)) * Fraction(10) ** (exponent(target) - exponent(source))
    value = amount_minor * factor
    return div_round_half_up(value.numerator, value.denominator)


@dataclass(frozen=True)
class Position:
    """A contract's balances at an instant, in its currency and in the entity's.

    Per line, billed − recognised is deferred revenue when positive (contract liability) and
    unbilled receivable when negative (contract asset), so recognised + deferred = billed +
    unbilled line by line. Functional amounts are at the booking rate; ``fx_minor`` is what
    billing at other rates added to deferred revenue and is released to FX gain/loss.
    """

    recognised_minor: int = 0
    billed_minor: int = 0
    deferred_minor: int = 0
    unbilled_minor: int = 0
    f_recognised_minor: int = 0
    f_unbilled_minor: int = 0
    f_billed_booking_minor: int = 0
    f_billed_billing_minor: int = 0

    @property
    def fx_minor(self) -> int:
        return self.f_billed_billing_minor - self.f_billed_booking_minor

    @property
    def f_deferred_minor(self) -> int:
        # The balancing figure, so every functional journal balances to the minor unit.
        return self.f_billed_booking_minor - self.f_recognised_minor + self.f_unbilled_minor


def line_balances(line: Line, before: int, known: int = ALL_KNOWN) -> tuple[int, int, int, int]:
    """(recognised, billed, deferred, unbilled) of one line before instant ``before``."""
    r, b = recognised(line, before, known), billed(line, before, known)
    return r, b, max(b - r, 0), max(r - b, 0)


def position(
    contract: Contract, lines: Iterable[Line], before: int, known: int = ALL_KNOWN
) -> Position:
    r = b = d = u = billed_at_rates = 0
    for line in lines:
        lr, lb, ld, lu = line_balances(line, before, known)
        r, b, d, u = r + lr, b + lb, d + ld, u + lu
        billed_at_rates += sum(
            convert(
                e.amount_minor, e.exchange_rate, contract.currency, contract.functional_currency
            )
            for e in line.billing
            if e.issued_at < before and e.seq <= known
        )

    def functional(amount: int) -> int:
        return convert(
            amount, contract.exchange_rate, contract.currency, contract.functional_currency
        )

    return Position(r, b, d, u, functional(r), functional(u), functional(b), billed_at_rates)


def journal(later: Position, earlier: Position) -> dict[str, tuple[int, int]]:
    """Signed (debit positive) movement per account role between two positions.

    The subledger's own entries only: invoices reach the ledger through billing as
    Dr receivable / Cr deferred revenue; recognition moves deferred revenue (or unbilled
    receivable) to revenue; billing that clears unbilled receivable reclassifies it from
    deferred revenue; FX releases the billing-rate difference from deferred revenue.
    Values are (transaction currency, functional currency).
    """
    dr = later.recognised_minor - earlier.recognised_minor
    du = later.unbilled_minor - earlier.unbilled_minor
    fr = later.f_recognised_minor - earlier.f_recognised_minor
    fu = later.f_unbilled_minor - earlier.f_unbilled_minor
    fx = later.fx_minor - earlier.fx_minor
    return {
        "deferred_revenue": (dr - du, fr - fu + fx),
        "unbilled_receivable": (du, fu),
        "revenue": (-dr, -fr),
        "fx_gain_loss": (0, -fx),
    }

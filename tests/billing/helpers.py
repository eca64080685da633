"""Independent arithmetic for the billing tests: written here from Stripe's published rules,
never taken from the simulator's own code."""

from __future__ import annotations

import calendar
import math
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def round_half_up(value: Fraction) -> int:
    """Half away from zero, as Stripe rounds each proration line."""
    if value < 0:
        return -round_half_up(-value)
    return math.floor(value + Fraction(1, 2))


def proration(unit: int, qty: int, start: int, end: int, at: int) -> int:
    """Unused-time share of ``unit × qty`` for [at, end) of the period [start, end), to the
    second, rounded per line (Stripe prorates to the second:
    https://docs.stripe.com/billing/subscriptions/prorations)."""
    return round_half_up(Fraction(unit * qty * (end - at), end - start))


def add_months(at: int, months: int) -> int:
    """Same day-of-month ``months`` later, clamped to the month's last day, always counted
    from the original anchor: an anchor on January 31 bills on the last day of shorter months
    and on the 31st again after them (https://docs.stripe.com/billing/subscriptions/billing-cycle)."""
    d = datetime.fromtimestamp(at, UTC)
    y, m = divmod(d.year * 12 + (d.month - 1) + months, 12)
    day = min(d.day, calendar.monthrange(y, m + 1)[1])
    return int(d.replace(year=y, month=m + 1, day=day).timestamp())


def percent(amount: int, pct: str) -> int:
    """``pct`` % of ``amount`` rounded half-up: Stripe's per-line tax (its published example:
    15 % of $0.43 is $0.0645 → $0.06, of $4.84 is $0.7265 → $0.73;
    https://support.stripe.com/questions/rounding-rules-for-stripe-fees)."""
    return round_half_up(Fraction(amount) * Fraction(Decimal(pct)) / 100)


def inclusive_split(amount: int, pct: str) -> tuple[int, int]:
    """(taxable, tax) of a tax-inclusive ``amount``: the net is amount / (1 + pct) rounded
    half-up, the tax the rest (an inclusive price of €600 at 10 % still totals €600)."""
    taxable = round_half_up(Fraction(amount) / (1 + Fraction(Decimal(pct)) / 100))
    return taxable, amount - taxable

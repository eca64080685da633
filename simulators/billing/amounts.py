"""Pure money arithmetic of invoice lines: decimal unit prices, discounts, tax, allocation."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from simulators.common.money import div_round_half_up


def round_half_up(value: Fraction) -> int:
    """Half away from zero, exactly: Stripe rounds each line's amounts to the minor unit."""
    return div_round_half_up(value.numerator, value.denominator)


def unit_times_quantity(unit_amount_decimal: str, quantity: int) -> int:
    """A line amount from a decimal unit price (minor units, up to 12 decimals), rounded
    half-up once for the whole line."""
    return round_half_up(Fraction(Decimal(unit_amount_decimal)) * quantity)


def percent_of(amount: int, percent: str) -> int:
    """``percent`` % of ``amount``, rounded half-up (a percentage given as a decimal string)."""
    return round_half_up(Fraction(amount) * Fraction(Decimal(percent)) / 100)


def allocate(total: int, weights: list[int]) -> list[int]:
    """``total`` split across ``weights`` in proportion, summing to ``total`` exactly (largest
    remainder: the rounding left over goes to the largest fractional parts, earliest first)."""
    whole = sum(weights)
    if whole <= 0:
        return [0] * len(weights)
    shares = [Fraction(total * w, whole) for w in weights]
    floors = [s.numerator // s.denominator for s in shares]
    left = total - sum(floors)
    order = sorted(range(len(weights)), key=lambda n: (-(shares[n] - floors[n]), n))
    for n in order[:left]:
        floors[n] += 1
    return floors


@dataclass(frozen=True)
class RateSpec:
    """A tax rate as a line's tax needs it."""

    id: str
    percentage: str
    inclusive: bool


@dataclass
class LineTax:
    """One tax on one line: Stripe's ``taxes[]`` entry (``tax_rate_details``)."""

    amount: int
    tax_rate: str
    inclusive: bool
    taxable_amount: int
    taxability_reason: str = "standard_rated"


def line_taxes(net: int, rates: list[RateSpec], exempt_reason: str | None = None) -> list[LineTax]:
    """The taxes of a line whose amount after discounts is ``net``.

    Exclusive rates add ``net × p`` each, rounded half-up per line and rate. Inclusive rates
    are inside ``net``: the taxable amount is ``net / (1 + Σp)`` rounded half-up, their tax is
    the rest, split across them in proportion to their percentages (sum-preserving). An exempt
    customer (``exempt_reason``: ``customer_exempt`` or ``reverse_charge``) pays no tax: every
    tax is 0 on the whole amount."""
    inclusive = [r for r in rates if r.inclusive]
    exclusive = [r for r in rates if not r.inclusive]
    if exempt_reason is not None:
        return [LineTax(0, r.id, r.inclusive, net, exempt_reason) for r in rates]
    taxes: list[LineTax] = []
    taxable = net
    if inclusive:
        share = sum((Fraction(Decimal(r.percentage)) for r in inclusive), Fraction(0))
        taxable = round_half_up(Fraction(net) / (1 + share / 100))
        weights = [Fraction(Decimal(r.percentage)) for r in inclusive]
        denominator = math.lcm(*(w.denominator for w in weights))
        parts = allocate(net - taxable, [int(w * denominator) for w in weights])
        taxes += [LineTax(a, r.id, True, taxable) for r, a in zip(inclusive, parts, strict=True)]
    taxes += [LineTax(percent_of(taxable, r.percentage), r.id, False, taxable) for r in exclusive]
    return taxes

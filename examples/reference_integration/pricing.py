"""A contract line's price over the term net of coupons and included tax, and the discounts of
coupons restricted to products, which the subledger allocates to those lines only."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any


def _half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def restricted(coupon: dict[str, Any]) -> list[str] | None:
    """The products a coupon is restricted to (``applies_to``), or None: every line."""
    applies_to = coupon.get("applies_to")
    return None if not applies_to else list(applies_to.get("products") or [])


def over_term(
    gross: int, coupons: Sequence[dict[str, Any]], periods: int, inclusive: Decimal
) -> int:
    """What billing charges for a line of ``gross`` a period over ``periods`` periods, less
    tax: each percentage coupon takes ``round½↑(gross × p)`` off every period (``forever``)
    or the first (``once``), as billing rounds each line; inclusive tax rates then hold
    ``net − round½↑(net / (1 + Σp))`` of each period's net."""
    first = later = gross
    for coupon in coupons:
        off = _half_up(Decimal(gross) * Decimal(str(coupon["percent_off"])) / 100)
        first -= off
        later -= off if coupon.get("duration") == "forever" else 0
    if inclusive:
        first = _half_up(first / (1 + inclusive / 100))
        later = _half_up(later / (1 + inclusive / 100))
    return first + later * (periods - 1)


def price_line(
    line: dict[str, Any],
    gross: int,
    periods: int,
    coupons: Sequence[dict[str, Any]],
    inclusive: Decimal,
    discounts: dict[str, dict[str, Any]],
) -> None:
    """Set ``line``'s amount: the term's price net of the coupons for every product (their
    discount falls on every obligation by SSP, ASC 606-10-32-36) and of included tax. Each
    coupon restricted to the line's product adds what it takes off to its entry in
    ``discounts`` (by coupon id), naming the line: the contract gives that discount on those
    obligations only (ASC 606-10-32-37)."""
    spread = [c for c in coupons if restricted(c) is None]
    amount = over_term(gross, spread, periods, inclusive)
    line["amount_minor"] = amount
    taken = list(spread)
    for coupon in coupons:
        products = restricted(coupon)
        if products is None or line["product"] not in products:
            continue
        taken.append(coupon)
        after = over_term(gross, taken, periods, inclusive)
        entry = discounts.setdefault(coupon["id"], {"amount_minor": 0, "lines": []})
        entry["amount_minor"] += amount - after
        entry["lines"].append(line["external_id"])
        amount = after


def specific(discounts: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The contract's ``discounts``: each restricted coupon's, on the lines it applies to."""
    return [
        {"amount_minor": entry["amount_minor"], "lines": entry["lines"]}
        for entry in discounts.values()
        if entry["amount_minor"] > 0
    ]

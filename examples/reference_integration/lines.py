"""What a Stripe invoice or credit-note line earns and the tax it carries, per tax code."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any


def earned(line: Mapping[str, Any]) -> int:
    """The line's revenue: its gross ``amount`` less its discounts and any tax included in it
    (exclusive tax is on top of ``amount``). A line with neither is its ``amount``."""
    discounts = sum(int(d["amount"]) for d in line.get("discount_amounts") or [])
    inclusive = sum(
        int(t["amount"]) for t in line.get("taxes") or [] if t.get("tax_behavior") == "inclusive"
    )
    return int(line["amount"]) - discounts - inclusive


def tax_code(tax: Mapping[str, Any]) -> str:
    """The ERP tax code of one ``taxes[]`` entry: the billing tax rate it was computed under."""
    rate = (tax.get("tax_rate_details") or {}).get("tax_rate")
    return rate if isinstance(rate, str) else str((rate or {}).get("id"))


def line_taxes(line: Mapping[str, Any]) -> dict[str, int]:
    """The line's tax per tax code (inclusive and exclusive alike: both are owed)."""
    found: dict[str, int] = defaultdict(int)
    for tax in line.get("taxes") or []:
        if tax["amount"]:
            found[tax_code(tax)] += int(tax["amount"])
    return dict(found)

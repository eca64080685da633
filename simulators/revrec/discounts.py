"""Discounts a contract gives on specific obligations (ASC 606-10-32-37): checked and allocated."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from simulators.revrec import errors
from simulators.revrec.models import Terms, allocate

Json = dict[str, Any]


def specific_discounts(
    discounts: Sequence[Json], specs: Sequence[Json], terms: Sequence[Terms]
) -> dict[int, int]:
    """Each line's share of the contract's ``discounts`` (by index into ``specs``): a discount
    falls wholly on the lines it names, split between several by their relative standalone
    selling prices (quantity × unit SSP, largest remainder)."""
    by_external_id = {spec["external_id"]: i for i, spec in enumerate(specs)}
    off: dict[int, int] = {}
    for n, discount in enumerate(discounts):
        named: list[int] = []
        for k, external_id in enumerate(discount["lines"]):
            param = f"discounts[{n}][lines][{k}]"
            i = by_external_id.get(external_id)
            if i is None:
                raise errors.unprocessable(
                    "discount_line_unknown",
                    f"The discount names {external_id!r}, which is not a line of this contract.",
                    param,
                )
            if terms[i].pattern == "usage":
                raise errors.unprocessable(
                    "discount_on_usage",
                    f"Line {external_id!r} is usage (variable consideration): a discount "
                    "goes to lines of fixed consideration.",
                    param,
                )
            if i in named:
                raise errors.unprocessable(
                    "duplicate_discount_line",
                    f"The discount names line {external_id!r} twice.",
                    param,
                )
            named.append(i)
        weights = [terms[i].unit_ssp_minor * terms[i].quantity for i in named]
        if not any(weights):
            raise errors.unprocessable(
                "ssp_required",
                "The discount cannot be split: every line it names has a standalone selling "
                "price of 0.",
                f"discounts[{n}][lines]",
            )
        for i, part in zip(named, allocate(int(discount["amount_minor"]), weights), strict=True):
            off[i] = off.get(i, 0) + part
    return off


def deduct(
    shares: dict[int, int], off: dict[int, int], specs: Sequence[Json], terms: Sequence[Terms]
) -> dict[int, int]:
    """The relative-SSP ``shares`` of the undiscounted price less each line's specific
    discount; a discount larger than a line's consideration or its share is refused."""
    for i, part in off.items():
        if part > min(terms[i].amount_minor, shares[i]):
            raise errors.unprocessable(
                "discount_exceeds_line",
                f"Line {specs[i]['external_id']!r} takes {part} of the discounts, more than "
                f"its consideration ({terms[i].amount_minor}) or its share of the price "
                f"({shares[i]}).",
                "discounts",
            )
    return {i: share - off.get(i, 0) for i, share in shares.items()}

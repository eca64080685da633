"""Subledger contracts the integration books: relative-SSP allocation and by-day schedules."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.oracle.arithmetic import add_months, largest_remainder, ratable_by_day
from harness.oracle.billing import Booking
from harness.oracle.model import ExpectedContract, ExpectedContractLine

if TYPE_CHECKING:
    from harness.scenario import Scenario


def book(scenario: Scenario, booking: Booking) -> ExpectedContract:
    """One line per subscription item, priced over the whole term, allocated by relative SSP
    (largest remainder) and, for ratable lines, scheduled by day over the term."""
    fx = scenario.fixtures
    prices = {p.key: p for p in fx.prices}
    products = {p.key: p for p in fx.products}
    customers = {c.key: c for c in fx.customers}
    # Unit price and SSP are per billing interval; over the term both scale alike, so the
    # allocation ratios do not depend on this choice (see docs/oracle.md, "Assumptions").
    intervals = booking.term_months // booking.interval_months
    end = add_months(booking.start_at, booking.term_months)
    lines = []
    for item in booking.items:
        price = prices[item.price]
        product = products[price.product]
        pattern = "usage" if price.usage else product.recognition
        unit_ssp = product.ssp_minor if product.ssp_minor is not None else price.unit_amount
        lines.append(
            ExpectedContractLine(
                item.price,
                product.key,
                pattern,
                item.quantity,
                price.unit_amount * intervals,
                unit_ssp * intervals,
                booking.start_at,
                end,
            )
        )
    fixed = [line for line in lines if line.pattern != "usage"]
    parts = largest_remainder(
        sum(line.amount_minor for line in fixed),
        [line.quantity * line.unit_ssp_minor for line in fixed],
    )
    for line, part in zip(fixed, parts, strict=True):
        line.allocated_minor = part
        if line.pattern == "ratable":
            line.schedule = ratable_by_day(part, line.service_start_at, line.service_end_at)
    return ExpectedContract(
        booking.opportunity,
        booking.customer,
        customers[booking.customer].entity.upper(),
        booking.currency,
        booking.start_at,
        lines,
    )


def recognised(contracts: list[ExpectedContract]) -> dict[tuple[str, str], int]:
    """Scheduled revenue per (ENTITY, YYYY-MM) over the contracts the oracle predicts."""
    totals: dict[tuple[str, str], int] = {}
    for contract in contracts:
        if not contract.predicted:
            continue
        for month, amount in contract.schedule.items():
            key = (contract.entity, month)
            totals[key] = totals.get(key, 0) + amount
    return dict(sorted(totals.items()))

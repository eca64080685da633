"""The oracle prices tax and discounts as billing does, and books contracts net of both:
its predictions for scenarios 50–53 against figures worked out here by hand."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

from harness.oracle import expect, figure
from harness.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def half_up(value: Fraction) -> int:
    """Half away from zero."""
    return -half_up(-value) if value < 0 else math.floor(value + Fraction(1, 2))


def predicted(name: str, *figures: str) -> list[int]:
    expected = expect(load_scenario(SCENARIOS / name))
    return [figure(expected, f) for f in figures]


def test_exclusive_tax_on_each_proration_line() -> None:
    # 3 seats then 5 at 100.00 with 21 of 31 days left; 4 % per line, half away from zero.
    credit, debit = -half_up(Fraction(30000 * 21, 31)), half_up(Fraction(50000 * 21, 31))
    tax = half_up(Fraction(credit * 4, 100)) + half_up(Fraction(debit * 4, 100))
    assert (credit, debit, tax) == (-20323, 33871, 542)
    assert predicted(
        "50_tax_mid_cycle_upgrade.yaml",
        "invoice_total:acme_sub:1",
        "invoice_total:acme_sub:2",
        "invoice_total:acme_sub:3",
    ) == [30000 + 1200, credit + debit + tax, 50000 + 2000]


def test_an_inclusive_rate_is_inside_the_price_and_out_of_the_contract() -> None:
    net = half_up(Fraction(23800 * 100, 119))  # the VAT-free part of 2 × 119.00
    assert net == 20000
    assert predicted(
        "51_eu_tax_inclusive_price.yaml",
        "invoice_total:muller_sub:1",
        "allocated:muller_sub:pro_eur",
    ) == [23800, 12 * net]


def test_an_exempt_customer_pays_no_tax() -> None:
    assert predicted(
        "52_exempt_customer.yaml", "invoice_total:acme_sub:1", "invoice_total:initech_sub:1"
    ) == [20800, 20000]


def test_a_discount_lowers_the_price_and_is_allocated_by_relative_ssp() -> None:
    pro, support = 30000 - 30000 // 5, 5000 - 5000 // 5  # 20 % off each line
    price = 12 * (pro + support)
    ssp_pro, ssp_support = 3 * 10000 * 12, 1 * 10000 * 12  # support is sold below its SSP
    share = Fraction(price * ssp_pro, ssp_pro + ssp_support)
    assert share.denominator == 1
    assert predicted(
        "53_coupon_on_renewal.yaml",
        "invoice_total:acme_sub:1",
        "invoice_total:acme_sub:2",
        "allocated:acme_sub:pro_monthly",
        "allocated:acme_sub:support_monthly",
    ) == [pro + support, pro + support, int(share), price - int(share)]


def test_a_coupon_on_one_product_is_that_obligations_discount_alone() -> None:
    pro, support = 30000, 5000 - 5000 // 2  # 50 % off support only
    undiscounted, discount = 12 * (30000 + 5000), 12 * (5000 // 2)
    ssp_pro, ssp_support = 3 * 10000 * 12, 1 * 10000 * 12
    share = Fraction(undiscounted * ssp_pro, ssp_pro + ssp_support)
    assert share.denominator == 1
    assert predicted(
        "55_coupon_on_one_product.yaml",
        "invoice_total:acme_sub:1",
        "invoice_total:acme_sub:2",
        "allocated:acme_sub:pro_monthly",
        "allocated:acme_sub:support_monthly",
    ) == [pro + support, pro + support, int(share), undiscounted - int(share) - discount]


def test_a_trial_bills_nothing_then_anchors_the_cycle_at_its_end() -> None:
    expected = expect(load_scenario(SCENARIOS / "54_trial_converts_to_paid.yaml"))
    first, paid, renewal = expected.invoices["acme_sub"][:3]
    jan_29, feb_28 = 1769644800, 1772236800  # 2026-01-29 and 2026-02-28, 00:00 UTC
    assert (first.total_minor, paid.total_minor, renewal.total_minor) == (0, 20800, 20800)
    assert (paid.lines[0].period_start, paid.lines[0].period_end) == (jan_29, feb_28)

"""Recognition math, pure: published examples and properties against an independent oracle.

Expected figures come from the cited publications or from ``tests/revrec/oracle.py``
(calendar arithmetic written apart from the simulator), never from the simulator itself.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulators.revrec import models
from simulators.revrec.models import Ratable, allocate, largest_remainder, schedule
from tests.revrec import oracle
from tests.revrec.oracle import ts

PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- published examples --------------------------------------------------------------------
def test_allocation_asc_606_example_33() -> None:
    # ASC 606-10-55-256 to 55-258 (Example 33, Allocation Methodology; reproduced in Deloitte's
    # Revenue Roadmap §7.2): Products A, B, C with standalone selling prices $50, $25, $75 sold
    # for $100 are allocated $33, $17 and $50. In whole dollars (a zero-decimal unit) the
    # largest remainder gives exactly the published figures.
    assert allocate(100, [50, 25, 75]) == [33, 17, 50]
    # In cents the exact shares are 3333.33…, 1666.66…, 5000: B has the largest remainder.
    assert allocate(10000, [5000, 2500, 7500]) == [3333, 1667, 5000]


STRIPE_GRANULARITY = (ts("2022-06-15T12:00:00Z"), ts("2022-10-13T12:00:00Z"))


@pytest.mark.parametrize(
    "convention, expected",
    [
        # https://docs.stripe.com/revenue-recognition/revenue-controls/examples ("Amortization
        # granularity"): a 120 USD subscription from 2022-06-15 12:00 UTC to 2022-10-13 12:00.
        ("second", [1550, 3100, 3100, 3000, 1250]),  # "by millisecond": 15.50 … 12.50
        ("day", [1600, 3100, 3100, 3000, 1200]),  # "by day, cut off the last day"
        ("even_months", [3000, 3000, 3000, 3000]),  # "by month evenly, cut off the last month"
    ],
)
def test_stripe_amortization_granularity(convention: str, expected: list[int]) -> None:
    months = ["2022-06", "2022-07", "2022-08", "2022-09", "2022-10"][: len(expected)]
    assert schedule(12000, *STRIPE_GRANULARITY, convention) == list(
        zip(months, expected, strict=True)
    )


def test_stripe_monthly_and_annual_subscription_examples() -> None:
    # https://docs.stripe.com/revenue-recognition/examples/subscriptions, per-day basis:
    # 31 USD from 2019-01-15 → 17 USD in January, 14 USD deferred to February;
    # 365 USD from 2019-01-01 → 31, 28, 31 USD in January to March.
    monthly = Ratable(3100, ts("2019-01-15T00:00:00Z"), ts("2019-02-15T00:00:00Z"), "day")
    assert monthly.cumulative(ts("2019-02-01T00:00:00Z")) == 1700
    assert monthly.amount_minor - monthly.cumulative(ts("2019-02-01T00:00:00Z")) == 1400
    annual = schedule(36500, ts("2019-01-01T00:00:00Z"), ts("2020-01-01T00:00:00Z"), "day")
    assert annual[:3] == [("2019-01", 3100), ("2019-02", 2800), ("2019-03", 3100)]


def test_rounding_remainder_goes_to_the_last_month() -> None:
    # 100 minor units over 3 calendar months of 31, 28 and 31 days (2026-01..03, by day):
    # floors 34 (3100/90 = 34.44) and 31 (2800/90 = 31.11), the last month gets 35.
    rows = schedule(100, ts("2026-01-01T00:00:00Z"), ts("2026-04-01T00:00:00Z"), "day")
    assert rows == [("2026-01", 34), ("2026-02", 31), ("2026-03", 35)]


# --- properties -----------------------------------------------------------------------------
weights = st.lists(st.integers(0, 10**9), min_size=1, max_size=8).filter(lambda w: sum(w) > 0)


@PROPERTY
@given(price=st.integers(0, 10**12), ssp=weights)
def test_allocations_sum_to_the_price_and_stay_within_one_unit(price: int, ssp: list[int]) -> None:
    parts = allocate(price, ssp)
    assert sum(parts) == price
    assert parts == oracle.largest_remainder(price, ssp)
    for part, weight in zip(parts, ssp, strict=True):
        exact = Fraction(price * weight, sum(ssp))
        assert exact - 1 < part < exact + 1
        if weight == 0:
            assert part == 0


def test_negative_total_is_split_as_its_mirror() -> None:
    assert largest_remainder(-100, [1, 1, 1]) == [-34, -33, -33]
    with pytest.raises(ValueError):
        allocate(100, [50, -1])
    with pytest.raises(ValueError):
        allocate(100, [0, 0])


starts = st.integers(ts("2024-01-01T00:00:00Z"), ts("2027-12-31T00:00:00Z"))
lengths = st.one_of(st.integers(1, 3 * 86400), st.integers(1, 800 * 86400))
conventions = st.sampled_from(models.CONVENTIONS)


@PROPERTY
@given(amount=st.integers(0, 10**11), start=starts, length=lengths, convention=conventions)
def test_schedules_match_the_oracle_and_sum_to_the_amount(
    amount: int, start: int, length: int, convention: str
) -> None:
    rows = schedule(amount, start, start + length, convention)
    assert rows == oracle.schedule(amount, start, start + length, convention)
    assert sum(a for _, a in rows) == amount


@PROPERTY
@given(
    amount=st.integers(0, 10**9),
    start=starts,
    length=lengths,
    convention=conventions,
    probes=st.lists(st.integers(-40 * 86400, 900 * 86400), min_size=1, max_size=12),
)
def test_cumulative_rises_from_zero_to_the_amount_and_meets_each_month_end(
    amount: int, start: int, length: int, convention: str, probes: list[int]
) -> None:
    plan = Ratable(amount, start, start + length, convention)
    seen = [plan.cumulative(start + p) for p in sorted(probes)]
    assert seen == sorted(seen)
    assert plan.cumulative(start - 86400 * 40) == 0
    assert plan.cumulative(start + length + 40 * 86400) == amount
    running = 0
    for month, value in oracle.schedule(amount, start, start + length, convention):
        running += value
        year, mon = map(int, month.split("-"))
        next_month = ts(f"{year + mon // 12:04d}-{mon % 12 + 1:02d}-01T00:00:00Z")
        assert plan.cumulative(next_month) == running

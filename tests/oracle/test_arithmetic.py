"""The oracle's arithmetic against published examples and hand computations."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction

import pytest

from harness.oracle.arithmetic import (
    add_months,
    after,
    instant,
    largest_remainder,
    ratable_by_day,
    round_half_up,
    unused_share,
)

DAY = 86400


def at(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def test_stripe_proration_example_half_way_upgrade() -> None:
    # docs.stripe.com/billing/subscriptions/prorations: 10 USD → 20 USD half-way through
    # the period: -5 USD unused time, +10 USD remaining time, 5 USD more in all.
    start, end = at("2026-04-01"), at("2026-05-01")
    half = start + (end - start) // 2
    assert -unused_share(1000, start, end, half) == -500
    assert unused_share(2000, start, end, half) == 1000


def test_proration_is_to_the_second_and_rounds_half_up_per_line() -> None:
    start, end = at("2026-02-01"), at("2026-03-01")  # 28 days
    change = start + 10 * DAY + 1  # one second past ten days
    exact = Fraction(2999 * (end - change), end - start)
    assert exact == Fraction(2999 * (18 * DAY - 1), 28 * DAY)
    assert unused_share(2999, start, end, change) == int(exact + Fraction(1, 2))
    # Exactly half a cent goes up, credits mirror debits.
    assert unused_share(1, 0, 2, 1) == 1
    assert unused_share(3, 0, 2, 1) == 2
    assert round_half_up(Fraction(-3, 2)) == -2
    assert round_half_up(Fraction(-7, 5)) == -1
    with pytest.raises(ValueError):
        unused_share(100, start, end, end + 1)


def test_month_end_clamping_counts_from_the_anchor() -> None:
    anchor = at("2026-01-31T09:30:00")
    ends = [add_months(anchor, k) for k in range(1, 5)]
    assert ends == [
        at("2026-02-28T09:30:00"),
        at("2026-03-31T09:30:00"),  # back to the 31st, not Mar 28
        at("2026-04-30T09:30:00"),
        at("2026-05-31T09:30:00"),
    ]
    assert add_months(at("2028-01-31"), 1) == at("2028-02-29")  # leap year
    assert add_months(at("2026-11-30"), 3) == at("2027-02-28")
    assert add_months(at("2024-02-29"), 12) == at("2025-02-28")


def test_durations_and_instants() -> None:
    start = at("2026-01-31")
    assert after(start, "P1M") == at("2026-02-28")
    assert after(start, "P1M1D") == at("2026-03-01")
    assert after(start, "PT1H30M") == start + 5400
    assert after(start, "P2W") == start + 14 * DAY
    assert after(start, "P1Y") == at("2027-01-31")
    assert instant("2026-01-31T00:00:00Z") == start == instant("2026-01-31T00:00:00")
    with pytest.raises(ValueError):
        after(start, "P")


def test_asc_606_example_33_relative_ssp_allocation() -> None:
    # ASC 606-10-55-256..258: SSPs 50, 25, 75 sold together for 100. Exact shares 33.33,
    # 16.67, 50; floors leave one unit, which goes to the largest remainder (B, .67).
    assert largest_remainder(100, [50, 25, 75]) == [33, 17, 50]
    assert largest_remainder(10000, [50, 25, 75]) == [3333, 1667, 5000]


def test_largest_remainder_sums_exactly_and_breaks_ties_to_the_earlier_line() -> None:
    assert largest_remainder(1, [1, 1]) == [1, 0]
    assert largest_remainder(2, [1, 1, 1]) == [1, 1, 0]
    parts = largest_remainder(1000, [7, 11, 13])
    assert sum(parts) == 1000
    exact = [Fraction(1000 * w, 31) for w in (7, 11, 13)]  # 225.8, 354.8, 419.4
    assert parts == [226, 355, 419]
    assert all(abs(p - e) < 1 for p, e in zip(parts, exact, strict=True))
    assert largest_remainder(-100, [50, 25, 75]) == [-33, -17, -50]
    assert largest_remainder(0, [0, 0]) == [0, 0]
    with pytest.raises(ValueError):
        largest_remainder(5, [0, 0])


def test_stripe_amortization_granularity_example_by_day() -> None:
    # docs.stripe.com/revenue-recognition/revenue-controls/examples: 120 USD from 2022-06-15
    # 12:00 to 2022-10-13 12:00, by day: the start day counts whole, the end day is cut
    # off, so 16 + 31 + 31 + 30 + 12 = 120 days at 1 USD.
    schedule = ratable_by_day(12000, at("2022-06-15T12:00:00"), at("2022-10-13T12:00:00"))
    assert schedule == {
        "2022-06": 1600,
        "2022-07": 3100,
        "2022-08": 3100,
        "2022-09": 3000,
        "2022-10": 1200,
    }


def test_ratable_remainder_goes_to_the_last_month() -> None:
    # 1.00 over Jan–Mar 2026 (31 + 28 + 31 = 90 days): trunc(100·31/90) = 34,
    # trunc(100·28/90) = 31, March takes the rest.
    assert int(Fraction(100 * 31, 90)) == 34 and int(Fraction(100 * 28, 90)) == 31
    assert ratable_by_day(100, at("2026-01-01"), at("2026-04-01")) == {
        "2026-01": 34,
        "2026-02": 31,
        "2026-03": 35,
    }
    # A negative amount mirrors the positive schedule.
    assert ratable_by_day(-100, at("2026-01-01"), at("2026-04-01")) == {
        "2026-01": -34,
        "2026-02": -31,
        "2026-03": -35,
    }
    # A few hours inside one day earn over that day.
    assert ratable_by_day(500, at("2026-01-05T03:00:00"), at("2026-01-05T09:00:00")) == {
        "2026-01": 500
    }


def test_stripe_annual_subscription_example_january() -> None:
    # docs.stripe.com/revenue-recognition/examples/subscriptions: 365 USD for the year from
    # January 1, by day: 31 USD recognised in January, 28 in February.
    schedule = ratable_by_day(36500, at("2026-01-01"), at("2027-01-01"))
    assert (schedule["2026-01"], schedule["2026-02"]) == (3100, 2800)
    assert len(schedule) == 12 and sum(schedule.values()) == 36500

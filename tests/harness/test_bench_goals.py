"""`make bench`'s goal lines: ratios and verdicts as stated, extrapolations and bounds named."""

from __future__ import annotations

import pytest

from bench.goals import EXTRAPOLATED, LOWER_BOUND, NOT_MEASURED, Goal, line
from bench.lifecycle_bench import growth


def test_a_ratio_is_the_figure_over_the_goal_and_at_most_one_is_met() -> None:
    assert Goal("g", 60.0, "s", figure=45.0).ratio == pytest.approx(0.75)
    assert Goal("g", 60.0, "s", figure=45.0).met is True
    assert Goal("g", 60.0, "s", figure=60.0).met is True
    assert Goal("g", 60.0, "s", figure=61.0).met is False


def test_a_lower_bound_can_only_miss_and_says_so() -> None:
    above = Goal("caught up", 60.0, "s", figure=90.0, how=LOWER_BOUND)
    below = Goal("caught up", 60.0, "s", figure=30.0, how=LOWER_BOUND)
    assert above.met is False and below.met is None
    assert "≥ 90.0 s (lower bound)" in line(above) and "NOT met" in line(above)
    assert "undecided" in line(below)


def test_an_extrapolation_is_named_and_an_unmeasured_goal_says_why() -> None:
    shown = line(Goal("1,000 customers", 300.0, "s", figure=600.0, how=EXTRAPOLATED))
    assert "600 s (extrapolated)" in shown and "2.00× the goal, NOT met" in shown
    missing = Goal("peer", 1.0, "×", how=NOT_MEASURED, note="localstripe is not installed")
    assert missing.met is None
    assert line(missing).endswith("not measured — localstripe is not installed")


@pytest.mark.parametrize(
    ("small_s", "large_s", "k"),
    [(10.0, 20.0, 1.0), (10.0, 40.0, 2.0), (10.0, 10.0, 0.0), (10.0, 10.0 * 2**1.5, 1.5)],
)
def test_the_growth_exponent_through_two_sizes(small_s: float, large_s: float, k: float) -> None:
    # 50 → 100 customers doubles the size: time doubling is k = 1, quadrupling k = 2.
    small = {"customers": 50, "wall_s": small_s}
    large = {"customers": 100, "wall_s": large_s}
    assert growth(small, large) == pytest.approx(k)

"""The oracle's own arithmetic: instants, calendar months, prorations, allocation, schedules."""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from fractions import Fraction

DAY = 86400


# --- time ------------------------------------------------------------------------------------
def instant(text: str) -> int:
    """Unix seconds of an ISO-8601 instant; no offset means UTC (the scenario convention)."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


# Kept (bounded): the oracle asks the same anchors and months again for every customer.
@functools.lru_cache(maxsize=65536)
def add_months(at: int, months: int) -> int:
    """The same day and time ``months`` later, the day clamped to the target month's length.

    Callers always count from the subscription's anchor (anchor + k months), never from the
    previous period end, so a Jan 31 anchor gives Feb 28 and then Mar 31 again (Stripe's
    billing-cycle rule), not Mar 28."""
    moment = datetime.fromtimestamp(at, UTC)
    year, month0 = divmod(moment.year * 12 + moment.month - 1 + months, 12)
    day = min(moment.day, calendar.monthrange(year, month0 + 1)[1])
    return int(moment.replace(year=year, month=month0 + 1, day=day).timestamp())


_DURATION = re.compile(
    r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$"
)


def after(at: int, duration: str) -> int:
    """``at`` moved by an ISO-8601 duration: years and months first as calendar months (with
    clamping), then weeks, days and the time part as exact seconds."""
    match = _DURATION.match(duration.strip().upper())
    if match is None or duration.strip().upper() in ("P", "PT"):
        raise ValueError(f"not an ISO-8601 duration: {duration!r}")
    y, mo, w, d, h, mi, s = (int(part or 0) for part in match.groups())
    return add_months(at, 12 * y + mo) + w * 7 * DAY + d * DAY + h * 3600 + mi * 60 + s


def month_of(at: int) -> str:
    """``YYYY-MM`` of an instant, UTC."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m")


@functools.lru_cache(maxsize=4096)
def month_bounds(month: str) -> tuple[int, int]:
    """The first instant of a ``YYYY-MM`` month and of the month after it, UTC."""
    year, number = (int(part) for part in month.split("-"))
    start = int(datetime(year, number, 1, tzinfo=UTC).timestamp())
    return start, add_months(start, 1)


def months_from(first: str, last: str) -> list[str]:
    """Every ``YYYY-MM`` from ``first`` to ``last``, both included."""
    months, at = [], month_bounds(first)[0]
    while month_of(at) <= last:
        months.append(month_of(at))
        at = add_months(at, 1)
    return months


def whole_months(start: int, end: int) -> int:
    """Calendar months from one instant to another on the same anchor (end minus start)."""
    a, b = datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
    return (b.year - a.year) * 12 + b.month - a.month


# --- money -----------------------------------------------------------------------------------
def round_half_up(value: Fraction) -> int:
    """Nearest integer, halves away from zero (our documented proration rounding)."""
    if value < 0:
        return -round_half_up(-value)
    return int(value + Fraction(1, 2))


def trunc(value: Fraction) -> int:
    """Toward zero, so a negative schedule mirrors the positive one."""
    return int(value)


def unused_share(amount: int, start: int, end: int, at: int) -> int:
    """What ``amount`` for the period [start, end) is worth for [at, end), to the second,
    rounded half-up per line: Stripe prorates to the second; the rounding mode is ours."""
    if not start <= at <= end or end <= start:
        raise ValueError("the change must lie within the period")
    return round_half_up(Fraction(amount * (end - at), end - start))


def largest_remainder(total: int, weights: Sequence[int | Fraction]) -> list[int]:
    """``total`` split in proportion to ``weights``: floors, then one unit each to the largest
    remainders, ties to the earlier part (Hamilton's method), so the parts sum to ``total``.
    Weights may be fractions: a modification weighs each line by the SSP of what remains."""
    whole = sum(weights, Fraction(0))
    if whole <= 0:
        if total:
            raise ValueError("cannot allocate a price over weights that are all zero")
        return [0] * len(weights)
    exact = [Fraction(total) * w / whole for w in weights]
    # floor, not trunc: a negative pool must still hand out whole units to the largest rests.
    parts = [share.numerator // share.denominator for share in exact]
    rests = sorted(range(len(weights)), key=lambda n: (-(exact[n] - parts[n]), n))
    for n in rests[: total - sum(parts)]:
        parts[n] += 1
    return parts


# --- ratable recognition by day ------------------------------------------------------------
def day_span(start: int, end: int) -> tuple[int, int]:
    """UTC day numbers [first, last) a service period earns over: the start day counts whole,
    the day holding the end is cut off, and a period inside one day earns over that day."""
    first, last = start // DAY, end // DAY
    return first, max(last, first + 1)


@functools.lru_cache(maxsize=4096)
def days_by_month(first: int, last: int) -> tuple[tuple[str, int], ...]:
    """(``YYYY-MM``, days of [first, last) in it) for every month the days touch, in order
    (kept: a book's subscriptions share a handful of periods, asked again for every month)."""
    months: list[tuple[str, int]] = []
    day = first
    while day < last:
        moment = datetime.fromtimestamp(day * DAY, UTC)
        month_days = calendar.monthrange(moment.year, moment.month)[1]
        next_month_day = day + month_days - moment.day + 1
        upto = min(next_month_day, last)
        months.append((moment.strftime("%Y-%m"), upto - day))
        day = upto
    return tuple(months)


def ratable_by_day(amount: int, start: int, end: int) -> dict[str, int]:
    """Per month: trunc(amount × days in the month ÷ all days); the last month takes the
    rounding remainder, so the schedule sums to ``amount`` exactly."""
    return dict(_ratable_by_day(amount, start, end))


@functools.lru_cache(maxsize=65536)
def _ratable_by_day(amount: int, start: int, end: int) -> tuple[tuple[str, int], ...]:
    first, last = day_span(start, end)
    months = days_by_month(first, last)
    total_days = last - first
    schedule = {month: trunc(Fraction(amount * n, total_days)) for month, n in months[:-1]}
    schedule[months[-1][0]] = amount - sum(schedule.values())
    return tuple(schedule.items())


@functools.lru_cache(maxsize=65536)
def earned_by_day(amount: int, start: int, end: int, before: int) -> int:
    """What a ratable ``amount`` over [start, end) has earned by instant ``before``: the
    months whose days have all ended, then the month under way pro rata to its days ended
    (truncated), so the figure rises day by day and meets the month's share at its end."""
    first, last = day_span(start, end)
    done = before // DAY
    if done <= first:
        return 0
    if done >= last:
        return amount
    earned, day = 0, first
    for (_, n), (_, share) in zip(
        days_by_month(first, last), _ratable_by_day(amount, start, end), strict=True
    ):
        if day + n <= done:
            earned += share
        elif day < done:
            earned += trunc(Fraction(share * (done - day), n))
        day += n
    return earned


def days_left(start: int, end: int, at: int) -> Fraction:
    """The share of [start, end)'s days not yet ended at instant ``at`` (the day holding
    ``at`` is still to come), by the same day rules as the schedule."""
    first, last = day_span(start, end)
    done = min(max(at // DAY - first, 0), last - first)
    return Fraction(last - first - done, last - first)

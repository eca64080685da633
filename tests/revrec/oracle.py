"""An independent oracle for revrec figures: calendar arithmetic, no simulator code.

It restates the documented conventions (docs/revrec.md) the plain way: it walks calendar days
and months instead of counting unit indices, and uses ``fractions`` for exact shares.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def month_key(moment: datetime | date) -> str:
    return f"{moment.year:04d}-{moment.month:02d}"


def _utc(at: int) -> datetime:
    return datetime.fromtimestamp(at, UTC)


def units_by_month(start_at: int, end_at: int, convention: str) -> list[tuple[str, int]]:
    """How many convention units of [start_at, end_at) fall in each calendar month."""
    counts: dict[str, int] = {}
    if convention == "day":
        first, stop = _utc(start_at).date(), _utc(end_at).date()
        if stop == first:
            stop = first + timedelta(days=1)
        day = first
        while day < stop:
            counts[month_key(day)] = counts.get(month_key(day), 0) + 1
            day += timedelta(days=1)
    elif convention == "even_months":
        year, month = _utc(start_at).year, _utc(start_at).month
        last = (_utc(end_at).year, _utc(end_at).month)
        while True:
            counts[f"{year:04d}-{month:02d}"] = 1
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            if (year, month) >= last:
                break
    elif convention == "second":
        moment = _utc(start_at)
        cursor = start_at
        while cursor < end_at:
            moment = _utc(cursor)
            year, month = moment.year, moment.month
            days = calendar.monthrange(year, month)[1]
            month_end = calendar.timegm((year, month, days, 0, 0, 0)) + 86400
            upto = min(month_end, end_at)
            counts[month_key(moment)] = upto - cursor
            cursor = upto
    else:
        raise ValueError(convention)
    return sorted(counts.items())


def schedule(amount: int, start_at: int, end_at: int, convention: str) -> list[tuple[str, int]]:
    """Per month: floor of the month's exact share, the last month takes what is left.

    A negative amount (a downgrade spread forward) is the mirror image of the positive one.
    """
    if amount < 0:
        return [(m, -a) for m, a in schedule(-amount, start_at, end_at, convention)]
    rows = units_by_month(start_at, end_at, convention)
    total = sum(n for _, n in rows)
    out = [(m, amount * n // total) for m, n in rows[:-1]]
    out.append((rows[-1][0], amount - sum(a for _, a in out)))
    return out


def largest_remainder(total: int, weights: list[int]) -> list[int]:
    """Hamilton's method written out: floors, then the leftover to the largest remainders."""
    whole = sum(weights)
    exact = [Fraction(total * w, whole) for w in weights]
    parts = [int(e) for e in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts

"""The simulated clock: the only source of business time, forward only."""

from __future__ import annotations

import calendar
import functools
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime

Listener = Callable[[int, int], None]
# ISO-8601 text (and Python's datetime) stops at the end of year 9999.
LATEST = 253402300799


class ClockError(ValueError):
    """Not an instant or a duration, or one outside 1970-01-01 .. 9999-12-31."""


class ClockConflict(ClockError):
    """A move the clock cannot make from where it stands: backwards, or past 9999-12-31."""


class OutOfRange(ClockError):
    """An instant before 1970-01-01 or after 9999-12-31T23:59:59Z."""


def parse_instant(value: str | int | datetime) -> int:
    """Unix seconds from an ISO-8601 string (UTC when no offset), a datetime or an int."""
    if isinstance(value, bool):
        raise ClockError(f"not an instant: {value!r}")
    if isinstance(value, int):
        _in_range(value)
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            value = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ClockError(f"not an ISO-8601 instant: {value!r}") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    at = int(value.timestamp())
    _in_range(at)
    return at


def iso(at: int) -> str:
    """ISO-8601 UTC text for unix seconds."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SimClock:
    """Unix-second clock that only moves when told to, and tells listeners when it does."""

    def __init__(self, start_at: int) -> None:
        self._now = start_at
        self._listeners: list[Listener] = []
        # Listeners may advance other clocks; a lock keeps one advance atomic across threads.
        self._lock = threading.RLock()

    def now(self) -> int:
        return self._now

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def advance(self, seconds: int) -> int:
        if seconds < 0:
            raise ClockError(f"the clock only moves forward (asked to move {seconds} s)")
        return self.set(self._now + seconds)

    def set(self, at: int) -> int:
        if at > LATEST:
            raise ClockConflict(f"the clock stops at 9999-12-31T23:59:59Z (asked for {at})")
        _in_range(at)
        with self._lock:
            if at < self._now:
                raise ClockConflict(
                    f"the clock only moves forward: {iso(at)} is before {iso(self._now)}"
                )
            before, self._now = self._now, at
            if at != before:
                for listener in list(self._listeners):
                    listener(before, at)
            return self._now

    def restore(self, at: int) -> None:
        """Set the time without notifying listeners (snapshot restore only)."""
        _in_range(at)
        self._now = at


def _in_range(at: int) -> None:
    if not 0 <= at <= LATEST:
        raise OutOfRange(f"instants run from 1970-01-01 to 9999-12-31 (got {at})")


def month_start_at(year: int, month: int) -> int:
    """Unix seconds at 00:00 UTC on the 1st of ``month`` (1-12) of ``year``, by arithmetic:
    unlike the datetime module it also answers for 10000-01, the month after the last one."""
    # Days from 1970-01-01 to the civil date (Howard Hinnant's days_from_civil).
    y = year - (month <= 2)
    era = y // 400
    year_of_era = y - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return (era * 146097 + day_of_era - 719468) * 86400


@functools.lru_cache(maxsize=4096)
def add_months(at: int, months: int) -> int:
    """Same day and time ``months`` later, clamped to the month's last day (Jan 31 + 1 → Feb 28).

    Cached: a request asks it of the same instant several times (every period end of a new
    subscription and its invoice), and the simulated clock stands still between steps."""
    moment = datetime.fromtimestamp(at, UTC)
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())


_DURATION = re.compile(
    r"^P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)


def after_duration(at: int, duration: str) -> int:
    """The instant an ISO-8601 duration after ``at``; years and months are calendar months."""
    match = _DURATION.match(duration.strip().upper())
    if not match or duration.strip().upper() in ("P", "PT"):
        raise ClockError(f"not an ISO-8601 duration: {duration!r} (try P14D, PT1H, P1M)")
    part = {k: int(v) if v else 0 for k, v in match.groupdict().items()}
    try:
        moved = add_months(at, part["years"] * 12 + part["months"])
    except (ValueError, OverflowError):
        raise ClockConflict(f"{duration} after {iso(at)} is past 9999-12-31") from None
    return moved + (
        part["weeks"] * 7 * 86400
        + part["days"] * 86400
        + part["hours"] * 3600
        + part["minutes"] * 60
        + part["seconds"]
    )

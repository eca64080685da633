"""Failure kinds every vendor call raises, Retry-After gates shared by all workers, backoff."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

MAX_RETRY_AFTER_S = 600.0  # a vendor asking for more than this is treated as this
BACKOFF_BASE_S = 0.2
BACKOFF_CAP_S = 3.0  # well inside a 30 s settle deadline once a fault ends


class Transient(Exception):
    """Try again later: throttled, unavailable, the connection dropped, or not yet possible."""

    max_attempts = 400  # about 20 minutes of capped backoff, then the job is set aside


class PeriodMoved(Transient):
    """The ERP refused a period that was open when we looked: look again, a few times."""

    max_attempts = 3


class Rejected(Exception):
    """The vendor refused the request for a reason a retry cannot change."""


class Gate:
    """One per vendor. Requests take turns: one in flight at a time, each sent only once the
    last Retry-After has passed. (With two in flight, the second would cross the first's
    refusal and ignore it; hammering a throttled API only prolongs the throttle.)"""

    def __init__(
        self,
        name: str,
        *,
        closed_until: float = 0.0,
        remember: Callable[[str, float], None] | None = None,
    ) -> None:
        """``closed_until``: a hold (wall time) from before a restart; ``remember(name,
        until)`` keeps each new one, so a restart right after a refusal still waits."""
        self.name = name
        self._turn = threading.Lock()
        self._remember = remember
        self._open_at = time.monotonic() + max(0.0, closed_until - time.time())

    @contextmanager
    def turn(self) -> Iterator[None]:
        with self._turn:
            delay = self._open_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            yield

    def note(self, retry_after: str | None) -> float | None:
        """Inside a turn: read a refusal's Retry-After and hold the gate that long."""
        seconds = parse_retry_after(retry_after)
        if seconds is not None:
            self._hold(seconds)
        return seconds

    def _hold(self, seconds: float) -> None:
        self._open_at = max(self._open_at, time.monotonic() + seconds)
        if self._remember is not None:
            self._remember(self.name, time.time() + seconds)


def parse_retry_after(value: str | None) -> float | None:
    """Delay-seconds or an HTTP date (RFC 9110); None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def backoff_s(attempt: int) -> float:
    """Exponential with equal jitter: half the step fixed, half random, so workers spread."""
    step = min(BACKOFF_CAP_S, BACKOFF_BASE_S * float(2 ** min(attempt, 16)))
    return step / 2 + random.uniform(0, step / 2)

"""Failure kinds every vendor call raises, Retry-After gates shared by all workers, backoff."""

from __future__ import annotations

import random
import threading
import time
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
    """One per vendor: after a response with Retry-After, nothing is sent to that vendor by any
    worker until the time has passed (hammering a throttled API only prolongs the throttle)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._open_at = 0.0  # time.monotonic()

    def wait(self) -> None:
        while True:
            with self._lock:
                delay = self._open_at - time.monotonic()
            if delay <= 0:
                return
            time.sleep(delay)

    def note(self, retry_after: str | None) -> float | None:
        """Read a refusal's Retry-After header and hold the gate for that long."""
        seconds = parse_retry_after(retry_after)
        if seconds is not None:
            self._hold(seconds)
        return seconds

    def _hold(self, seconds: float) -> None:
        with self._lock:
            self._open_at = max(self._open_at, time.monotonic() + seconds)


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

"""Retries with exponential backoff for transient failures, honouring Retry-After."""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import httpx
import stripe

T = TypeVar("T")
log = logging.getLogger("reference_integration")


class TransientError(Exception):
    """A failure worth retrying (429, 5xx, connection trouble), with the server's wait hint."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermanentError(Exception):
    """A failure that retrying will not fix (a 4xx other than 429)."""


class Refusal(PermanentError):
    """A control point (ours, or the vendor's business rule) refused a posting: the event is
    set aside, listed with this reason, until a finance user mends the cause and replays it."""


# How long a throttled vendor gets one request at a time once its wait is over.
SERIAL_AFTER_THROTTLE_S = 10.0
# The gate whose last answer to this thread asked it to wait (a 429 or 503 with Retry-After):
# the retry loop, which decides how long to wait, holds every worker for that long.
_throttled = threading.local()


class Gate:
    """One vendor as every worker of this process sees it: at most ``concurrency`` requests to
    it at once, and none while a worker waits to retry what it throttled (the vendor throttles
    the account, not one thread). For SERIAL_AFTER_THROTTLE_S after a throttle, one at a time:
    requests sent together reach a throttled vendor just after its answer to one of them."""

    def __init__(self, concurrency: int = 1) -> None:
        self._turns = threading.BoundedSemaphore(max(1, concurrency))
        self._one = threading.Lock()
        self._lock = threading.Lock()
        self._not_before = 0.0
        self._serial_until = 0.0

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """Hold a turn for one request: wait for a free one, then for any wait asked of us."""
        _throttled.gate = None
        with self._turns:
            self._wait_out()
            if time.monotonic() >= self._serial_until:
                yield
                return
            with self._one:
                self._wait_out()
                yield

    def _wait_out(self) -> None:
        while True:
            with self._lock:
                wait = self._not_before - time.monotonic()
            if wait <= 0:
                return
            time.sleep(wait)

    def answered(self, retry_after_s: float | None) -> None:
        """This thread's answer from the vendor asked it to wait (or did not). A wait holds
        every worker at once, not when the retry loop gets to it: with more than one turn,
        another worker would send in between."""
        _throttled.gate = self if retry_after_s else None
        if retry_after_s:
            self.hold(retry_after_s)

    def hold(self, wait_s: float) -> None:
        """No request from any worker for ``wait_s``."""
        with self._lock:
            now = time.monotonic()
            self._not_before = max(self._not_before, now + wait_s)
            self._serial_until = max(self._serial_until, now + wait_s + SERIAL_AFTER_THROTTLE_S)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form only), else None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def classify_stripe(exc: stripe.StripeError) -> Exception:
    """Map a Stripe SDK error onto TransientError or PermanentError."""
    status = exc.http_status
    headers = exc.headers or {}
    if isinstance(exc, stripe.APIConnectionError) or status is None:
        return TransientError(f"stripe: {exc}")
    if status == 429 or status >= 500 or status == 409:
        return TransientError(
            f"stripe {status}: {exc}", parse_retry_after(headers.get("Retry-After"))
        )
    return PermanentError(f"stripe {status}: {exc.user_message or exc}")


def with_retries(
    call: Callable[[], T],
    *,
    what: str,
    base_s: float = 0.2,
    cap_s: float = 4.0,  # short: an outage ends and work resumes within seconds
    max_attempts: int = 12,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``call``; on TransientError (or a Stripe/httpx transient) back off and try again."""
    attempt = 0
    while True:
        attempt += 1
        try:
            try:
                return call()
            except stripe.StripeError as exc:
                raise classify_stripe(exc) from exc
            except httpx.TransportError as exc:
                raise TransientError(f"{what}: {exc!r}") from exc
        except TransientError as exc:
            if attempt >= max_attempts:
                raise
            backoff = min(cap_s, base_s * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            wait = max(backoff, exc.retry_after_s or 0.0)
            throttled: Gate | None = getattr(_throttled, "gate", None)
            if throttled is not None:  # every worker waits as long as this retry does
                _throttled.gate = None
                throttled.hold(wait)
            log.info("retry %s in %.2f s (attempt %d): %s", what, wait, attempt, exc)
            sleep(wait)

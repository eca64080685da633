"""Retries with exponential backoff for transient failures, honouring Retry-After."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
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
            log.info("retry %s in %.2f s (attempt %d): %s", what, wait, attempt, exc)
            sleep(wait)

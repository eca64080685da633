"""A read cache for one unit of work: within one event, a read repeated with no write between
is answered from memory.

Safe because every event re-reads the world: a change made by anyone else after this event's
first read comes with an event of its own, handled after this one (same lane) with fresh
reads; and a write through the same client forgets everything it read, so the event always
sees its own writes.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import stripe

from examples.reference_integration.http import Http
from examples.reference_integration.retry import Gate, TransientError, parse_retry_after


class Reads:
    """Answers kept for the current event; ``fresh`` starts the next one."""

    def __init__(self) -> None:
        self._answers: dict[Hashable, Any] = {}

    def fresh(self) -> None:
        self._answers.clear()

    def get(self, key: Hashable) -> Any | None:
        return self._answers.get(key)

    def keep(self, key: Hashable, answer: Any) -> None:
        self._answers[key] = answer

    def forget(self) -> None:
        """A write: whatever was read may have changed."""
        self._answers.clear()


class CachingStripeClient(stripe.HTTPClient):
    """The Stripe SDK's HTTP client, on our keep-alive urllib3 connection (``http``): answers
    repeated GETs of one event from ``reads`` and takes its turn at ``gate`` (Retry-After
    holds every worker)."""

    name = "urllib3"

    def __init__(self, reads: Reads, gate: Gate, http: Http) -> None:
        super().__init__()
        self.reads = reads
        self.gate = gate
        self.http = http

    def _send(
        self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any
    ) -> tuple[bytes, int, Mapping[str, str]]:
        path = self.http.path_of(url)
        if path is None:
            raise _connection_error(f"{url} is not under {self.http.base}")
        with self.gate.turn():
            try:
                answer = self.http.request(method.upper(), path, body=post_data, headers=headers)
            except TransientError as exc:  # the SDK's own kind: classify_stripe retries it
                raise _connection_error(str(exc)) from exc
            self.gate.answered(parse_retry_after(answer.headers.get("Retry-After")))
        return answer.content, answer.status_code, answer.headers

    # The SDK's base class types `request` as returning str; it takes bytes as well.
    def request(  # type: ignore[override]
        self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        if method.lower() != "get":
            self.reads.forget()
            return self._send(method, url, headers, post_data)
        kept: tuple[bytes, int, Mapping[str, str]] | None = self.reads.get(url)
        if kept is not None:
            return kept
        answer = self._send(method, url, headers, post_data)
        if answer[1] == 200:
            self.reads.keep(url, answer)
        return answer

    def close(self) -> None:
        self.http.close()


def _connection_error(message: str) -> stripe.APIConnectionError:
    error: stripe.APIConnectionError = stripe.APIConnectionError(  # type: ignore[no-untyped-call]
        message, should_retry=True
    )
    return error

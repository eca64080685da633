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

from examples.reference_integration.retry import Gate, parse_retry_after


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


class CachingRequestsClient(stripe.RequestsClient):
    """The Stripe SDK's own HTTP client, answering repeated GETs of one event from ``reads``
    and taking its turn at ``gate`` (Retry-After holds every worker)."""

    def __init__(self, reads: Reads, gate: Gate, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reads = reads
        self.gate = gate

    def _send(
        self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any
    ) -> tuple[bytes, int, Mapping[str, str]]:
        with self.gate.turn():
            answer = super().request(method, url, headers, post_data)
            self.gate.answered(parse_retry_after(answer[2].get("Retry-After")))
        return answer

    # RequestsClient's own signature, which its base class (typed differently) does not share.
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

"""Idempotency keys: the first response per key is stored and replayed for its sim-time TTL."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


@dataclass(frozen=True)
class StoredResponse:
    fingerprint: str
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    created_at: int


class Outcome(Enum):
    PROCEED = "proceed"
    REPLAY = "replay"
    MISMATCH = "mismatch"
    IN_FLIGHT = "in_flight"


class IdempotencyCache:
    """Per-simulator key store; expiry is measured on the simulated clock."""

    def __init__(self, ttl_s: int = 24 * 3600) -> None:
        self.ttl_s = ttl_s
        self._done: dict[str, StoredResponse] = {}
        self._in_flight: dict[str, str] = {}

    def begin(self, key: str, fingerprint: str, now: int) -> tuple[Outcome, StoredResponse | None]:
        stored = self._done.get(key)
        if stored is not None and now - stored.created_at >= self.ttl_s:
            del self._done[key]
            stored = None
        if stored is not None:
            if stored.fingerprint != fingerprint:
                return Outcome.MISMATCH, stored
            return Outcome.REPLAY, stored
        if key in self._in_flight:
            return Outcome.IN_FLIGHT, None
        self._in_flight[key] = fingerprint
        return Outcome.PROCEED, None

    def finish(self, key: str, response: StoredResponse) -> None:
        self._in_flight.pop(key, None)
        self._done[key] = response

    def abandon(self, key: str) -> None:
        """The request never executed (validation, throttling): nothing is stored, as Stripe."""
        self._in_flight.pop(key, None)

    def __len__(self) -> int:
        return len(self._done)

    def snapshot(self) -> list[dict[str, Any]]:
        return [
            {
                "key": key,
                "fingerprint": r.fingerprint,
                "status": r.status,
                "headers": [list(h) for h in r.headers],
                "body": r.body.decode("utf-8", "replace"),
                "created_at": r.created_at,
            }
            for key, r in self._done.items()
        ]

    def restore(self, items: list[dict[str, Any]]) -> None:
        self._in_flight.clear()
        self._done = {
            item["key"]: StoredResponse(
                item["fingerprint"],
                item["status"],
                tuple((h[0], h[1]) for h in item["headers"]),
                item["body"].encode(),
                item["created_at"],
            )
            for item in items
        }

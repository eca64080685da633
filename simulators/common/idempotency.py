"""Idempotency keys: the first response per key is stored and replayed for its sim-time TTL.

Bounded: a key is forgotten 24 h of simulated time after its first request (as Stripe does),
and beyond ``max_keys`` keys or ``max_bytes`` of stored bodies the oldest are forgotten first.
A forgotten key is a new key: a retry after that executes again, as it would at the vendor.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum
from typing import Any

DEFAULT_TTL_S = 24 * 3600
DEFAULT_MAX_KEYS = 20_000
DEFAULT_MAX_BYTES = 64 << 20


@dataclass(frozen=True)
class StoredResponse:
    fingerprint: str
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    created_at: int

    @property
    def size(self) -> int:
        return len(self.body) + sum(len(k) + len(v) for k, v in self.headers) + 64


class Outcome(Enum):
    PROCEED = "proceed"
    REPLAY = "replay"
    MISMATCH = "mismatch"
    IN_FLIGHT = "in_flight"


class IdempotencyCache:
    """Per-simulator key store; expiry is measured on the simulated clock.

    Keys are kept oldest first. The clock only moves forward, so the oldest key is also the
    first to expire: ``begin`` drops expired keys from the front, O(1) per key dropped.
    """

    def __init__(
        self,
        ttl_s: int = DEFAULT_TTL_S,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if ttl_s <= 0 or max_keys < 1 or max_bytes < 1:
            raise ValueError("ttl_s, max_keys and max_bytes must be positive")
        self.ttl_s = ttl_s
        self.max_keys = max_keys
        self.max_bytes = max_bytes
        self._done: OrderedDict[str, StoredResponse] = OrderedDict()
        self._bytes = 0
        self._in_flight: dict[str, str] = {}

    def begin(self, key: str, fingerprint: str, now: int) -> tuple[Outcome, StoredResponse | None]:
        self._expire(now)
        stored = self._done.get(key)
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
        self._forget(key)
        self._done[key] = response
        self._bytes += response.size
        while len(self._done) > self.max_keys or self._bytes > self.max_bytes:
            self._forget(next(iter(self._done)))

    def abandon(self, key: str) -> None:
        """The request never executed (validation, throttling): nothing is stored, as Stripe."""
        self._in_flight.pop(key, None)

    def _expire(self, now: int) -> None:
        while self._done:
            key, oldest = next(iter(self._done.items()))
            if now - oldest.created_at < self.ttl_s:
                return
            self._forget(key)

    def _forget(self, key: str) -> None:
        gone = self._done.pop(key, None)
        if gone is not None:
            self._bytes -= gone.size

    def __len__(self) -> int:
        return len(self._done)

    @property
    def stored_bytes(self) -> int:
        return self._bytes

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
        self._done.clear()
        self._bytes = 0
        # Oldest first whatever order the snapshot lists them in, so expiry stays in order.
        for item in sorted(items, key=lambda i: int(i["created_at"])):
            self.finish(
                item["key"],
                StoredResponse(
                    item["fingerprint"],
                    item["status"],
                    tuple((h[0], h[1]) for h in item["headers"]),
                    item["body"].encode(),
                    item["created_at"],
                ),
            )

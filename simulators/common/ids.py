"""Deterministic id factories: the same seed gives the same ids in the same order."""

from __future__ import annotations

import hashlib
import string

_ALPHABET = string.digits + string.ascii_letters


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rest = divmod(number, 62)
        chars.append(_ALPHABET[rest])
    return "".join(chars)


class IdFactory:
    """Mints ids per prefix from the world seed and a counter, never from the random source."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._counters: dict[str, int] = {}

    def counter(self, namespace: str) -> int:
        """Next value of a plain counter (invoice numbers, sequence numbers)."""
        value = self._counters.get(namespace, 0) + 1
        self._counters[namespace] = value
        return value

    def token(self, namespace: str, width: int = 14) -> str:
        """Next opaque token for a namespace: hashed so ids do not reveal creation order."""
        n = self.counter(namespace)
        digest = hashlib.blake2b(f"{self._seed}:{namespace}:{n}".encode(), digest_size=32)
        return _base62(int.from_bytes(digest.digest(), "big"), width)

    def next(self, prefix: str, width: int = 14) -> str:
        """A Stripe-style id such as ``cus_5Kq...``."""
        return f"{prefix}_{self.token(prefix, width)}"

    def snapshot(self) -> dict[str, int]:
        return dict(self._counters)

    def restore(self, counters: dict[str, int]) -> None:
        self._counters = dict(counters)

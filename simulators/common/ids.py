"""Deterministic id factories: the same seed gives the same ids in the same order; credentials
are the exception, random per world unless it asks for seed-derived ones."""

from __future__ import annotations

import hashlib
import string
from typing import Any

_ALPHABET = string.digits + string.ascii_letters


# Two base-62 digits at a time, least significant first: half the big-int divisions.
_PAIRS = [_ALPHABET[n % 62] + _ALPHABET[n // 62] for n in range(62 * 62)]


_MODULI = [62**width for width in range(33)]


def _base62(number: int, width: int) -> str:
    """The ``width`` lowest base-62 digits of ``number``, least significant first."""
    # Only these digits are read: divide a small int, not the 256-bit hash.
    number %= _MODULI[width] if width < len(_MODULI) else 62**width
    chars = []
    for _ in range(width // 2):
        number, rest = divmod(number, 3844)
        chars.append(_PAIRS[rest])
    if width % 2:
        chars.append(_ALPHABET[number % 62])
    return "".join(chars)


# Namespaces whose tokens are credentials (API keys, session ids, signing secrets, the control
# token): anyone who knows the seed must not be able to compute them, so they mix in the
# factory's salt. One list, so a simulator that mints its key with ``token("api_key")`` is
# covered without knowing about salts.
SECRET_NAMESPACES = frozenset(
    {
        "api_key",
        "control",
        "crm_session",
        "erp.admin_token",
        "erp.token",
        "revrec_token",
        "whsec",
    }
)


class IdFactory:
    """Mints ids per prefix from the world seed and a counter, never from the random source.

    ``salt`` (random per world unless credentials are fixed) goes into the tokens of the
    ``SECRET_NAMESPACES``; with no salt they are seed-derived like every other id."""

    def __init__(self, seed: int, salt: str | None = None) -> None:
        self._seed = seed
        self._salt = salt
        self._counters: dict[str, int] = {}
        # The hash state after "seed:namespace:", per namespace: each token hashes only n.
        self._prefixes: dict[str, Any] = {}

    def counter(self, namespace: str) -> int:
        """Next value of a plain counter (invoice numbers, sequence numbers)."""
        value = self._counters.get(namespace, 0) + 1
        self._counters[namespace] = value
        return value

    def token(self, namespace: str, width: int = 14) -> str:
        """Next opaque token for a namespace: hashed so ids do not reveal creation order."""
        n = self.counter(namespace)
        prefix = self._prefixes.get(namespace)
        if prefix is None:
            salt = f"{self._salt}:" if self._salt and namespace in SECRET_NAMESPACES else ""
            prefix = hashlib.blake2b(f"{salt}{self._seed}:{namespace}:".encode(), digest_size=32)
            self._prefixes[namespace] = prefix
        digest = prefix.copy()
        digest.update(str(n).encode())
        return _base62(int.from_bytes(digest.digest(), "big"), width)

    def next(self, prefix: str, width: int = 14) -> str:
        """A Stripe-style id such as ``cus_5Kq...``."""
        return f"{prefix}_{self.token(prefix, width)}"

    def snapshot(self) -> dict[str, int]:
        return dict(self._counters)

    def restore(self, counters: dict[str, int]) -> None:
        self._counters = dict(counters)

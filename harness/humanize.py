"""Figures as a finance reader reads them: money in major units with its currency, durations
in words, and HTML anchors that are valid and unique."""

from __future__ import annotations

import re
from decimal import Decimal

from simulators.common.money import exponent


def money(amount_minor: int | None, currency: str) -> str:
    """``30000, "usd"`` → ``300.00 USD``; ``1234567, "jpy"`` → ``1,234,567 JPY`` (no
    decimals); ``1234, "kwd"`` → ``1.234 KWD`` (three): ISO 4217 exponents."""
    if amount_minor is None:
        return "-"
    places = exponent(currency)
    value = Decimal(int(amount_minor)).scaleb(-places)
    return f"{value:,.{places}f} {currency.upper()}"


_UNITS = (("d", 86400), ("h", 3600), ("min", 60))


def duration(seconds: float | None) -> str:
    """``601200`` → ``6 d 23 h``; ``75`` → ``1 min 15 s``; ``0.214`` → ``0.21 s``. The two
    largest units, the second left out when it is zero."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds != int(seconds) else f"{int(seconds)} s"
    whole = round(seconds)
    parts: list[str] = []
    for index, (unit, size) in enumerate(_UNITS):
        if whole >= size:
            first, rest = divmod(whole, size)
            parts.append(f"{first} {unit}")
            smaller = _UNITS[index + 1] if index + 1 < len(_UNITS) else ("s", 1)
            second = rest // smaller[1]
            if second:
                parts.append(f"{second} {smaller[0]}")
            break
    return " ".join(parts)


class Anchors:
    """HTML ids from record names: letters, digits, ``-`` and ``_`` only, unique in the
    document; the same name in the same scope always gets the same id."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], str] = {}
        self._taken: set[str] = set()

    def id(self, scope: str, name: str) -> str:
        key = (scope, name)
        if key not in self._ids:
            base = re.sub(r"[^A-Za-z0-9_-]+", "-", f"{scope}-{name}").strip("-").lower() or "a"
            if not base[0].isalpha():
                base = f"a-{base}"
            candidate, n = base, 2
            while candidate in self._taken:
                candidate, n = f"{base}-{n}", n + 1
            self._taken.add(candidate)
            self._ids[key] = candidate
        return self._ids[key]

    def known(self, scope: str, name: str) -> str | None:
        """The id given to ``name`` in ``scope``, if any (links only to anchors that exist)."""
        return self._ids.get((scope, name))

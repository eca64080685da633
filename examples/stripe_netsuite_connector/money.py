"""Minor units ↔ NetSuite decimals, converted in this one place per ISO 4217 exponents."""

from __future__ import annotations

from decimal import Decimal

# Currencies whose minor unit is not the cent (ISO 4217); every other one has two decimals.
_EXPONENTS = {
    "bif": 0, "clp": 0, "djf": 0, "gnf": 0, "isk": 0, "jpy": 0, "kmf": 0, "krw": 0,
    "pyg": 0, "rwf": 0, "ugx": 0, "vnd": 0, "vuv": 0, "xaf": 0, "xof": 0, "xpf": 0,
    "bhd": 3, "iqd": 3, "jod": 3, "kwd": 3, "lyd": 3, "omr": 3, "tnd": 3,
}  # fmt: skip


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.lower(), 2)


def to_decimal(minor: int, currency: str) -> Decimal:
    """1234 cents of usd → Decimal('12.34'); exact, never through a float."""
    return Decimal(minor).scaleb(-exponent(currency))


def to_minor(amount: Decimal | int | float | str, currency: str) -> int:
    """An ERP amount back to minor units; refuses anything finer than the currency allows."""
    scaled = Decimal(str(amount)).scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more decimals than {currency.upper()} allows")
    return int(scaled)


def json_number(amount: Decimal) -> int | float:
    """A JSON number that reads back as exactly ``amount`` (NetSuite refuses float noise)."""
    if amount == amount.to_integral_value():
        return int(amount)
    number = float(amount)
    if Decimal(repr(number)) != amount:
        raise ValueError(f"{amount} cannot travel as an exact JSON number")
    return number

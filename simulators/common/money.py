"""Money as integer minor units: currency exponents, half-up division, decimal edges."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 minor-unit exponents that differ from 2 (Stripe's zero-decimal list plus the
# three-decimal dinars); every other currency has two decimals.
_ZERO_DECIMAL = "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf"
_THREE_DECIMALS = "bhd jod kwd omr tnd"
_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(_ZERO_DECIMAL.split(), 0),
    **dict.fromkeys(_THREE_DECIMALS.split(), 3),
}


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.lower(), 2)


def div_round_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half away from zero, exactly, in integers."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    sign = -1 if numerator < 0 else 1
    quotient, remainder = divmod(abs(numerator), denominator)
    if remainder * 2 >= denominator:
        quotient += 1
    return sign * quotient


def to_decimal(amount_minor: int, currency: str) -> Decimal:
    """Minor units to a decimal amount in the currency's major unit."""
    return Decimal(amount_minor).scaleb(-exponent(currency))


def from_decimal(amount: Decimal | str | int, currency: str) -> int:
    """A decimal amount to minor units; more precision than the currency has is an error."""
    value = Decimal(str(amount))
    scaled = value.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more decimals than {currency.upper()} allows")
    return int(scaled)


def round_decimal(amount: Decimal, currency: str) -> Decimal:
    """A decimal rounded half-up to the currency's decimals."""
    quantum = Decimal(1).scaleb(-exponent(currency))
    return amount.quantize(quantum, rounding=ROUND_HALF_UP)

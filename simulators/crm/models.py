"""CRM records and pure rules: field values in and out, timestamps, line-item arithmetic."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from simulators.common.money import div_round_half_up
from simulators.crm import ids
from simulators.crm.schema import FieldDef

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$"
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class Record:
    """One sObject row; ``fields`` maps canonical field names to stored values."""

    id: str
    sobject: str
    fields: dict[str, Any] = field(default_factory=dict)
    deleted_at_ms: int | None = None

    @property
    def deleted(self) -> bool:
        return bool(self.fields.get("IsDeleted"))

    def get(self, name: str) -> Any:
        return self.fields.get(name)


class InvalidValue(ValueError):
    """A value a field cannot take, with the Salesforce error code that says why."""

    def __init__(self, code: str, message: str, field_name: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field_name = field_name


# --- time ---------------------------------------------------------------------------------
def sf_datetime(at_ms: int) -> str:
    """Salesforce's datetime text: ``2026-01-15T00:00:00.000+0000``."""
    moment = datetime.fromtimestamp(at_ms // 1000, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{at_ms % 1000:03d}+0000"


def parse_datetime(text: str) -> int | None:
    """Unix milliseconds from ISO-8601 with an offset (``Z``, ``+0000``, ``+00:00``)."""
    match = _DATETIME.match(text.strip().replace(" ", "+"))
    if match is None:
        return None
    day, hh, mm, ss, fraction, zone = match.groups()
    parsed = parse_date(day)
    if parsed is None or int(hh) > 23 or int(mm) > 59 or int(ss) > 59:
        return None
    offset = 0
    if zone != "Z":
        digits = zone[1:].replace(":", "")
        offset = int(digits[:2]) * 3600 + int(digits[2:]) * 60
        if int(digits[:2]) > 23 or int(digits[2:]) > 59:
            return None
        offset = offset if zone[0] == "+" else -offset
    seconds = (
        int(datetime.fromisoformat(parsed).replace(tzinfo=UTC).timestamp())
        + int(hh) * 3600
        + int(mm) * 60
        + int(ss)
        - offset
    )
    millis = int((fraction or ".0")[1:4].ljust(3, "0"))
    return seconds * 1000 + millis


def parse_date(text: str) -> str | None:
    """The ISO date if ``text`` is a real calendar date ``YYYY-MM-DD``."""
    if not _DATE.match(text):
        return None
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        return None


# --- values in and out --------------------------------------------------------------------
def _token(value: Any) -> str:
    """The JSON token name Salesforce's parser reports for a value of the wrong type."""
    if isinstance(value, bool):
        return "VALUE_TRUE" if value else "VALUE_FALSE"
    if isinstance(value, int):
        return "VALUE_NUMBER_INT"
    if isinstance(value, float):
        return "VALUE_NUMBER_FLOAT"
    if isinstance(value, str):
        return "VALUE_STRING"
    return "START_ARRAY" if isinstance(value, list) else "START_OBJECT"


def _wrong_type(f: FieldDef, value: Any) -> InvalidValue:
    shown = value if isinstance(value, str | int | float) else _token(value).split("_")[-1]
    return InvalidValue(
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {f.type} from {_token(value)} value {shown} "
        "or request may be missing a required field",
        f.name,
    )


def to_internal(f: FieldDef, value: Any) -> Any:
    """A JSON request value as the field stores it; None clears the field.

    Numbers are integers scaled by ``10**scale`` (money in cents), rounded half-up as
    Salesforce rounds input to a field's scale; dates are ISO strings; datetimes unix ms.
    """
    if value is None or (value == "" and f.type not in ("boolean",)):
        # Salesforce stores an empty string as null.
        return None
    kind = f.type
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _wrong_type(f, value)
        return value
    if kind in ("currency", "double", "percent", "int"):
        return _number(f, value)
    if not isinstance(value, str):
        raise _wrong_type(f, value)
    if kind == "date":
        parsed = parse_date(value)
        if parsed is None:
            raise _wrong_type(f, value)
        return parsed
    if kind == "datetime":
        millis = parse_datetime(value)
        if millis is None:
            raise _wrong_type(f, value)
        return millis
    if kind in ("reference", "id"):
        normalized = ids.normalize(value)
        if normalized is None:
            raise InvalidValue(
                "MALFORMED_ID", f"{f.label}: id value of incorrect type: {value}", f.name
            )
        return normalized
    if f.length and len(value) > f.length:
        raise InvalidValue(
            "STRING_TOO_LONG",
            f"{f.label}: data value too large: {value[:40]} (max length={f.length})",
            f.name,
        )
    if kind == "email" and not _EMAIL.match(value):
        raise InvalidValue(
            "INVALID_EMAIL_ADDRESS", f"{f.label}: invalid email address: {value}", f.name
        )
    if kind == "picklist" and f.restricted:
        canonical = next((p for p in f.picklist if p.lower() == value.lower()), None)
        if canonical is None:
            raise InvalidValue(
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"{f.label}: bad value for restricted picklist field: {value}",
                f.name,
            )
        return canonical
    return value


def _number(f: FieldDef, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _wrong_type(f, value)
    try:
        amount = Decimal(value) if not isinstance(value, float) else Decimal(repr(value))
    except InvalidOperation:
        raise _wrong_type(f, value) from None
    if not amount.is_finite():
        raise _wrong_type(f, value)
    if f.type == "int" and amount != amount.to_integral_value():
        raise _wrong_type(f, value)
    out_of_range = InvalidValue(
        "NUMBER_OUTSIDE_VALID_RANGE",
        f"{f.label}: value outside of valid range on numeric field: {value}",
        f.name,
    )
    # Checked before scaling: quantizing 1e30 would overflow the decimal context.
    if abs(amount) >= Decimal(10) ** (f.precision - f.scale):
        raise out_of_range
    scaled = int(amount.scaleb(f.scale).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if abs(scaled) >= 10**f.precision:  # 999.995 rounds up past the precision
        raise out_of_range
    return scaled


def to_json(f: FieldDef, value: Any) -> Any:
    """A stored value as Salesforce renders it."""
    if value is None:
        return None
    if f.type == "int":
        return int(value)
    if f.type in ("currency", "double", "percent"):
        # Division of an integer by a power of ten is correctly rounded, so the float's
        # shortest repr is exactly the decimal the field holds (e.g. 1999 cents -> 19.99).
        return value / 10**f.scale if f.scale else float(value)
    if f.type == "datetime":
        return sf_datetime(int(value))
    return value


def to_decimal(f: FieldDef, value: int) -> Decimal:
    """A stored number as an exact decimal in the field's unit (for comparisons)."""
    return Decimal(value).scaleb(-f.scale)


# --- line items ---------------------------------------------------------------------------
def line_total(quantity_c: int, unit_price_c: int, discount_c: int | None) -> int:
    """TotalPrice in cents: quantity × sales price × (1 − discount %), rounded half-up.

    Quantity and discount are hundredths (scale 2), prices cents.
    """
    keep = 10_000 - (discount_c or 0)  # hundredths of a percent kept
    return div_round_half_up(quantity_c * unit_price_c * keep, 100 * 10_000)


def unit_price_from_total(total_c: int, quantity_c: int) -> int:
    """The sales price implied by a given TotalPrice, in cents, rounded half-up."""
    sign = -1 if quantity_c < 0 else 1
    return sign * div_round_half_up(total_c * 100, abs(quantity_c))

"""Typed arguments of billing operations, read from Stripe's decoded request parameters."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar

from simulators.billing import errors

T = TypeVar("T")
Json = dict[str, Any]


class Unset(enum.Enum):
    """A parameter the request did not send, as distinct from one sent empty."""

    UNSET = "unset"


UNSET = Unset.UNSET
Opt: TypeAlias = T | Unset
# A metadata update: a value of "" removes that key; None (the request's `metadata=""`) removes
# every key.
MetadataUpdate: TypeAlias = dict[str, str] | None


def given(value: Opt[T]) -> bool:
    return value is not UNSET


def opt(body: Json, key: str) -> Any:
    """The parameter as sent, or UNSET."""
    return body.get(key, UNSET)


def opt_text(body: Json, key: str) -> Opt[str | None]:
    """A clearable text parameter: "" (Stripe's way to unset) becomes None."""
    return (body[key] or None) if key in body else UNSET


# Stripe's metadata limits (https://docs.stripe.com/api/metadata): at most 50 keys, keys of
# at most 40 characters, values of at most 500.
MAX_METADATA_KEYS = 50
MAX_METADATA_KEY = 40
MAX_METADATA_VALUE = 500


def metadata(body: Json) -> dict[str, str]:
    """Metadata given on create: a hash, or nothing."""
    value = body.get("metadata")
    found = {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
    _check_entries(found)
    _check_count(found)
    return found


def metadata_update(body: Json) -> Opt[MetadataUpdate]:
    if "metadata" not in body:
        return UNSET
    value = body["metadata"]
    if not isinstance(value, dict):
        return None
    found = {str(k): "" if v is None else str(v) for k, v in value.items()}
    _check_entries(found)
    return found


def merge_metadata(current: dict[str, str], update: MetadataUpdate) -> dict[str, str]:
    """Stripe merges metadata; an empty value removes a key and ``None`` clears everything.
    The result may hold at most 50 keys (a merge that would exceed it changes nothing)."""
    if update is None:
        return {}
    merged = dict(current)
    for key, value in update.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    _check_count(merged)
    return merged


def _check_entries(found: dict[str, str]) -> None:
    for key, value in found.items():
        if len(key) > MAX_METADATA_KEY:
            raise errors.invalid(
                f"Invalid key: {key} must be a string under {MAX_METADATA_KEY} characters",
                "metadata",
                code="",
            )
        if len(value) > MAX_METADATA_VALUE:
            raise errors.invalid(
                f"Invalid val: {value[:40]}… must be a string under {MAX_METADATA_VALUE} "
                "characters",
                "metadata",
                code="",
            )


def _check_count(found: dict[str, str]) -> None:
    if len(found) > MAX_METADATA_KEYS:
        raise errors.invalid(
            f"Metadata can have up to {MAX_METADATA_KEYS} keys, but you've set {len(found)}.",
            "metadata",
            code="",
        )


def assign(row: Any, *, metadata: Opt[MetadataUpdate] = UNSET, **fields: Any) -> None:
    """Set each field the request gave (UNSET ones stay as they are); merge a metadata update
    (checked first, so a refused merge changes nothing)."""
    merged = row.metadata if metadata is UNSET else merge_metadata(row.metadata, metadata)
    for name, value in fields.items():
        if value is not UNSET:
            setattr(row, name, value)
    row.metadata = merged


def id_list(body: Json, key: str) -> list[str]:
    """A list of ids (``tax_rates[0]=txr_…``); "" (Stripe's way to clear it) is empty."""
    value = body.get(key)
    return [str(v) for v in value] if isinstance(value, list) else []


def opt_id_list(body: Json, key: str) -> Opt[list[str]]:
    return id_list(body, key) if key in body else UNSET


def enabled(body: Json, key: str) -> Opt[bool]:
    """``automatic_tax[enabled]``-style flags: the nested boolean, or UNSET."""
    value = body.get(key)
    return bool(value.get("enabled")) if isinstance(value, dict) else UNSET


# --- nested arguments ---------------------------------------------------------------------
@dataclass(frozen=True)
class RecurringSpec:
    interval: str
    interval_count: int = 1
    usage_type: str = "licensed"
    meter: str | None = None


@dataclass(frozen=True)
class ItemSpec:
    """A subscription item to create."""

    price: str
    quantity: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    tax_rates: list[str] = field(default_factory=list)
    discounts: list[DiscountSpec] = field(default_factory=list)


@dataclass(frozen=True)
class ItemChange:
    """One entry of a subscription update's ``items``: add (no id), change, or delete."""

    id: str | None = None
    price: str | None = None
    quantity: int | None = None
    deleted: bool = False
    metadata: Opt[MetadataUpdate] = UNSET
    tax_rates: Opt[list[str]] = UNSET
    discounts: Opt[list[DiscountSpec]] = UNSET


@dataclass(frozen=True)
class DiscountSpec:
    """One entry of ``discounts[]``: a coupon, a promotion code, or an existing discount."""

    coupon: str | None = None
    promotion_code: str | None = None
    discount: str | None = None


@dataclass(frozen=True)
class CreditLineSpec:
    type: str = "invoice_line_item"
    invoice_line_item: str | None = None
    amount: int | None = None
    quantity: int | None = None
    unit_amount: int | None = None
    description: str | None = None


@dataclass(frozen=True)
class PreviewChanges:
    """``subscription_details`` of an invoice preview: the change to show the effect of."""

    items: list[ItemChange] = field(default_factory=list)
    proration_behavior: str = "create_prorations"
    proration_date: int | None = None
    cancel_at_period_end: bool | None = None


# --- parsers ------------------------------------------------------------------------------
def recurring(body: Json) -> RecurringSpec | None:
    r = body.get("recurring")
    if not r:
        return None
    return RecurringSpec(
        r["interval"],
        int(r.get("interval_count", 1)),
        r.get("usage_type", "licensed"),
        r.get("meter"),
    )


def item_specs(items: list[Json]) -> list[ItemSpec]:
    return [
        ItemSpec(i["price"], i.get("quantity"), metadata(i), id_list(i, "tax_rates"), discounts(i))
        for i in items
    ]


def discounts(body: Json) -> list[DiscountSpec]:
    """``discounts[n][coupon|promotion_code|discount]``; "" (Stripe's way to clear) is empty."""
    value = body.get("discounts")
    if not isinstance(value, list):
        return []
    return [
        DiscountSpec(
            d.get("coupon") or None, d.get("promotion_code") or None, d.get("discount") or None
        )
        for d in value
    ]


def opt_discounts(body: Json) -> Opt[list[DiscountSpec]]:
    return discounts(body) if "discounts" in body else UNSET


def pause_collection(body: Json) -> Opt[tuple[str, int | None] | None]:
    """``pause_collection[behavior|resumes_at]``; "" resumes collection."""
    if "pause_collection" not in body:
        return UNSET
    value = body["pause_collection"]
    if not isinstance(value, dict):
        return None
    return value["behavior"], value.get("resumes_at")


def customer_discount(body: Json) -> DiscountSpec | None:
    """A customer's ``coupon`` or ``promotion_code`` (as API versions before 2025-09 took)."""
    if body.get("coupon") or body.get("promotion_code"):
        return DiscountSpec(body.get("coupon") or None, body.get("promotion_code") or None)
    return None


def item_changes(items: list[Json] | None) -> list[ItemChange]:
    return [
        ItemChange(
            i.get("id"),
            i.get("price") or None,
            i.get("quantity"),
            bool(i.get("deleted", False)),
            metadata_update(i),
            opt_id_list(i, "tax_rates"),
            opt_discounts(i),
        )
        for i in items or []
    ]


def credit_lines(lines: list[Json] | None) -> list[CreditLineSpec] | None:
    if not lines:
        return None
    return [
        CreditLineSpec(
            line.get("type", "invoice_line_item"),
            line.get("invoice_line_item"),
            line.get("amount"),
            line.get("quantity"),
            line.get("unit_amount"),
            line.get("description"),
        )
        for line in lines
    ]


def preview_changes(body: Json) -> PreviewChanges | None:
    details = body.get("subscription_details") or {}
    if not details.get("items") and details.get("cancel_at_period_end") is None:
        return None
    return PreviewChanges(
        item_changes(details.get("items")),
        details.get("proration_behavior", "create_prorations"),
        details.get("proration_date"),
        details.get("cancel_at_period_end"),
    )

"""Rebuilds the extract of Stripe's response schemas that the billing simulator's shapes must match.

Source: Stripe's published OpenAPI specification (``openapi/spec3.yaml`` of the public
``stripe/openapi`` repository, API version 2023-08-16), reconciled with the models that
stripe-python 16.1.0 generates for API version 2026-10-28.endive (the version the simulator
pins). The spec says shapes, nullability and enums; the SDK says what changed since:

- a property the SDK model no longer has was removed since 2023: it is dropped;
- a property the SDK model has and the spec lacks was added since: its schema comes from the
  SDK's annotation (``Optional`` → nullable, ``Literal`` → enum, nested class → object);
- ``required`` is the SDK's non-``Optional`` properties: Stripe's generator types a property
  without ``Optional`` exactly when the current spec lists it as required and not nullable;
- every reconciled object is closed (``additionalProperties: false``): the SDK model lists all
  of the object's properties, so anything else is not Stripe's.

Objects this subset never expands (accounts, charges, payment intents …) stay as plain
``{"type": "object"}`` behind their id. The output is JSON Schema (2020-12) with one ``$defs``
entry per object; ``drift`` records what the reconciliation changed, per schema.

Run: ``python contracts/vendor/stripe/build_extract.py [SPEC.json]`` (default: the shared copy).
"""

from __future__ import annotations

import decimal
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

import stripe
import stripe.billing
import stripe.test_helpers

HERE = Path(__file__).parent
OUT = HERE / "schemas.json"
SPEC = Path("/work/shared/vendor-specs/stripe-openapi-2023-08-16.json")
SPEC_VERSION = "2023-08-16"
SDK_VERSION = "16.1.0"
API_VERSION = "2026-10-28.endive"

# The objects the simulator renders: Stripe's schema name → the SDK model of that object.
ROOTS: dict[str, Any] = {
    "customer": stripe.Customer,
    "payment_method": stripe.PaymentMethod,
    "product": stripe.Product,
    "price": stripe.Price,
    "plan": stripe.Plan,
    "subscription": stripe.Subscription,
    "subscription_item": stripe.SubscriptionItem,
    "invoice": stripe.Invoice,
    "line_item": stripe.InvoiceLineItem,
    "invoiceitem": stripe.InvoiceItem,
    "credit_note": stripe.CreditNote,
    "credit_note_line_item": stripe.CreditNoteLineItem,
    "tax_rate": stripe.TaxRate,
    "tax_id": stripe.TaxId,
    "coupon": stripe.Coupon,
    "promotion_code": stripe.PromotionCode,
    "discount": stripe.Discount,
    "billing.meter": stripe.billing.Meter,
    "billing.meter_event": stripe.billing.MeterEvent,
    "billing.meter_event_summary": stripe.billing.MeterEventSummary,
    "test_helpers.test_clock": stripe.test_helpers.TestClock,
    "event": stripe.Event,
    "webhook_endpoint": stripe.WebhookEndpoint,
}
# The deleted forms, as the 2023 spec has them (unchanged since: id, object, deleted).
DELETED = [
    "deleted_customer",
    "deleted_product",
    "deleted_price",
    "deleted_invoiceitem",
    "deleted_subscription_item",
    "deleted_coupon",
    "deleted_discount",
    "deleted_tax_id",
    "deleted_test_helpers.test_clock",
    "deleted_webhook_endpoint",
]
_BY_SDK_NAME = {cls.__name__: name for name, cls in ROOTS.items()}
_DROP_KEYS = {"description", "title", "format", "x-expandableFields", "x-resourceId"}
NoneType = type(None)


class Builder:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.components: dict[str, Any] = spec["components"]["schemas"]
        self.defs: dict[str, Any] = {}
        self.drift: dict[str, Any] = {}

    # --- reconciliation ---------------------------------------------------------------
    def root(self, name: str, cls: Any) -> None:
        self.defs[name] = {}  # reserved first: objects refer to each other
        self.defs[name] = self.reconcile(name, self.components.get(name), cls)

    def reconcile(self, where: str, spec: dict[str, Any] | None, cls: Any) -> dict[str, Any]:
        """The object ``cls`` models, shaped by ``spec`` (the 2023 schema) where it has one."""
        fields = _fields(cls)
        spec_props: dict[str, Any] = (spec or {}).get("properties", {})
        props = {}
        for field, ann in fields.items():
            if field in spec_props:
                props[field] = self.convert(f"{where}.{field}", spec_props[field], ann)
            else:
                props[field] = self.from_sdk(f"{where}.{field}", ann)
        required = sorted(f for f, ann in fields.items() if not _optional(ann))
        spec_required = set((spec or {}).get("required", []))
        changes = {
            "removed": sorted(set(spec_props) - set(fields)),
            "added": sorted(set(fields) - set(spec_props)) if spec is not None else ["(new)"],
            "now_required": sorted(set(required) - spec_required),
            "no_longer_required": sorted(spec_required & set(fields) - set(required)),
        }
        changes = {k: v for k, v in changes.items() if v}
        if changes:
            self.drift[where] = changes
        return {
            "type": "object",
            "properties": props,
            "required": required,
            "additionalProperties": False,
        }

    def convert(self, where: str, schema: dict[str, Any], ann: Any) -> Any:
        """A 2023 property schema, its references resolved against the SDK's annotation."""
        if "$ref" in schema:
            return self.reference(where, schema["$ref"].rsplit("/", 1)[1], ann)
        out = {k: v for k, v in schema.items() if k not in _DROP_KEYS and not k.startswith("x-")}
        target = _strip_optional(ann)
        if "anyOf" in schema:
            out["anyOf"] = [
                self.convert(where, alt, _alternative(target, alt)) for alt in schema["anyOf"]
            ]
        if schema.get("type") == "array" and "items" in schema:
            out["items"] = self.convert(where + "[]", schema["items"], _item(target))
        if isinstance(schema.get("additionalProperties"), dict):
            out["additionalProperties"] = self.convert(
                where + "{}", schema["additionalProperties"], Any
            )
        if schema.get("type") == "object" and "properties" in schema:
            if _origin_name(target) == "ListObject":
                data = schema["properties"]["data"]
                out["properties"] = dict(schema["properties"])
                out["properties"]["data"] = {
                    "type": "array",
                    "items": self.convert(where + "[]", data["items"], typing.get_args(target)[0]),
                }
                out["properties"] = {
                    k: (v if k == "data" else self.convert(where, v, Any))
                    for k, v in out["properties"].items()
                }
            elif isinstance(target, type) and issubclass(target, stripe.StripeObject):
                return _nullable(self.reconcile(where, schema, target), schema)
            else:
                out["properties"] = {
                    k: self.convert(f"{where}.{k}", v, Any) for k, v in schema["properties"].items()
                }
        return _nullable(out, schema)

    def reference(self, where: str, name: str, ann: Any) -> Any:
        target = _strip_optional(ann)
        if name in ROOTS or name in DELETED:
            return {"$ref": f"#/$defs/{name}"}
        if isinstance(target, type) and issubclass(target, stripe.StripeObject):
            if name not in self.defs:
                self.defs[name] = {}
                self.defs[name] = self.reconcile(name, self.components.get(name), target)
            return {"$ref": f"#/$defs/{name}"}
        # An object outside the subset (an account, a charge …): any object.
        return {"type": "object"}

    def from_sdk(self, where: str, ann: Any) -> Any:
        """A schema for a property new since 2023, from the SDK's annotation alone."""
        if _optional(ann):
            inner = self.from_sdk(where, _strip_optional(ann))
            return {"anyOf": [inner, {"type": "null"}]}
        origin = typing.get_origin(ann)
        if ann is str:
            return {"type": "string"}
        if ann is bool:
            return {"type": "boolean"}
        if ann is int:
            return {"type": "integer"}
        if ann is float:
            return {"type": "number"}
        if ann is decimal.Decimal:
            return {"type": "string"}  # Stripe's `*_decimal` fields: decimals as strings
        if ann is Any:
            return {}
        if origin is typing.Literal:
            return {"enum": list(typing.get_args(ann))}
        if origin in (list, typing.List):  # noqa: UP006 - the SDK's own spelling
            return {"type": "array", "items": self.from_sdk(where + "[]", typing.get_args(ann)[0])}
        if origin in (typing.Union, types.UnionType):
            args = typing.get_args(ann)
            literals = [a for a in args if typing.get_origin(a) is typing.Literal]
            if literals and all(a is str or a in literals for a in args):
                # An enum the SDK keeps open (``Literal[...] | str``): the listed values.
                return {"enum": [v for a in literals for v in typing.get_args(a)]}
            return {"anyOf": [self.from_sdk(where, a) for a in args]}
        if isinstance(ann, (typing.ForwardRef, str)):
            name = _BY_SDK_NAME.get(
                ann.__forward_arg__ if isinstance(ann, typing.ForwardRef) else ann
            )
            return {"$ref": f"#/$defs/{name}"} if name else {"type": "object"}
        if _origin_name(ann) == "ListObject":
            return {
                "type": "object",
                "properties": {
                    "object": {"enum": ["list"]},
                    "data": {
                        "type": "array",
                        "items": self.from_sdk(where, typing.get_args(ann)[0]),
                    },
                    "has_more": {"type": "boolean"},
                    "url": {"type": "string"},
                },
                "required": ["data", "has_more", "object", "url"],
            }
        if _origin_name(ann) == "UntypedStripeObject":
            return {"type": "object"}
        if isinstance(ann, type) and issubclass(ann, stripe.StripeObject):
            return self.reconcile(where, None, ann)
        raise TypeError(f"{where}: no schema for the SDK annotation {ann!r}")


# --- annotations --------------------------------------------------------------------------
def _fields(cls: Any) -> dict[str, Any]:
    hints: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__.startswith("stripe.") and klass.__name__ not in (
            "StripeObject",
            "APIResource",
        ):
            hints.update(getattr(klass, "__annotations__", {}))
    return {
        k: v
        for k, v in hints.items()
        if not k.isupper() and typing.get_origin(v) is not typing.ClassVar
    }


def _optional(ann: Any) -> bool:
    return typing.get_origin(ann) in (
        typing.Union,
        types.UnionType,
    ) and NoneType in typing.get_args(ann)


def _strip_optional(ann: Any) -> Any:
    if not _optional(ann):
        return ann
    args = [a for a in typing.get_args(ann) if a is not NoneType]
    return args[0] if len(args) == 1 else typing.Union[tuple(args)]  # noqa: UP007


def _item(ann: Any) -> Any:
    if typing.get_origin(ann) in (list, typing.List):  # noqa: UP006
        return typing.get_args(ann)[0]
    return Any


def _alternative(ann: Any, alt: dict[str, Any]) -> Any:
    """The member of a union annotation that a spec ``anyOf`` alternative describes."""
    if "$ref" not in alt:
        return Any
    args = (
        typing.get_args(ann)
        if typing.get_origin(ann) in (typing.Union, types.UnionType)
        else (ann,)
    )
    objects = [a for a in args if a is not str and a is not NoneType]
    return objects[0] if len(objects) == 1 else Any


def _origin_name(ann: Any) -> str:
    origin = typing.get_origin(ann)
    return getattr(origin, "__name__", "") if origin is not None else ""


def _nullable(out: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI 3.0's ``nullable`` in JSON Schema terms."""
    out = {k: v for k, v in out.items() if k != "nullable"}
    if not spec.get("nullable"):
        return out
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    if "anyOf" in out:
        out["anyOf"] = [*out["anyOf"], {"type": "null"}]
    elif "type" in out:
        out["type"] = [out["type"], "null"]
    elif "$ref" in out or out.get("type") is None:
        return {"anyOf": [out, {"type": "null"}]}
    return out


def _deleted(builder: Builder, name: str) -> dict[str, Any]:
    """A deleted form: ``id``, ``object``, ``deleted``; one that carries the whole object
    (a removed discount) is reconciled with the object's SDK model, as the object is."""
    spec = builder.components[name]
    cls = ROOTS.get(name.removeprefix("deleted_"))
    if cls is not None and set(spec["properties"]) - {"id", "object", "deleted"}:
        schema = builder.reconcile(name, spec, cls)
        schema["required"] = sorted({*schema["required"], "deleted"})
        return schema
    props = {k: builder.convert(f"{name}.{k}", v, Any) for k, v in spec["properties"].items()}
    return {"type": "object", "properties": props, "required": spec["required"]}


def build(spec_path: Path = SPEC) -> dict[str, Any]:
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    builder = Builder(spec)
    for name, cls in ROOTS.items():
        builder.root(name, cls)
    for name in DELETED:
        builder.defs[name] = _deleted(builder, name)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "source": {
            "spec": "stripe/openapi openapi/spec3.yaml (commit 63a6746, 2023-09-13)",
            "spec_api_version": SPEC_VERSION,
            "sdk": f"stripe-python {SDK_VERSION}",
            "api_version": API_VERSION,
            "how": "contracts/vendor/stripe/README.md",
        },
        "drift": dict(sorted(builder.drift.items())),
        "$defs": dict(sorted(builder.defs.items())),
    }


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else SPEC
    OUT.write_text(json.dumps(build(path), indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))

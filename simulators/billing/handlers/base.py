"""What every billing handler shares: replies with expand, paging, and the 64-bit guard."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from simulators.billing import errors, render
from simulators.billing.backend import BillingBackend
from simulators.billing.backend.base import Listing
from simulators.billing.store import BillingStore
from simulators.common.app import Call, Reply
from simulators.common.validation import param_name

Json = dict[str, Any]
INT64 = 1 << 63


class HandlerBase:
    def __init__(self, backend: BillingBackend, store: BillingStore) -> None:
        self.b = backend
        self.s = store
        # Stripe's integers are 64-bit: a larger one is refused before anything is stored
        # (otherwise it is kept, and every later rendering of it fails with a 500).
        for name in dir(type(self)):
            if not name.startswith("_"):
                setattr(self, name, _int64_only(getattr(self, name)))

    @staticmethod
    def _expand_list(call: Call) -> list[str]:
        return list(call.query.get("expand") or []) + list(call.body.get("expand") or [])

    def _ok(self, call: Call, obj: Json, included: tuple[str, ...] = ()) -> Reply:
        """``obj`` with ``expand`` done; ``included``: paths of includable fields (Stripe's
        "not included by default") the renderer has already added."""
        expand = [p for p in self._expand_list(call) if p not in included]
        if expand:
            obj = expand_paths(self.s, obj, expand)
        return obj, 200

    @staticmethod
    def _paging(call: Call) -> dict[str, Any]:
        q = call.query
        return {
            "limit": q.get("limit", 10),
            "starting_after": q.get("starting_after"),
            "ending_before": q.get("ending_before"),
        }

    def _page(self, call: Call, rows: Any, fn: Callable[[Any], Json], url: str) -> Reply:
        return self._ok(call, render.page(rows, fn, url, **self._paging(call)))

    def _list(
        self,
        call: Call,
        listing: Listing,
        fn: Callable[[Any], Json],
        url: str,
        included: tuple[str, ...] = (),
    ) -> Reply:
        page = render.table_page(listing.table, listing.keep, fn, url, **self._paging(call))
        return self._ok(call, page, included)


def _int64_only(handler: Callable[[Call], Reply]) -> Callable[[Call], Reply]:
    @functools.wraps(handler)
    def checked(call: Call) -> Reply:
        for values in (call.query, call.body):
            found = _out_of_range(values, [])
            if found is not None:
                raise errors.invalid(
                    f"Invalid integer: {found[1]}", found[0], code="parameter_invalid_integer"
                )
        return handler(call)

    return checked


def _out_of_range(value: Any, path: list[Any]) -> tuple[str, int] | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if -INT64 <= value < INT64 else (param_name(path), value)
    children = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in children:
        found = _out_of_range(child, [*path, key])
        if found is not None:
            return found
    return None


# expand ----------------------------------------------------------------------------------
_BY_PREFIX: dict[str, tuple[str, Callable[[BillingStore, Any], Json]]] = {
    "cus": ("customers", render.customer),
    "in": ("invoices", render.invoice),
    "sub": ("subscriptions", render.subscription),
    "pm": ("payment_methods", render.payment_method),
    "prod": ("products", render.product),
    "price": ("prices", render.price),
    "cn": ("credit_notes", render.credit_note),
    "si": ("subscription_items", render.subscription_item),
    "txr": ("tax_rates", render.tax_rate),
    "di": ("discounts", render.discount),
    "promo": ("promotion_codes", render.promotion_code),
}


def _lookup(store: BillingStore, object_id: str) -> Json | None:
    prefix = object_id.split("_", 1)[0]
    entry = _BY_PREFIX.get(prefix)
    if entry is None:
        return None
    row = store.table(entry[0]).get(object_id)
    return None if row is None else entry[1](store, row)


def expand_paths(store: BillingStore, obj: Json, paths: list[str]) -> Json:
    """Replace ids by objects along dotted paths (``latest_invoice``, ``data.customer``)."""
    for path in paths:
        parts = path.split(".")
        if len(parts) > 4:
            raise errors.invalid("You cannot expand more than 4 levels of a property.", "expand")
        if not _expand(store, obj, parts):
            raise errors.invalid(f"This property cannot be expanded ({path}).", "expand")
    return obj


def _expand(store: BillingStore, node: Any, parts: list[str]) -> bool:
    if isinstance(node, list):
        return all(_expand(store, item, parts) for item in node) if node else True
    if not isinstance(node, dict) or parts[0] not in node:
        return False
    head, rest = parts[0], parts[1:]
    if rest:
        return _expand(store, node[head], rest)
    value = node[head]
    if value is None or isinstance(value, dict):
        return True
    if isinstance(value, list):  # a list of ids (``discounts``): each expanded
        found_all = [_lookup(store, v) if isinstance(v, str) else v for v in value]
        if any(f is None for f in found_all):
            return False
        node[head] = found_all
        return True
    if not isinstance(value, str):
        return False
    found = _lookup(store, value)
    if found is None:
        return False
    node[head] = found
    return True

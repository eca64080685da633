"""Billing handlers: parse the call, ask the backend, render Stripe JSON — no business rules."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from simulators.billing import errors, render
from simulators.billing.backend import BillingBackend
from simulators.billing.store import BillingStore
from simulators.common.app import Call, Reply
from simulators.common.tables import Table
from simulators.common.validation import param_name

Json = dict[str, Any]
INT64 = 1 << 63


class BillingHandlers:
    def __init__(self, backend: BillingBackend, store: BillingStore) -> None:
        self.b = backend
        self.s = store
        # Stripe's integers are 64-bit: a larger one is refused before anything is stored
        # (otherwise it is kept, and every later rendering of it fails with a 500).
        for name in dir(type(self)):
            if not name.startswith("_"):
                setattr(self, name, _int64_only(getattr(self, name)))

    # helpers ---------------------------------------------------------------------------
    def _ok(self, call: Call, obj: Json) -> Reply:
        expand = list(call.query.get("expand") or []) + list(call.body.get("expand") or [])
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

    def _table_page(
        self,
        call: Call,
        table: Table[Any],
        keep: Callable[[Any], bool],
        fn: Callable[[Any], Json],
        url: str,
    ) -> Reply:
        return self._ok(call, render.table_page(table, keep, fn, url, **self._paging(call)))

    @staticmethod
    def _created(row: Any, call: Call) -> bool:
        bounds = call.query.get("created") or {}
        if isinstance(bounds, int):
            return bool(row.created == bounds)
        created: int = row.created
        return (
            (bounds.get("gt") is None or created > bounds["gt"])
            and (bounds.get("gte") is None or created >= bounds["gte"])
            and (bounds.get("lt") is None or created < bounds["lt"])
            and (bounds.get("lte") is None or created <= bounds["lte"])
        )

    # customers -------------------------------------------------------------------------
    def create_customer(self, call: Call) -> Reply:
        return self._ok(call, render.customer(self.s, self.b.create_customer(call.body)))

    def list_customers(self, call: Call) -> Reply:
        q = call.query
        email, clock = q.get("email"), q.get("test_clock")
        return self._table_page(
            call,
            self.s.customers,
            lambda c: (
                not c.deleted
                and self._created(c, call)
                and email in (None, c.email)
                and clock in (None, c.test_clock)
            ),
            lambda c: render.customer(self.s, c),
            "/v1/customers",
        )

    def retrieve_customer(self, call: Call) -> Reply:
        c = self.s.customers.get(call.path["customer"])
        if c is None:
            raise errors.no_such("customer", call.path["customer"])
        return self._ok(call, render.customer(self.s, c))

    def update_customer(self, call: Call) -> Reply:
        c = self.b.update_customer(call.path["customer"], call.body)
        return self._ok(call, render.customer(self.s, c))

    def delete_customer(self, call: Call) -> Reply:
        c = self.b.delete_customer(call.path["customer"])
        return {"id": c.id, "object": "customer", "deleted": True}, 200

    def list_customer_payment_methods(self, call: Call) -> Reply:
        c = self.b.customer(call.path["customer"])
        rows = [p for p in self.s.payment_methods.values() if p.customer == c.id]
        return self._page(
            call,
            rows,
            lambda p: render.payment_method(self.s, p),
            f"/v1/customers/{c.id}/payment_methods",
        )

    def retrieve_payment_method(self, call: Call) -> Reply:
        pm = self.b.payment_method(call.path["payment_method"])
        return self._ok(call, render.payment_method(self.s, pm))

    def attach_payment_method(self, call: Call) -> Reply:
        pm = self.b.attach_payment_method(call.path["payment_method"], call.body["customer"])
        return self._ok(call, render.payment_method(self.s, pm))

    def detach_payment_method(self, call: Call) -> Reply:
        pm = self.b.detach_payment_method(call.path["payment_method"])
        return self._ok(call, render.payment_method(self.s, pm))

    # catalogue -------------------------------------------------------------------------
    def create_product(self, call: Call) -> Reply:
        return self._ok(call, render.product(self.s, self.b.create_product(call.body)))

    def list_products(self, call: Call) -> Reply:
        active = call.query.get("active")
        return self._table_page(
            call,
            self.s.products,
            lambda p: active in (None, p.active) and self._created(p, call),
            lambda p: render.product(self.s, p),
            "/v1/products",
        )

    def retrieve_product(self, call: Call) -> Reply:
        prod = self.s.products.get(call.path["id"])
        if prod is None:
            raise errors.no_such("product", call.path["id"])
        return self._ok(call, render.product(self.s, prod))

    def update_product(self, call: Call) -> Reply:
        return self._ok(
            call, render.product(self.s, self.b.update_product(call.path["id"], call.body))
        )

    def create_price(self, call: Call) -> Reply:
        return self._ok(call, render.price(self.s, self.b.create_price(call.body)))

    def list_prices(self, call: Call) -> Reply:
        q = call.query
        keys = q.get("lookup_keys")
        return self._table_page(
            call,
            self.s.prices,
            lambda p: (
                self._created(p, call)
                and q.get("product") in (None, p.product)
                and q.get("active") in (None, p.active)
                and q.get("type") in (None, "recurring" if p.recurring else "one_time")
                and (not keys or p.lookup_key in keys)
            ),
            lambda p: render.price(self.s, p),
            "/v1/prices",
        )

    def retrieve_price(self, call: Call) -> Reply:
        return self._ok(call, render.price(self.s, self.b.price(call.path["price"])))

    def update_price(self, call: Call) -> Reply:
        return self._ok(
            call, render.price(self.s, self.b.update_price(call.path["price"], call.body))
        )

    # subscriptions ---------------------------------------------------------------------
    def create_subscription(self, call: Call) -> Reply:
        return self._ok(call, render.subscription(self.s, self.b.create_subscription(call.body)))

    def list_subscriptions(self, call: Call) -> Reply:
        q = call.query
        status = q.get("status")
        return self._table_page(
            call,
            self.s.subscriptions,
            lambda sub: (
                self._created(sub, call)
                and q.get("customer") in (None, sub.customer)
                and q.get("test_clock") in (None, sub.test_clock)
                and (
                    status == "all"
                    or (status is None and sub.status not in ("canceled", "incomplete_expired"))
                    or status == sub.status
                )
                and (
                    q.get("price") is None
                    or any(self.s.subscription_items[i].price == q["price"] for i in sub.items)
                )
            ),
            lambda sub: render.subscription(self.s, sub),
            "/v1/subscriptions",
        )

    def retrieve_subscription(self, call: Call) -> Reply:
        sub = self.b.subscription(call.path["subscription_exposed_id"], "subscription_exposed_id")
        return self._ok(call, render.subscription(self.s, sub))

    def update_subscription(self, call: Call) -> Reply:
        sub = self.b.update_subscription(call.path["subscription_exposed_id"], call.body)
        return self._ok(call, render.subscription(self.s, sub))

    def cancel_subscription(self, call: Call) -> Reply:
        sub = self.b.cancel_subscription(
            call.path["subscription_exposed_id"],
            bool(call.query.get("invoice_now", False)),
            bool(call.query.get("prorate", False)),
        )
        return self._ok(call, render.subscription(self.s, sub))

    def create_subscription_item(self, call: Call) -> Reply:
        si = self.b.create_subscription_item(call.body)
        return self._ok(call, render.subscription_item(self.s, si))

    def list_subscription_items(self, call: Call) -> Reply:
        sub = self.b.subscription(call.query["subscription"])
        rows = [self.s.subscription_items[i] for i in sub.items]
        return self._page(
            call, rows, lambda si: render.subscription_item(self.s, si), "/v1/subscription_items"
        )

    def retrieve_subscription_item(self, call: Call) -> Reply:
        return self._ok(call, render.subscription_item(self.s, self.b._item(call.path["item"])))

    def update_subscription_item(self, call: Call) -> Reply:
        si = self.b.update_subscription_item(call.path["item"], call.body)
        return self._ok(call, render.subscription_item(self.s, si))

    def delete_subscription_item(self, call: Call) -> Reply:
        si = self.b.delete_subscription_item(call.path["item"], call.query)
        return {"id": si.id, "object": "subscription_item", "deleted": True}, 200

    # invoices --------------------------------------------------------------------------
    def create_invoice(self, call: Call) -> Reply:
        return self._ok(call, render.invoice(self.s, self.b.create_invoice(call.body)))

    def list_invoices(self, call: Call) -> Reply:
        q = call.query
        return self._table_page(
            call,
            self.s.invoices,
            lambda i: (
                self._created(i, call)
                and q.get("customer") in (None, i.customer)
                and q.get("subscription") in (None, i.subscription)
                and q.get("status") in (None, i.status)
            ),
            lambda i: render.invoice(self.s, i),
            "/v1/invoices",
        )

    def retrieve_invoice(self, call: Call) -> Reply:
        return self._ok(call, render.invoice(self.s, self.b.invoice(call.path["invoice"])))

    def update_invoice(self, call: Call) -> Reply:
        inv = self.b.update_invoice(call.path["invoice"], call.body)
        return self._ok(call, render.invoice(self.s, inv))

    def finalize_invoice(self, call: Call) -> Reply:
        inv = self.b.finalize_invoice(call.path["invoice"], call.body)
        return self._ok(call, render.invoice(self.s, inv))

    def pay_invoice(self, call: Call) -> Reply:
        return self._ok(
            call, render.invoice(self.s, self.b.pay_invoice(call.path["invoice"], call.body))
        )

    def void_invoice(self, call: Call) -> Reply:
        return self._ok(call, render.invoice(self.s, self.b.void_invoice(call.path["invoice"])))

    def mark_invoice_uncollectible(self, call: Call) -> Reply:
        inv = self.b.mark_uncollectible(call.path["invoice"])
        return self._ok(call, render.invoice(self.s, inv))

    def create_invoice_preview(self, call: Call) -> Reply:
        # Rendered inside the preview so the throw-away state is still there.
        box: list[Json] = []
        self.b.preview_invoice(
            call.body,
            lambda inv: box.append(render.invoice(self.s, inv, preview_id=f"upcoming_{inv.id}")),
        )
        return self._ok(call, box[0])

    def list_invoice_line_items(self, call: Call) -> Reply:
        inv = self.b.invoice(call.path["invoice"])
        return self._page(
            call,
            inv.lines,
            lambda line: render.invoice_line(self.s, line),
            f"/v1/invoices/{inv.id}/lines",
        )

    def create_invoice_item(self, call: Call) -> Reply:
        return self._ok(call, render.invoice_item(self.s, self.b.create_invoice_item(call.body)))

    def list_invoice_items(self, call: Call) -> Reply:
        q = call.query
        pending = q.get("pending")
        return self._table_page(
            call,
            self.s.invoice_items,
            lambda ii: (
                not ii.deleted
                and q.get("customer") in (None, ii.customer)
                and q.get("invoice") in (None, ii.invoice)
                and (pending is None or pending == (ii.invoice is None))
            ),
            lambda ii: render.invoice_item(self.s, ii),
            "/v1/invoiceitems",
        )

    def retrieve_invoice_item(self, call: Call) -> Reply:
        ii = self.s.invoice_items.get(call.path["invoiceitem"])
        if ii is None:
            raise errors.no_such("invoiceitem", call.path["invoiceitem"])
        return self._ok(call, render.invoice_item(self.s, ii))

    def delete_invoice_item(self, call: Call) -> Reply:
        ii = self.b.delete_invoice_item(call.path["invoiceitem"])
        return {"id": ii.id, "object": "invoiceitem", "deleted": True}, 200

    # credit notes ----------------------------------------------------------------------
    def create_credit_note(self, call: Call) -> Reply:
        return self._ok(call, render.credit_note(self.s, self.b.create_credit_note(call.body)))

    def list_credit_notes(self, call: Call) -> Reply:
        q = call.query
        return self._table_page(
            call,
            self.s.credit_notes,
            lambda cn: (
                q.get("invoice") in (None, cn.invoice) and q.get("customer") in (None, cn.customer)
            ),
            lambda cn: render.credit_note(self.s, cn),
            "/v1/credit_notes",
        )

    def retrieve_credit_note(self, call: Call) -> Reply:
        cn = self.s.credit_notes.get(call.path["id"])
        if cn is None:
            raise errors.no_such("credit note", call.path["id"])
        return self._ok(call, render.credit_note(self.s, cn))

    def void_credit_note(self, call: Call) -> Reply:
        return self._ok(call, render.credit_note(self.s, self.b.void_credit_note(call.path["id"])))

    # meters ----------------------------------------------------------------------------
    def create_billing_meter(self, call: Call) -> Reply:
        return self._ok(call, render.meter(self.s, self.b.create_meter(call.body)))

    def list_billing_meters(self, call: Call) -> Reply:
        return self._table_page(
            call,
            self.s.meters,
            lambda m: True,
            lambda m: render.meter(self.s, m),
            "/v1/billing/meters",
        )

    def retrieve_billing_meter(self, call: Call) -> Reply:
        m = self.s.meters.get(call.path["id"])
        if m is None:
            raise errors.no_such("billing meter", call.path["id"])
        return self._ok(call, render.meter(self.s, m))

    def list_billing_meter_event_summaries(self, call: Call) -> Reply:
        m = self.s.meters.get(call.path["id"])
        if m is None:
            raise errors.no_such("billing meter", call.path["id"])
        q = call.query
        c = self.b.customer(q["customer"])
        start, end = q["start_time"], q["end_time"]
        if end <= start:
            raise errors.invalid("end_time must be after start_time.", "end_time")
        summary = {
            "id": f"mtrusg_{m.id[4:]}_{start}",
            "object": "billing.meter_event_summary",
            "aggregated_value": self.b.usage(m, c.id, start, end),
            "start_time": start,
            "end_time": end,
            "meter": m.id,
            "livemode": False,
        }
        return render.envelope([summary], f"/v1/billing/meters/{m.id}/event_summaries"), 200

    def create_billing_meter_event(self, call: Call) -> Reply:
        return self._ok(call, render.meter_event(self.s, self.b.create_meter_event(call.body)))

    # test clocks -----------------------------------------------------------------------
    def create_test_clock(self, call: Call) -> Reply:
        return self._ok(call, render.test_clock(self.s, self.b.create_test_clock(call.body)))

    def list_test_clocks(self, call: Call) -> Reply:
        return self._table_page(
            call,
            self.s.test_clocks,
            lambda c: not c.deleted,
            lambda c: render.test_clock(self.s, c),
            "/v1/test_helpers/test_clocks",
        )

    def retrieve_test_clock(self, call: Call) -> Reply:
        clock = self.b.test_clock(call.path["test_clock"])
        return self._ok(call, render.test_clock(self.s, clock))

    def delete_test_clock(self, call: Call) -> Reply:
        clock = self.b.delete_test_clock(call.path["test_clock"])
        return render.test_clock(self.s, clock), 200

    def advance_test_clock(self, call: Call) -> Reply:
        clock = self.b.advance_test_clock(call.path["test_clock"], call.body["frozen_time"])
        return self._ok(call, render.test_clock(self.s, clock))

    # events and webhook endpoints ------------------------------------------------------
    def list_events(self, call: Call) -> Reply:
        q = call.query
        types = list(q.get("types") or []) + ([q["type"]] if q.get("type") else [])
        rows = [e for e in self.b.list_events(types) if self._created(e, call)]
        return self._page(call, rows, lambda e: render.event(self.s, e), "/v1/events")

    def retrieve_event(self, call: Call) -> Reply:
        e = self.s.events_by_id.get(call.path["id"])
        if e is None:
            raise errors.no_such("event", call.path["id"])
        return self._ok(call, render.event(self.s, e))

    def create_webhook_endpoint(self, call: Call) -> Reply:
        w = self.b.create_webhook_endpoint(call.body)
        return self._ok(call, render.webhook_endpoint(self.s, w, secret=True))

    def list_webhook_endpoints(self, call: Call) -> Reply:
        return self._table_page(
            call,
            self.s.webhook_endpoints,
            lambda w: not w.deleted,
            lambda w: render.webhook_endpoint(self.s, w),
            "/v1/webhook_endpoints",
        )

    def retrieve_webhook_endpoint(self, call: Call) -> Reply:
        w = self.b.webhook_endpoint(call.path["webhook_endpoint"])
        return self._ok(call, render.webhook_endpoint(self.s, w))

    def update_webhook_endpoint(self, call: Call) -> Reply:
        w = self.b.update_webhook_endpoint(call.path["webhook_endpoint"], call.body)
        return self._ok(call, render.webhook_endpoint(self.s, w))

    def delete_webhook_endpoint(self, call: Call) -> Reply:
        w = self.b.delete_webhook_endpoint(call.path["webhook_endpoint"])
        return render.webhook_endpoint(self.s, w), 200


def _int64_only(handler: Callable[[Call], Reply]) -> Callable[[Call], Reply]:
    @functools.wraps(handler)
    def checked(call: Call) -> Reply:
        for params in (call.query, call.body):
            found = _out_of_range(params, [])
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
    if not isinstance(value, str):
        return False
    found = _lookup(store, value)
    if found is None:
        return False
    node[head] = found
    return True

"""Billing handlers: parse the call, ask the backend, render Stripe JSON — no business rules."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from simulators.billing import errors, params, render
from simulators.billing.backend import BillingBackend
from simulators.billing.backend.base import Listing
from simulators.billing.store import BillingStore
from simulators.common.app import Call, Reply
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

    def _list(self, call: Call, listing: Listing, fn: Callable[[Any], Json], url: str) -> Reply:
        page = render.table_page(listing.table, listing.keep, fn, url, **self._paging(call))
        return self._ok(call, page)

    # customers -------------------------------------------------------------------------
    def create_customer(self, call: Call) -> Reply:
        b = call.body
        c = self.b.create_customer(
            email=b.get("email"),
            name=b.get("name"),
            description=b.get("description"),
            metadata=params.metadata(b),
            balance=b.get("balance", 0),
            test_clock=b.get("test_clock"),
            payment_method=b.get("payment_method"),
            default_payment_method=_invoice_settings(b).get("default_payment_method"),
        )
        return self._ok(call, render.customer(self.s, c))

    def list_customers(self, call: Call) -> Reply:
        q = call.query
        listing = self.b.list_customers(
            email=q.get("email"), test_clock=q.get("test_clock"), created=q.get("created")
        )
        return self._list(call, listing, lambda c: render.customer(self.s, c), "/v1/customers")

    def retrieve_customer(self, call: Call) -> Reply:
        c = self.s.customers.get(call.path["customer"])
        if c is None:
            raise errors.no_such("customer", call.path["customer"])
        return self._ok(call, render.customer(self.s, c))

    def update_customer(self, call: Call) -> Reply:
        b = call.body
        c = self.b.update_customer(
            call.path["customer"],
            email=params.opt_text(b, "email"),
            name=params.opt_text(b, "name"),
            description=params.opt_text(b, "description"),
            balance=params.opt(b, "balance"),
            metadata=params.metadata_update(b),
            default_payment_method=_invoice_settings(b).get("default_payment_method"),
        )
        return self._ok(call, render.customer(self.s, c))

    def delete_customer(self, call: Call) -> Reply:
        c = self.b.delete_customer(call.path["customer"])
        return {"id": c.id, "object": "customer", "deleted": True}, 200

    def list_customer_payment_methods(self, call: Call) -> Reply:
        customer = call.path["customer"]
        rows = self.b.customer_payment_methods(customer)
        return self._page(
            call,
            rows,
            lambda p: render.payment_method(self.s, p),
            f"/v1/customers/{customer}/payment_methods",
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
        b = call.body
        prod = self.b.create_product(
            name=b["name"],
            product_id=b.get("id") or None,
            active=b.get("active", True),
            description=b.get("description"),
            metadata=params.metadata(b),
        )
        return self._ok(call, render.product(self.s, prod))

    def list_products(self, call: Call) -> Reply:
        q = call.query
        listing = self.b.list_products(active=q.get("active"), created=q.get("created"))
        return self._list(call, listing, lambda p: render.product(self.s, p), "/v1/products")

    def retrieve_product(self, call: Call) -> Reply:
        return self._ok(call, render.product(self.s, self.b.product(call.path["id"])))

    def update_product(self, call: Call) -> Reply:
        b = call.body
        prod = self.b.update_product(
            call.path["id"],
            name=params.opt(b, "name"),
            description=params.opt_text(b, "description"),
            active=params.opt(b, "active"),
            metadata=params.metadata_update(b),
        )
        return self._ok(call, render.product(self.s, prod))

    def create_price(self, call: Call) -> Reply:
        b = call.body
        price = self.b.create_price(
            currency=b["currency"],
            unit_amount=b.get("unit_amount"),
            product=b.get("product"),
            product_name=(b.get("product_data") or {}).get("name"),
            recurring=params.recurring(b),
            active=b.get("active", True),
            lookup_key=b.get("lookup_key"),
            nickname=b.get("nickname"),
            metadata=params.metadata(b),
            tax_behavior=b.get("tax_behavior", "unspecified"),
        )
        return self._ok(call, render.price(self.s, price))

    def list_prices(self, call: Call) -> Reply:
        q = call.query
        listing = self.b.list_prices(
            product=q.get("product"),
            active=q.get("active"),
            type=q.get("type"),
            lookup_keys=q.get("lookup_keys"),
            created=q.get("created"),
        )
        return self._list(call, listing, lambda p: render.price(self.s, p), "/v1/prices")

    def retrieve_price(self, call: Call) -> Reply:
        return self._ok(call, render.price(self.s, self.b.price(call.path["price"])))

    def update_price(self, call: Call) -> Reply:
        b = call.body
        price = self.b.update_price(
            call.path["price"],
            active=params.opt(b, "active"),
            nickname=params.opt_text(b, "nickname"),
            lookup_key=params.opt_text(b, "lookup_key"),
            metadata=params.metadata_update(b),
        )
        return self._ok(call, render.price(self.s, price))

    # subscriptions ---------------------------------------------------------------------
    def create_subscription(self, call: Call) -> Reply:
        b = call.body
        sub = self.b.create_subscription(
            customer=b["customer"],
            items=params.item_specs(b["items"]),
            default_payment_method=b.get("default_payment_method"),
            billing_cycle_anchor=b.get("billing_cycle_anchor") or None,
            collection_method=b.get("collection_method", "charge_automatically"),
            payment_behavior=b.get("payment_behavior", "allow_incomplete"),
            days_until_due=b.get("days_until_due"),
            metadata=params.metadata(b),
            cancel_at_period_end=b.get("cancel_at_period_end", False),
        )
        return self._ok(call, render.subscription(self.s, sub))

    def list_subscriptions(self, call: Call) -> Reply:
        q = call.query
        listing = self.b.list_subscriptions(
            customer=q.get("customer"),
            price=q.get("price"),
            status=q.get("status"),
            test_clock=q.get("test_clock"),
            created=q.get("created"),
        )
        return self._list(
            call, listing, lambda sub: render.subscription(self.s, sub), "/v1/subscriptions"
        )

    def retrieve_subscription(self, call: Call) -> Reply:
        sub = self.b.subscription(call.path["subscription_exposed_id"], "subscription_exposed_id")
        return self._ok(call, render.subscription(self.s, sub))

    def update_subscription(self, call: Call) -> Reply:
        b = call.body
        sub = self.b.update_subscription(
            call.path["subscription_exposed_id"],
            items=params.item_changes(b.get("items")),
            proration_behavior=b.get("proration_behavior", "create_prorations"),
            proration_date=b.get("proration_date") or None,
            default_payment_method=params.opt_text(b, "default_payment_method"),
            reset_billing_cycle_anchor=b.get("billing_cycle_anchor") == "now",
            cancel_at_period_end=params.opt(b, "cancel_at_period_end"),
            cancel_at=b.get("cancel_at") or None,
            metadata=params.metadata_update(b),
            collection_method=params.opt(b, "collection_method"),
        )
        return self._ok(call, render.subscription(self.s, sub))

    def cancel_subscription(self, call: Call) -> Reply:
        sub = self.b.cancel_subscription(
            call.path["subscription_exposed_id"],
            invoice_now=bool(call.query.get("invoice_now", False)),
            prorate=bool(call.query.get("prorate", False)),
        )
        return self._ok(call, render.subscription(self.s, sub))

    def create_subscription_item(self, call: Call) -> Reply:
        b = call.body
        si = self.b.create_subscription_item(
            subscription=b["subscription"],
            price=b["price"],
            quantity=b.get("quantity"),
            metadata=params.metadata(b),
            proration_behavior=b.get("proration_behavior", "create_prorations"),
            proration_date=b.get("proration_date") or None,
        )
        return self._ok(call, render.subscription_item(self.s, si))

    def list_subscription_items(self, call: Call) -> Reply:
        rows = self.b.subscription_items(call.query["subscription"])
        return self._page(
            call, rows, lambda si: render.subscription_item(self.s, si), "/v1/subscription_items"
        )

    def retrieve_subscription_item(self, call: Call) -> Reply:
        si = self.b.subscription_item(call.path["item"])
        return self._ok(call, render.subscription_item(self.s, si))

    def update_subscription_item(self, call: Call) -> Reply:
        b = call.body
        si = self.b.update_subscription_item(
            call.path["item"],
            price=b.get("price") or None,
            quantity=b.get("quantity"),
            metadata=params.metadata_update(b),
            proration_behavior=b.get("proration_behavior", "create_prorations"),
            proration_date=b.get("proration_date") or None,
        )
        return self._ok(call, render.subscription_item(self.s, si))

    def delete_subscription_item(self, call: Call) -> Reply:
        q = call.query
        si = self.b.delete_subscription_item(
            call.path["item"],
            proration_behavior=q.get("proration_behavior", "create_prorations"),
            proration_date=q.get("proration_date") or None,
        )
        return {"id": si.id, "object": "subscription_item", "deleted": True}, 200

    # invoices --------------------------------------------------------------------------
    def create_invoice(self, call: Call) -> Reply:
        b = call.body
        inv = self.b.create_invoice(
            customer=b["customer"],
            subscription=b.get("subscription") or None,
            pending_invoice_items_behavior=b.get("pending_invoice_items_behavior", "exclude"),
            collection_method=b.get("collection_method"),
            description=b.get("description"),
            metadata=params.metadata(b),
            auto_advance=b.get("auto_advance", False),
        )
        return self._ok(call, render.invoice(self.s, inv))

    def list_invoices(self, call: Call) -> Reply:
        q = call.query
        listing = self.b.list_invoices(
            customer=q.get("customer"),
            subscription=q.get("subscription"),
            status=q.get("status"),
            created=q.get("created"),
        )
        return self._list(call, listing, lambda i: render.invoice(self.s, i), "/v1/invoices")

    def retrieve_invoice(self, call: Call) -> Reply:
        return self._ok(call, render.invoice(self.s, self.b.invoice(call.path["invoice"])))

    def update_invoice(self, call: Call) -> Reply:
        b = call.body
        inv = self.b.update_invoice(
            call.path["invoice"],
            description=params.opt_text(b, "description"),
            auto_advance=params.opt(b, "auto_advance"),
            metadata=params.metadata_update(b),
        )
        return self._ok(call, render.invoice(self.s, inv))

    def finalize_invoice(self, call: Call) -> Reply:
        inv = self.b.finalize_invoice(
            call.path["invoice"], auto_advance=params.opt(call.body, "auto_advance")
        )
        return self._ok(call, render.invoice(self.s, inv))

    def pay_invoice(self, call: Call) -> Reply:
        b = call.body
        inv = self.b.pay_invoice(
            call.path["invoice"],
            paid_out_of_band=b.get("paid_out_of_band", False),
            payment_method=b.get("payment_method") or None,
        )
        return self._ok(call, render.invoice(self.s, inv))

    def void_invoice(self, call: Call) -> Reply:
        return self._ok(call, render.invoice(self.s, self.b.void_invoice(call.path["invoice"])))

    def mark_invoice_uncollectible(self, call: Call) -> Reply:
        inv = self.b.mark_uncollectible(call.path["invoice"])
        return self._ok(call, render.invoice(self.s, inv))

    def create_invoice_preview(self, call: Call) -> Reply:
        # Rendered inside the preview so the throw-away state is still there.
        box: list[Json] = []
        b = call.body
        self.b.preview_invoice(
            lambda inv: box.append(render.invoice(self.s, inv, preview_id=f"upcoming_{inv.id}")),
            customer=b.get("customer") or None,
            subscription=b.get("subscription") or None,
            changes=params.preview_changes(b),
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
        b = call.body
        period = b.get("period")
        ii = self.b.create_invoice_item(
            customer=b["customer"],
            price=(b.get("pricing") or {}).get("price") or b.get("price") or None,
            quantity=b.get("quantity", 1),
            amount=b.get("amount"),
            currency=b.get("currency"),
            period=(period["start"], period["end"]) if period else None,
            description=b.get("description"),
            subscription=b.get("subscription") or None,
            invoice=b.get("invoice") or None,
            metadata=params.metadata(b),
        )
        return self._ok(call, render.invoice_item(self.s, ii))

    def list_invoice_items(self, call: Call) -> Reply:
        q = call.query
        listing = self.b.list_invoice_items(
            customer=q.get("customer"), invoice=q.get("invoice"), pending=q.get("pending")
        )
        return self._list(
            call, listing, lambda ii: render.invoice_item(self.s, ii), "/v1/invoiceitems"
        )

    def retrieve_invoice_item(self, call: Call) -> Reply:
        ii = self.b.invoice_item(call.path["invoiceitem"])
        return self._ok(call, render.invoice_item(self.s, ii))

    def delete_invoice_item(self, call: Call) -> Reply:
        ii = self.b.delete_invoice_item(call.path["invoiceitem"])
        return {"id": ii.id, "object": "invoiceitem", "deleted": True}, 200

    # credit notes ----------------------------------------------------------------------
    def create_credit_note(self, call: Call) -> Reply:
        b = call.body
        cn = self.b.create_credit_note(
            invoice=b["invoice"],
            lines=params.credit_lines(b.get("lines")),
            amount=b.get("amount"),
            refund_amount=b.get("refund_amount", 0),
            credit_amount=b.get("credit_amount", 0),
            out_of_band_amount=b.get("out_of_band_amount", 0),
            reason=b.get("reason"),
            memo=b.get("memo"),
            metadata=params.metadata(b),
        )
        return self._ok(call, render.credit_note(self.s, cn))

    def list_credit_notes(self, call: Call) -> Reply:
        q = call.query
        listing = self.b.list_credit_notes(invoice=q.get("invoice"), customer=q.get("customer"))
        return self._list(
            call, listing, lambda cn: render.credit_note(self.s, cn), "/v1/credit_notes"
        )

    def retrieve_credit_note(self, call: Call) -> Reply:
        return self._ok(call, render.credit_note(self.s, self.b.credit_note(call.path["id"])))

    def void_credit_note(self, call: Call) -> Reply:
        return self._ok(call, render.credit_note(self.s, self.b.void_credit_note(call.path["id"])))

    # meters ----------------------------------------------------------------------------
    def create_billing_meter(self, call: Call) -> Reply:
        b = call.body
        m = self.b.create_meter(
            display_name=b["display_name"],
            event_name=b["event_name"],
            formula=(b.get("default_aggregation") or {}).get("formula", "sum"),
            customer_key=(b.get("customer_mapping") or {}).get(
                "event_payload_key", "stripe_customer_id"
            ),
            value_key=(b.get("value_settings") or {}).get("event_payload_key", "value"),
        )
        return self._ok(call, render.meter(self.s, m))

    def list_billing_meters(self, call: Call) -> Reply:
        listing = self.b.list_meters()
        return self._list(call, listing, lambda m: render.meter(self.s, m), "/v1/billing/meters")

    def retrieve_billing_meter(self, call: Call) -> Reply:
        return self._ok(call, render.meter(self.s, self.b.meter(call.path["id"])))

    def list_billing_meter_event_summaries(self, call: Call) -> Reply:
        q = call.query
        meter_id, start, end = call.path["id"], q["start_time"], q["end_time"]
        value = self.b.usage_summary(meter_id, q["customer"], start, end)
        summary = {
            "id": f"mtrusg_{meter_id[4:]}_{start}",
            "object": "billing.meter_event_summary",
            "aggregated_value": value,
            "start_time": start,
            "end_time": end,
            "meter": meter_id,
            "livemode": False,
        }
        return render.envelope([summary], f"/v1/billing/meters/{meter_id}/event_summaries"), 200

    def create_billing_meter_event(self, call: Call) -> Reply:
        b = call.body
        event = self.b.create_meter_event(
            event_name=b["event_name"],
            payload={str(k): str(v) for k, v in b["payload"].items()},
            timestamp=b.get("timestamp"),
            identifier=b.get("identifier") or None,
        )
        return self._ok(call, render.meter_event(self.s, event))

    # test clocks -----------------------------------------------------------------------
    def create_test_clock(self, call: Call) -> Reply:
        b = call.body
        clock = self.b.create_test_clock(frozen_time=b["frozen_time"], name=b.get("name"))
        return self._ok(call, render.test_clock(self.s, clock))

    def list_test_clocks(self, call: Call) -> Reply:
        listing = self.b.list_test_clocks()
        return self._list(
            call, listing, lambda c: render.test_clock(self.s, c), "/v1/test_helpers/test_clocks"
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
        rows = self.b.list_events(types=types, created=q.get("created"))
        return self._page(call, rows, lambda e: render.event(self.s, e), "/v1/events")

    def retrieve_event(self, call: Call) -> Reply:
        return self._ok(call, render.event(self.s, self.b.retrieve_event(call.path["id"])))

    def create_webhook_endpoint(self, call: Call) -> Reply:
        b = call.body
        w = self.b.create_webhook_endpoint(
            url=b["url"],
            enabled_events=list(b["enabled_events"]),
            description=b.get("description"),
            api_version=b.get("api_version"),
            metadata=params.metadata(b),
        )
        return self._ok(call, render.webhook_endpoint(self.s, w, secret=True))

    def list_webhook_endpoints(self, call: Call) -> Reply:
        listing = self.b.list_webhook_endpoints()
        return self._list(
            call, listing, lambda w: render.webhook_endpoint(self.s, w), "/v1/webhook_endpoints"
        )

    def retrieve_webhook_endpoint(self, call: Call) -> Reply:
        w = self.b.webhook_endpoint(call.path["webhook_endpoint"])
        return self._ok(call, render.webhook_endpoint(self.s, w))

    def update_webhook_endpoint(self, call: Call) -> Reply:
        b = call.body
        w = self.b.update_webhook_endpoint(
            call.path["webhook_endpoint"],
            url=params.opt(b, "url"),
            enabled_events=params.opt(b, "enabled_events"),
            disabled=params.opt(b, "disabled"),
            description=params.opt_text(b, "description"),
            metadata=params.metadata_update(b),
        )
        return self._ok(call, render.webhook_endpoint(self.s, w))

    def delete_webhook_endpoint(self, call: Call) -> Reply:
        w = self.b.delete_webhook_endpoint(call.path["webhook_endpoint"])
        return render.webhook_endpoint(self.s, w), 200


def _invoice_settings(body: Json) -> Json:
    settings: Json = body.get("invoice_settings") or {}
    return settings


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

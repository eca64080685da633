"""Customer and payment-method handlers."""

from __future__ import annotations

from simulators.billing import params, render
from simulators.billing.handlers.base import HandlerBase, Json
from simulators.common.app import Call, Reply


class CustomerHandlers(HandlerBase):
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
            address=b.get("address") or None,
            tax_exempt=b.get("tax_exempt") or "none",
            tax_id_data=[(t["type"], t["value"]) for t in b.get("tax_id_data") or []],
            discount=params.customer_discount(b),
        )
        return self._ok(call, render.customer(self.s, c))

    def list_customers(self, call: Call) -> Reply:
        q = call.query
        listing = self.b.list_customers(
            email=q.get("email"), test_clock=q.get("test_clock"), created=q.get("created")
        )
        return self._list(call, listing, lambda c: render.customer(self.s, c), "/v1/customers")

    def retrieve_customer(self, call: Call) -> Reply:
        c = self.b.customer_even_deleted(call.path["customer"])
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
            address=params.opt(b, "address") if b.get("address") != "" else None,
            tax_exempt=params.opt(b, "tax_exempt") or "none",
            discount=params.customer_discount(b),
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


def _invoice_settings(body: Json) -> Json:
    settings: Json = body.get("invoice_settings") or {}
    return settings

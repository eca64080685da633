"""Tax-rate and customer tax-id handlers."""

from __future__ import annotations

from simulators.billing import params, render
from simulators.billing.handlers.base import HandlerBase
from simulators.common.app import Call, Reply


class TaxHandlers(HandlerBase):
    # tax rates -------------------------------------------------------------------------
    def create_tax_rate(self, call: Call) -> Reply:
        b = call.body
        rate = self.b.create_tax_rate(
            display_name=b["display_name"],
            percentage=str(b["percentage"]),
            inclusive=b["inclusive"],
            active=b.get("active", True),
            country=b.get("country") or None,
            state=b.get("state") or None,
            jurisdiction=b.get("jurisdiction") or None,
            description=b.get("description") or None,
            tax_type=b.get("tax_type") or None,
            metadata=params.metadata(b),
        )
        return self._ok(call, render.tax_rate(self.s, rate))

    def list_tax_rates(self, call: Call) -> Reply:
        q = call.query
        listing = self.b.list_tax_rates(
            active=q.get("active"), inclusive=q.get("inclusive"), created=q.get("created")
        )
        return self._list(call, listing, lambda r: render.tax_rate(self.s, r), "/v1/tax_rates")

    def retrieve_tax_rate(self, call: Call) -> Reply:
        return self._ok(call, render.tax_rate(self.s, self.b.tax_rate(call.path["tax_rate"])))

    def update_tax_rate(self, call: Call) -> Reply:
        b = call.body
        rate = self.b.update_tax_rate(
            call.path["tax_rate"],
            active=params.opt(b, "active"),
            display_name=params.opt(b, "display_name"),
            country=params.opt_text(b, "country"),
            state=params.opt_text(b, "state"),
            jurisdiction=params.opt_text(b, "jurisdiction"),
            description=params.opt_text(b, "description"),
            tax_type=params.opt_text(b, "tax_type"),
            metadata=params.metadata_update(b),
        )
        return self._ok(call, render.tax_rate(self.s, rate))

    # customers' tax ids ----------------------------------------------------------------
    def create_customer_tax_id(self, call: Call) -> Reply:
        b = call.body
        record = self.b.create_tax_id(call.path["customer"], type=b["type"], value=b["value"])
        return self._ok(call, render.tax_id(self.s, record))

    def list_customer_tax_ids(self, call: Call) -> Reply:
        customer = call.path["customer"]
        listing = self.b.customer_tax_ids(customer)
        url = f"/v1/customers/{customer}/tax_ids"
        return self._list(call, listing, lambda t: render.tax_id(self.s, t), url)

    def retrieve_customer_tax_id(self, call: Call) -> Reply:
        record = self.b.tax_id(call.path["customer"], call.path["id"])
        return self._ok(call, render.tax_id(self.s, record))

    def delete_customer_tax_id(self, call: Call) -> Reply:
        record = self.b.delete_tax_id(call.path["customer"], call.path["id"])
        return {"id": record.id, "object": "tax_id", "deleted": True}, 200

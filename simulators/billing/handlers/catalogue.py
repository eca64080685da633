"""Product and price handlers."""

from __future__ import annotations

from simulators.billing import params, render
from simulators.billing.handlers.base import HandlerBase
from simulators.common.app import Call, Reply


class CatalogueHandlers(HandlerBase):
    def create_product(self, call: Call) -> Reply:
        b = call.body
        prod = self.b.create_product(
            name=b["name"],
            product_id=b.get("id") or None,
            active=b.get("active", True),
            description=b.get("description"),
            metadata=params.metadata(b),
            tax_code=b.get("tax_code") or None,
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
            tax_code=params.opt_text(b, "tax_code"),
        )
        return self._ok(call, render.product(self.s, prod))

    def create_price(self, call: Call) -> Reply:
        b = call.body
        price = self.b.create_price(
            currency=b["currency"],
            unit_amount=b.get("unit_amount"),
            product=b.get("product"),
            product_name=(b.get("product_data") or {}).get("name"),
            product_tax_code=(b.get("product_data") or {}).get("tax_code"),
            recurring=params.recurring(b),
            active=b.get("active", True),
            lookup_key=b.get("lookup_key"),
            nickname=b.get("nickname"),
            metadata=params.metadata(b),
            tax_behavior=b.get("tax_behavior", "unspecified"),
            unit_amount_decimal=(
                None if b.get("unit_amount_decimal") is None else str(b["unit_amount_decimal"])
            ),
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

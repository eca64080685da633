"""Coupon, promotion-code and discount handlers."""

from __future__ import annotations

from simulators.billing import params, render
from simulators.billing.handlers.base import HandlerBase
from simulators.billing.models import Coupon
from simulators.common.app import Call, Reply

# ``applies_to`` is includable: a coupon shows it only when asked to (``expand[]=applies_to``).
_APPLIES_TO = ("applies_to",)
_LIST_APPLIES_TO = ("data.applies_to",)


class DiscountHandlers(HandlerBase):
    # coupons -----------------------------------------------------------------------------
    def _coupon(self, call: Call, coupon: Coupon) -> Reply:
        shown = "applies_to" in self._expand_list(call)
        return self._ok(call, render.coupon(self.s, coupon, applies_to=shown), _APPLIES_TO)

    def create_coupon(self, call: Call) -> Reply:
        b = call.body
        applies = b.get("applies_to")
        coupon = self.b.create_coupon(
            coupon_id=b.get("id") or None,
            duration=b.get("duration", "once"),
            percent_off=None if b.get("percent_off") is None else str(b["percent_off"]),
            amount_off=b.get("amount_off"),
            currency=b.get("currency"),
            duration_in_months=b.get("duration_in_months"),
            name=b.get("name") or None,
            max_redemptions=b.get("max_redemptions"),
            redeem_by=b.get("redeem_by"),
            metadata=params.metadata(b),
            applies_to=(
                params.id_list(applies, "products")
                if isinstance(applies, dict) and "products" in applies
                else None
            ),
        )
        return self._coupon(call, coupon)

    def list_coupons(self, call: Call) -> Reply:
        listing = self.b.list_coupons(created=call.query.get("created"))
        shown = "data.applies_to" in self._expand_list(call)
        return self._list(
            call,
            listing,
            lambda c: render.coupon(self.s, c, applies_to=shown),
            "/v1/coupons",
            _LIST_APPLIES_TO,
        )

    def retrieve_coupon(self, call: Call) -> Reply:
        return self._coupon(call, self.b.coupon(call.path["coupon"]))

    def update_coupon(self, call: Call) -> Reply:
        b = call.body
        coupon = self.b.update_coupon(
            call.path["coupon"],
            name=params.opt_text(b, "name"),
            metadata=params.metadata_update(b),
        )
        return self._coupon(call, coupon)

    def delete_coupon(self, call: Call) -> Reply:
        coupon = self.b.delete_coupon(call.path["coupon"])
        return {"id": coupon.id, "object": "coupon", "deleted": True}, 200

    # promotion codes ---------------------------------------------------------------------
    def create_promotion_code(self, call: Call) -> Reply:
        b = call.body
        restrictions = b.get("restrictions") or {}
        promo = self.b.create_promotion_code(
            coupon=b["promotion"]["coupon"],
            code=b.get("code") or None,
            active=b.get("active", True),
            customer=b.get("customer") or None,
            expires_at=b.get("expires_at"),
            max_redemptions=b.get("max_redemptions"),
            first_time_transaction=restrictions.get("first_time_transaction", False),
            minimum_amount=restrictions.get("minimum_amount"),
            minimum_amount_currency=restrictions.get("minimum_amount_currency"),
            metadata=params.metadata(b),
        )
        return self._ok(call, render.promotion_code(self.s, promo))

    def list_promotion_codes(self, call: Call) -> Reply:
        q = call.query
        listing = self.b.list_promotion_codes(
            code=q.get("code"),
            coupon=q.get("coupon"),
            customer=q.get("customer"),
            active=q.get("active"),
            created=q.get("created"),
        )
        return self._list(
            call, listing, lambda p: render.promotion_code(self.s, p), "/v1/promotion_codes"
        )

    def retrieve_promotion_code(self, call: Call) -> Reply:
        promo = self.b.promotion_code(call.path["promotion_code"])
        return self._ok(call, render.promotion_code(self.s, promo))

    def update_promotion_code(self, call: Call) -> Reply:
        b = call.body
        promo = self.b.update_promotion_code(
            call.path["promotion_code"],
            active=params.opt(b, "active"),
            metadata=params.metadata_update(b),
        )
        return self._ok(call, render.promotion_code(self.s, promo))

    # discounts ---------------------------------------------------------------------------
    def delete_customer_discount(self, call: Call) -> Reply:
        discount = self.b.delete_customer_discount(call.path["customer"])
        return {**render.discount(self.s, discount), "deleted": True}, 200

    def delete_subscription_discount(self, call: Call) -> Reply:
        discount = self.b.delete_subscription_discount(call.path["subscription_exposed_id"])
        return {**render.discount(self.s, discount), "deleted": True}, 200

"""Subscription and subscription-item handlers."""

from __future__ import annotations

from simulators.billing import params, render
from simulators.billing.handlers.base import HandlerBase
from simulators.common.app import Call, Reply


class SubscriptionHandlers(HandlerBase):
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
            default_tax_rates=params.id_list(b, "default_tax_rates"),
            automatic_tax=params.enabled(b, "automatic_tax") is True,
            discounts=params.discounts(b),
            trial_period_days=b.get("trial_period_days"),
            trial_end=b.get("trial_end"),
            cancel_at=b.get("cancel_at"),
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
            cancel_at=(b["cancel_at"] or None) if "cancel_at" in b else params.UNSET,
            trial_end=params.opt(b, "trial_end"),
            pause_collection=params.pause_collection(b),
            metadata=params.metadata_update(b),
            collection_method=params.opt(b, "collection_method"),
            default_tax_rates=params.opt_id_list(b, "default_tax_rates"),
            automatic_tax=params.enabled(b, "automatic_tax"),
            discounts=params.opt_discounts(b),
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

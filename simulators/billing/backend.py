"""Billing behaviour: one method per operation, lifecycles on the clock, events out."""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from simulators.billing import errors, render
from simulators.billing.models import (
    DAY,
    CreditNote,
    CreditNoteLine,
    Customer,
    Event,
    Invoice,
    InvoiceItem,
    InvoiceLine,
    Meter,
    MeterEvent,
    PaymentMethod,
    Price,
    Product,
    Recurring,
    Subscription,
    SubscriptionItem,
    TestClock,
    WebhookEndpointRecord,
    aggregate,
    apply_balance,
    period_end,
    proration,
)
from simulators.billing.store import BillingStore
from simulators.common.errors import SimError
from simulators.common.tables import Table
from simulators.common.world import World

# Stripe's test payment methods: brand, last4 and the decline code a charge gets.
TEST_PAYMENT_METHODS: dict[str, tuple[str, str, str | None]] = {
    "pm_card_visa": ("visa", "4242", None),
    "pm_card_mastercard": ("mastercard", "4444", None),
    "pm_card_amex": ("amex", "8431", None),
    "pm_card_visa_debit": ("visa", "5556", None),
    "pm_card_chargeDeclined": ("visa", "0002", "generic_decline"),
    "pm_card_visa_chargeDeclined": ("visa", "0002", "generic_decline"),
    "pm_card_chargeDeclinedInsufficientFunds": ("visa", "9995", "insufficient_funds"),
    "pm_card_chargeDeclinedExpiredCard": ("visa", "0069", "expired_card"),
    "pm_card_chargeCustomerFail": ("visa", "0341", "generic_decline"),
}
# Days after the first failure when payment is retried (a fixed stand-in for Smart Retries).
RETRY_AFTER_DAYS = (3, 5, 7)
FINALIZE_AFTER_S = 3600  # renewal drafts are finalised an hour after creation, as in Stripe
LOOKBACK_S = 35 * DAY  # meter events may be at most 35 days old
FUTURE_S = 300  # and at most 5 minutes in the future

Json = dict[str, Any]
Emit = Callable[[Event], None]
# Final statuses: a subscription or invoice in one of them never has a lifecycle step again.
_ENDED_SUBSCRIPTION = frozenset({"canceled", "incomplete_expired"})
_SETTLED_INVOICE = frozenset({"paid", "void", "uncollectible"})
T = TypeVar("T")


class BillingBackend:
    """All billing rules. Called with the world lock held; never reads the wall clock."""

    def __init__(self, world: World, store: BillingStore, emit: Emit) -> None:
        self.world = world
        self.store = store
        self._emit = emit
        self.request_id: str | None = None
        self.idempotency_key: str | None = None
        # Per table: rows that may still have a lifecycle step, the table's insertion mark, and
        # the table they were read from (a restore replaces the tables).
        self._live_rows: dict[str, tuple[dict[str, None], tuple[int, int] | None, Any]] = {}
        world.clock.subscribe(self._on_world_clock)

    # time ------------------------------------------------------------------------------
    def now(self, test_clock: str | None = None) -> int:
        if test_clock is not None:
            return self.store.test_clocks[test_clock].frozen_time
        return self.world.clock.now()

    def _ids(self, prefix: str) -> str:
        return self.world.ids.next(prefix)

    # events ----------------------------------------------------------------------------
    def event(
        self, kind: str, obj: Json, created: int, previous: dict[str, Any] | None = None
    ) -> Event:
        evt = Event(
            self._ids("evt"),
            kind,
            created,
            obj,
            previous,
            self.request_id,
            self.idempotency_key,
            seq=len(self.store.events) + 1,
        )
        self.store.events.append(evt)
        self.store.events_by_id[evt.id] = evt
        self._emit(evt)
        return evt

    # lookups ---------------------------------------------------------------------------
    def _get(self, table: dict[str, T], object_id: str, kind: str, param: str) -> T:
        row = table.get(object_id)
        if row is None or getattr(row, "deleted", False):
            raise errors.no_such(kind, object_id, param)
        return row

    def customer(self, customer_id: str, param: str = "customer") -> Customer:
        return self._get(self.store.customers, customer_id, "customer", param)

    def price(self, price_id: str, param: str = "price") -> Price:
        return self._get(self.store.prices, price_id, "price", param)

    def subscription(self, sub_id: str, param: str = "subscription") -> Subscription:
        return self._get(self.store.subscriptions, sub_id, "subscription", param)

    def invoice(self, invoice_id: str, param: str = "invoice") -> Invoice:
        return self._get(self.store.invoices, invoice_id, "invoice", param)

    def payment_method(self, pm_id: str, param: str = "payment_method") -> PaymentMethod:
        pm = self.store.payment_methods.get(pm_id)
        if pm is None:
            spec = TEST_PAYMENT_METHODS.get(pm_id)
            if spec is None:
                raise errors.no_such("PaymentMethod", pm_id, param)
            # Stripe's test ids name a fresh card each time they are used; ours is one object.
            pm = PaymentMethod(pm_id, self.world.clock.now(), spec[0], spec[1], spec[2])
            self.store.payment_methods[pm_id] = pm
        return pm

    # customers -------------------------------------------------------------------------
    def create_customer(self, p: Json) -> Customer:
        clock_id = p.get("test_clock")
        if clock_id is not None:
            clock = self.store.test_clocks.get(clock_id)
            if clock is None or clock.deleted:
                raise errors.no_such("test_clock", clock_id, "test_clock")
        pm_id = p.get("payment_method")
        default_pm = (p.get("invoice_settings") or {}).get("default_payment_method")
        for param, value in (
            ("payment_method", pm_id),
            ("invoice_settings[default_payment_method]", default_pm),
        ):
            if value:
                self.payment_method(value, param)
        c = Customer(
            self._ids("cus"),
            self.now(clock_id),
            p.get("email"),
            p.get("name"),
            p.get("description"),
            _metadata(p),
            int(p.get("balance", 0)),
            test_clock=clock_id,
        )
        if pm_id:
            self.payment_method(pm_id).customer = c.id
        c.default_payment_method = default_pm or None
        if default_pm:
            self.payment_method(default_pm).customer = c.id
        self.store.customers[c.id] = c
        self.event("customer.created", render.customer(self.store, c), c.created)
        return c

    def update_customer(self, customer_id: str, p: Json) -> Customer:
        c = self.customer(customer_id, "customer")
        before = render.customer(self.store, c)
        default_pm = (p.get("invoice_settings") or {}).get("default_payment_method")
        if default_pm:
            pm = self.payment_method(default_pm, "invoice_settings[default_payment_method]")
            if pm.customer not in (None, c.id) and pm.id not in TEST_PAYMENT_METHODS:
                raise errors.invalid(
                    "The payment method belongs to another customer.",
                    "invoice_settings[default_payment_method]",
                )
            pm.customer = c.id
            c.default_payment_method = default_pm
        for key in ("email", "name", "description"):
            if key in p:
                setattr(c, key, p[key] or None)
        if "balance" in p:
            c.balance = int(p["balance"])
        if "metadata" in p:
            c.metadata = _merge_metadata(c.metadata, p["metadata"])
        self._updated(
            "customer.updated", before, render.customer(self.store, c), self.now(c.test_clock)
        )
        return c

    def delete_customer(self, customer_id: str) -> Customer:
        c = self.customer(customer_id)
        for sub in self.store.subscriptions.where("customer", c.id):
            if sub.status not in ("canceled", "incomplete_expired"):
                self._end_subscription(sub, self.now(c.test_clock), "cancellation_requested")
        data = render.customer(self.store, c)
        c.deleted = True
        self.event("customer.deleted", data, self.now(c.test_clock))
        return c

    def attach_payment_method(self, pm_id: str, customer_id: str) -> PaymentMethod:
        pm = self.payment_method(pm_id)
        c = self.customer(customer_id)
        if pm.customer not in (None, c.id) and pm.id not in TEST_PAYMENT_METHODS:
            raise errors.invalid(
                "This PaymentMethod is attached to another customer.", "payment_method"
            )
        pm.customer = c.id
        self.event(
            "payment_method.attached", render.payment_method(self.store, pm), self.now(c.test_clock)
        )
        return pm

    def detach_payment_method(self, pm_id: str) -> PaymentMethod:
        pm = self.payment_method(pm_id)
        if pm.customer is None:
            raise errors.state("The payment method is not attached to a customer.")
        c = self.store.customers.get(pm.customer)
        if c is not None and c.default_payment_method == pm.id:
            c.default_payment_method = None
        pm.customer = None
        self.event(
            "payment_method.detached", render.payment_method(self.store, pm), self.world.clock.now()
        )
        return pm

    # catalogue -------------------------------------------------------------------------
    def create_product(self, p: Json) -> Product:
        product_id = p.get("id") or self._ids("prod")
        if product_id in self.store.products:
            raise errors.invalid(
                f"Product already exists: {product_id}", "id", code="resource_already_exists"
            )
        now = self.world.clock.now()
        prod = Product(
            product_id,
            now,
            p["name"],
            bool(p.get("active", True)),
            p.get("description"),
            _metadata(p),
            now,
        )
        self.store.products[prod.id] = prod
        self.event("product.created", render.product(self.store, prod), now)
        return prod

    def update_product(self, product_id: str, p: Json) -> Product:
        prod = self.store.products.get(product_id)
        if prod is None:
            raise errors.no_such("product", product_id)
        before = render.product(self.store, prod)
        for key in ("name", "description"):
            if key in p:
                setattr(prod, key, p[key] or None if key == "description" else p[key])
        if "active" in p:
            prod.active = bool(p["active"])
        if "metadata" in p:
            prod.metadata = _merge_metadata(prod.metadata, p["metadata"])
        prod.updated = self.world.clock.now()
        self._updated("product.updated", before, render.product(self.store, prod), prod.updated)
        return prod

    def create_price(self, p: Json) -> Price:
        product_id = p.get("product")
        if product_id is None and p.get("product_data"):
            product_id = self.create_product({"name": p["product_data"]["name"]}).id
        if product_id is None:
            raise errors.missing_param("product")
        if product_id not in self.store.products:
            raise errors.no_such("product", product_id, "product")
        if p.get("unit_amount") is None:
            raise errors.missing_param("unit_amount")
        recurring = None
        if p.get("recurring"):
            r = p["recurring"]
            recurring = Recurring(
                r["interval"],
                int(r.get("interval_count", 1)),
                r.get("usage_type", "licensed"),
                r.get("meter"),
            )
            if recurring.usage_type == "metered":
                if not recurring.meter:
                    raise errors.invalid("Metered prices need a meter.", "recurring[meter]")
                if recurring.meter not in self.store.meters:
                    raise errors.no_such("billing meter", recurring.meter, "recurring[meter]")
            elif recurring.meter:
                raise errors.invalid("Only metered prices take a meter.", "recurring[meter]")
            limit = {"day": 365, "week": 52, "month": 12, "year": 1}[recurring.interval]
            if not 1 <= recurring.interval_count <= limit:
                raise errors.invalid(
                    "The interval is longer than a year.", "recurring[interval_count]"
                )
        now = self.world.clock.now()
        price = Price(
            self._ids("price"),
            now,
            product_id,
            p["currency"].lower(),
            int(p["unit_amount"]),
            recurring,
            bool(p.get("active", True)),
            p.get("lookup_key"),
            p.get("nickname"),
            _metadata(p),
            p.get("tax_behavior", "unspecified"),
        )
        self.store.prices[price.id] = price
        self.event("price.created", render.price(self.store, price), now)
        return price

    def update_price(self, price_id: str, p: Json) -> Price:
        price = self.price(price_id)
        before = render.price(self.store, price)
        if "active" in p:
            price.active = bool(p["active"])
        for key in ("nickname", "lookup_key"):
            if key in p:
                setattr(price, key, p[key] or None)
        if "metadata" in p:
            price.metadata = _merge_metadata(price.metadata, p["metadata"])
        self._updated(
            "price.updated", before, render.price(self.store, price), self.world.clock.now()
        )
        return price

    # subscriptions ---------------------------------------------------------------------
    def create_subscription(self, p: Json) -> Subscription:
        c = self.customer(p["customer"])
        now = self.now(c.test_clock)
        prices = [
            self.price(item["price"], f"items[{n}][price]") for n, item in enumerate(p["items"])
        ]
        if not prices:
            raise errors.missing_param("items")
        for n, price in enumerate(prices):
            if price.recurring is None:
                raise errors.invalid(
                    "Subscriptions take recurring prices only.", f"items[{n}][price]"
                )
            if not price.active:
                raise errors.invalid("The price is not active.", f"items[{n}][price]")
        _same_cycle(prices, "items")
        currency = _one_currency(prices, c)
        pm_id = p.get("default_payment_method")
        if pm_id:
            self.payment_method(pm_id, "default_payment_method")
        anchor = int(p.get("billing_cycle_anchor") or now)
        if anchor < now:
            raise errors.invalid(
                "billing_cycle_anchor must be in the future.", "billing_cycle_anchor"
            )
        recurring = prices[0].recurring
        assert recurring is not None
        if anchor != now and anchor > period_end(now, recurring, 0):
            raise errors.invalid(
                "billing_cycle_anchor must be within one interval.", "billing_cycle_anchor"
            )
        collection = p.get("collection_method", "charge_automatically")
        behavior = p.get("payment_behavior", "allow_incomplete")
        if behavior == "error_if_incomplete" and collection == "charge_automatically":
            pm_for_charge = self.store.payment_methods.get(pm_id or c.default_payment_method or "")
            if pm_for_charge is None or pm_for_charge.decline_code is not None:
                # Stripe refuses the call and creates nothing.
                raise errors.card_declined(
                    (pm_for_charge.decline_code or "generic_decline")
                    if pm_for_charge
                    else "missing_payment_method"
                )
        days_until_due = p.get("days_until_due")
        if collection == "send_invoice" and days_until_due is None:
            days_until_due = 30
        if collection == "charge_automatically" and days_until_due is not None:
            raise errors.invalid("days_until_due is for send_invoice only.", "days_until_due")
        sub = Subscription(
            self._ids("sub"),
            c.id,
            currency,
            now,
            now,
            anchor,
            now,
            anchor if anchor != now else period_end(now, recurring, 0),
            default_payment_method=pm_id,
            collection_method=collection,
            days_until_due=days_until_due,
            metadata=_metadata(p),
            test_clock=c.test_clock,
            cancel_at_period_end=bool(p.get("cancel_at_period_end", False)),
        )
        if anchor != now:
            # A future anchor: the first period is a prorated stub up to the anchor.
            sub.cycles = -1
        c.currency = c.currency or currency
        self.store.subscriptions[sub.id] = sub
        for n, item in enumerate(p["items"]):
            self._add_item(sub, prices[n], item, now)
        self.event("customer.subscription.created", self._sub_json(sub), now)
        lines = []
        for item_id in sub.items:
            si = self.store.subscription_items[item_id]
            price = self.store.prices[si.price]
            if price.metered:
                continue
            amount = price.unit_amount * si.quantity
            if anchor != now:
                full_end = period_end(now, recurring, 0)
                amount = amount - proration(amount, now, full_end, anchor)
            lines.append(self._sub_line(sub, si, price, amount, now, sub.current_period_end))
        inv = self._new_invoice(c, sub, "subscription_create", now, now, now, lines)
        self._finalize(inv, now, charge=behavior != "default_incomplete")
        before_status = sub.status
        if inv.status == "paid" or sub.collection_method == "send_invoice":
            sub.status = "active"
        else:
            sub.status = "incomplete"
        if sub.status != before_status:
            self._updated(
                "customer.subscription.updated",
                {"status": before_status},
                self._sub_json(sub),
                now,
                keys=("status",),
            )
        return sub

    def _add_item(self, sub: Subscription, price: Price, item: Json, now: int) -> SubscriptionItem:
        quantity = item.get("quantity")
        if price.metered:
            if quantity is not None:
                raise errors.invalid("Metered prices take no quantity.", "quantity")
            quantity = 0
        elif quantity is None:
            quantity = 1
        si = SubscriptionItem(
            self._ids("si"), sub.id, price.id, int(quantity), now, _metadata(item)
        )
        self.store.subscription_items[si.id] = si
        sub.items.append(si.id)
        return si

    def _sub_json(self, sub: Subscription) -> Json:
        return render.subscription(self.store, sub)

    def _sub_line(
        self,
        sub: Subscription,
        si: SubscriptionItem,
        price: Price,
        amount: int,
        start: int,
        end: int,
        *,
        quantity: int | None = None,
    ) -> InvoiceLine:
        product = self.store.products[price.product]
        qty = si.quantity if quantity is None else quantity
        return InvoiceLine(
            "",
            "",
            amount,
            sub.currency,
            f"{qty} × {product.name}",
            qty,
            start,
            end,
            price.id,
            product.id,
            False,
            sub.id,
            si.id,
        )

    def update_subscription(self, sub_id: str, p: Json) -> Subscription:
        sub = self.subscription(sub_id, "subscription_exposed_id")
        if sub.status in ("canceled", "incomplete_expired"):
            raise errors.state("A canceled subscription can only update its metadata.")
        now = self.now(sub.test_clock)
        before = self._sub_json(sub)
        behavior = p.get("proration_behavior", "create_prorations")
        at = int(p.get("proration_date") or now)
        if not sub.current_period_start <= at <= sub.current_period_end:
            raise errors.invalid(
                "proration_date must be within the current period.", "proration_date"
            )
        pm = p.get("default_payment_method") or None
        if pm:
            self.payment_method(pm, "default_payment_method")
        if p.get("billing_cycle_anchor") == "now":
            raise errors.invalid(
                "Resetting the billing cycle is outside this simulator's subset.",
                "billing_cycle_anchor",
            )
        # Items validate before they change anything; the scalar fields below cannot fail.
        prorations: list[InvoiceItem] = []
        if p.get("items"):
            prorations = self._change_items(sub, p["items"], at, behavior, now)
        if "cancel_at_period_end" in p:
            sub.cancel_at_period_end = bool(p["cancel_at_period_end"])
            sub.cancel_at = sub.current_period_end if sub.cancel_at_period_end else None
            sub.cancellation_reason = "cancellation_requested" if sub.cancel_at_period_end else None
        if p.get("cancel_at"):
            sub.cancel_at = int(p["cancel_at"])
        if "default_payment_method" in p:
            sub.default_payment_method = pm
        if "metadata" in p:
            sub.metadata = _merge_metadata(sub.metadata, p["metadata"])
        if "collection_method" in p:
            sub.collection_method = p["collection_method"]
        self._updated("customer.subscription.updated", before, self._sub_json(sub), now)
        if behavior == "always_invoice" and prorations:
            c = self.customer(sub.customer)
            inv = self._new_invoice(
                c, sub, "subscription_update", now, now, now, [], pending_for=sub.id
            )
            self._finalize(inv, now)
            self._after_payment(sub, inv, now)
        return sub

    def _change_items(
        self, sub: Subscription, changes: list[Json], at: int, behavior: str, now: int
    ) -> list[InvoiceItem]:
        """Validate every change first, then apply; prorations credit old and debit new."""
        plan: list[tuple[str, SubscriptionItem | None, Price, int, Json]] = []
        remaining = list(sub.items)
        for n, change in enumerate(changes):
            item_id = change.get("id")
            if item_id is None:
                if not change.get("price"):
                    raise errors.missing_param(f"items[{n}][price]")
                price = self.price(change["price"], f"items[{n}][price]")
                if price.recurring is None:
                    raise errors.invalid(
                        "Subscriptions take recurring prices only.", f"items[{n}][price]"
                    )
                plan.append(("add", None, price, int(change.get("quantity", 1)), change))
                continue
            si = self.store.subscription_items.get(item_id)
            if si is None or si.id not in remaining:
                raise errors.no_such("subscription item", item_id, f"items[{n}][id]")
            old_price = self.store.prices[si.price]
            if change.get("deleted"):
                remaining.remove(si.id)
                plan.append(("delete", si, old_price, si.quantity, change))
                continue
            new_price = (
                self.price(change["price"], f"items[{n}][price]")
                if change.get("price")
                else old_price
            )
            if new_price.metered != old_price.metered or new_price.recurring is None:
                raise errors.invalid(
                    "Cannot switch between metered and licensed prices on an item.",
                    f"items[{n}][price]",
                )
            quantity = 0 if new_price.metered else int(change.get("quantity", si.quantity))
            plan.append(("change", si, new_price, quantity, change))
        kept = [
            self.store.prices[self.store.subscription_items[i].price]
            for i in remaining
            if not any(op == "change" and si is not None and si.id == i for op, si, *_ in plan)
        ]
        prices = kept + [price for op, _, price, _, _ in plan if op != "delete"]
        if not prices:
            raise errors.invalid("A subscription needs at least one item.", "items")
        _same_cycle(prices, "items")
        if any(pr.currency != sub.currency for pr in prices):
            raise errors.invalid("All prices on a subscription must share its currency.", "items")

        credits: list[tuple[SubscriptionItem, Price, int]] = []
        debits: list[tuple[SubscriptionItem, Price, int]] = []
        for op, item, price, quantity, change in plan:
            if op == "add":
                added = self._add_item(sub, price, change, now)
                debits.append((added, price, added.quantity))
                continue
            assert item is not None
            old_price = self.store.prices[item.price]
            if op == "delete":
                credits.append((item, old_price, item.quantity))
                sub.items.remove(item.id)
                continue
            if (price.id, quantity) != (old_price.id, item.quantity):
                credits.append((item, old_price, item.quantity))
                item.price, item.quantity = price.id, quantity
                debits.append((item, price, quantity))
            if "metadata" in change:
                item.metadata = _merge_metadata(item.metadata, change["metadata"])
        if behavior == "none":
            return []
        made = []
        start, end = sub.current_period_start, sub.current_period_end
        for sign, group in ((-1, credits), (1, debits)):
            for si, price, quantity in group:
                if price.metered or quantity == 0:
                    continue
                amount = sign * proration(price.unit_amount * quantity, start, end, at)
                if amount == 0:
                    continue
                product = self.store.products[price.product]
                label = "Unused time on" if sign < 0 else "Remaining time on"
                made.append(
                    self._invoice_item(
                        sub.customer,
                        amount,
                        sub.currency,
                        now,
                        at,
                        end,
                        f"{label} {quantity} × {product.name}",
                        quantity,
                        price.id,
                        True,
                        sub.id,
                        si.id,
                        sub.test_clock,
                    )
                )
        return made

    def _invoice_item(
        self,
        customer: str,
        amount: int,
        currency: str,
        now: int,
        start: int,
        end: int,
        description: str | None,
        quantity: int,
        price: str | None,
        is_proration: bool,
        subscription: str | None,
        item: str | None,
        test_clock: str | None,
        metadata: dict[str, str] | None = None,
    ) -> InvoiceItem:
        ii = InvoiceItem(
            self._ids("ii"),
            customer,
            amount,
            currency,
            now,
            start,
            end,
            description,
            quantity,
            price,
            is_proration,
            subscription,
            item,
            metadata=metadata or {},
            test_clock=test_clock,
        )
        self.store.invoice_items[ii.id] = ii
        self.event("invoiceitem.created", render.invoice_item(self.store, ii), now)
        return ii

    def cancel_subscription(self, sub_id: str, invoice_now: bool, prorate: bool) -> Subscription:
        sub = self.subscription(sub_id, "subscription_exposed_id")
        if sub.status in ("canceled", "incomplete_expired"):
            raise errors.state("This subscription is already canceled.")
        now = self.now(sub.test_clock)
        if prorate and sub.status in ("active", "past_due", "trialing"):
            for item_id in list(sub.items):
                si = self.store.subscription_items[item_id]
                price = self.store.prices[si.price]
                if price.metered or not si.quantity:
                    continue
                credit = proration(
                    price.unit_amount * si.quantity,
                    sub.current_period_start,
                    sub.current_period_end,
                    now,
                )
                if credit:
                    product = self.store.products[price.product]
                    self._invoice_item(
                        sub.customer,
                        -credit,
                        sub.currency,
                        now,
                        now,
                        sub.current_period_end,
                        f"Unused time on {si.quantity} × {product.name}",
                        si.quantity,
                        price.id,
                        True,
                        sub.id,
                        si.id,
                        sub.test_clock,
                    )
        end = sub.current_period_end
        self._end_subscription(sub, now, "cancellation_requested")
        if invoice_now:
            usage = self._usage_lines(sub, sub.current_period_start, now)
            c = self.customer(sub.customer)
            pending = self._pending(sub.customer, sub.id)
            if usage or pending:
                inv = self._new_invoice(
                    c,
                    sub,
                    "subscription_cycle",
                    now,
                    sub.current_period_start,
                    min(now, end),
                    usage,
                    pending_for=sub.id,
                )
                self._finalize(inv, now)
        return sub

    def _end_subscription(self, sub: Subscription, at: int, reason: str) -> None:
        before = self._sub_json(sub)
        sub.status = "canceled"
        sub.canceled_at = sub.canceled_at or at
        sub.ended_at = at
        sub.cancellation_reason = reason
        self._updated("customer.subscription.deleted", before, self._sub_json(sub), at)

    def create_subscription_item(self, p: Json) -> SubscriptionItem:
        sub = self.subscription(p["subscription"])
        self.update_subscription(
            sub.id,
            {
                "items": [{k: v for k, v in p.items() if k in ("price", "quantity", "metadata")}],
                **{k: v for k, v in p.items() if k in ("proration_behavior", "proration_date")},
            },
        )
        return self.store.subscription_items[sub.items[-1]]

    def update_subscription_item(self, item_id: str, p: Json) -> SubscriptionItem:
        si = self._item(item_id)
        change = {
            "id": si.id,
            **{k: v for k, v in p.items() if k in ("price", "quantity", "metadata")},
        }
        self.update_subscription(
            si.subscription,
            {
                "items": [change],
                **{k: v for k, v in p.items() if k in ("proration_behavior", "proration_date")},
            },
        )
        return si

    def delete_subscription_item(self, item_id: str, p: Json) -> SubscriptionItem:
        si = self._item(item_id)
        self.update_subscription(
            si.subscription,
            {
                "items": [{"id": si.id, "deleted": True}],
                **{k: v for k, v in p.items() if k in ("proration_behavior", "proration_date")},
            },
        )
        return si

    def _item(self, item_id: str) -> SubscriptionItem:
        si = self.store.subscription_items.get(item_id)
        if si is None:
            raise errors.no_such("subscription item", item_id, "item")
        return si

    # invoices --------------------------------------------------------------------------
    def _pending(self, customer: str, subscription: str | None) -> list[InvoiceItem]:
        return [
            ii
            for ii in self.store.invoice_items.where("customer", customer)
            if ii.invoice is None
            and not ii.deleted
            and (subscription is None or ii.subscription in (None, subscription))
        ]

    def _new_invoice(
        self,
        c: Customer,
        sub: Subscription | None,
        reason: str,
        now: int,
        start: int,
        end: int,
        lines: list[InvoiceLine],
        *,
        pending_for: str | None = None,
        include_pending: bool = True,
        collection: str | None = None,
    ) -> Invoice:
        currency = sub.currency if sub else (c.currency or "usd")
        inv = Invoice(
            self._ids("in"),
            c.id,
            currency,
            now,
            start,
            end,
            reason,
            collection or (sub.collection_method if sub else "charge_automatically"),
            sub.id if sub else None,
            test_clock=c.test_clock,
        )
        for line in lines:
            self._attach_line(inv, line)
        if include_pending:
            for ii in self._pending(c.id, pending_for if sub else None):
                if ii.currency != inv.currency:
                    continue
                self._attach_item(inv, ii)
        inv.amount_due = max(0, inv.total)
        if sub is not None:
            sub.latest_invoice = inv.id
        self.store.invoices[inv.id] = inv
        self.event("invoice.created", render.invoice(self.store, inv), now)
        return inv

    def _attach_item(self, inv: Invoice, ii: InvoiceItem) -> None:
        """A pending invoice item becomes a line of ``inv``."""
        ii.invoice = inv.id
        price = self.store.prices.get(ii.price) if ii.price else None
        self._attach_line(
            inv,
            InvoiceLine(
                "",
                inv.id,
                ii.amount,
                ii.currency,
                ii.description or "",
                ii.quantity,
                ii.period_start,
                ii.period_end,
                ii.price,
                price.product if price else None,
                ii.proration,
                ii.subscription,
                ii.subscription_item,
                ii.id,
                dict(ii.metadata),
            ),
        )

    def _attach_line(self, inv: Invoice, line: InvoiceLine) -> None:
        line.id = self._ids("il")
        line.invoice = inv.id
        inv.lines.append(line)

    def _finalize(self, inv: Invoice, now: int, *, charge: bool = True) -> None:
        """draft → open: number, customer balance applied, then payment when automatic."""
        c = self.store.customers[inv.customer]
        inv.starting_balance = c.balance
        inv.applied_balance = apply_balance(inv.total, c.balance)
        inv.amount_due = max(0, inv.total + inv.applied_balance)
        c.balance = c.balance - inv.applied_balance + min(inv.total, 0)
        inv.ending_balance = c.balance
        inv.status = "open"
        inv.finalized_at = now
        inv.number = f"{c.id[4:12].upper()}-{self.world.ids.counter('invoice:' + c.id):04d}"
        if inv.collection_method == "send_invoice":
            days = 30
            if inv.subscription:
                days = self.store.subscriptions[inv.subscription].days_until_due or 30
            inv.due_date = now + days * DAY
        self.event("invoice.finalized", render.invoice(self.store, inv), now)
        if inv.amount_due == 0:
            self._mark_paid(inv, now)
        elif inv.collection_method == "charge_automatically" and charge:
            self._attempt_payment(inv, now)

    def _payment_method_for(self, inv: Invoice) -> PaymentMethod | None:
        sub = self.store.subscriptions.get(inv.subscription or "")
        c = self.store.customers[inv.customer]
        pm_id = (sub.default_payment_method if sub else None) or c.default_payment_method
        return self.store.payment_methods.get(pm_id) if pm_id else None

    def _decline_code(self, inv: Invoice) -> str | None:
        pm = self._payment_method_for(inv)
        return "missing_payment_method" if pm is None else pm.decline_code

    def _attempt_payment(self, inv: Invoice, now: int) -> bool:
        inv.attempted = True
        inv.attempt_count += 1
        decline = self._decline_code(inv)
        if decline is None:
            self._mark_paid(inv, now)
            return True
        retries = RETRY_AFTER_DAYS
        inv.next_payment_attempt = (
            now + retries[inv.attempt_count - 1] * DAY
            if inv.attempt_count <= len(retries)
            else None
        )
        if inv.billing_reason == "subscription_create":
            # A first invoice is not retried: the subscription stays incomplete, then expires.
            inv.next_payment_attempt = None
        self.event("invoice.payment_failed", render.invoice(self.store, inv), now)
        sub = self.store.subscriptions.get(inv.subscription or "")
        if sub is not None and sub.status == "active" and sub.latest_invoice == inv.id:
            before = self._sub_json(sub)
            sub.status = "past_due"
            self._updated("customer.subscription.updated", before, self._sub_json(sub), now)
        if sub is not None and inv.next_payment_attempt is None and sub.status == "past_due":
            # Retries exhausted: Stripe's default is to cancel the subscription.
            self._end_subscription(sub, now, "payment_failed")
        return False

    def _mark_paid(self, inv: Invoice, now: int, *, out_of_band: bool = False) -> None:
        # Pre-payment credit notes have already lowered amount_due: what is paid is the rest.
        inv.amount_paid = inv.amount_due
        inv.status = "paid"
        inv.paid_at = now
        inv.next_payment_attempt = None
        inv.paid_out_of_band = out_of_band
        inv.auto_advance = False
        self.event("invoice.paid", render.invoice(self.store, inv), now)
        if not out_of_band and inv.amount_paid > 0:
            self.event("invoice.payment_succeeded", render.invoice(self.store, inv), now)

    def _after_payment(self, sub: Subscription, inv: Invoice, now: int) -> None:
        if inv.status == "paid" and sub.status in ("incomplete", "past_due"):
            before = self._sub_json(sub)
            sub.status = "active"
            self._updated("customer.subscription.updated", before, self._sub_json(sub), now)

    def create_invoice(self, p: Json) -> Invoice:
        c = self.customer(p["customer"])
        now = self.now(c.test_clock)
        sub = self.subscription(p["subscription"]) if p.get("subscription") else None
        include = p.get("pending_invoice_items_behavior", "exclude") == "include"
        inv = self._new_invoice(
            c,
            sub,
            "manual",
            now,
            now,
            now,
            [],
            pending_for=sub.id if sub else None,
            include_pending=include,
            collection=p.get("collection_method"),
        )
        inv.description = p.get("description")
        inv.metadata = _metadata(p)
        inv.auto_advance = bool(p.get("auto_advance", False))
        return inv

    def update_invoice(self, invoice_id: str, p: Json) -> Invoice:
        inv = self.invoice(invoice_id)
        before = render.invoice(self.store, inv)
        if inv.status != "draft" and set(p) - {"metadata", "expand"}:
            raise errors.state("Only draft invoices can be changed beyond metadata.")
        if "description" in p:
            inv.description = p["description"] or None
        if "auto_advance" in p:
            inv.auto_advance = bool(p["auto_advance"])
        if "metadata" in p:
            inv.metadata = _merge_metadata(inv.metadata, p["metadata"])
        self._updated(
            "invoice.updated", before, render.invoice(self.store, inv), self.now(inv.test_clock)
        )
        return inv

    def finalize_invoice(self, invoice_id: str, p: Json) -> Invoice:
        inv = self.invoice(invoice_id)
        if inv.status != "draft":
            raise errors.state(f"This invoice is already finalized (status {inv.status}).")
        if "auto_advance" in p:
            inv.auto_advance = bool(p["auto_advance"])
        now = self.now(inv.test_clock)
        self._finalize(inv, now)
        self._settle_subscription(inv, now)
        return inv

    def pay_invoice(self, invoice_id: str, p: Json) -> Invoice:
        inv = self.invoice(invoice_id)
        now = self.now(inv.test_clock)
        if inv.status == "paid":
            raise errors.state("Invoice is already paid.")
        if inv.status == "draft":
            self._finalize(inv, now)
            if inv.status == "paid":
                return inv
        if inv.status != "open":
            raise errors.state(f"You cannot pay an invoice with status {inv.status}.")
        if p.get("paid_out_of_band"):
            self._mark_paid(inv, now, out_of_band=True)
        else:
            if p.get("payment_method"):
                pm = self.payment_method(p["payment_method"])
                # Test tokens (pm_card_visa) stand for a fresh card each time, as in Stripe.
                if pm.customer not in (None, inv.customer) and pm.id not in TEST_PAYMENT_METHODS:
                    raise errors.invalid(
                        "The payment method belongs to another customer.", "payment_method"
                    )
                pm.customer = inv.customer
                decline = pm.decline_code
                if not inv.attempted:
                    inv.attempt_count += 1
                inv.attempted = True
                if decline is None:
                    self._mark_paid(inv, now)
                else:
                    self.event("invoice.payment_failed", render.invoice(self.store, inv), now)
            elif inv.attempted:
                # After the first attempt, manual payments neither count as attempts nor move
                # the retry schedule (Stripe's attempt_count).
                if self._decline_code(inv) is None:
                    self._mark_paid(inv, now)
                else:
                    self.event("invoice.payment_failed", render.invoice(self.store, inv), now)
            else:
                self._attempt_payment(inv, now)
            if inv.status != "paid":
                raise errors.card_declined(self._decline_code(inv) or "generic_decline")
        self._settle_subscription(inv, now)
        return inv

    def _settle_subscription(self, inv: Invoice, now: int) -> None:
        sub = self.store.subscriptions.get(inv.subscription or "")
        if sub is not None:
            self._after_payment(sub, inv, now)

    def void_invoice(self, invoice_id: str) -> Invoice:
        inv = self.invoice(invoice_id)
        if inv.status != "open":
            raise errors.state(f"You can only void an open invoice (status {inv.status}).")
        now = self.now(inv.test_clock)
        c = self.store.customers[inv.customer]
        # Voiding gives back the customer balance the invoice used or added.
        c.balance = c.balance + inv.applied_balance - min(inv.total, 0)
        inv.status = "void"
        inv.voided_at = now
        inv.next_payment_attempt = None
        inv.auto_advance = False
        self.event("invoice.voided", render.invoice(self.store, inv), now)
        return inv

    def mark_uncollectible(self, invoice_id: str) -> Invoice:
        inv = self.invoice(invoice_id)
        if inv.status != "open":
            raise errors.state(
                f"Only open invoices can be marked uncollectible (status {inv.status})."
            )
        now = self.now(inv.test_clock)
        inv.status = "uncollectible"
        inv.marked_uncollectible_at = now
        inv.next_payment_attempt = None
        self.event("invoice.marked_uncollectible", render.invoice(self.store, inv), now)
        return inv

    def preview_invoice(self, p: Json, show: Callable[[Invoice], None]) -> None:
        """Show the next invoice, computed on state that is thrown away afterwards."""
        snapshot = self.store.snapshot()
        ids = self.world.ids.snapshot()
        emit, self._emit = self._emit, lambda _e: None
        try:
            show(self._preview(p))
        finally:
            self._emit = emit
            self.store.restore(snapshot)
            self.world.ids.restore(ids)

    def _preview(self, p: Json) -> Invoice:
        c = self.customer(p["customer"]) if p.get("customer") else None
        sub = self.subscription(p["subscription"]) if p.get("subscription") else None
        if c is None and sub is None:
            raise errors.missing_param("customer")
        if sub is not None:
            c = self.customer(sub.customer)
            details = p.get("subscription_details") or {}
            if details.get("items") or details.get("cancel_at_period_end") is not None:
                change = {
                    k: v
                    for k, v in details.items()
                    if k
                    in ("items", "proration_behavior", "proration_date", "cancel_at_period_end")
                }
                behavior = change.get("proration_behavior", "create_prorations")
                change["proration_behavior"] = (
                    "create_prorations" if behavior == "always_invoice" else behavior
                )
                self.update_subscription(sub.id, change)
                if behavior == "always_invoice":
                    now = self.now(sub.test_clock)
                    return self._new_invoice(
                        c, sub, "subscription_update", now, now, now, [], pending_for=sub.id
                    )
            return self._renewal_invoice(sub, sub.current_period_end, finalize=False)
        assert c is not None
        now = self.now(c.test_clock)
        return self._new_invoice(c, None, "upcoming", now, now, now, [])

    def create_invoice_item(self, p: Json) -> InvoiceItem:
        c = self.customer(p["customer"])
        now = self.now(c.test_clock)
        price = None
        quantity = int(p.get("quantity", 1))
        if p.get("pricing", {}).get("price") or p.get("price"):
            price = self.price(p.get("pricing", {}).get("price") or p["price"], "pricing[price]")
            amount = price.unit_amount * quantity
            currency = price.currency
        else:
            if p.get("amount") is None:
                raise errors.missing_param("amount")
            if not p.get("currency"):
                raise errors.missing_param("currency")
            amount, currency = int(p["amount"]), p["currency"].lower()
        if c.currency and currency != c.currency:
            raise errors.invalid(
                f"The customer bills in {c.currency}; this item is in {currency}.", "currency"
            )
        period = p.get("period") or {}
        start, end = int(period.get("start", now)), int(period.get("end", now))
        if end < start:
            raise errors.invalid("period[end] must not be before period[start].", "period[end]")
        sub_id = p.get("subscription")
        if sub_id:
            self.subscription(sub_id)
        invoice_id = p.get("invoice")
        if invoice_id:
            inv = self.invoice(invoice_id)
            if inv.status != "draft" or inv.customer != c.id:
                raise errors.state(
                    "Items can only be added to a draft invoice of the same customer.", "invoice"
                )
        ii = self._invoice_item(
            c.id,
            amount,
            currency,
            now,
            start,
            end,
            p.get("description"),
            quantity,
            price.id if price else None,
            False,
            sub_id,
            None,
            c.test_clock,
            _metadata(p),
        )
        if invoice_id:
            inv = self.store.invoices[invoice_id]
            self._attach_item(inv, ii)
            inv.amount_due = max(0, inv.total)
        return ii

    def delete_invoice_item(self, item_id: str) -> InvoiceItem:
        ii = self.store.invoice_items.get(item_id)
        if ii is None or ii.deleted:
            raise errors.no_such("invoiceitem", item_id, "invoiceitem")
        if ii.invoice is not None and self.store.invoices[ii.invoice].status != "draft":
            raise errors.state("Invoice items on a finalized invoice cannot be deleted.")
        if ii.invoice is not None:
            inv = self.store.invoices[ii.invoice]
            inv.lines = [line for line in inv.lines if line.invoice_item != ii.id]
            inv.amount_due = max(0, inv.total)
        ii.deleted = True
        self.event(
            "invoiceitem.deleted", render.invoice_item(self.store, ii), self.now(ii.test_clock)
        )
        return ii

    # credit notes ----------------------------------------------------------------------
    def create_credit_note(self, p: Json) -> CreditNote:
        inv = self.invoice(p["invoice"])
        if inv.status not in ("open", "paid"):
            raise errors.state(
                f"Credit notes need an open or paid invoice (status {inv.status}).", "invoice"
            )
        now = self.now(inv.test_clock)
        lines = self._credit_lines(inv, p)
        total = sum(line.amount for line in lines)
        if total <= 0:
            raise errors.invalid("A credit note must credit a positive amount.", "amount")
        credited = sum(
            cn.total
            for cn in self.store.credit_notes.where("invoice", inv.id)
            if cn.status == "issued"
        )
        if credited + total > inv.total:
            raise errors.invalid(
                f"The credit note total {total} exceeds what remains "
                f"creditable on the invoice ({inv.total - credited}).",
                "amount",
                code="credit_note_amount_too_large",
            )
        refund = int(p.get("refund_amount", 0))
        credit = int(p.get("credit_amount", 0))
        oob = int(p.get("out_of_band_amount", 0))
        if inv.status == "open":
            if refund or oob:
                raise errors.invalid(
                    "An unpaid invoice can only be credited before payment.",
                    "refund_amount" if refund else "out_of_band_amount",
                )
            # Pre-payment reduces what is owed, never below zero; any excess is a balance credit.
            pre = min(total - credit, inv.amount_remaining)
            credit = total - pre
            kind = "pre_payment"
        else:
            pre = 0
            if refund + credit + oob == 0:
                credit = total
            if refund + credit + oob != total:
                raise errors.invalid(
                    "refund_amount, credit_amount and out_of_band_amount must "
                    "add up to the credit note total.",
                    "credit_amount",
                )
            if refund > inv.amount_paid - sum(
                cn.refund_amount
                for cn in self.store.credit_notes.where("invoice", inv.id)
                if cn.status == "issued"
            ):
                raise errors.invalid("Cannot refund more than was paid.", "refund_amount")
            kind = "post_payment"
        cn = CreditNote(
            self._ids("cn"),
            inv.id,
            inv.customer,
            f"{inv.number}-CN-{self.world.ids.counter('cn:' + inv.id):02d}",
            inv.currency,
            now,
            lines,
            kind,
            pre,
            refund,
            credit,
            oob,
            reason=p.get("reason"),
            memo=p.get("memo"),
            metadata=_metadata(p),
        )
        for line in cn.lines:
            line.id = self._ids("cnli")
        self.store.credit_notes[cn.id] = cn
        before = render.invoice(self.store, inv)
        inv.pre_payment_credit_notes_amount += pre
        inv.post_payment_credit_notes_amount += total - pre
        inv.amount_due -= pre
        self.store.customers[inv.customer].balance -= credit
        self.event("credit_note.created", render.credit_note(self.store, cn), now)
        if inv.status == "open" and inv.amount_remaining == 0:
            self._mark_paid(inv, now, out_of_band=True)
        else:
            self._updated("invoice.updated", before, render.invoice(self.store, inv), now)
        return cn

    def _credit_lines(self, inv: Invoice, p: Json) -> list[CreditNoteLine]:
        if p.get("lines"):
            lines = []
            by_id = {line.id: line for line in inv.lines}
            for n, line in enumerate(p["lines"]):
                kind = line.get("type", "invoice_line_item")
                if kind == "invoice_line_item":
                    target = by_id.get(line.get("invoice_line_item", ""))
                    if target is None:
                        raise errors.invalid(
                            "Unknown invoice line item.", f"lines[{n}][invoice_line_item]"
                        )
                    if line.get("amount") is not None:
                        amount = int(line["amount"])
                    elif line.get("quantity") is not None and target.quantity:
                        amount = target.amount * int(line["quantity"]) // target.quantity
                    else:
                        amount = target.amount
                    if not 0 < amount <= target.amount:
                        raise errors.invalid(
                            "The amount must be positive and at most the line amount.",
                            f"lines[{n}][amount]",
                        )
                    lines.append(
                        CreditNoteLine(
                            "",
                            amount,
                            kind,
                            line.get("description") or target.description,
                            line.get("quantity"),
                            None,
                            target.id,
                        )
                    )
                else:
                    unit = line.get("unit_amount")
                    if unit is None:
                        raise errors.missing_param(f"lines[{n}][unit_amount]")
                    quantity = int(line.get("quantity", 1))
                    lines.append(
                        CreditNoteLine(
                            "",
                            int(unit) * quantity,
                            kind,
                            line.get("description"),
                            quantity,
                            int(unit),
                            None,
                        )
                    )
            if p.get("amount") is not None and int(p["amount"]) != sum(x.amount for x in lines):
                raise errors.invalid("amount must equal the sum of the lines.", "amount")
            return lines
        if p.get("amount") is None:
            raise errors.missing_param("amount")
        return [
            CreditNoteLine(
                "",
                int(p["amount"]),
                "custom_line_item",
                p.get("memo") or "Credit",
                1,
                int(p["amount"]),
                None,
            )
        ]

    def void_credit_note(self, cn_id: str) -> CreditNote:
        cn = self.store.credit_notes.get(cn_id)
        if cn is None:
            raise errors.no_such("credit note", cn_id)
        if cn.status == "void":
            raise errors.state("This credit note is already void.")
        if cn.refund_amount:
            raise errors.state("A credit note with a refund cannot be voided.")
        inv = self.store.invoices[cn.invoice]
        if (
            cn.pre_payment_amount
            and inv.status == "paid"
            and inv.paid_out_of_band
            and inv.amount_paid == 0
        ):
            raise errors.state("The invoice this credit note settled is closed.")
        now = self.now(inv.test_clock)
        cn.status = "void"
        cn.voided_at = now
        inv.pre_payment_credit_notes_amount -= cn.pre_payment_amount
        inv.post_payment_credit_notes_amount -= cn.total - cn.pre_payment_amount
        inv.amount_due += cn.pre_payment_amount
        self.store.customers[inv.customer].balance += cn.credit_amount
        self.event("credit_note.voided", render.credit_note(self.store, cn), now)
        return cn

    # meters ----------------------------------------------------------------------------
    def create_meter(self, p: Json) -> Meter:
        if any(
            m.event_name == p["event_name"] and m.status == "active"
            for m in self.store.meters.values()
        ):
            raise errors.invalid("An active meter with this event_name exists.", "event_name")
        now = self.world.clock.now()
        m = Meter(
            self._ids("mtr"),
            now,
            p["display_name"],
            p["event_name"],
            (p.get("default_aggregation") or {}).get("formula", "sum"),
            (p.get("customer_mapping") or {}).get("event_payload_key", "stripe_customer_id"),
            (p.get("value_settings") or {}).get("event_payload_key", "value"),
            updated=now,
        )
        self.store.meters[m.id] = m
        return m

    def create_meter_event(self, p: Json) -> MeterEvent:
        meter = next(
            (
                m
                for m in self.store.meters.values()
                if m.event_name == p["event_name"] and m.status == "active"
            ),
            None,
        )
        if meter is None:
            raise errors.invalid(
                f"No active meter for event_name {p['event_name']!r}.", "event_name"
            )
        payload = {k: str(v) for k, v in p["payload"].items()}
        customer_id = payload.get(meter.customer_key)
        if not customer_id:
            raise errors.missing_param(f"payload[{meter.customer_key}]")
        c = self.customer(customer_id, f"payload[{meter.customer_key}]")
        raw = payload.get(meter.value_key, "1" if meter.formula == "count" else None)
        if raw is None:
            raise errors.missing_param(f"payload[{meter.value_key}]")
        try:
            value = float(raw)
        except ValueError:
            raise errors.invalid(
                "The meter value must be a number.", f"payload[{meter.value_key}]"
            ) from None
        if value != value or value in (float("inf"), float("-inf")):
            raise errors.invalid("The meter value must be finite.", f"payload[{meter.value_key}]")
        now = self.now(c.test_clock)
        ts = int(p.get("timestamp", now))
        if not now - LOOKBACK_S <= ts <= now + FUTURE_S:
            raise errors.invalid(
                "The timestamp must be within the past 35 days and at most "
                "5 minutes in the future.",
                "timestamp",
            )
        identifier = p.get("identifier") or self.world.ids.next("mev")
        event = MeterEvent(p["event_name"], identifier, c.id, value, ts, now, payload)
        if identifier in self.store.meter_identifiers:
            # A repeated identifier is acknowledged and ignored: usage counts once.
            return event
        self.store.add_meter_event(event)
        return event

    def usage(self, meter: Meter, customer: str, start: int, end: int) -> float:
        values = [
            e.value
            for e in self.store.meter_events_by.get((meter.event_name, customer), ())
            if start <= e.timestamp < end
        ]
        return aggregate(values, meter.formula)

    def _usage_lines(self, sub: Subscription, start: int, end: int) -> list[InvoiceLine]:
        lines = []
        for item_id in sub.items:
            si = self.store.subscription_items[item_id]
            price = self.store.prices[si.price]
            if not price.metered or price.recurring is None or price.recurring.meter is None:
                continue
            meter = self.store.meters[price.recurring.meter]
            quantity = self.usage(meter, sub.customer, start, end)
            # Fractional usage is billed in whole units rounded half-up (documented choice).
            units = int(quantity + 0.5) if quantity >= 0 else -int(-quantity + 0.5)
            line = self._sub_line(
                sub, si, price, price.unit_amount * units, start, end, quantity=units
            )
            lines.append(line)
        return lines

    # lifecycle on the clock ------------------------------------------------------------
    def _on_world_clock(self, before: int, now: int) -> None:
        self.run_until(None, now)

    def run_until(self, test_clock: str | None, target: int) -> None:
        """Run every due step of objects on this clock in time order up to ``target``."""
        while True:
            step = self._next_step(test_clock, target)
            if step is None:
                break
            at, action = step
            if test_clock is not None:
                self.store.test_clocks[test_clock].frozen_time = at
            action(at)
        if test_clock is not None:
            self.store.test_clocks[test_clock].frozen_time = target

    def _next_step(
        self, test_clock: str | None, target: int
    ) -> tuple[int, Callable[[int], None]] | None:
        best: tuple[int, int, Callable[[int], None]] | None = None
        order = 0

        def offer(at: int, action: Callable[[int], None]) -> None:
            nonlocal best, order
            order += 1
            if at <= target and (best is None or (at, order) < best[:2]):
                best = (at, order, action)

        for sub in self._live("subscriptions", _ENDED_SUBSCRIPTION):
            if sub.test_clock != test_clock:
                continue
            if (
                sub.cancel_at is not None
                and sub.cancel_at <= sub.current_period_end
                and not sub.cancel_at_period_end
            ):
                offer(sub.cancel_at, functools.partial(self._cancel_due, sub))
            elif sub.status in ("active", "past_due", "trialing"):
                offer(sub.current_period_end, functools.partial(self._renew, sub))
            elif sub.status == "incomplete":
                offer(sub.created + 23 * 3600, functools.partial(self._expire, sub))
        for inv in self._live("invoices", _SETTLED_INVOICE):
            if inv.test_clock != test_clock:
                continue
            if inv.status == "draft" and inv.auto_advance:
                offer(inv.created + FINALIZE_AFTER_S, functools.partial(self._auto_finalize, inv))
            elif (
                inv.status == "open"
                and inv.next_payment_attempt is not None
                and inv.collection_method == "charge_automatically"
            ):
                offer(inv.next_payment_attempt, functools.partial(self._retry, inv))
        return None if best is None else (best[0], best[2])

    def _live(self, name: str, ended: frozenset[str]) -> list[Any]:
        """Rows of a table that may still have a step, in table order, without reading the rest.

        A row whose status is in ``ended`` never has a step again (those statuses are final),
        so it leaves the live set for good; new rows join it as they are inserted."""
        table: Table[Any] = getattr(self.store, name)
        live, mark, owner = self._live_rows.get(name, ({}, None, None))
        added, mark = table.added_since(mark if owner is table else None)
        if added is None:
            live = dict.fromkeys(table)
        else:
            for key in added:
                live.pop(key, None)  # re-inserted: its place is at the end now
                live[key] = None
        self._live_rows[name] = (live, mark, table)
        rows = []
        for key in list(live):
            row = table.get(key)
            if row is None or row.status in ended:
                del live[key]
            else:
                rows.append(row)
        return rows

    def _renew(self, sub: Subscription, at: int) -> None:
        if sub.cancel_at_period_end or (
            sub.cancel_at is not None and sub.cancel_at <= sub.current_period_end
        ):
            usage = self._usage_lines(sub, sub.current_period_start, sub.current_period_end)
            self._end_subscription(sub, sub.current_period_end, "cancellation_requested")
            if any(line.amount for line in usage) or self._pending(sub.customer, sub.id):
                c = self.store.customers[sub.customer]
                inv = self._new_invoice(
                    c,
                    sub,
                    "subscription_cycle",
                    at,
                    sub.current_period_start,
                    sub.current_period_end,
                    usage,
                    pending_for=sub.id,
                )
                self._finalize(inv, at)
            return
        self._renewal_invoice(sub, at, finalize=True)

    def _renewal_invoice(self, sub: Subscription, at: int, *, finalize: bool) -> Invoice:
        """Close the period: usage in arrears, licensed items in advance, pending prorations."""
        before = self._sub_json(sub)
        old_start, old_end = sub.current_period_start, sub.current_period_end
        usage = self._usage_lines(sub, old_start, old_end)
        sub.cycles += 1
        first_price = self.store.prices[self.store.subscription_items[sub.items[0]].price]
        assert first_price.recurring is not None
        sub.current_period_start = old_end
        sub.current_period_end = period_end(
            sub.billing_cycle_anchor, first_price.recurring, sub.cycles
        )
        lines = list(usage)
        for item_id in sub.items:
            si = self.store.subscription_items[item_id]
            price = self.store.prices[si.price]
            if price.metered:
                continue
            lines.append(
                self._sub_line(
                    sub,
                    si,
                    price,
                    price.unit_amount * si.quantity,
                    sub.current_period_start,
                    sub.current_period_end,
                )
            )
        c = self.store.customers[sub.customer]
        inv = self._new_invoice(
            c, sub, "subscription_cycle", at, old_start, old_end, lines, pending_for=sub.id
        )
        inv.auto_advance = finalize
        self._updated(
            "customer.subscription.updated", before, self._sub_json(sub), at, keys=("items",)
        )
        return inv

    def _auto_finalize(self, inv: Invoice, at: int) -> None:
        self._finalize(inv, at)
        self._settle_subscription(inv, at)

    def _retry(self, inv: Invoice, at: int) -> None:
        if self._attempt_payment(inv, at):
            self._settle_subscription(inv, at)

    def _expire(self, sub: Subscription, at: int) -> None:
        before = self._sub_json(sub)
        sub.status = "incomplete_expired"
        sub.ended_at = at
        self._updated("customer.subscription.deleted", before, self._sub_json(sub), at)
        inv = self.store.invoices.get(sub.latest_invoice or "")
        if inv is not None and inv.status == "open":
            self.void_invoice(inv.id)

    def _cancel_due(self, sub: Subscription, at: int) -> None:
        self._end_subscription(sub, at, "cancellation_requested")

    # test clocks -----------------------------------------------------------------------
    def create_test_clock(self, p: Json) -> TestClock:
        now = self.world.clock.now()
        clock = TestClock(self._ids("clock"), now, int(p["frozen_time"]), p.get("name"))
        self.store.test_clocks[clock.id] = clock
        self.event("test_helpers.test_clock.created", render.test_clock(self.store, clock), now)
        return clock

    def test_clock(self, clock_id: str) -> TestClock:
        return self._get(self.store.test_clocks, clock_id, "test_clock", "test_clock")

    def advance_test_clock(self, clock_id: str, frozen_time: int) -> TestClock:
        clock = self.test_clock(clock_id)
        if frozen_time <= clock.frozen_time:
            raise errors.invalid(
                "The test clock can only move forward: frozen_time must be "
                "after the current frozen_time.",
                "frozen_time",
            )
        self.run_until(clock.id, frozen_time)
        self.event(
            "test_helpers.test_clock.ready",
            render.test_clock(self.store, clock),
            self.world.clock.now(),
        )
        return clock

    def delete_test_clock(self, clock_id: str) -> TestClock:
        clock = self.test_clock(clock_id)
        for c in self.store.customers.values():
            if c.test_clock == clock.id and not c.deleted:
                self.delete_customer(c.id)
        clock.deleted = True
        self.event(
            "test_helpers.test_clock.deleted",
            render.test_clock(self.store, clock),
            self.world.clock.now(),
        )
        return clock

    # webhook endpoints -----------------------------------------------------------------
    def create_webhook_endpoint(self, p: Json) -> WebhookEndpointRecord:
        now = self.world.clock.now()
        w = WebhookEndpointRecord(
            self._ids("we"),
            now,
            p["url"],
            list(p["enabled_events"]),
            f"whsec_{self.world.ids.token('whsec', 32)}",
            description=p.get("description"),
            api_version=p.get("api_version"),
            metadata=_metadata(p),
        )
        self.store.webhook_endpoints[w.id] = w
        return w

    def webhook_endpoint(self, endpoint_id: str) -> WebhookEndpointRecord:
        return self._get(
            self.store.webhook_endpoints, endpoint_id, "webhook endpoint", "webhook_endpoint"
        )

    def update_webhook_endpoint(self, endpoint_id: str, p: Json) -> WebhookEndpointRecord:
        w = self.webhook_endpoint(endpoint_id)
        if "url" in p:
            w.url = p["url"]
        if "enabled_events" in p:
            w.enabled_events = list(p["enabled_events"])
        if "disabled" in p:
            w.status = "disabled" if p["disabled"] else "enabled"
        if "description" in p:
            w.description = p["description"] or None
        if "metadata" in p:
            w.metadata = _merge_metadata(w.metadata, p["metadata"])
        return w

    def delete_webhook_endpoint(self, endpoint_id: str) -> WebhookEndpointRecord:
        w = self.webhook_endpoint(endpoint_id)
        w.deleted = True
        return w

    # events ----------------------------------------------------------------------------
    def list_events(self, types: list[str] | None) -> list[Event]:
        if not types:
            return list(self.store.events)
        return [e for e in self.store.events if any(fnmatch.fnmatchcase(e.type, t) for t in types)]

    def _updated(
        self, kind: str, before: Json, after: Json, at: int, keys: tuple[str, ...] | None = None
    ) -> None:
        previous = {k: before.get(k) for k in (keys or after) if before.get(k) != after.get(k)}
        if kind.endswith(".deleted") or previous:
            self.event(kind, after, at, previous or None)


def _metadata(p: Json) -> dict[str, str]:
    value = p.get("metadata")
    return dict(value) if isinstance(value, dict) else {}


def _merge_metadata(current: dict[str, str], update: Any) -> dict[str, str]:
    """Stripe merges metadata; an empty value removes a key and "" clears everything."""
    if not isinstance(update, dict):
        return {}
    merged = dict(current)
    for key, value in update.items():
        if value in ("", None):
            merged.pop(key, None)
        else:
            merged[key] = str(value)
    return merged


def _same_cycle(prices: list[Price], param: str) -> None:
    cycles = {(p.recurring.interval, p.recurring.interval_count) for p in prices if p.recurring}
    if len(cycles) > 1:
        raise errors.invalid(
            "All prices on a subscription must have the same billing interval.", param
        )


def _one_currency(prices: list[Price], c: Customer) -> str:
    currencies = {p.currency for p in prices}
    if len(currencies) > 1:
        raise errors.invalid("All prices on a subscription must share one currency.", "items")
    currency = currencies.pop()
    if c.currency and c.currency != currency:
        raise errors.invalid(
            f"The customer bills in {c.currency}; these prices are in {currency}.", "items"
        )
    return currency


def event_payload(evt_json: Json) -> bytes:
    return orjson.dumps(evt_json)


__all__ = ["BillingBackend", "SimError"]

"""Subscriptions and their items: creation, changes with prorations, cancellation."""

from __future__ import annotations

from simulators.billing import errors
from simulators.billing.backend.base import BackendBase, Created, Listing, created_within
from simulators.billing.backend.discounts import DiscountPlan
from simulators.billing.models import (
    Customer,
    InvoiceItem,
    InvoiceLine,
    Price,
    Subscription,
    SubscriptionItem,
    period_end,
    proration,
)
from simulators.billing.params import (
    UNSET,
    DiscountSpec,
    ItemChange,
    ItemSpec,
    MetadataUpdate,
    Opt,
    assign,
    merge_metadata,
)

_ENDED = ("canceled", "incomplete_expired")


class SubscriptionOps(BackendBase):
    def create_subscription(
        self,
        *,
        customer: str,
        items: list[ItemSpec],
        default_payment_method: str | None = None,
        billing_cycle_anchor: int | None = None,
        collection_method: str = "charge_automatically",
        payment_behavior: str = "allow_incomplete",
        days_until_due: int | None = None,
        metadata: dict[str, str] | None = None,
        cancel_at_period_end: bool = False,
        default_tax_rates: list[str] | None = None,
        automatic_tax: bool = False,
        discounts: list[DiscountSpec] | None = None,
        trial_period_days: int | None = None,
        trial_end: int | None = None,
        cancel_at: int | None = None,
    ) -> Subscription:
        c = self.customer(customer)
        now = self.now(c.test_clock)
        trial_ends = _trial_end(now, trial_period_days, trial_end, billing_cycle_anchor)
        if cancel_at is not None and cancel_at <= now:
            raise errors.invalid("cancel_at must be in the future.", "cancel_at")
        rates = self.billing.usable_tax_rates(default_tax_rates or [], "default_tax_rates")
        item_rates = [
            self.billing.usable_tax_rates(item.tax_rates, f"items[{n}][tax_rates]")
            for n, item in enumerate(items)
        ]
        self.billing.check_tax_choice(c, automatic_tax, bool(rates) or any(item_rates))
        prices = [self.price(item.price, f"items[{n}][price]") for n, item in enumerate(items)]
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
        plan = self.billing.plan_discounts(
            discounts or [], "discounts", now, currency=currency, customer=c.id
        )
        item_plans = [
            self.billing.plan_discounts(
                item.discounts, f"items[{n}][discounts]", now, currency=currency, customer=c.id
            )
            for n, item in enumerate(items)
        ]
        pm_id = default_payment_method
        if pm_id:
            self.payment_method(pm_id, "default_payment_method")
        anchor = trial_ends or billing_cycle_anchor or now
        if anchor < now:
            raise errors.invalid(
                "billing_cycle_anchor must be in the future.", "billing_cycle_anchor"
            )
        recurring = prices[0].recurring
        assert recurring is not None
        if anchor != now and anchor > period_end(now, recurring, 0) and trial_ends is None:
            raise errors.invalid(
                "billing_cycle_anchor must be within one interval.", "billing_cycle_anchor"
            )
        collection = collection_method
        if payment_behavior == "error_if_incomplete" and collection == "charge_automatically":
            pm_for_charge = self.store.payment_methods.get(pm_id or c.default_payment_method or "")
            if pm_for_charge is None or pm_for_charge.decline_code is not None:
                # Stripe refuses the call and creates nothing.
                raise errors.card_declined(
                    (pm_for_charge.decline_code or "generic_decline")
                    if pm_for_charge
                    else "missing_payment_method"
                )
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
            metadata=dict(metadata or {}),
            test_clock=c.test_clock,
            cancel_at_period_end=cancel_at_period_end,
            default_tax_rates=rates,
            automatic_tax=automatic_tax,
            cancel_at=cancel_at,
        )
        if anchor != now:
            # A future anchor (or a trial's end): the first period runs up to it.
            sub.cycles = -1
        if trial_ends is not None:
            sub.status, sub.trial_start, sub.trial_end = "trialing", now, trial_ends
        c.currency = c.currency or currency
        sub.discounts = self.billing.commit_discounts(plan, now, customer=c.id, subscription=sub.id)
        self.store.subscriptions[sub.id] = sub
        for n, item in enumerate(items):
            si = self._add_item(sub, prices[n], item.quantity, item.metadata, now, item_rates[n])
            si.discounts = self.billing.commit_discounts(
                item_plans[n], now, customer=c.id, subscription=sub.id, subscription_item=si.id
            )
        self.event("customer.subscription.created", self._sub_json(sub), now)
        lines = []
        for item_id in sub.items:
            si = self.store.subscription_items[item_id]
            price = self.store.prices[si.price]
            if price.metered:
                continue
            amount = price.amount_for(si.quantity)
            if trial_ends is not None:
                amount = 0  # the trial: a first invoice of nothing
            elif anchor != now:
                full_end = period_end(now, recurring, 0)
                amount = amount - proration(amount, now, full_end, anchor)
            line = self._sub_line(sub, si, price, amount, now, sub.current_period_end)
            if trial_ends is not None:
                line.description = f"Trial period for {self.store.products[price.product].name}"
            lines.append(line)
        inv = self.billing._new_invoice(c, sub, "subscription_create", now, now, now, lines)
        self.billing._finalize(inv, now, charge=payment_behavior != "default_incomplete")
        before_status = sub.status
        if sub.status == "trialing":
            self.billing._trial_will_end(sub, now, early=True)
        elif inv.status == "paid" or sub.collection_method == "send_invoice":
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

    def _add_item(
        self,
        sub: Subscription,
        price: Price,
        quantity: int | None,
        metadata: dict[str, str],
        now: int,
        tax_rates: list[str] | None = None,
    ) -> SubscriptionItem:
        if price.metered:
            if quantity is not None:
                raise errors.invalid("Metered prices take no quantity.", "quantity")
            quantity = 0
        elif quantity is None:
            quantity = 1
        si = SubscriptionItem(
            self._ids("si"), sub.id, price.id, quantity, now, dict(metadata), list(tax_rates or [])
        )
        self.store.subscription_items[si.id] = si
        sub.items.append(si.id)
        return si

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
            tax_rates=list(si.tax_rates),
            discounts=[d for d in si.discounts if self.store.discounts[d].active(start)],
        )

    def update_subscription(
        self,
        sub_id: str,
        *,
        items: list[ItemChange] | None = None,
        proration_behavior: str = "create_prorations",
        proration_date: int | None = None,
        default_payment_method: Opt[str | None] = UNSET,
        reset_billing_cycle_anchor: bool = False,
        cancel_at_period_end: Opt[bool] = UNSET,
        cancel_at: Opt[int | None] = UNSET,
        trial_end: Opt[int | str] = UNSET,
        pause_collection: Opt[tuple[str, int | None] | None] = UNSET,
        metadata: Opt[MetadataUpdate] = UNSET,
        collection_method: Opt[str] = UNSET,
        default_tax_rates: Opt[list[str]] = UNSET,
        automatic_tax: Opt[bool] = UNSET,
        discounts: Opt[list[DiscountSpec]] = UNSET,
    ) -> Subscription:
        sub = self.subscription(sub_id, "subscription_exposed_id")
        if sub.status in _ENDED:
            raise errors.state("A canceled subscription can only update its metadata.")
        now = self.now(sub.test_clock)
        if default_tax_rates is not UNSET:
            default_tax_rates = self.billing.usable_tax_rates(
                default_tax_rates, "default_tax_rates"
            )
        self.billing.check_tax_choice(
            self.customer(sub.customer),
            sub.automatic_tax if automatic_tax is UNSET else automatic_tax,
            bool(sub.default_tax_rates if default_tax_rates is UNSET else default_tax_rates)
            or any(change.tax_rates for change in items or [] if change.tax_rates is not UNSET),
        )
        before = self._sub_json(sub)
        at = proration_date or now
        if not sub.current_period_start <= at <= sub.current_period_end:
            raise errors.invalid(
                "proration_date must be within the current period.", "proration_date"
            )
        pm = default_payment_method if isinstance(default_payment_method, str) else None
        if pm:
            self.payment_method(pm, "default_payment_method")
        if reset_billing_cycle_anchor:
            raise errors.invalid(
                "Resetting the billing cycle is outside this simulator's subset.",
                "billing_cycle_anchor",
            )
        plan = None
        if discounts is not UNSET:
            plan = self.billing.plan_discounts(
                discounts, "discounts", now, currency=sub.currency, customer=sub.customer
            )
        if trial_end is not UNSET:
            self.billing._check_trial_change(sub, trial_end, now)
        if cancel_at is not UNSET:
            self.billing._check_cancel_at(cancel_at, now)
        if pause_collection is not UNSET:
            self.billing._check_pause(pause_collection, now)
        # Items validate before they change anything; the scalar fields below cannot fail.
        prorations: list[InvoiceItem] = []
        if items:
            prorations = self._change_items(sub, items, at, proration_behavior, now)
        if cancel_at_period_end is not UNSET:
            sub.cancel_at_period_end = cancel_at_period_end
            sub.cancel_at = sub.current_period_end if sub.cancel_at_period_end else None
            sub.cancellation_reason = "cancellation_requested" if sub.cancel_at_period_end else None
        if cancel_at is not UNSET:
            prorations += self.billing._cancel_at_prorations(
                sub, sub.cancel_at, cancel_at, proration_behavior, now
            )
            sub.cancel_at = cancel_at
            sub.cancel_at_period_end = False
        if pause_collection is not UNSET:
            sub.pause_behavior, sub.pause_resumes_at = pause_collection or (None, None)
        if default_payment_method is not UNSET:
            sub.default_payment_method = pm
        if plan is not None:
            sub.discounts = self.billing.commit_discounts(
                plan, now, customer=sub.customer, subscription=sub.id
            )
        assign(
            sub,
            collection_method=collection_method,
            metadata=metadata,
            default_tax_rates=default_tax_rates,
            automatic_tax=automatic_tax,
        )
        self._updated("customer.subscription.updated", before, self._sub_json(sub), now)
        if trial_end is not UNSET:
            self.billing._move_trial_end(sub, trial_end, now)
        if proration_behavior == "always_invoice" and prorations:
            c = self.customer(sub.customer)
            inv = self.billing._new_invoice(c, sub, "subscription_update", now, now, now, [])
            self.billing._finalize(inv, now)
            self.billing._after_payment(sub, inv, now)
        return sub

    def _change_items(
        self,
        sub: Subscription,
        changes: list[ItemChange],
        at: int,
        behavior: str,
        now: int,
    ) -> list[InvoiceItem]:
        """Validate every change first, then apply; prorations credit old and debit new."""
        plan: list[tuple[str, SubscriptionItem | None, Price, int, ItemChange]] = []
        discount_plans: dict[int, DiscountPlan] = {}
        remaining = list(sub.items)
        for n, change in enumerate(changes):
            if change.discounts is not UNSET:
                discount_plans[n] = self.billing.plan_discounts(
                    change.discounts,
                    f"items[{n}][discounts]",
                    now,
                    currency=sub.currency,
                    customer=sub.customer,
                )
            if change.tax_rates is not UNSET:
                self.billing.usable_tax_rates(change.tax_rates, f"items[{n}][tax_rates]")
            if change.id is not None and change.metadata is not UNSET:
                current = self.store.subscription_items.get(change.id)
                merge_metadata(current.metadata if current else {}, change.metadata)
            if change.id is None:
                if not change.price:
                    raise errors.missing_param(f"items[{n}][price]")
                price = self.price(change.price, f"items[{n}][price]")
                if price.recurring is None:
                    raise errors.invalid(
                        "Subscriptions take recurring prices only.", f"items[{n}][price]"
                    )
                quantity = 1 if change.quantity is None else change.quantity
                plan.append(("add", None, price, quantity, change))
                continue
            si = self.store.subscription_items.get(change.id)
            if si is None or si.id not in remaining:
                raise errors.no_such("subscription item", change.id, f"items[{n}][id]")
            old_price = self.store.prices[si.price]
            if change.deleted:
                remaining.remove(si.id)
                plan.append(("delete", si, old_price, si.quantity, change))
                continue
            new_price = (
                self.price(change.price, f"items[{n}][price]") if change.price else old_price
            )
            if new_price.metered != old_price.metered or new_price.recurring is None:
                raise errors.invalid(
                    "Cannot switch between metered and licensed prices on an item.",
                    f"items[{n}][price]",
                )
            if new_price.metered:
                quantity = 0
            else:
                quantity = si.quantity if change.quantity is None else change.quantity
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
        for n, (op, item, price, quantity, change) in enumerate(plan):
            item_discounts = discount_plans.get(n)
            if op == "add":
                fresh = change.metadata if isinstance(change.metadata, dict) else {}
                rates = change.tax_rates if isinstance(change.tax_rates, list) else []
                added = self._add_item(sub, price, change.quantity, fresh, now, rates)
                if item_discounts is not None:
                    added.discounts = self._item_discounts(sub, added, item_discounts, now)
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
            if change.metadata is not UNSET:
                item.metadata = merge_metadata(item.metadata, change.metadata)
            if change.tax_rates is not UNSET:
                item.tax_rates = list(dict.fromkeys(change.tax_rates))
            if item_discounts is not None:
                item.discounts = self._item_discounts(sub, item, item_discounts, now)
        if behavior == "none" or sub.status == "trialing":
            return []  # nothing was charged for a trial: nothing to prorate
        made = []
        start, end = sub.current_period_start, sub.current_period_end
        for sign, group in ((-1, credits), (1, debits)):
            for si, price, quantity in group:
                if price.metered or quantity == 0:
                    continue
                base = self._period_amount(sub, si, price, quantity, at)
                amount = sign * proration(base, start, end, at)
                if amount == 0:
                    continue
                made.append(self._proration_item(sub, si, price, quantity, amount, at, end, now))
        return made

    def _proration_item(
        self,
        sub: Subscription,
        si: SubscriptionItem,
        price: Price,
        quantity: int,
        amount: int,
        start: int,
        end: int,
        now: int,
    ) -> InvoiceItem:
        """A pending proration for ``quantity`` × ``price`` over [start, end): a credit for
        unused time (negative) or a debit for the remaining time, with the item's tax rates."""
        product = self.store.products[price.product]
        label = "Unused time on" if amount < 0 else "Remaining time on"
        return self.billing._invoice_item(
            sub.customer,
            amount,
            sub.currency,
            now,
            start,
            end,
            f"{label} {quantity} × {product.name}",
            quantity,
            price.id,
            True,
            sub.id,
            si.id,
            sub.test_clock,
            tax_rates=si.tax_rates,
        )

    def cancel_subscription(
        self, sub_id: str, *, invoice_now: bool = False, prorate: bool = False
    ) -> Subscription:
        sub = self.subscription(sub_id, "subscription_exposed_id")
        if sub.status in _ENDED:
            raise errors.state("This subscription is already canceled.")
        now = self.now(sub.test_clock)
        if prorate and sub.status in ("active", "past_due"):
            for item_id in list(sub.items):
                si = self.store.subscription_items[item_id]
                price = self.store.prices[si.price]
                if price.metered or not si.quantity:
                    continue
                credit = proration(
                    self._period_amount(sub, si, price, si.quantity, now),
                    sub.current_period_start,
                    sub.current_period_end,
                    now,
                )
                if credit:
                    end = sub.current_period_end
                    self._proration_item(sub, si, price, si.quantity, -credit, now, end, now)
        end = sub.current_period_end
        self._end_subscription(sub, now, "cancellation_requested")
        if invoice_now:
            usage = self.billing._usage_lines(sub, sub.current_period_start, now)
            c = self.customer(sub.customer)
            pending = self.billing._pending(sub.customer, sub.id)
            if usage or pending:
                inv = self.billing._new_invoice(
                    c,
                    sub,
                    "subscription_cycle",
                    now,
                    sub.current_period_start,
                    min(now, end),
                    usage,
                )
                self.billing._finalize(inv, now)
        return sub

    def _item_discounts(
        self, sub: Subscription, si: SubscriptionItem, plan: DiscountPlan, at: int
    ) -> list[str]:
        return self.billing.commit_discounts(
            plan, at, customer=sub.customer, subscription=sub.id, subscription_item=si.id
        )

    def _period_amount(
        self, sub: Subscription, si: SubscriptionItem, price: Price, quantity: int, at: int
    ) -> int:
        """What a whole period of ``quantity`` × ``price`` costs after the item's and the
        subscription's (else the customer's) percentage discounts: the base of a proration,
        so prorations include discounts as Stripe's classic billing does."""
        c = self.store.customers[sub.customer]
        invoice_level = sub.discounts or ([c.discount] if c.discount else [])
        return self.billing.discounted(
            price.amount_for(quantity), [*si.discounts, *invoice_level], at, price.product
        )

    def _end_subscription(self, sub: Subscription, at: int, reason: str) -> None:
        before = self._sub_json(sub)
        sub.status = "canceled"
        sub.canceled_at = sub.canceled_at or at
        sub.ended_at = at
        sub.cancellation_reason = reason
        self._updated("customer.subscription.deleted", before, self._sub_json(sub), at)

    def list_subscriptions(
        self,
        *,
        customer: str | None = None,
        price: str | None = None,
        status: str | None = None,
        test_clock: str | None = None,
        created: Created = None,
    ) -> Listing:
        items = self.store.subscription_items
        return Listing(
            self.store.subscriptions,
            lambda sub: (
                created_within(created, sub.created)
                and customer in (None, sub.customer)
                and test_clock in (None, sub.test_clock)
                and (
                    status == "all"
                    or (status is None and sub.status not in _ENDED)
                    or status == sub.status
                )
                and (price is None or any(items[i].price == price for i in sub.items))
            ),
        )

    # subscription items ----------------------------------------------------------------
    def subscription_items(self, sub_id: str) -> list[SubscriptionItem]:
        sub = self.subscription(sub_id)
        return [self.store.subscription_items[i] for i in sub.items]

    def create_subscription_item(
        self,
        *,
        subscription: str,
        price: str,
        quantity: int | None = None,
        metadata: dict[str, str] | None = None,
        proration_behavior: str = "create_prorations",
        proration_date: int | None = None,
    ) -> SubscriptionItem:
        sub = self.subscription(subscription)
        add = ItemChange(None, price, quantity, metadata=dict(metadata or {}))
        self.update_subscription(
            sub.id,
            items=[add],
            proration_behavior=proration_behavior,
            proration_date=proration_date,
        )
        return self.store.subscription_items[sub.items[-1]]

    def update_subscription_item(
        self,
        item_id: str,
        *,
        price: str | None = None,
        quantity: int | None = None,
        metadata: Opt[MetadataUpdate] = UNSET,
        proration_behavior: str = "create_prorations",
        proration_date: int | None = None,
    ) -> SubscriptionItem:
        si = self.subscription_item(item_id)
        self.update_subscription(
            si.subscription,
            items=[ItemChange(si.id, price, quantity, metadata=metadata)],
            proration_behavior=proration_behavior,
            proration_date=proration_date,
        )
        return si

    def delete_subscription_item(
        self,
        item_id: str,
        *,
        proration_behavior: str = "create_prorations",
        proration_date: int | None = None,
    ) -> SubscriptionItem:
        si = self.subscription_item(item_id)
        self.update_subscription(
            si.subscription,
            items=[ItemChange(si.id, deleted=True)],
            proration_behavior=proration_behavior,
            proration_date=proration_date,
        )
        return si

    def subscription_item(self, item_id: str) -> SubscriptionItem:
        si = self.store.subscription_items.get(item_id)
        if si is None:
            raise errors.no_such("subscription item", item_id, "item")
        return si


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


MAX_TRIAL_DAYS = 730


def _trial_end(now: int, days: int | None, end: int | None, anchor: int | None) -> int | None:
    """When a new subscription's trial ends (None: no trial)."""
    if days is not None and end is not None:
        raise errors.invalid("Pass either trial_period_days or trial_end, not both.", "trial_end")
    if days is not None and not 1 <= days <= MAX_TRIAL_DAYS:
        raise errors.invalid(
            f"trial_period_days must be between 1 and {MAX_TRIAL_DAYS}.", "trial_period_days"
        )
    ends = now + days * 86400 if days is not None else end
    if ends is None:
        return None
    if ends <= now:
        raise errors.invalid("trial_end must be in the future.", "trial_end")
    if ends > now + MAX_TRIAL_DAYS * 86400:
        raise errors.invalid(f"A trial lasts at most {MAX_TRIAL_DAYS} days.", "trial_end")
    if anchor is not None:
        raise errors.invalid(
            "A trial sets the billing cycle anchor (its end): drop billing_cycle_anchor.",
            "billing_cycle_anchor",
        )
    return ends

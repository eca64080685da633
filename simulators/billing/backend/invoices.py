"""Invoices and invoice items: drafting, finalising, payment, voiding, previews."""

from __future__ import annotations

from collections.abc import Callable

from simulators.billing import errors, render
from simulators.billing.backend.base import (
    RETRY_AFTER_DAYS,
    TEST_PAYMENT_METHODS,
    BackendBase,
    Created,
    Listing,
    created_within,
)
from simulators.billing.backend.discounts import DiscountPlan
from simulators.billing.models import (
    DAY,
    Customer,
    Invoice,
    InvoiceItem,
    InvoiceLine,
    PaymentMethod,
    Subscription,
    apply_balance,
)
from simulators.billing.params import (
    UNSET,
    DiscountSpec,
    MetadataUpdate,
    Opt,
    PreviewChanges,
    assign,
)


class InvoiceOps(BackendBase):
    # drafting --------------------------------------------------------------------------
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
        include_pending: bool = True,
        collection: str | None = None,
        default_tax_rates: list[str] | None = None,
        automatic_tax: bool = False,
        discount_plan: DiscountPlan | None = None,
    ) -> Invoice:
        """A draft with ``lines`` (and the customer's pending items); its invoice-level
        discounts are ``discount_plan`` redeemed, or else the subscription's or customer's."""
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
            default_tax_rates=list(sub.default_tax_rates if sub else default_tax_rates or []),
            automatic_tax=sub.automatic_tax if sub else automatic_tax,
        )
        if discount_plan is not None:
            inv.discounts = self.billing.commit_discounts(
                discount_plan, now, customer=c.id, invoice=inv.id
            )
        else:
            inv.discounts = self.billing.invoice_discounts(inv, now)
        for line in lines:
            self._attach_line(inv, line)
        if include_pending:
            # A subscription's invoice takes the customer's loose items and its own
            # prorations, never another subscription's (those wait for that one's invoice).
            for ii in self._pending(c.id, sub.id if sub else None):
                if ii.currency != inv.currency:
                    continue
                self._attach_item(inv, ii)
        self._reprice(inv)
        if sub is not None:
            sub.latest_invoice = inv.id
        self.store.invoices[inv.id] = inv
        self.event("invoice.created", render.invoice(self.store, inv), now)
        return inv

    def _reprice(self, inv: Invoice) -> None:
        """A draft's discounts, taxes and totals, worked out again from its lines."""
        self.billing.discount_lines(inv)
        self.billing.tax_lines(inv)
        inv.refresh_totals()
        inv.amount_due = max(0, inv.total)

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
                tax_rates=list(ii.tax_rates),
                discounts=list(ii.discounts),
                discountable=ii.discountable,
            ),
        )

    def _attach_line(self, inv: Invoice, line: InvoiceLine) -> None:
        line.id = self._ids("il")
        line.invoice = inv.id
        inv.lines.append(line)

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
        tax_rates: list[str] | None = None,
        discount_plan: DiscountPlan | None = None,
    ) -> InvoiceItem:
        # A proration already reflects the discounts (Stripe: "always false for prorations").
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
            tax_rates=list(tax_rates or []),
            discountable=not is_proration,
        )
        if discount_plan:
            ii.discounts = self.billing.commit_discounts(
                discount_plan, now, customer=customer, invoice_item=ii.id
            )
        self.store.invoice_items[ii.id] = ii
        self.event("invoiceitem.created", render.invoice_item(self.store, ii), now)
        return ii

    # finalising and payment ------------------------------------------------------------
    def _finalize(self, inv: Invoice, now: int, *, charge: bool = True) -> None:
        """draft → open: taxes as they stand now, number, customer balance applied, then
        payment when automatic."""
        self._reprice(inv)
        self.billing.use_once_discounts(inv, now)
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
            self.billing._end_subscription(sub, now, "payment_failed")
        return False

    def _mark_paid(self, inv: Invoice, now: int, *, out_of_band: bool = False) -> None:
        # Pre-payment credit notes have already lowered amount_due: what is paid is the rest.
        inv.amount_paid = inv.amount_due
        inv.status = "paid"
        inv.paid_at = now
        inv.next_payment_attempt = None
        inv.paid_out_of_band = out_of_band
        inv.auto_advance = False
        paid = render.invoice(self.store, inv)
        self.event("invoice.paid", paid, now)
        if not out_of_band and inv.amount_paid > 0:
            self.event("invoice.payment_succeeded", paid, now)  # the same invoice, as paid

    def _after_payment(self, sub: Subscription, inv: Invoice, now: int) -> None:
        if inv.status == "paid" and sub.status in ("incomplete", "past_due"):
            before = self._sub_json(sub)
            sub.status = "active"
            self._updated("customer.subscription.updated", before, self._sub_json(sub), now)

    def _settle_subscription(self, inv: Invoice, now: int) -> None:
        sub = self.store.subscriptions.get(inv.subscription or "")
        if sub is not None:
            self._after_payment(sub, inv, now)

    # operations ------------------------------------------------------------------------
    def create_invoice(
        self,
        *,
        customer: str,
        subscription: str | None = None,
        pending_invoice_items_behavior: str = "exclude",
        collection_method: str | None = None,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
        auto_advance: bool = False,
        default_tax_rates: list[str] | None = None,
        automatic_tax: bool = False,
        discounts: list[DiscountSpec] | None = None,
    ) -> Invoice:
        """A manual draft. Without ``discounts`` it takes the customer's discount (or the
        subscription's); an empty list takes none."""
        c = self.customer(customer)
        now = self.now(c.test_clock)
        sub = self.subscription(subscription) if subscription else None
        plan = None
        if discounts is not None:
            currency = sub.currency if sub else (c.currency or "usd")
            plan = self.billing.plan_discounts(
                discounts, "discounts", now, currency=currency, customer=c.id
            )
        rates = self.billing.usable_tax_rates(default_tax_rates or [], "default_tax_rates")
        self.billing.check_tax_choice(c, automatic_tax, bool(rates))
        inv = self._new_invoice(
            c,
            sub,
            "manual",
            now,
            now,
            now,
            [],
            include_pending=pending_invoice_items_behavior == "include",
            collection=collection_method,
            default_tax_rates=rates,
            automatic_tax=automatic_tax,
            discount_plan=plan,
        )
        inv.description = description
        inv.metadata = dict(metadata or {})
        inv.auto_advance = auto_advance
        return inv

    def list_invoices(
        self,
        *,
        customer: str | None = None,
        subscription: str | None = None,
        status: str | None = None,
        created: Created = None,
    ) -> Listing:
        return Listing(
            self.store.invoices,
            lambda i: (
                created_within(created, i.created)
                and customer in (None, i.customer)
                and subscription in (None, i.subscription)
                and status in (None, i.status)
            ),
        )

    def update_invoice(
        self,
        invoice_id: str,
        *,
        description: Opt[str | None] = UNSET,
        auto_advance: Opt[bool] = UNSET,
        metadata: Opt[MetadataUpdate] = UNSET,
        default_tax_rates: Opt[list[str]] = UNSET,
        automatic_tax: Opt[bool] = UNSET,
        discounts: Opt[list[DiscountSpec]] = UNSET,
    ) -> Invoice:
        inv = self.invoice(invoice_id)
        before = render.invoice(self.store, inv)
        changes = (description, auto_advance, default_tax_rates, automatic_tax, discounts)
        if inv.status != "draft" and any(v is not UNSET for v in changes):
            raise errors.state("Only draft invoices can be changed beyond metadata.")
        if default_tax_rates is not UNSET:
            default_tax_rates = self.billing.usable_tax_rates(
                default_tax_rates, "default_tax_rates"
            )
        self.billing.check_tax_choice(
            self.customer(inv.customer),
            inv.automatic_tax if automatic_tax is UNSET else automatic_tax,
            bool(inv.default_tax_rates if default_tax_rates is UNSET else default_tax_rates),
        )
        now = self.now(inv.test_clock)
        if discounts is not UNSET:
            plan = self.billing.plan_discounts(
                discounts, "discounts", now, currency=inv.currency, customer=inv.customer
            )
            inv.discounts = self.billing.commit_discounts(
                plan, now, customer=inv.customer, invoice=inv.id
            )
        assign(
            inv,
            description=description,
            auto_advance=auto_advance,
            metadata=metadata,
            default_tax_rates=default_tax_rates,
            automatic_tax=automatic_tax,
        )
        if inv.status == "draft":
            self._reprice(inv)
        self._updated("invoice.updated", before, render.invoice(self.store, inv), now)
        return inv

    def finalize_invoice(self, invoice_id: str, *, auto_advance: Opt[bool] = UNSET) -> Invoice:
        inv = self.invoice(invoice_id)
        if inv.status != "draft":
            raise errors.state(f"This invoice is already finalized (status {inv.status}).")
        assign(inv, auto_advance=auto_advance)
        now = self.now(inv.test_clock)
        # Stripe collects automatically only when auto_advance is on: otherwise the finalised
        # invoice stays open until it is paid (POST /pay) or changes otherwise.
        self._finalize(inv, now, charge=inv.auto_advance)
        self._settle_subscription(inv, now)
        return inv

    def pay_invoice(
        self,
        invoice_id: str,
        *,
        paid_out_of_band: bool = False,
        payment_method: str | None = None,
    ) -> Invoice:
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
        if paid_out_of_band:
            self._mark_paid(inv, now, out_of_band=True)
        else:
            if payment_method:
                pm = self.payment_method(payment_method)
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

    # previews --------------------------------------------------------------------------
    def preview_invoice(
        self,
        show: Callable[[Invoice], None],
        *,
        customer: str | None = None,
        subscription: str | None = None,
        changes: PreviewChanges | None = None,
    ) -> None:
        """Show the next invoice, computed on state that is thrown away afterwards."""
        checkpoint = self.store.checkpoint()
        ids = self.world.ids.snapshot()
        emit, self._emit = self._emit, lambda _e, _o: None
        try:
            show(self._preview(customer, subscription, changes))
        finally:
            self._emit = emit
            self.store.rollback(checkpoint)
            self.world.ids.restore(ids)

    def _preview(
        self,
        customer: str | None,
        subscription: str | None,
        changes: PreviewChanges | None,
    ) -> Invoice:
        c = self.customer(customer) if customer else None
        sub = self.subscription(subscription) if subscription else None
        if c is None and sub is None:
            raise errors.missing_param("customer")
        if sub is not None:
            c = self.customer(sub.customer)
            if changes is not None:
                behavior = changes.proration_behavior
                self.billing.update_subscription(
                    sub.id,
                    items=changes.items,
                    proration_behavior=(
                        "create_prorations" if behavior == "always_invoice" else behavior
                    ),
                    proration_date=changes.proration_date,
                    cancel_at_period_end=(
                        UNSET
                        if changes.cancel_at_period_end is None
                        else changes.cancel_at_period_end
                    ),
                )
                if behavior == "always_invoice":
                    now = self.now(sub.test_clock)
                    return self._new_invoice(c, sub, "subscription_update", now, now, now, [])
            return self.billing._renewal_invoice(sub, sub.current_period_end, finalize=False)
        assert c is not None
        now = self.now(c.test_clock)
        return self._new_invoice(c, None, "upcoming", now, now, now, [])

    # invoice items ---------------------------------------------------------------------
    def create_invoice_item(
        self,
        *,
        customer: str,
        price: str | None = None,
        quantity: int = 1,
        amount: int | None = None,
        currency: str | None = None,
        period: tuple[int, int] | None = None,
        description: str | None = None,
        subscription: str | None = None,
        invoice: str | None = None,
        metadata: dict[str, str] | None = None,
        tax_rates: list[str] | None = None,
        discounts: list[DiscountSpec] | None = None,
        discountable: bool = True,
    ) -> InvoiceItem:
        c = self.customer(customer)
        now = self.now(c.test_clock)
        rates = self.billing.usable_tax_rates(tax_rates or [], "tax_rates")
        found = None
        if price:
            found = self.price(price, "pricing[price]")
            amount = found.amount_for(quantity)
            currency = found.currency
        else:
            if amount is None:
                raise errors.missing_param("amount")
            if not currency:
                raise errors.missing_param("currency")
            currency = currency.lower()
        if c.currency and currency != c.currency:
            raise errors.invalid(
                f"The customer bills in {c.currency}; this item is in {currency}.", "currency"
            )
        start, end = period or (now, now)
        if end < start:
            raise errors.invalid("period[end] must not be before period[start].", "period[end]")
        if subscription:
            self.subscription(subscription)
        if invoice:
            inv = self.invoice(invoice)
            if inv.status != "draft" or inv.customer != c.id:
                raise errors.state(
                    "Items can only be added to a draft invoice of the same customer.", "invoice"
                )
        plan = self.billing.plan_discounts(
            discounts or [], "discounts", now, currency=currency, customer=c.id
        )
        ii = self._invoice_item(
            c.id,
            amount,
            currency,
            now,
            start,
            end,
            description,
            quantity,
            found.id if found else None,
            False,
            subscription,
            None,
            c.test_clock,
            dict(metadata or {}),
            rates,
            plan,
        )
        ii.discountable = discountable
        if invoice:
            inv = self.store.invoices[invoice]
            self._attach_item(inv, ii)
            self._reprice(inv)
        return ii

    def list_invoice_items(
        self,
        *,
        customer: str | None = None,
        invoice: str | None = None,
        pending: bool | None = None,
    ) -> Listing:
        return Listing(
            self.store.invoice_items,
            lambda ii: (
                not ii.deleted
                and customer in (None, ii.customer)
                and invoice in (None, ii.invoice)
                and (pending is None or pending == (ii.invoice is None))
            ),
        )

    def invoice_item(self, item_id: str) -> InvoiceItem:
        ii = self.store.invoice_items.get(item_id)
        if ii is None:
            raise errors.no_such("invoiceitem", item_id)
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
            self._reprice(inv)
        ii.deleted = True
        self.event(
            "invoiceitem.deleted",
            render.invoice_item(self.store, ii, full=True),
            self.now(ii.test_clock),
        )
        return ii

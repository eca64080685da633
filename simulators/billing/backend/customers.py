"""Customers and their payment methods."""

from __future__ import annotations

from simulators.billing import errors, render
from simulators.billing.backend.base import (
    TEST_PAYMENT_METHODS,
    BackendBase,
    Created,
    Listing,
    created_within,
)
from simulators.billing.models import Customer, PaymentMethod
from simulators.billing.params import UNSET, DiscountSpec, MetadataUpdate, Opt, assign


class CustomerOps(BackendBase):
    def create_customer(
        self,
        *,
        email: str | None = None,
        name: str | None = None,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
        balance: int = 0,
        test_clock: str | None = None,
        payment_method: str | None = None,
        default_payment_method: str | None = None,
        address: dict[str, str | None] | None = None,
        tax_exempt: str = "none",
        tax_id_data: list[tuple[str, str]] | None = None,
        discount: DiscountSpec | None = None,
    ) -> Customer:
        if test_clock is not None:
            clock = self.store.test_clocks.get(test_clock)
            if clock is None or clock.deleted:
                raise errors.no_such("test_clock", test_clock, "test_clock")
        for param, value in (
            ("payment_method", payment_method),
            ("invoice_settings[default_payment_method]", default_payment_method),
        ):
            if value:
                self.payment_method(value, param)
        customer_id, now = self._ids("cus"), self.now(test_clock)
        plan = self.billing.plan_customer_discount(discount, customer_id, now) if discount else None
        c = Customer(
            customer_id,
            now,
            email,
            name,
            description,
            dict(metadata or {}),
            balance,
            test_clock=test_clock,
            address=_address(address),
            tax_exempt=tax_exempt,
        )
        if payment_method:
            self.payment_method(payment_method).customer = c.id
        c.default_payment_method = default_payment_method or None
        if default_payment_method:
            self.payment_method(default_payment_method).customer = c.id
        self.store.customers[c.id] = c
        self.event("customer.created", render.customer(self.store, c), c.created)
        for kind, value in tax_id_data or []:
            self.billing.create_tax_id(c.id, type=kind, value=value)
        if plan is not None:
            self.billing.set_customer_discount(c, plan, now)
        return c

    def update_customer(
        self,
        customer_id: str,
        *,
        email: Opt[str | None] = UNSET,
        name: Opt[str | None] = UNSET,
        description: Opt[str | None] = UNSET,
        balance: Opt[int] = UNSET,
        metadata: Opt[MetadataUpdate] = UNSET,
        default_payment_method: str | None = None,
        address: Opt[dict[str, str | None] | None] = UNSET,
        tax_exempt: Opt[str] = UNSET,
        discount: DiscountSpec | None = None,
    ) -> Customer:
        c = self.customer(customer_id, "customer")
        now = self.now(c.test_clock)
        plan = self.billing.plan_customer_discount(discount, c.id, now) if discount else None
        before = render.customer(self.store, c)
        if default_payment_method:
            pm = self.payment_method(
                default_payment_method, "invoice_settings[default_payment_method]"
            )
            if pm.customer not in (None, c.id) and pm.id not in TEST_PAYMENT_METHODS:
                raise errors.invalid(
                    "The payment method belongs to another customer.",
                    "invoice_settings[default_payment_method]",
                )
            pm.customer = c.id
            c.default_payment_method = default_payment_method
        assign(
            c,
            email=email,
            name=name,
            description=description,
            balance=balance,
            metadata=metadata,
            address=address if address is UNSET else _address(address),
            tax_exempt=tax_exempt,
        )
        if plan is not None:
            self.billing.set_customer_discount(c, plan, now)
        self._updated("customer.updated", before, render.customer(self.store, c), now)
        return c

    def customer_even_deleted(self, customer_id: str) -> Customer:
        """A customer as retrieval shows it: a deleted one answers with its deleted form."""
        c = self.store.customers.get(customer_id)
        if c is None:
            raise errors.no_such("customer", customer_id)
        return c

    def delete_customer(self, customer_id: str) -> Customer:
        c = self.customer(customer_id)
        for sub in self.store.subscriptions.where("customer", c.id):
            if sub.status not in ("canceled", "incomplete_expired"):
                self.billing._end_subscription(
                    sub, self.now(c.test_clock), "cancellation_requested"
                )
        data = render.customer(self.store, c)
        c.deleted = True
        self.event("customer.deleted", data, self.now(c.test_clock))
        return c

    def list_customers(
        self,
        *,
        email: str | None = None,
        test_clock: str | None = None,
        created: Created = None,
    ) -> Listing:
        return Listing(
            self.store.customers,
            lambda c: (
                not c.deleted
                and created_within(created, c.created)
                and email in (None, c.email)
                and test_clock in (None, c.test_clock)
            ),
        )

    def customer_payment_methods(self, customer_id: str) -> list[PaymentMethod]:
        c = self.customer(customer_id)
        return [p for p in self.store.payment_methods.values() if p.customer == c.id]

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


_ADDRESS_FIELDS = ("city", "country", "line1", "line2", "postal_code", "state")


def _address(given: dict[str, str | None] | None) -> dict[str, str | None] | None:
    """An address with every field Stripe shows (unset ones null); None clears it."""
    if given is None:
        return None
    return {key: (given.get(key) or None) for key in _ADDRESS_FIELDS}

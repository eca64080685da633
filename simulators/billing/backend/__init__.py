"""The billing backend: every operation of every resource family, on one world and store.

One module per family (moto's ec2 layout); ``BillingBackend`` combines them. Methods take
typed arguments, never request JSON: the handlers parse requests (``simulators.billing.params``).
"""

from __future__ import annotations

from simulators.billing.backend.base import TEST_PAYMENT_METHODS, BackendBase, Emit
from simulators.billing.backend.catalogue import CatalogueOps
from simulators.billing.backend.credit_notes import CreditNoteOps
from simulators.billing.backend.customers import CustomerOps
from simulators.billing.backend.discounts import DiscountOps
from simulators.billing.backend.invoices import InvoiceOps
from simulators.billing.backend.lifecycle import Lifecycle
from simulators.billing.backend.meters import MeterOps
from simulators.billing.backend.schedules import ScheduleOps
from simulators.billing.backend.subscriptions import SubscriptionOps
from simulators.billing.backend.tax import TaxOps
from simulators.billing.backend.test_clocks import TestClockOps
from simulators.billing.backend.webhooks import WebhookOps
from simulators.billing.store import BillingStore
from simulators.common.world import World


class BillingBackend(
    CustomerOps,
    CatalogueOps,
    SubscriptionOps,
    ScheduleOps,
    InvoiceOps,
    CreditNoteOps,
    MeterOps,
    TaxOps,
    DiscountOps,
    TestClockOps,
    WebhookOps,
    Lifecycle,
    BackendBase,
):
    """All billing rules. Called with the world lock held; never reads the wall clock."""

    def __init__(self, world: World, store: BillingStore, emit: Emit) -> None:
        super().__init__(world, store, emit)
        self._init_lifecycle()


__all__ = ["TEST_PAYMENT_METHODS", "BillingBackend"]

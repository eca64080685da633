"""Billing handlers: parse the call into typed arguments, ask the backend, render Stripe JSON.

One module per resource family, as the backend; ``BillingHandlers`` combines them and the
app resolves each operationId to the method of the same name in snake_case.
"""

from __future__ import annotations

from simulators.billing.handlers.base import HandlerBase, expand_paths
from simulators.billing.handlers.catalogue import CatalogueHandlers
from simulators.billing.handlers.credit_notes import CreditNoteHandlers
from simulators.billing.handlers.customers import CustomerHandlers
from simulators.billing.handlers.discounts import DiscountHandlers
from simulators.billing.handlers.invoices import InvoiceHandlers
from simulators.billing.handlers.meters import MeterHandlers
from simulators.billing.handlers.subscriptions import SubscriptionHandlers
from simulators.billing.handlers.tax import TaxHandlers
from simulators.billing.handlers.test_clocks import TestClockHandlers
from simulators.billing.handlers.webhooks import WebhookHandlers


class BillingHandlers(
    CustomerHandlers,
    CatalogueHandlers,
    SubscriptionHandlers,
    InvoiceHandlers,
    CreditNoteHandlers,
    MeterHandlers,
    TaxHandlers,
    DiscountHandlers,
    TestClockHandlers,
    WebhookHandlers,
    HandlerBase,
):
    """Every billing operation's handler."""


__all__ = ["BillingHandlers", "expand_paths"]

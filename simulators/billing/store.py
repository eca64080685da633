"""Billing tables, the event log and meter events; reset, snapshot and restore — no rules."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from simulators.billing.models import (
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
)
from simulators.common.tables import dump_tables, load_tables

T = TypeVar("T")

TABLES: dict[str, type[Any]] = {
    "customers": Customer,
    "payment_methods": PaymentMethod,
    "products": Product,
    "prices": Price,
    "subscriptions": Subscription,
    "subscription_items": SubscriptionItem,
    "invoice_items": InvoiceItem,
    "invoices": Invoice,
    "credit_notes": CreditNote,
    "meters": Meter,
    "test_clocks": TestClock,
    "webhook_endpoints": WebhookEndpointRecord,
}


class BillingStore:
    """Rows by id in insertion order (dicts keep it), so lists sort by (created, insertion)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.customers: dict[str, Customer] = {}
        self.payment_methods: dict[str, PaymentMethod] = {}
        self.products: dict[str, Product] = {}
        self.prices: dict[str, Price] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self.subscription_items: dict[str, SubscriptionItem] = {}
        self.invoice_items: dict[str, InvoiceItem] = {}
        self.invoices: dict[str, Invoice] = {}
        self.credit_notes: dict[str, CreditNote] = {}
        self.meters: dict[str, Meter] = {}
        self.test_clocks: dict[str, TestClock] = {}
        self.webhook_endpoints: dict[str, WebhookEndpointRecord] = {}
        self.events: list[Event] = []
        self.events_by_id: dict[str, Event] = {}
        self.meter_events: list[MeterEvent] = []
        self.meter_identifiers: set[str] = set()

    def table(self, name: str) -> dict[str, Any]:
        table: dict[str, Any] = getattr(self, name)
        return table

    def snapshot(self) -> dict[str, Any]:
        data = dump_tables(self, TABLES)
        data["events"] = [dataclasses.asdict(e) for e in self.events]
        data["meter_events"] = [dataclasses.asdict(m) for m in self.meter_events]
        return data

    def restore(self, data: dict[str, Any]) -> None:
        self.reset()
        load_tables(self, TABLES, data, _build)
        self.events = [Event(**e) for e in data.get("events", [])]
        self.events_by_id = {e.id: e for e in self.events}
        self.meter_events = [MeterEvent(**m) for m in data.get("meter_events", [])]
        self.meter_identifiers = {m.identifier for m in self.meter_events}


def _build(cls: type[T], row: dict[str, Any]) -> T:
    row = dict(row)
    if cls is Price and row.get("recurring") is not None:
        row["recurring"] = Recurring(**row["recurring"])
    if cls is Invoice:
        row["lines"] = [InvoiceLine(**line) for line in row.get("lines", [])]
    if cls is CreditNote:
        row["lines"] = [CreditNoteLine(**line) for line in row.get("lines", [])]
    return cls(**row)

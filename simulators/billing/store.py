"""Billing tables, the event log and meter events; reset, snapshot and restore — no rules."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from simulators.billing.amounts import LineTax
from simulators.billing.models import (
    Coupon,
    CreditNote,
    CreditNoteLine,
    Customer,
    Discount,
    Event,
    Invoice,
    InvoiceItem,
    InvoiceLine,
    Meter,
    MeterEvent,
    PaymentMethod,
    Price,
    Product,
    PromotionCode,
    Recurring,
    Subscription,
    SubscriptionItem,
    TaxIdRecord,
    TaxRate,
    TestClock,
    WebhookEndpointRecord,
)
from simulators.common.tables import Table, dump_tables, load_tables

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
    "tax_rates": TaxRate,
    "tax_ids": TaxIdRecord,
    "coupons": Coupon,
    "promotion_codes": PromotionCode,
    "discounts": Discount,
}


class BillingStore:
    """Rows by id in insertion order (dicts keep it), so lists sort by (created, insertion)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.customers: Table[Customer] = Table(_stamp)
        self.payment_methods: Table[PaymentMethod] = Table(_stamp)
        self.products: Table[Product] = Table(_stamp)
        self.prices: Table[Price] = Table(_stamp)
        self.subscriptions: Table[Subscription] = Table(_stamp, by=("customer",))
        self.subscription_items: Table[SubscriptionItem] = Table(_stamp)
        self.invoice_items: Table[InvoiceItem] = Table(_stamp, by=("customer",))
        self.invoices: Table[Invoice] = Table(_stamp, by=("customer",))
        self.credit_notes: Table[CreditNote] = Table(_stamp, by=("invoice",))
        self.meters: Table[Meter] = Table(_stamp)
        self.test_clocks: Table[TestClock] = Table(_stamp)
        self.webhook_endpoints: Table[WebhookEndpointRecord] = Table(_stamp)
        self.tax_rates: Table[TaxRate] = Table(_stamp)
        self.tax_ids: Table[TaxIdRecord] = Table(_stamp)
        self.coupons: Table[Coupon] = Table(_stamp)
        self.promotion_codes: Table[PromotionCode] = Table(_stamp)
        self.discounts: Table[Discount] = Table(_stamp)
        self.events: list[Event] = []
        self.events_by_id: dict[str, Event] = {}
        self.meter_events: list[MeterEvent] = []
        self.meter_identifiers: set[str] = set()
        # (event name, customer) -> its meter events, in arrival order: usage without a scan.
        self.meter_events_by: dict[tuple[str, str], list[MeterEvent]] = {}

    def add_meter_event(self, event: MeterEvent) -> None:
        self.meter_events.append(event)
        self.meter_identifiers.add(event.identifier)
        self.meter_events_by.setdefault((event.event_name, event.customer), []).append(event)

    def table(self, name: str) -> dict[str, Any]:
        table: dict[str, Any] = getattr(self, name)
        return table

    def snapshot(self) -> dict[str, Any]:
        data, _ = self.checkpoint()
        data["events"] = [e.as_json() for e in self.events]
        return data

    def checkpoint(self) -> tuple[dict[str, Any], int]:
        """What ``rollback`` returns to: the tables and meter events copied; the event log,
        which only grows, by its length (a preview rolls back without copying every event)."""
        data = dump_tables(self, TABLES)
        data["meter_events"] = [dataclasses.asdict(m) for m in self.meter_events]
        return data, len(self.events)

    def rollback(self, checkpoint: tuple[dict[str, Any], int]) -> None:
        data, kept = checkpoint
        events = self.events[:kept]
        self.restore(data)
        self.events = events
        self.events_by_id = {e.id: e for e in events}

    def restore(self, data: dict[str, Any]) -> None:
        self.reset()
        load_tables(self, TABLES, data, _build)
        self.events = [Event.from_json(e) for e in data.get("events", [])]
        self.events_by_id = {e.id: e for e in self.events}
        for m in data.get("meter_events", []):
            self.add_meter_event(MeterEvent(**m))


def _stamp(row: Any) -> int | None:
    # The instant lists order by: ``created``, ``date`` for invoice items, ``start`` for
    # discounts.
    for name in ("created", "date", "start"):
        stamp: int | None = getattr(row, name, None)
        if stamp is not None:
            return stamp
    return None


def _build(cls: type[T], row: dict[str, Any]) -> T:
    row = dict(row)
    if cls is Price and row.get("recurring") is not None:
        row["recurring"] = Recurring(**row["recurring"])
    if cls is Invoice:
        row["lines"] = [InvoiceLine(**_taxed(line)) for line in row.get("lines", [])]
        invoice = Invoice(**row)
        invoice.refresh_totals()  # derived figures: always the lines' sums
        return invoice  # type: ignore[return-value]
    if cls is CreditNote:
        row["lines"] = [CreditNoteLine(**_taxed(line)) for line in row.get("lines", [])]
    return cls(**row)


def _taxed(line: dict[str, Any]) -> dict[str, Any]:
    return {**line, "taxes": [LineTax(**tax) for tax in line.get("taxes", [])]}

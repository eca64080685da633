"""Stripe JSON for billing records, with list envelopes and ``expand``."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any

from simulators.billing.models import (
    CreditNote,
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
    Subscription,
    SubscriptionItem,
    TestClock,
    WebhookEndpointRecord,
)
from simulators.billing.store import BillingStore
from simulators.common.tables import Table

API_VERSION = "2026-10-28.endive"

Json = dict[str, Any]


def customer(s: BillingStore, c: Customer) -> Json:
    if c.deleted:
        return {"id": c.id, "object": "customer", "deleted": True}
    return {
        "id": c.id,
        "object": "customer",
        "created": c.created,
        "email": c.email,
        "name": c.name,
        "description": c.description,
        "metadata": dict(c.metadata),
        "balance": c.balance,
        "currency": c.currency,
        "invoice_settings": {"default_payment_method": c.default_payment_method},
        "test_clock": c.test_clock,
        "delinquent": _delinquent(s, c),
        "livemode": False,
    }


def _delinquent(s: BillingStore, c: Customer) -> bool:
    return any(
        i.status == "open" and i.attempt_count > 0 for i in s.invoices.where("customer", c.id)
    )


def payment_method(s: BillingStore, p: PaymentMethod) -> Json:
    return {
        "id": p.id,
        "object": "payment_method",
        "type": "card",
        "created": p.created,
        "card": {
            "brand": p.brand,
            "last4": p.last4,
            "exp_month": 12,
            "exp_year": 2034,
            "funding": p.funding,
            "country": "US",
        },
        "customer": p.customer,
        "metadata": dict(p.metadata),
        "livemode": False,
        "billing_details": {"email": None, "name": None},
    }


def product(s: BillingStore, p: Product) -> Json:
    return {
        "id": p.id,
        "object": "product",
        "name": p.name,
        "active": p.active,
        "description": p.description,
        "metadata": dict(p.metadata),
        "created": p.created,
        "updated": p.updated,
        "livemode": False,
        "default_price": p.default_price,
    }


def price(s: BillingStore, p: Price) -> Json:
    recurring = None
    if p.recurring is not None:
        r = p.recurring
        recurring = {
            "interval": r.interval,
            "interval_count": r.interval_count,
            "usage_type": r.usage_type,
            "meter": r.meter,
        }
    return {
        "id": p.id,
        "object": "price",
        "active": p.active,
        "currency": p.currency,
        "unit_amount": p.unit_amount,
        "unit_amount_decimal": str(p.unit_amount),
        "product": p.product,
        "type": "recurring" if p.recurring else "one_time",
        "recurring": recurring,
        "billing_scheme": "per_unit",
        "lookup_key": p.lookup_key,
        "nickname": p.nickname,
        "metadata": dict(p.metadata),
        "created": p.created,
        "livemode": False,
        "tax_behavior": p.tax_behavior,
    }


def subscription_item(s: BillingStore, i: SubscriptionItem) -> Json:
    sub = s.subscriptions[i.subscription]
    return {
        "id": i.id,
        "object": "subscription_item",
        "subscription": i.subscription,
        "price": price(s, s.prices[i.price]),
        "quantity": i.quantity,
        "created": i.created,
        "current_period_start": sub.current_period_start,
        "current_period_end": sub.current_period_end,
        "metadata": dict(i.metadata),
    }


def subscription(s: BillingStore, sub: Subscription) -> Json:
    items = [subscription_item(s, s.subscription_items[i]) for i in sub.items]
    return {
        "id": sub.id,
        "object": "subscription",
        "customer": sub.customer,
        "status": sub.status,
        "items": envelope(items, f"/v1/subscription_items?subscription={sub.id}"),
        "currency": sub.currency,
        "created": sub.created,
        "start_date": sub.start_date,
        "billing_cycle_anchor": sub.billing_cycle_anchor,
        "cancel_at_period_end": sub.cancel_at_period_end,
        "cancel_at": sub.cancel_at,
        "canceled_at": sub.canceled_at,
        "ended_at": sub.ended_at,
        "latest_invoice": sub.latest_invoice,
        "default_payment_method": sub.default_payment_method,
        "collection_method": sub.collection_method,
        "days_until_due": sub.days_until_due,
        "metadata": dict(sub.metadata),
        "test_clock": sub.test_clock,
        "livemode": False,
        "pending_invoice_item_interval": None,
        "cancellation_details": {
            "comment": None,
            "feedback": None,
            "reason": sub.cancellation_reason,
        },
    }


def invoice_line(s: BillingStore, line: InvoiceLine) -> Json:
    if line.invoice_item is not None and line.subscription_item is None:
        parent: Json = {
            "type": "invoice_item_details",
            "subscription_item_details": None,
            "invoice_item_details": {
                "invoice_item": line.invoice_item,
                "proration": line.proration,
                "subscription": line.subscription,
            },
        }
    else:
        parent = {
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {
                "subscription": line.subscription,
                "subscription_item": line.subscription_item,
                "proration": line.proration,
                "invoice_item": line.invoice_item,
            },
        }
    return {
        "id": line.id,
        "object": "line_item",
        "amount": line.amount,
        "currency": line.currency,
        "description": line.description,
        "invoice": line.invoice,
        "quantity": line.quantity,
        "period": {"start": line.period_start, "end": line.period_end},
        "pricing": None
        if line.price is None
        else {
            "type": "price_details",
            "price_details": {"price": line.price, "product": line.product},
            "unit_amount_decimal": _unit_decimal(line),
        },
        "parent": parent,
        "metadata": dict(line.metadata),
        "livemode": False,
        "discount_amounts": [],
        "taxes": [],
    }


def _unit_decimal(line: InvoiceLine | InvoiceItem) -> str | None:
    if not line.quantity:
        return None
    return str(round(line.amount / line.quantity, 12)).rstrip("0").rstrip(".") or "0"


def invoice(s: BillingStore, inv: Invoice, *, preview_id: str | None = None) -> Json:
    lines = [invoice_line(s, line) for line in inv.lines]
    invoice_id = preview_id or inv.id
    parent = None
    if inv.subscription is not None:
        parent = {
            "type": "subscription_details",
            "subscription_details": {"subscription": inv.subscription, "metadata": {}},
        }
    return {
        "id": invoice_id,
        "object": "invoice",
        "customer": inv.customer,
        "status": inv.status,
        "currency": inv.currency,
        "created": inv.created,
        "period_start": inv.period_start,
        "period_end": inv.period_end,
        "effective_at": inv.finalized_at,
        "number": inv.number,
        "billing_reason": inv.billing_reason,
        "collection_method": inv.collection_method,
        "description": inv.description,
        "subtotal": inv.subtotal,
        "subtotal_excluding_tax": inv.subtotal,
        "total": inv.total,
        "total_excluding_tax": inv.total,
        "total_taxes": [],
        "total_discount_amounts": [],
        "amount_due": inv.amount_due,
        "amount_paid": inv.amount_paid,
        "amount_remaining": inv.amount_remaining,
        "amount_overpaid": 0,
        "amount_shipping": 0,
        "starting_balance": inv.starting_balance,
        "ending_balance": inv.ending_balance,
        "attempt_count": inv.attempt_count,
        "attempted": inv.attempted,
        "auto_advance": inv.auto_advance,
        "next_payment_attempt": inv.next_payment_attempt,
        "due_date": inv.due_date,
        "status_transitions": {
            "finalized_at": inv.finalized_at,
            "paid_at": inv.paid_at,
            "voided_at": inv.voided_at,
            "marked_uncollectible_at": inv.marked_uncollectible_at,
        },
        "parent": parent,
        "lines": envelope(lines, f"/v1/invoices/{invoice_id}/lines"),
        "pre_payment_credit_notes_amount": inv.pre_payment_credit_notes_amount,
        "post_payment_credit_notes_amount": inv.post_payment_credit_notes_amount,
        "hosted_invoice_url": None,
        "metadata": dict(inv.metadata),
        "test_clock": inv.test_clock,
        "livemode": False,
    }


def invoice_item(s: BillingStore, ii: InvoiceItem) -> Json:
    if ii.deleted:
        return {"id": ii.id, "object": "invoiceitem", "deleted": True}
    pricing = None
    if ii.price is not None:
        pricing = {
            "type": "price_details",
            "price_details": {"price": ii.price, "product": s.prices[ii.price].product},
            "unit_amount_decimal": _unit_decimal(ii),
        }
    parent = None
    if ii.subscription is not None:
        parent = {
            "type": "subscription_details",
            "subscription_details": {
                "subscription": ii.subscription,
                "subscription_item": ii.subscription_item,
            },
        }
    return {
        "id": ii.id,
        "object": "invoiceitem",
        "customer": ii.customer,
        "amount": ii.amount,
        "currency": ii.currency,
        "description": ii.description,
        "date": ii.date,
        "period": {"start": ii.period_start, "end": ii.period_end},
        "invoice": ii.invoice,
        "proration": ii.proration,
        "quantity": ii.quantity,
        "pricing": pricing,
        "parent": parent,
        "metadata": dict(ii.metadata),
        "test_clock": ii.test_clock,
        "livemode": False,
    }


def credit_note(s: BillingStore, cn: CreditNote) -> Json:
    lines = [
        {
            "id": line.id,
            "object": "credit_note_line_item",
            "amount": line.amount,
            "type": line.type,
            "invoice_line_item": line.invoice_line_item,
            "description": line.description,
            "quantity": line.quantity,
            "unit_amount": line.unit_amount,
        }
        for line in cn.lines
    ]
    return {
        "id": cn.id,
        "object": "credit_note",
        "invoice": cn.invoice,
        "customer": cn.customer,
        "number": cn.number,
        "amount": cn.total,
        "subtotal": cn.total,
        "total": cn.total,
        "currency": cn.currency,
        "status": cn.status,
        "type": cn.type,
        "reason": cn.reason,
        "memo": cn.memo,
        "lines": envelope(lines, f"/v1/credit_notes/{cn.id}/lines"),
        "pre_payment_amount": cn.pre_payment_amount,
        "post_payment_amount": cn.post_payment_amount,
        "refunds": (
            [{"amount_refunded": cn.refund_amount, "refund": f"re_{cn.id[3:]}"}]
            if cn.refund_amount
            else []
        ),
        "out_of_band_amount": cn.out_of_band_amount or None,
        "customer_balance_transaction": f"cbtxn_{cn.id[3:]}" if cn.credit_amount else None,
        "created": cn.created,
        "effective_at": cn.created,
        "voided_at": cn.voided_at,
        "metadata": dict(cn.metadata),
        "livemode": False,
    }


def meter(s: BillingStore, m: Meter) -> Json:
    return {
        "id": m.id,
        "object": "billing.meter",
        "display_name": m.display_name,
        "event_name": m.event_name,
        "status": m.status,
        "customer_mapping": {"event_payload_key": m.customer_key, "type": "by_id"},
        "default_aggregation": {"formula": m.formula},
        "value_settings": {"event_payload_key": m.value_key},
        "event_time_window": None,
        "created": m.created,
        "updated": m.updated,
        "livemode": False,
    }


def meter_event(s: BillingStore, e: MeterEvent) -> Json:
    return {
        "object": "billing.meter_event",
        "event_name": e.event_name,
        "identifier": e.identifier,
        "payload": dict(e.payload),
        "timestamp": e.timestamp,
        "created": e.created,
        "livemode": False,
    }


def test_clock(s: BillingStore, c: TestClock) -> Json:
    if c.deleted:
        return {"id": c.id, "object": "test_helpers.test_clock", "deleted": True}
    return {
        "id": c.id,
        "object": "test_helpers.test_clock",
        "created": c.created,
        "frozen_time": c.frozen_time,
        "name": c.name,
        "status": c.status,
        "deletes_after": c.created + 30 * 86400,
        "livemode": False,
        "status_details": {},
    }


def event(s: BillingStore, e: Event) -> Json:
    return {
        "id": e.id,
        "object": "event",
        "api_version": API_VERSION,
        "created": e.created,
        "type": e.type,
        "data": {"object": e.data, "previous_attributes": e.previous_attributes},
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": e.request_id, "idempotency_key": e.idempotency_key},
    }


def webhook_endpoint(s: BillingStore, w: WebhookEndpointRecord, *, secret: bool = False) -> Json:
    if w.deleted:
        return {"id": w.id, "object": "webhook_endpoint", "deleted": True}
    body: Json = {
        "id": w.id,
        "object": "webhook_endpoint",
        "url": w.url,
        "enabled_events": list(w.enabled_events),
        "status": w.status,
        "description": w.description,
        "api_version": w.api_version,
        "application": None,
        "created": w.created,
        "livemode": False,
        "metadata": dict(w.metadata),
    }
    if secret:
        body["secret"] = w.secret
    return body


def envelope(data: list[Json], url: str, has_more: bool = False) -> Json:
    return {"object": "list", "url": url, "has_more": has_more, "data": data}


def page(
    rows: Iterable[Any],
    render: Callable[[Any], Json],
    url: str,
    *,
    limit: int,
    starting_after: str | None,
    ending_before: str | None,
) -> Json:
    """Newest first; cursors are ids of rows in the same ordering.

    Rows without a timestamp (invoice lines) keep the order they are given in; invoice items
    are dated by ``date``, not ``created``."""
    items = list(rows)
    if all(_stamp(row) is not None for row in items):
        ordered = sorted(enumerate(items), key=lambda p: (_stamp(p[1]), p[0]), reverse=True)
        items = [row for _, row in ordered]
    if starting_after:
        index = next((n for n, r in enumerate(items) if r.id == starting_after), None)
        if index is None:
            from simulators.billing.errors import invalid

            raise invalid(f"No such object: '{starting_after}'", "starting_after")
        items = items[index + 1 :]
        chosen = items[:limit]
        return envelope([render(r) for r in chosen], url, len(items) > limit)
    if ending_before:
        index = next((n for n, r in enumerate(items) if r.id == ending_before), None)
        if index is None:
            from simulators.billing.errors import invalid

            raise invalid(f"No such object: '{ending_before}'", "ending_before")
        before = items[:index]
        chosen = before[-limit:]
        return envelope([render(r) for r in chosen], url, len(before) > limit)
    return envelope([render(r) for r in items[:limit]], url, len(items) > limit)


def table_page(
    table: Table[Any],
    keep: Callable[[Any], bool],
    render: Callable[[Any], Json],
    url: str,
    *,
    limit: int,
    starting_after: str | None,
    ending_before: str | None,
) -> Json:
    """``page`` over the rows of ``table`` that ``keep`` accepts, walking the table's index.

    The same page as sorting every row: only the rows next to the cursor are read, so a page
    costs O(limit) whatever the table's size (plus the rows ``keep`` turns down)."""
    if not table.indexed or limit < 1:
        rows = [r for r in table.values() if keep(r)]
        return page(
            rows,
            render,
            url,
            limit=limit,
            starting_after=starting_after,
            ending_before=ending_before,
        )
    cursor = starting_after or ending_before
    if cursor:
        row = table.get(cursor)
        if row is None or not keep(row):
            from simulators.billing.errors import invalid

            param = "starting_after" if starting_after else "ending_before"
            raise invalid(f"No such object: '{cursor}'", param)
    if ending_before and not starting_after:
        before = list(itertools.islice(filter(keep, table.newer_than(ending_before)), limit + 1))
        chosen = before[:limit][::-1]
        return envelope([render(r) for r in chosen], url, len(before) > limit)
    rows = list(itertools.islice(filter(keep, table.newest_first(starting_after)), limit + 1))
    return envelope([render(r) for r in rows[:limit]], url, len(rows) > limit)


def _stamp(row: Any) -> int | None:
    stamp: int | None = getattr(row, "created", None)
    if stamp is None:
        stamp = getattr(row, "date", None)
    return stamp

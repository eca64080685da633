"""Stripe JSON for billing records, with list envelopes and ``expand``."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from simulators.billing.amounts import LineTax
from simulators.billing.models import (
    FINALIZE_AFTER_S,
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
    Subscription,
    SubscriptionItem,
    TaxIdRecord,
    TaxRate,
    TestClock,
    WebhookEndpointRecord,
)
from simulators.billing.store import BillingStore
from simulators.common.tables import Table

API_VERSION = "2026-10-28.endive"

Json = dict[str, Any]


def customer(s: BillingStore, c: Customer, *, full: bool = False) -> Json:
    """A customer; its deleted form once deleted, unless ``full`` (events carry the object)."""
    if c.deleted and not full:
        return {"id": c.id, "object": "customer", "deleted": True}
    return {
        "id": c.id,
        "object": "customer",
        "address": None if c.address is None else dict(c.address),
        "balance": c.balance,
        "created": c.created,
        "currency": c.currency,
        "default_source": None,
        "delinquent": _delinquent(s, c),
        "description": c.description,
        "discount": None if c.discount is None else discount(s, s.discounts[c.discount]),
        "email": c.email,
        "invoice_prefix": c.id[4:12].upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": c.default_payment_method,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": dict(c.metadata),
        "name": c.name,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": c.tax_exempt,
        "test_clock": c.test_clock,
    }


def tax_rate(s: BillingStore, r: TaxRate) -> Json:
    return {
        "id": r.id,
        "object": "tax_rate",
        "active": r.active,
        "country": r.country,
        "created": r.created,
        "description": r.description,
        "display_name": r.display_name,
        "effective_percentage": float(r.percentage),
        "flat_amount": None,
        "inclusive": r.inclusive,
        "jurisdiction": r.jurisdiction,
        "jurisdiction_level": r.jurisdiction_level,
        "livemode": False,
        "metadata": dict(r.metadata),
        "percentage": float(r.percentage),
        "rate_type": "percentage",
        "state": r.state,
        "tax_type": r.tax_type,
    }


def tax_rates(s: BillingStore, ids: list[str]) -> list[Json]:
    return [tax_rate(s, s.tax_rates[r]) for r in ids]


def tax_id(s: BillingStore, t: TaxIdRecord) -> Json:
    return {
        "id": t.id,
        "object": "tax_id",
        "country": t.country,
        "created": t.created,
        "customer": t.customer,
        "livemode": False,
        "owner": {"account": None, "application": None, "customer": t.customer, "type": "customer"},
        "type": t.type,
        "value": t.value,
        "verification": {"status": "unavailable", "verified_address": None, "verified_name": None},
    }


def coupon(s: BillingStore, c: Coupon, *, applies_to: bool = False) -> Json:
    """``applies_to``: show the products it is restricted to (includable: only when asked,
    and only when it is restricted)."""
    shown = {"applies_to": {"products": list(c.applies_to)}} if applies_to and c.applies_to else {}
    return {
        "id": c.id,
        "object": "coupon",
        "amount_off": c.amount_off,
        "created": c.created,
        "currency": c.currency,
        "duration": c.duration,
        "duration_in_months": c.duration_in_months,
        "livemode": False,
        "max_redemptions": c.max_redemptions,
        "metadata": dict(c.metadata),
        "name": c.name,
        "percent_off": None if c.percent_off is None else float(c.percent_off),
        "redeem_by": c.redeem_by,
        "times_redeemed": c.times_redeemed,
        "valid": c.valid,
        **shown,
    }


def promotion_code(s: BillingStore, p: PromotionCode) -> Json:
    return {
        "id": p.id,
        "object": "promotion_code",
        "active": p.active,
        "code": p.code,
        "created": p.created,
        "customer": p.customer,
        "expires_at": p.expires_at,
        "livemode": False,
        "max_redemptions": p.max_redemptions,
        "metadata": dict(p.metadata),
        "promotion": {"coupon": p.coupon, "type": "coupon"},
        "restrictions": {
            "first_time_transaction": p.first_time_transaction,
            "minimum_amount": p.minimum_amount,
            "minimum_amount_currency": p.minimum_amount_currency,
        },
        "times_redeemed": p.times_redeemed,
    }


def discount(s: BillingStore, d: Discount) -> Json:
    return {
        "id": d.id,
        "object": "discount",
        "checkout_session": None,
        "customer": d.customer,
        "end": d.end,
        "invoice": d.invoice,
        "invoice_item": d.invoice_item,
        "promotion_code": d.promotion_code,
        "source": {"coupon": d.coupon, "type": "coupon"},
        "start": d.start,
        "subscription": d.subscription,
        "subscription_item": d.subscription_item,
    }


def discount_amounts(amounts: dict[str, int]) -> list[Json]:
    return [{"amount": amount, "discount": d} for d, amount in amounts.items()]


def total_discount_amounts(lines: list[InvoiceLine] | list[CreditNoteLine]) -> list[Json]:
    sums: dict[str, int] = {}
    for line in lines:
        for d, amount in line.discount_amounts.items():
            sums[d] = sums.get(d, 0) + amount
    return discount_amounts(sums)


def line_taxes(taxes: list[LineTax]) -> list[Json]:
    """Stripe's ``taxes[]`` of a line (invoice or credit note)."""
    return [
        {
            "amount": t.amount,
            "tax_behavior": "inclusive" if t.inclusive else "exclusive",
            "tax_rate_details": {"tax_rate": t.tax_rate},
            "taxability_reason": t.taxability_reason,
            "taxable_amount": t.taxable_amount,
            "type": "tax_rate_details",
        }
        for t in taxes
    ]


def total_taxes(lines: list[InvoiceLine] | list[CreditNoteLine]) -> list[Json]:
    """Taxes summed per tax rate (and behaviour and reason) across the lines."""
    sums: dict[tuple[str, bool, str], list[int]] = {}
    for line in lines:
        for t in line.taxes:
            acc = sums.setdefault((t.tax_rate, t.inclusive, t.taxability_reason), [0, 0])
            acc[0] += t.amount
            acc[1] += t.taxable_amount
    return line_taxes(
        [
            LineTax(a, rate, inclusive, taxable, why)
            for (rate, inclusive, why), (a, taxable) in sums.items()
        ]
    )


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
        "active": p.active,
        "created": p.created,
        "default_price": p.default_price,
        "description": p.description,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": dict(p.metadata),
        "name": p.name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": p.tax_code,
        "type": "service",
        "unit_label": None,
        "updated": p.updated,
        "url": None,
    }


def price(s: BillingStore, p: Price) -> Json:
    recurring = None
    if p.recurring is not None:
        r = p.recurring
        recurring = {
            "interval": r.interval,
            "interval_count": r.interval_count,
            "meter": r.meter,
            "trial_period_days": None,
            "usage_type": r.usage_type,
        }
    return {
        "id": p.id,
        "object": "price",
        "active": p.active,
        "billing_scheme": "per_unit",
        "created": p.created,
        "currency": p.currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": p.lookup_key,
        "metadata": dict(p.metadata),
        "nickname": p.nickname,
        "product": p.product,
        "recurring": recurring,
        "tax_behavior": p.tax_behavior,
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring" if p.recurring else "one_time",
        # A fractional decimal price has no whole unit_amount (Stripe shows null).
        "unit_amount": p.unit_amount if p.whole else None,
        "unit_amount_decimal": p.unit_amount_decimal or str(p.unit_amount),
    }


def plan(s: BillingStore, p: Price) -> Json:
    """The legacy plan view of a recurring price, as subscription items still carry it."""
    r = p.recurring
    assert r is not None
    return {
        "id": p.id,
        "object": "plan",
        "active": p.active,
        "amount": p.unit_amount if p.whole else None,
        "amount_decimal": p.unit_amount_decimal or str(p.unit_amount),
        "billing_scheme": "per_unit",
        "created": p.created,
        "currency": p.currency,
        "interval": r.interval,
        "interval_count": r.interval_count,
        "livemode": False,
        "metadata": dict(p.metadata),
        "meter": r.meter,
        "nickname": p.nickname,
        "product": p.product,
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": None,
        "usage_type": r.usage_type,
    }


def subscription_item(s: BillingStore, i: SubscriptionItem) -> Json:
    sub = s.subscriptions[i.subscription]
    item_price = s.prices[i.price]
    body: Json = {
        "id": i.id,
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": i.created,
        "current_period_end": sub.current_period_end,
        "current_period_start": sub.current_period_start,
        "discounts": list(i.discounts),
        "metadata": dict(i.metadata),
        "plan": plan(s, item_price),
        "price": price(s, item_price),
        "subscription": i.subscription,
        "tax_rates": tax_rates(s, i.tax_rates),
    }
    if not item_price.metered:
        # Stripe leaves quantity out for metered prices (usage is counted by the meter).
        body["quantity"] = i.quantity
    return body


def subscription(s: BillingStore, sub: Subscription) -> Json:
    items = [subscription_item(s, s.subscription_items[i]) for i in sub.items]
    return {
        "id": sub.id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": sub.automatic_tax,
            "liability": {"type": "self"} if sub.automatic_tax else None,
        },
        "billing_cycle_anchor": sub.billing_cycle_anchor,
        "billing_cycle_anchor_config": None,
        "billing_mode": {"type": "classic", "updated_at": None},
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": sub.cancel_at,
        "cancel_at_period_end": sub.cancel_at_period_end,
        "canceled_at": sub.canceled_at,
        "cancellation_details": {
            "comment": None,
            "feedback": None,
            "reason": sub.cancellation_reason,
        },
        "collection_method": sub.collection_method,
        "created": sub.created,
        "currency": sub.currency,
        "customer": sub.customer,
        "days_until_due": sub.days_until_due,
        "default_payment_method": sub.default_payment_method,
        "default_source": None,
        "default_tax_rates": tax_rates(s, sub.default_tax_rates),
        "description": None,
        "discounts": list(sub.discounts),
        "ended_at": sub.ended_at,
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "items": envelope(items, f"/v1/subscription_items?subscription={sub.id}"),
        "latest_invoice": sub.latest_invoice,
        "livemode": False,
        "metadata": dict(sub.metadata),
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": (
            None
            if sub.pause_behavior is None
            else {"behavior": sub.pause_behavior, "resumes_at": sub.pause_resumes_at}
        ),
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": sub.start_date,
        "status": sub.status,
        "test_clock": sub.test_clock,
        "transfer_data": None,
        "trial_end": sub.trial_end,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": sub.trial_start,
    }


def invoice_line(s: BillingStore, line: InvoiceLine) -> Json:
    if line.invoice_item is not None and line.subscription_item is None:
        parent: Json = {
            "type": "invoice_item_details",
            "subscription_item_details": None,
            "invoice_item_details": {
                "invoice_item": line.invoice_item,
                "proration": line.proration,
                "proration_details": {"credited_items": None},
                "subscription": line.subscription,
            },
        }
    else:
        parent = {
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": line.invoice_item,
                "proration": line.proration,
                "proration_details": {"credited_items": None},
                "subscription": line.subscription,
                "subscription_item": line.subscription_item,
            },
        }
    return {
        "id": line.id,
        "object": "line_item",
        "amount": line.amount,
        "currency": line.currency,
        "description": line.description,
        # Stripe: "Always false for prorations" (a proration already reflects discounts).
        "discount_amounts": discount_amounts(line.discount_amounts),
        "discountable": line.discountable,
        "discounts": list(line.discount_amounts),
        "invoice": line.invoice,
        "livemode": False,
        "metadata": dict(line.metadata),
        "parent": parent,
        "period": {"end": line.period_end, "start": line.period_start},
        "pretax_credit_amounts": [],
        "pricing": _pricing(s, line, line.product),
        "quantity": line.quantity,
        "subscription": line.subscription,
        "subtotal": line.amount,
        "taxes": line_taxes(line.taxes),
    }


def _pricing(s: BillingStore, line: InvoiceLine | InvoiceItem, product: str | None) -> Json | None:
    if line.price is None or product is None:
        return None
    price_row = s.prices.get(line.price)
    unit = _unit_decimal(line)
    if price_row is not None and not line.proration and price_row.unit_amount_decimal:
        unit = price_row.unit_amount_decimal  # the price's own decimal, not amount ÷ quantity
    return {
        "type": "price_details",
        "price_details": {"price": line.price, "product": product},
        "unit_amount_decimal": unit,
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
        sub = s.subscriptions.get(inv.subscription)
        parent = {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {
                "metadata": dict(sub.metadata) if sub else {},
                "subscription": inv.subscription,
                "subscription_proration_date": None,
            },
        }
    c = s.customers.get(inv.customer)
    return {
        "id": invoice_id,
        "object": "invoice",
        "account_country": "US",
        "account_name": None,
        "account_tax_ids": None,
        "amount_due": inv.amount_due,
        "amount_overpaid": 0,
        "amount_paid": inv.amount_paid,
        "amount_remaining": inv.amount_remaining,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": inv.attempt_count,
        "attempted": inv.attempted,
        "auto_advance": inv.auto_advance,
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": inv.automatic_tax,
            "liability": {"type": "self"} if inv.automatic_tax else None,
            "provider": "stripe" if inv.automatic_tax else None,
            "status": inv.automatic_tax_status if inv.automatic_tax else None,
        },
        "automatically_finalizes_at": (
            inv.created + FINALIZE_AFTER_S if inv.status == "draft" and inv.auto_advance else None
        ),
        "billing_reason": inv.billing_reason,
        "collection_method": inv.collection_method,
        "created": inv.created,
        "currency": inv.currency,
        "custom_fields": None,
        "customer": inv.customer,
        "customer_address": None if c is None or c.address is None else dict(c.address),
        "customer_email": c.email if c else None,
        "customer_name": c.name if c else None,
        "customer_phone": None,
        "customer_shipping": None,
        "customer_tax_exempt": inv.customer_tax_exempt,
        "customer_tax_ids": [
            {"type": t.type, "value": t.value}
            for t in s.tax_ids.values()
            if t.customer == inv.customer
        ],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": tax_rates(s, inv.default_tax_rates),
        "description": inv.description,
        "discounts": list(inv.discounts),
        "due_date": inv.due_date,
        "effective_at": inv.finalized_at,
        "ending_balance": inv.ending_balance,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": first_page(lines, f"/v1/invoices/{invoice_id}/lines"),
        "livemode": False,
        "metadata": dict(inv.metadata),
        "next_payment_attempt": inv.next_payment_attempt,
        "number": inv.number,
        "on_behalf_of": None,
        "parent": parent,
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "period_end": inv.period_end,
        "period_start": inv.period_start,
        "post_payment_credit_notes_amount": inv.post_payment_credit_notes_amount,
        "pre_payment_credit_notes_amount": inv.pre_payment_credit_notes_amount,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": inv.starting_balance,
        "statement_descriptor": None,
        "status": inv.status,
        "status_transitions": {
            "finalized_at": inv.finalized_at,
            "marked_uncollectible_at": inv.marked_uncollectible_at,
            "paid_at": inv.paid_at,
            "voided_at": inv.voided_at,
        },
        "subtotal": inv.subtotal,
        "subtotal_excluding_tax": inv.subtotal_excluding_tax,
        "test_clock": inv.test_clock,
        "total": inv.total,
        "total_discount_amounts": total_discount_amounts(inv.lines),
        "total_excluding_tax": inv.total_excluding_tax,
        "total_pretax_credit_amounts": [],
        "total_taxes": total_taxes(inv.lines),
        "webhooks_delivered_at": inv.created,
    }


def invoice_item(s: BillingStore, ii: InvoiceItem, *, full: bool = False) -> Json:
    """An invoice item; its deleted form once deleted, unless ``full`` (events carry the object)."""
    if ii.deleted and not full:
        return {"id": ii.id, "object": "invoiceitem", "deleted": True}
    pricing = _pricing(s, ii, s.prices[ii.price].product if ii.price else None)
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
        "amount": ii.amount,
        "currency": ii.currency,
        "customer": ii.customer,
        "date": ii.date,
        "description": ii.description,
        "discountable": ii.discountable,
        "discounts": list(ii.discounts),
        "invoice": ii.invoice,
        "livemode": False,
        "metadata": dict(ii.metadata),
        "net_amount": ii.amount,
        "parent": parent,
        "period": {"end": ii.period_end, "start": ii.period_start},
        "pricing": pricing,
        "proration": ii.proration,
        "proration_details": (
            {"credited_items": None, "discount_amounts": []} if ii.proration else None
        ),
        "quantity": ii.quantity,
        "quantity_decimal": str(ii.quantity),
        "tax_rates": tax_rates(s, ii.tax_rates),
        "test_clock": ii.test_clock,
    }


def credit_note_line(s: BillingStore, line: CreditNoteLine) -> Json:
    body: Json = {
        "id": line.id,
        "object": "credit_note_line_item",
        "amount": line.amount,
        "description": line.description,
        "discount_amount": line.discount_amount,
        "discount_amounts": discount_amounts(line.discount_amounts),
        "livemode": False,
        "metadata": {},
        "pretax_credit_amounts": [],
        "quantity": line.quantity,
        "tax_rates": tax_rates(s, [t.tax_rate for t in line.taxes]),
        "taxes": line_taxes(line.taxes),
        "type": line.type,
        "unit_amount": line.unit_amount,
        "unit_amount_decimal": None if line.unit_amount is None else str(line.unit_amount),
    }
    if line.invoice_line_item is not None:
        # Present only on lines that credit an invoice line (Stripe omits it on custom lines).
        body["invoice_line_item"] = line.invoice_line_item
    return body


def credit_note(s: BillingStore, cn: CreditNote) -> Json:
    lines = [credit_note_line(s, line) for line in cn.lines]
    inclusive = sum(t.amount for line in cn.lines for t in line.taxes if t.inclusive)
    exclusive = sum(t.amount for line in cn.lines for t in line.taxes if not t.inclusive)
    return {
        "id": cn.id,
        "object": "credit_note",
        "amount": cn.total,
        "amount_shipping": 0,
        "created": cn.created,
        "currency": cn.currency,
        "customer": cn.customer,
        "customer_balance_transaction": f"cbtxn_{cn.id[3:]}" if cn.credit_amount else None,
        "discount_amount": cn.discount_amount,
        "discount_amounts": total_discount_amounts(cn.lines),
        "effective_at": cn.created,
        "invoice": cn.invoice,
        "lines": envelope(lines, f"/v1/credit_notes/{cn.id}/lines"),
        "livemode": False,
        "memo": cn.memo,
        "metadata": dict(cn.metadata),
        "number": cn.number,
        "out_of_band_amount": cn.out_of_band_amount or None,
        "pdf": f"https://pay.stripe.com/credit_notes/{cn.id}/pdf",
        "post_payment_amount": cn.post_payment_amount,
        "pre_payment_amount": cn.pre_payment_amount,
        "pretax_credit_amounts": [],
        "reason": cn.reason,
        "refunds": (
            [
                {
                    "amount_refunded": cn.refund_amount,
                    "payment_record_refund": None,
                    "refund": f"re_{cn.id[3:]}",
                    "type": "refund",
                }
            ]
            if cn.refund_amount
            else []
        ),
        "shipping_cost": None,
        "status": cn.status,
        "subtotal": cn.subtotal,
        "subtotal_excluding_tax": cn.subtotal - inclusive,
        "total": cn.total,
        "total_excluding_tax": cn.total - exclusive - inclusive,
        "total_taxes": total_taxes(cn.lines),
        "type": cn.type,
        "voided_at": cn.voided_at,
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
        "status_transitions": {"deactivated_at": None},
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


def test_clock(s: BillingStore, c: TestClock, *, full: bool = False) -> Json:
    """A test clock; its deleted form once deleted, unless ``full`` (events carry the object)."""
    if c.deleted and not full:
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
    return _event(e, e.data)


def event_payload(e: Event) -> bytes:
    """The event as a webhook's body: its object embedded as it was serialised at the event."""
    return orjson.dumps(_event(e, orjson.Fragment(e.object_json)))


def _event(e: Event, obj: Any) -> Json:
    return {
        "id": e.id,
        "object": "event",
        "api_version": API_VERSION,
        "created": e.created,
        "type": e.type,
        # Stripe sends previous_attributes only on events that describe a change.
        "data": (
            {"object": obj}
            if e.previous_attributes is None
            else {"object": obj, "previous_attributes": e.previous_attributes}
        ),
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


# Lines an invoice carries in itself, as Stripe's: "the first handful", the list endpoint's
# default page; the rest only through GET /v1/invoices/{invoice}/lines (``url``). A credit
# note still carries all of its lines: its lines endpoint is not served.
EMBEDDED_LINES = 10


def first_page(data: list[Json], url: str) -> Json:
    return envelope(data[:EMBEDDED_LINES], url, len(data) > EMBEDDED_LINES)


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

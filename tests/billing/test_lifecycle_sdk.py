"""Billing lifecycles end to end through the real ``stripe`` SDK over a loopback socket.

Every amount is checked against an independent computation written here (``fractions`` and
``calendar``), never against the simulator's own arithmetic.
"""

from __future__ import annotations

import calendar
import math
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

import stripe

from tests.billing.conftest import Harness

DAY = 86400
HOUR = 3600


# --- independent arithmetic ---------------------------------------------------------------
def ts(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def round_half_up(value: Fraction) -> int:
    """Half away from zero, as Stripe rounds each proration line."""
    if value < 0:
        return -round_half_up(-value)
    return math.floor(value + Fraction(1, 2))


def proration(unit: int, qty: int, start: int, end: int, at: int) -> int:
    """Unused-time share of ``unit × qty`` for [at, end) of the period [start, end), to the
    second. https://docs.stripe.com/billing/subscriptions/prorations ("Stripe calculates
    prorations down to the second")."""
    return round_half_up(Fraction(unit * qty * (end - at), end - start))


def add_months(at: int, months: int) -> int:
    """Same day-of-month ``months`` later, clamped to the month's last day, always counted
    from the original anchor. https://docs.stripe.com/billing/subscriptions/billing-cycle
    ("a monthly subscription with a billing cycle anchor of January 31 bills on the last day
    of shorter months")."""
    d = datetime.fromtimestamp(at, UTC)
    y, m = divmod(d.year * 12 + (d.month - 1) + months, 12)
    day = min(d.day, calendar.monthrange(y, m + 1)[1])
    return int(d.replace(year=y, month=m + 1, day=day).timestamp())


# --- identities ---------------------------------------------------------------------------
def lines_of(inv: Any) -> list[Any]:
    assert inv.lines.has_more is False
    return list(inv.lines.data)


def check_invoice(inv: Any) -> Any:
    """total = subtotal = Σ lines (no tax or discounts); amount_remaining = due − paid."""
    total = sum(line.amount for line in lines_of(inv))
    assert inv.subtotal == total, inv.id
    assert inv.total == total, inv.id
    assert inv.amount_remaining == inv.amount_due - inv.amount_paid, inv.id
    if inv.status == "paid":
        assert inv.amount_remaining == 0
    return inv


def check_credit_note(cn: Any) -> Any:
    assert cn.total == cn.pre_payment_amount + cn.post_payment_amount
    assert cn.total == sum(line.amount for line in cn.lines.data)
    return cn


def is_proration(line: Any) -> bool:
    parent = line.parent
    details = parent.subscription_item_details or parent.invoice_item_details
    return bool(details.proration)


def sub_invoices(client: stripe.StripeClient, sub_id: str) -> list[Any]:
    """Oldest first, every one checked."""
    found = client.v1.invoices.list(params={"subscription": sub_id, "limit": 100})
    assert found.has_more is False
    return [check_invoice(i) for i in reversed(found.data)]


def events(client: stripe.StripeClient, kind: str) -> list[Any]:
    found = client.v1.events.list(params={"type": kind, "limit": 100})
    return list(found.data)


# --- 1. the full lifecycle ----------------------------------------------------------------
def test_full_lifecycle_on_a_test_clock(billing: Harness) -> None:
    client = billing.client
    t0 = ts("2026-01-15T00:00:00Z")
    clock = client.v1.test_helpers.test_clocks.create(params={"frozen_time": t0})

    def advance(to: int) -> None:
        done = client.v1.test_helpers.test_clocks.advance(clock.id, params={"frozen_time": to})
        assert done.status == "ready" and done.frozen_time == to

    meter = client.v1.billing.meters.create(params={
        "display_name": "API calls", "event_name": "api_calls",
        "default_aggregation": {"formula": "sum"}})
    product = client.v1.products.create(params={"name": "Seats"})
    price_1000 = client.v1.prices.create(params={
        "product": product.id, "currency": "usd", "unit_amount": 1000,
        "recurring": {"interval": "month"}})
    price_2000 = client.v1.prices.create(params={
        "product": product.id, "currency": "usd", "unit_amount": 2000,
        "recurring": {"interval": "month"}})
    metered = client.v1.prices.create(params={
        "product": product.id, "currency": "usd", "unit_amount": 25,
        "recurring": {"interval": "month", "usage_type": "metered", "meter": meter.id}})
    customer = client.v1.customers.create(params={
        "email": "lifecycle@example.com", "test_clock": clock.id,
        "payment_method": "pm_card_visa",
        "invoice_settings": {"default_payment_method": "pm_card_visa"}})

    # Subscribe with 3 seats: the first invoice is paid at once, 3 × 1000.
    sub = client.v1.subscriptions.create(params={
        "customer": customer.id,
        "items": [{"price": price_1000.id, "quantity": 3}, {"price": metered.id}]})
    assert sub.status == "active"
    start, end = t0, add_months(t0, 1)
    seat_item = next(i for i in sub["items"].data if i.price.id == price_1000.id)
    assert (seat_item.current_period_start, seat_item.current_period_end) == (start, end)
    first = check_invoice(client.v1.invoices.retrieve(sub.latest_invoice))
    assert first.billing_reason == "subscription_create"
    assert (first.status, first.total, first.amount_paid) == ("paid", 3000, 3000)

    # Day 10: upgrade to the 2000 price, invoiced at once: credit old, debit new.
    t1 = t0 + 10 * DAY
    advance(t1)
    sub = client.v1.subscriptions.update(sub.id, params={
        "items": [{"id": seat_item.id, "price": price_2000.id}],
        "proration_behavior": "always_invoice"})
    upgrade = check_invoice(client.v1.invoices.retrieve(sub.latest_invoice))
    assert upgrade.billing_reason == "subscription_update"
    credit = -proration(1000, 3, start, end, t1)
    debit = proration(2000, 3, start, end, t1)
    assert (credit, debit) == (-2032, 4065)  # 21 of 31 days: 2032.26 and 4064.52
    amounts = sorted(line.amount for line in lines_of(upgrade))
    assert amounts == [credit, debit]
    assert all(is_proration(line) for line in lines_of(upgrade))
    assert (upgrade.status, upgrade.total, upgrade.amount_paid) == ("paid", credit + debit,
                                                                   credit + debit)

    # Day 15: 3 → 5 seats with create_prorations: pending invoice items, no invoice yet.
    t2 = t0 + 15 * DAY
    advance(t2)
    client.v1.subscriptions.update(sub.id, params={
        "items": [{"id": seat_item.id, "quantity": 5}],
        "proration_behavior": "create_prorations"})
    pending = client.v1.invoice_items.list(params={"customer": customer.id, "pending": True})
    q_credit = -proration(2000, 3, start, end, t2)
    q_debit = proration(2000, 5, start, end, t2)
    assert (q_credit, q_debit) == (-3097, 5161)  # 16 of 31 days: 3096.77 and 5161.29
    assert sorted(ii.amount for ii in pending.data) == [q_credit, q_debit]
    assert all(ii.proration and ii.invoice is None for ii in pending.data)
    assert len(sub_invoices(client, sub.id)) == 2

    # Usage in period 1; a repeated identifier counts once.
    for identifier, value in (("use-1", 4), ("use-2", 6), ("use-2", 6)):
        client.v1.billing.meter_events.create(params={
            "event_name": "api_calls", "identifier": identifier,
            "payload": {"stripe_customer_id": customer.id, "value": str(value)}})
    usage = 4 + 6

    # Renewal (drafted at period end, finalised an hour later): usage in arrears, the
    # pending prorations and the new period's 5 × 2000 in advance.
    advance(end + 2 * HOUR)
    invoices = sub_invoices(client, sub.id)
    assert len(invoices) == 3
    renewal = invoices[-1]
    assert renewal.billing_reason == "subscription_cycle"
    assert renewal.status == "paid"
    by_kind: dict[str, list[int]] = {"proration": [], "usage": [], "seats": []}
    for line in lines_of(renewal):
        price_id = line.pricing.price_details.price
        if is_proration(line):
            by_kind["proration"].append(line.amount)
        elif price_id == metered.id:
            by_kind["usage"].append(line.amount)
            assert line.quantity == usage
            assert (line.period.start, line.period.end) == (start, end)
        else:
            assert price_id == price_2000.id and line.quantity == 5
            assert (line.period.start, line.period.end) == (end, add_months(t0, 2))
            by_kind["seats"].append(line.amount)
    assert sorted(by_kind["proration"]) == [q_credit, q_debit]
    assert by_kind["usage"] == [usage * 25]
    assert by_kind["seats"] == [5 * 2000]
    assert renewal.total == q_credit + q_debit + usage * 25 + 5 * 2000
    assert client.v1.invoice_items.list(params={"customer": customer.id,
                                                "pending": True}).data == []

    # Period 2, day 5: downgrade to 2 × 1000 without prorations.
    start2, end2 = end, add_months(t0, 2)
    advance(start2 + 5 * DAY)
    client.v1.subscriptions.update(sub.id, params={
        "items": [{"id": seat_item.id, "price": price_1000.id, "quantity": 2}],
        "proration_behavior": "none"})
    assert client.v1.invoice_items.list(params={"customer": customer.id,
                                                "pending": True}).data == []
    assert len(sub_invoices(client, sub.id)) == 3

    # A post-payment credit note on the paid renewal, as customer credit.
    cn = check_credit_note(client.v1.credit_notes.create(params={
        "invoice": renewal.id, "amount": 1500, "credit_amount": 1500}))
    assert (cn.type, cn.pre_payment_amount, cn.post_payment_amount) == ("post_payment", 0, 1500)
    assert client.v1.customers.retrieve(customer.id).balance == -1500
    renewal = check_invoice(client.v1.invoices.retrieve(renewal.id))
    assert renewal.post_payment_credit_notes_amount == 1500

    # The next renewal bills the new price only, and the balance pays part of it.
    advance(end2 + 2 * HOUR)
    invoices = sub_invoices(client, sub.id)
    assert len(invoices) == 4
    second = invoices[-1]
    assert not any(is_proration(line) for line in lines_of(second))
    seats = [line for line in lines_of(second) if line.pricing.price_details.price != metered.id]
    assert [(line.amount, line.quantity) for line in seats] == [(2 * 1000, 2)]
    assert [line.amount for line in lines_of(second)
            if line.pricing.price_details.price == metered.id] in ([], [0])
    assert second.total == 2000
    assert second.starting_balance == -1500
    assert second.amount_due == second.total - 1500 == 500
    assert second.ending_balance == 0
    assert (second.status, second.amount_paid) == ("paid", 500)
    assert client.v1.customers.retrieve(customer.id).balance == 0

    # Cancel at period end: the subscription ends at the period end, with no invoice.
    end3 = add_months(t0, 3)
    advance(end2 + 3 * DAY)
    sub = client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    assert sub.cancel_at_period_end is True and sub.status == "active"
    advance(end3 + 2 * HOUR)
    sub = client.v1.subscriptions.retrieve(sub.id)
    assert (sub.status, sub.ended_at) == ("canceled", end3)
    deleted = [e for e in events(client, "customer.subscription.deleted")
               if e.data.object.id == sub.id]
    assert len(deleted) == 1 and deleted[0].created == end3
    advance(add_months(t0, 5))
    assert len(sub_invoices(client, sub.id)) == 4


def test_credit_notes_and_immediate_cancellation(billing: Harness) -> None:
    client = billing.client
    t0 = ts("2026-01-15T00:00:00Z")
    product = client.v1.products.create(params={"name": "Plan"})
    price = client.v1.prices.create(params={
        "product": product.id, "currency": "usd", "unit_amount": 1000,
        "recurring": {"interval": "month"}})

    # Pre-payment: a send_invoice subscription leaves its first invoice open.
    payer = client.v1.customers.create(params={"email": "ap@example.com"})
    sub = client.v1.subscriptions.create(params={
        "customer": payer.id, "items": [{"price": price.id, "quantity": 2}],
        "collection_method": "send_invoice", "days_until_due": 14})
    inv = check_invoice(client.v1.invoices.retrieve(sub.latest_invoice))
    assert (inv.status, inv.amount_due, inv.amount_remaining) == ("open", 2000, 2000)
    assert inv.due_date == t0 + 14 * DAY
    cn = check_credit_note(client.v1.credit_notes.create(params={
        "invoice": inv.id, "amount": 600, "reason": "order_change"}))
    assert (cn.type, cn.pre_payment_amount, cn.post_payment_amount) == ("pre_payment", 600, 0)
    inv = check_invoice(client.v1.invoices.retrieve(inv.id))
    assert inv.status == "open"
    assert inv.pre_payment_credit_notes_amount == 600
    assert inv.amount_remaining == 2000 - 600
    assert client.v1.customers.retrieve(payer.id).balance == 0

    # Cancel immediately with a prorated credit, invoiced now: the credit becomes balance.
    customer = client.v1.customers.create(params={
        "payment_method": "pm_card_visa",
        "invoice_settings": {"default_payment_method": "pm_card_visa"}})
    sub = client.v1.subscriptions.create(params={
        "customer": customer.id, "items": [{"price": price.id, "quantity": 3}]})
    assert check_invoice(client.v1.invoices.retrieve(sub.latest_invoice)).amount_paid == 3000
    at = t0 + 10 * DAY
    with billing.world.lock:
        billing.world.clock.set(at)
    sub = client.v1.subscriptions.cancel(sub.id, params={"prorate": True, "invoice_now": True})
    assert (sub.status, sub.canceled_at, sub.ended_at) == ("canceled", at, at)
    invoices = sub_invoices(client, sub.id)
    assert len(invoices) == 2
    final = invoices[-1]
    refund = proration(1000, 3, t0, add_months(t0, 1), at)
    assert refund == 2032
    assert [line.amount for line in lines_of(final)] == [-refund]
    assert is_proration(lines_of(final)[0])
    assert (final.total, final.amount_due, final.status) == (-refund, 0, "paid")
    assert final.ending_balance == -refund
    assert client.v1.customers.retrieve(customer.id).balance == -refund

"""Billing lifecycles end to end through the real ``stripe`` SDK over a loopback socket.

Every amount is checked against an independent computation written here (``fractions`` and
``calendar``), never against the simulator's own arithmetic.
"""

from __future__ import annotations

import itertools
import json
import zlib
from typing import Any

import pytest
import stripe

from tests.billing.conftest import Harness, Receiver, monthly_price, paying_customer
from tests.billing.helpers import add_months, proration, ts

DAY = 86400
HOUR = 3600


# --- identities ---------------------------------------------------------------------------
def lines_of(inv: Any) -> list[Any]:
    assert inv.lines.has_more is False
    return list(inv.lines.data)


def check_invoice(inv: Any) -> Any:
    """total = subtotal = Σ lines (no tax or discounts); amount_remaining = due − paid."""
    total = sum(line.amount for line in lines_of(inv))
    assert inv.subtotal == total, inv.id
    assert inv.total == total, inv.id
    if inv.status == "void":
        # The simulator reports nothing left to pay on a void invoice (models.Invoice
        # .amount_remaining returns 0 for void); the contract does not say, so either passes.
        assert inv.amount_remaining in (0, inv.amount_due - inv.amount_paid), inv.id
    else:
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

    meter = client.v1.billing.meters.create(
        params={
            "display_name": "API calls",
            "event_name": "api_calls",
            "default_aggregation": {"formula": "sum"},
        }
    )
    product = client.v1.products.create(params={"name": "Seats"})
    price_1000 = client.v1.prices.create(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount": 1000,
            "recurring": {"interval": "month"},
        }
    )
    price_2000 = client.v1.prices.create(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount": 2000,
            "recurring": {"interval": "month"},
        }
    )
    metered = client.v1.prices.create(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount": 25,
            "recurring": {"interval": "month", "usage_type": "metered", "meter": meter.id},
        }
    )
    customer = client.v1.customers.create(
        params={
            "email": "lifecycle@example.com",
            "test_clock": clock.id,
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        }
    )

    # Subscribe with 3 seats: the first invoice is paid at once, 3 × 1000.
    sub = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price_1000.id, "quantity": 3}, {"price": metered.id}],
        }
    )
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
    sub = client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": seat_item.id, "price": price_2000.id}],
            "proration_behavior": "always_invoice",
        },
    )
    upgrade = check_invoice(client.v1.invoices.retrieve(sub.latest_invoice))
    assert upgrade.billing_reason == "subscription_update"
    credit = -proration(1000, 3, start, end, t1)
    debit = proration(2000, 3, start, end, t1)
    assert (credit, debit) == (-2032, 4065)  # 21 of 31 days: 2032.26 and 4064.52
    amounts = sorted(line.amount for line in lines_of(upgrade))
    assert amounts == [credit, debit]
    assert all(is_proration(line) for line in lines_of(upgrade))
    assert {(line.period.start, line.period.end) for line in lines_of(upgrade)} == {(t1, end)}
    assert (upgrade.status, upgrade.total, upgrade.amount_paid) == (
        "paid",
        credit + debit,
        credit + debit,
    )

    # Day 15: 3 → 5 seats with create_prorations: pending invoice items, no invoice yet.
    t2 = t0 + 15 * DAY
    advance(t2)
    client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": seat_item.id, "quantity": 5}],
            "proration_behavior": "create_prorations",
        },
    )
    pending = client.v1.invoice_items.list(params={"customer": customer.id, "pending": True})
    q_credit = -proration(2000, 3, start, end, t2)
    q_debit = proration(2000, 5, start, end, t2)
    assert (q_credit, q_debit) == (-3097, 5161)  # 16 of 31 days: 3096.77 and 5161.29
    assert sorted(ii.amount for ii in pending.data) == [q_credit, q_debit]
    assert all(ii.proration and ii.invoice is None for ii in pending.data)
    assert len(sub_invoices(client, sub.id)) == 2

    # Usage in period 1; a repeated identifier counts once.
    for identifier, value in (("use-1", 4), ("use-2", 6), ("use-2", 6)):
        client.v1.billing.meter_events.create(
            params={
                "event_name": "api_calls",
                "identifier": identifier,
                "payload": {"stripe_customer_id": customer.id, "value": str(value)},
            }
        )
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
    # The lines endpoint pages through the same lines, in the invoice's order.
    paged = client.v1.invoices.line_items.list(renewal.id, params={"limit": 2})
    assert [line.id for line in paged.auto_paging_iter()] == [line.id for line in lines_of(renewal)]
    assert (
        client.v1.invoice_items.list(params={"customer": customer.id, "pending": True}).data == []
    )

    # Period 2, day 5: downgrade to 2 × 1000 without prorations.
    start2, end2 = end, add_months(t0, 2)
    advance(start2 + 5 * DAY)
    client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": seat_item.id, "price": price_1000.id, "quantity": 2}],
            "proration_behavior": "none",
        },
    )
    assert (
        client.v1.invoice_items.list(params={"customer": customer.id, "pending": True}).data == []
    )
    assert len(sub_invoices(client, sub.id)) == 3

    # A post-payment credit note on the paid renewal, as customer credit.
    cn = check_credit_note(
        client.v1.credit_notes.create(
            params={"invoice": renewal.id, "amount": 1500, "credit_amount": 1500}
        )
    )
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
    assert [
        line.amount for line in lines_of(second) if line.pricing.price_details.price == metered.id
    ] in ([], [0])
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
    deleted = [
        e for e in events(client, "customer.subscription.deleted") if e.data.object.id == sub.id
    ]
    assert len(deleted) == 1 and deleted[0].created == end3
    advance(add_months(t0, 5))
    assert len(sub_invoices(client, sub.id)) == 4

    # Every invoice any event carried satisfies the identities too (SDK auto-pagination).
    seen = 0
    for event in client.v1.events.list(params={"limit": 25}).auto_paging_iter():
        if event.data.object.object == "invoice":
            check_invoice(event.data.object)
            seen += 1
        elif event.data.object.object == "credit_note":
            check_credit_note(event.data.object)
    assert seen >= 15  # created, finalized, paid... for each of the four invoices


def test_credit_notes_and_immediate_cancellation(billing: Harness) -> None:
    client = billing.client
    t0 = ts("2026-01-15T00:00:00Z")
    price = monthly_price(client, "Plan", 1000)

    # Pre-payment: a send_invoice subscription leaves its first invoice open.
    payer = client.v1.customers.create(params={"email": "ap@example.com"})
    sub = client.v1.subscriptions.create(
        params={
            "customer": payer.id,
            "items": [{"price": price.id, "quantity": 2}],
            "collection_method": "send_invoice",
            "days_until_due": 14,
        }
    )
    inv = check_invoice(client.v1.invoices.retrieve(sub.latest_invoice))
    assert (inv.status, inv.amount_due, inv.amount_remaining) == ("open", 2000, 2000)
    assert inv.due_date == t0 + 14 * DAY
    cn = check_credit_note(
        client.v1.credit_notes.create(
            params={"invoice": inv.id, "amount": 600, "reason": "order_change"}
        )
    )
    assert (cn.type, cn.pre_payment_amount, cn.post_payment_amount) == ("pre_payment", 600, 0)
    inv = check_invoice(client.v1.invoices.retrieve(inv.id))
    assert inv.status == "open"
    assert inv.pre_payment_credit_notes_amount == 600
    assert (inv.amount_due, inv.amount_remaining) == (2000 - 600, 2000 - 600)
    assert client.v1.customers.retrieve(payer.id).balance == 0
    # Paying it collects what the credit note left.
    inv = check_invoice(client.v1.invoices.pay(inv.id, params={"payment_method": "pm_card_visa"}))
    assert (inv.status, inv.amount_paid, inv.amount_remaining) == ("paid", 2000 - 600, 0)

    # Pre-payment on a manual invoice built from a pending amount-only invoice item: the
    # credit notes that bring amount_remaining to zero leave it paid (out of band).
    manual_customer = client.v1.customers.create(params={"email": "manual@example.com"})
    client.v1.invoice_items.create(
        params={
            "customer": manual_customer.id,
            "amount": 2500,
            "currency": "usd",
            "description": "Consulting",
        }
    )
    draft = check_invoice(
        client.v1.invoices.create(
            params={
                "customer": manual_customer.id,
                "collection_method": "send_invoice",
                "pending_invoice_items_behavior": "include",
            }
        )
    )
    assert (draft.status, draft.total, draft.billing_reason) == ("draft", 2500, "manual")
    manual = check_invoice(client.v1.invoices.finalize_invoice(draft.id))
    assert (manual.status, manual.amount_due, manual.amount_remaining) == ("open", 2500, 2500)
    check_credit_note(client.v1.credit_notes.create(params={"invoice": manual.id, "amount": 1000}))
    manual = check_invoice(client.v1.invoices.retrieve(manual.id))
    assert (manual.status, manual.amount_remaining) == ("open", 1500)
    last = check_credit_note(
        client.v1.credit_notes.create(
            params={
                "invoice": manual.id,
                "lines": [
                    {
                        "type": "invoice_line_item",
                        "amount": 1500,
                        "invoice_line_item": lines_of(manual)[0].id,
                    }
                ],
            }
        )
    )
    assert (last.type, last.pre_payment_amount) == ("pre_payment", 1500)
    manual = check_invoice(client.v1.invoices.retrieve(manual.id))
    assert (manual.status, manual.amount_remaining, manual.amount_paid) == ("paid", 0, 0)
    assert manual.pre_payment_credit_notes_amount == 2500
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.credit_notes.create(params={"invoice": manual.id, "amount": 1})
    assert too_much.value.code == "credit_note_amount_too_large"

    # Cancel immediately with a prorated credit, invoiced now: the credit becomes balance.
    customer = paying_customer(client)
    sub = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id, "quantity": 3}]}
    )
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


# --- 2. month-end clamping ----------------------------------------------------------------
def test_month_end_anchor_clamps_without_drifting(billing: Harness) -> None:
    client = billing.client
    t0 = ts("2026-01-31T12:00:00Z")
    # Written out by hand, and recomputed with the calendar: Feb 2026 has 28 days.
    expected = [ts("2026-02-28T12:00:00Z"), ts("2026-03-31T12:00:00Z"), ts("2026-04-30T12:00:00Z")]
    assert expected == [add_months(t0, n) for n in (1, 2, 3)]
    clock = client.v1.test_helpers.test_clocks.create(params={"frozen_time": t0})
    price = monthly_price(client, "Monthly", 1234)
    customer = paying_customer(client, test_clock=clock.id)
    sub = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    assert sub.billing_cycle_anchor == t0
    item = sub["items"].data[0]
    assert (item.current_period_start, item.current_period_end) == (t0, expected[0])

    periods = [(t0, expected[0])]
    for start, end in itertools.pairwise(expected):
        client.v1.test_helpers.test_clocks.advance(
            clock.id, params={"frozen_time": start + 2 * HOUR}
        )
        item = client.v1.subscriptions.retrieve(sub.id)["items"].data[0]
        assert (item.current_period_start, item.current_period_end) == (start, end)
        periods.append((start, end))
    invoices = sub_invoices(client, sub.id)
    assert [i.status for i in invoices] == ["paid"] * 3
    # Licensed lines bill each period in advance; a renewal is created as its period starts.
    assert [
        (line.period.start, line.period.end) for i in invoices for line in lines_of(i)
    ] == periods
    assert [i.created for i in invoices[1:]] == expected[:2]
    assert all(i.total == 1234 for i in invoices)


# --- 3. payment failure and recovery ------------------------------------------------------
def test_payment_failure_then_recovery(billing: Harness) -> None:
    client = billing.client
    t0 = billing.world.clock.now()
    price = monthly_price(client, "Plan", 1500)
    customer = paying_customer(client)
    sub = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    assert sub.status == "active"
    client.v1.customers.update(
        customer.id,
        params={"invoice_settings": {"default_payment_method": "pm_card_chargeDeclined"}},
    )

    # The world clock, over the control plane: one month, then past the finalisation hour.
    billing.control("POST", "/_sim/clock/advance", {"duration": "P1M"})
    assert billing.world.clock.now() == add_months(t0, 1)
    billing.control("POST", "/_sim/clock/advance", {"duration": "PT2H"})
    sub = client.v1.subscriptions.retrieve(sub.id)
    assert sub.status == "past_due"
    renewal = check_invoice(client.v1.invoices.retrieve(sub.latest_invoice))
    assert renewal.billing_reason == "subscription_cycle"
    assert (renewal.status, renewal.attempt_count, renewal.attempted) == ("open", 1, True)
    assert (renewal.amount_due, renewal.amount_paid, renewal.amount_remaining) == (1500, 0, 1500)
    assert renewal.next_payment_attempt is not None
    assert renewal.next_payment_attempt > billing.world.clock.now()
    failed = [e for e in events(client, "invoice.payment_failed") if e.data.object.id == renewal.id]
    assert len(failed) == 1
    assert client.v1.customers.retrieve(customer.id).delinquent is True

    # A manual retry on the declining card fails without touching the retry schedule.
    with pytest.raises(stripe.CardError) as declined_pay:
        client.v1.invoices.pay(renewal.id)
    assert declined_pay.value.http_status == 402
    assert declined_pay.value.code == "card_declined"
    again = check_invoice(client.v1.invoices.retrieve(renewal.id))
    assert (again.status, again.attempt_count) == ("open", 1)
    assert again.next_payment_attempt == renewal.next_payment_attempt
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"

    # A working card and an explicit pay: paid, and the subscription recovers.
    client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": "pm_card_visa"}}
    )
    paid = check_invoice(client.v1.invoices.pay(renewal.id))
    assert (paid.status, paid.amount_paid, paid.amount_remaining) == ("paid", 1500, 0)
    # "only automatic retries increment the attempt count ... manual payment attempts after
    # the first attempt do not affect the retry schedule":
    # https://docs.stripe.com/api/invoices/object#invoice_object-attempt_count
    assert paid.attempt_count == 1
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    assert client.v1.customers.retrieve(customer.id).delinquent is False
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.pay(renewal.id)

    # A first invoice that declines: the subscription is incomplete, not active.
    declined = client.v1.customers.create(
        params={
            "payment_method": "pm_card_chargeDeclined",
            "invoice_settings": {"default_payment_method": "pm_card_chargeDeclined"},
        }
    )
    incomplete = client.v1.subscriptions.create(
        params={"customer": declined.id, "items": [{"price": price.id}]}
    )
    assert incomplete.status == "incomplete"
    first = check_invoice(client.v1.invoices.retrieve(incomplete.latest_invoice))
    assert (first.status, first.attempt_count, first.amount_remaining) == ("open", 1, 1500)
    assert any(e.data.object.id == first.id for e in events(client, "invoice.payment_failed"))
    # Unpaid after 23 hours it expires and its invoice is voided.
    # https://docs.stripe.com/billing/subscriptions/overview#payment-window
    with billing.world.lock:
        billing.world.clock.advance(23 * HOUR)
    assert client.v1.subscriptions.retrieve(incomplete.id).status == "incomplete_expired"
    assert check_invoice(client.v1.invoices.retrieve(first.id)).status == "void"


# --- 4. webhooks --------------------------------------------------------------------------
def test_a_customers_events_share_one_lane_of_the_endpoint(
    billing: Harness, receiver: Receiver
) -> None:
    """Deliveries to an endpoint go in parallel over its lanes, one customer's in one lane
    (so in order): the lane is crc32 of the customer id modulo the lanes (docs/simulators.md)."""
    client = billing.client
    client.v1.webhook_endpoints.create(params={"url": receiver.url, "enabled_events": ["*"]})
    price = monthly_price(client, "Lanes", 900)
    customers = [paying_customer(client) for _ in range(6)]
    for customer in customers:
        client.v1.subscriptions.create(
            params={"customer": customer.id, "items": [{"price": price.id}]}
        )
    drained = billing.control("POST", "/_sim/webhooks/drain", {"timeout_s": 10})
    assert drained == {"drained": True, "pending": 0}
    about: dict[str, str] = {}
    for event in client.v1.events.list(params={"limit": 100}).auto_paging_iter():
        obj = event.data.object.to_dict()
        about[event.id] = obj["id"] if obj["object"] == "customer" else obj.get("customer") or ""
    lanes = {d.event_id: d.lane for d in billing.world.dispatcher.deliveries()}
    assert set(lanes) == set(about)
    lanes_per_endpoint = billing.world.dispatcher.lanes_per_endpoint
    for event_id, customer in about.items():
        want = zlib.crc32(customer.encode()) % lanes_per_endpoint if customer else 0
        assert lanes[event_id] == want, (event_id, customer)
    assert {about[e] for e in lanes} >= {c.id for c in customers}


def test_webhook_deliveries_verify_with_the_sdk(billing: Harness, receiver: Receiver) -> None:
    client = billing.client
    everything = client.v1.webhook_endpoints.create(
        params={"url": receiver.url, "enabled_events": ["*"]}
    )
    filtered = client.v1.webhook_endpoints.create(
        params={
            "url": receiver.url.replace("/stripe", "/paid-only"),
            "enabled_events": ["invoice.paid"],
        }
    )
    assert everything.secret.startswith("whsec_") and everything.secret != filtered.secret

    price = monthly_price(client, "Hooks", 700)
    customer = paying_customer(client)
    client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": price.id}]})

    drained = billing.control("POST", "/_sim/webhooks/drain", {"timeout_s": 10})
    assert drained == {"drained": True, "pending": 0}
    published = client.v1.events.list(params={"limit": 100})
    assert published.has_more is False
    expected = {e.id: e.type for e in published.data}
    assert {"customer.created", "customer.subscription.created", "invoice.paid"} <= set(
        expected.values()
    )

    # Each event's object is as it was at the event: the first invoice, draft to paid.
    statuses = {e.type: e.data.object.status for e in published.data if e.type[:8] == "invoice."}
    assert statuses == {
        "invoice.created": "draft",
        "invoice.finalized": "open",
        "invoice.paid": "paid",
        "invoice.payment_succeeded": "paid",
    }

    served = {e["id"]: e for e in billing.raw("GET", "/v1/events?limit=100").json()["data"]}
    got: dict[str, list[str]] = {}
    for delivery in receiver.received():
        secret = everything.secret if delivery.path.endswith("/stripe") else filtered.secret
        event = stripe.Webhook.construct_event(
            delivery.body, delivery.headers["stripe-signature"], secret
        )
        # The payload is the event /v1/events serves (its object kept as bytes, sent as is).
        assert json.loads(delivery.body) == served[event.id]
        assert event.api_version == stripe.api_version
        assert delivery.headers["content-type"].startswith("application/json")
        got.setdefault(delivery.path, []).append(event.id)
        if event.data.object.object == "invoice":
            check_invoice(event.data.object)
        # The wrong endpoint's secret, or one changed byte, must not verify.
        other = filtered.secret if secret == everything.secret else everything.secret
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(
                delivery.body, delivery.headers["stripe-signature"], other
            )
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(
                delivery.body.replace(b'"', b"'", 1), delivery.headers["stripe-signature"], secret
            )
    assert sorted(got["/hooks/stripe"]) == sorted(expected)
    assert sorted(got["/hooks/paid-only"]) == sorted(
        i for i, kind in expected.items() if kind == "invoice.paid"
    )


# --- 5. idempotency -----------------------------------------------------------------------
def count_customers(client: stripe.StripeClient) -> int:
    found = client.v1.customers.list(params={"limit": 100})
    assert found.has_more is False
    return len(found.data)


def test_idempotency_keys_replay_conflict_and_expire(billing: Harness) -> None:
    client = billing.client
    params = {"email": "idem@example.com", "metadata": {"order": "42"}}
    first = client.v1.customers.create(params=params, options={"idempotency_key": "key-1"})
    again = client.v1.customers.create(params=params, options={"idempotency_key": "key-1"})
    assert again.id == first.id
    assert count_customers(client) == 1

    raw = billing.raw(
        "POST",
        "/v1/customers",
        headers={"Idempotency-Key": "key-1"},
        data={"email": "idem@example.com", "metadata[order]": "42"},
    )
    assert raw.status_code == 200
    assert raw.headers["Idempotent-Replayed"] == "true"
    assert raw.json()["id"] == first.id
    assert count_customers(client) == 1

    with pytest.raises(stripe.IdempotencyError) as mismatch:
        client.v1.customers.create(
            params={"email": "other@example.com"}, options={"idempotency_key": "key-1"}
        )
    assert mismatch.value.http_status == 400
    assert count_customers(client) == 1

    # Keys live 24 hours of sim time: a second short, still held; then free again.
    # https://docs.stripe.com/api/idempotent_requests
    with billing.world.lock:
        billing.world.clock.advance(24 * HOUR - 1)
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create(
            params={"email": "other@example.com"}, options={"idempotency_key": "key-1"}
        )
    with billing.world.lock:
        billing.world.clock.advance(1)
    reused = client.v1.customers.create(
        params={"email": "other@example.com"}, options={"idempotency_key": "key-1"}
    )
    assert reused.id != first.id and reused.email == "other@example.com"
    assert count_customers(client) == 2


# --- 6. faults through the SDK ------------------------------------------------------------
def add_fault(billing: Harness, **rule: Any) -> dict[str, Any]:
    created: dict[str, Any] = billing.control(
        "POST", "/_sim/faults", {"system": "billing", "operation": "createCustomer", **rule}
    )
    return created


def journal(billing: Harness, since: int = 0) -> list[dict[str, Any]]:
    found = billing.control("GET", f"/_sim/journal?operation_id=createCustomer&since_seq={since}")
    return list(found["data"])


def test_faults_are_survived_by_the_sdk_retries(billing: Harness) -> None:
    client = billing.client

    # 429 with Stripe-Should-Retry: true is retried by the SDK and then succeeds.
    add_fault(billing, kind="throttle", max_hits=1, should_retry=True)
    client.v1.customers.create(params={"email": "throttled@example.com"})
    assert count_customers(client) == 1
    entries = journal(billing)
    assert [e["status"] for e in entries] == [429, 200]
    assert entries[0]["faults"] and not entries[1]["faults"]
    billing.control("DELETE", "/_sim/faults")

    # Without the header the SDK does not retry a 429.
    add_fault(billing, kind="throttle", max_hits=1)
    with pytest.raises(stripe.RateLimitError) as limited:
        client.v1.customers.create(params={"email": "limited@example.com"})
    assert limited.value.http_status == 429
    assert count_customers(client) == 1
    billing.control("DELETE", "/_sim/faults")

    # Ambiguous commit: the write happens, the answer is lost, the connection is reset; the
    # SDK retries with the same Idempotency-Key and is answered from the stored response.
    seen = journal(billing)[-1]["seq"]
    add_fault(billing, kind="ambiguous_commit", max_hits=1)
    made = client.v1.customers.create(params={"email": "ambiguous@example.com"})
    assert count_customers(client) == 2
    entries = journal(billing, seen)
    assert [(e["status"], e["replayed"]) for e in entries] == [(0, False), (200, True)]
    assert entries[0]["idempotency_key"] and entries[0]["faults"]
    listed = client.v1.customers.list(params={"email": "ambiguous@example.com"})
    assert [c.id for c in listed.data] == [made.id]
    billing.control("DELETE", "/_sim/faults")

    # An outage answers 503 until its hits are used up; the SDK retries through it.
    seen = journal(billing)[-1]["seq"]
    add_fault(billing, kind="outage", max_hits=2)
    client.v1.customers.create(params={"email": "outage@example.com"})
    assert [e["status"] for e in journal(billing, seen)] == [503, 503, 200]
    assert count_customers(client) == 3
    # More outage than retries: the SDK gives up with an APIError and nothing is created.
    seen = journal(billing)[-1]["seq"]
    add_fault(billing, kind="outage", max_hits=3)
    with pytest.raises(stripe.APIError) as outage:
        client.v1.customers.create(params={"email": "down@example.com"})
    assert outage.value.http_status == 503
    assert [e["status"] for e in journal(billing, seen)] == [503, 503, 503]
    assert count_customers(client) == 3
    faults = billing.control("GET", "/_sim/faults")
    assert len(faults["hits"]) == 1 + 1 + 1 + 2 + 3


# --- 7. bad input -------------------------------------------------------------------------
def test_bad_input_is_a_4xx_and_changes_nothing(billing: Harness) -> None:
    client = billing.client
    price = monthly_price(client, "Plan", 1000)
    customer = paying_customer(client)
    sub = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id, "quantity": 2}]}
    )
    item = sub["items"].data[0]
    before = billing.store()

    def unchanged() -> None:
        assert billing.store() == before

    def sdk_error(call: Any, status: int, code: str, param: str | None) -> None:
        with pytest.raises(stripe.InvalidRequestError) as failed:
            call()
        assert failed.value.http_status == status, failed.value.user_message
        assert failed.value.code == code
        assert failed.value.param == param
        unchanged()

    # Unknown parameters, top level and nested.
    sdk_error(
        lambda: client.v1.customers.create(params={"emial": "x@example.com"}),
        400,
        "parameter_unknown",
        "emial",
    )
    sdk_error(
        lambda: client.v1.customers.create(
            params={"invoice_settings": {"default_payment_methd": "pm_card_visa"}}
        ),
        400,
        "parameter_unknown",
        "invoice_settings[default_payment_methd]",
    )
    sdk_error(
        lambda: client.v1.subscriptions.update(sub.id, params={"quantity": 3}),
        400,
        "parameter_unknown",
        "quantity",
    )
    # Wrong types.
    sdk_error(
        lambda: client.v1.subscription_items.update(item.id, params={"quantity": "abc"}),
        400,
        "parameter_invalid",
        "quantity",
    )
    sdk_error(
        lambda: client.v1.subscriptions.create(
            params={"customer": customer.id, "items": [{"price": price.id, "quantity": "abc"}]}
        ),
        400,
        "parameter_invalid",
        "items[0][quantity]",
    )
    sdk_error(
        lambda: client.v1.customers.create(params={"balance": "1.5"}),
        400,
        "parameter_invalid",
        "balance",
    )
    sdk_error(
        lambda: client.v1.customers.list(params={"limit": "ten"}), 400, "parameter_invalid", "limit"
    )
    # Unknown ids.
    # Stripe names the path parameter "id" when a retrieve misses.
    sdk_error(lambda: client.v1.customers.retrieve("cus_missing"), 404, "resource_missing", "id")
    sdk_error(
        lambda: client.v1.subscriptions.create(
            params={"customer": "cus_missing", "items": [{"price": price.id}]}
        ),
        404,
        "resource_missing",
        "customer",
    )
    sdk_error(
        lambda: client.v1.subscriptions.update(
            sub.id, params={"items": [{"id": item.id, "price": "price_missing"}]}
        ),
        404,
        "resource_missing",
        "items[0][price]",
    )
    sdk_error(lambda: client.v1.invoices.pay("in_missing"), 404, "resource_missing", "invoice")

    # Raw bodies the SDK would never send.
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for body in (
        b"a[b=1",
        b"email=%ZZ",
        b"email=%E2%82",
        b"metadata[a][b][c][d][e][f]=1",
        b"items[0]=x&items[0][price]=y",
        b"email=ok&=nameless",
    ):
        response = billing.raw("POST", "/v1/customers", headers=form, content=body)
        assert 400 <= response.status_code < 500, (body, response.status_code, response.text)
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error", body
        unchanged()
    # An integer beyond 64 bits is refused, not stored (sent without an Idempotency-Key; with
    # one, see test_sdk_integer_beyond_64_bits_is_a_400).
    for path, body, param in (
        ("/v1/customers", b"balance=100000000000000000000000", "balance"),
        (f"/v1/subscription_items/{item.id}", b"quantity=9223372036854775808", "quantity"),
    ):
        response = billing.raw("POST", path, headers=form, content=body)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert (error["code"], error["param"]) == ("parameter_invalid_integer", param)
        unchanged()
    big = b"description=" + b"x" * (2 << 20)
    response = billing.raw("POST", "/v1/customers", headers=form, content=big)
    assert response.status_code == 413, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"
    unchanged()
    assert count_customers(client) == 1

    # Nothing answered with a 5xx.
    statuses = [e["status"] for e in billing.control("GET", "/_sim/journal?limit=1000")["data"]]
    assert statuses and max(statuses) < 500


def test_sdk_integer_beyond_64_bits_is_a_400(billing: Harness) -> None:
    with pytest.raises(stripe.InvalidRequestError) as failed:
        billing.client.v1.customers.create(params={"balance": 10**23})
    assert failed.value.code == "parameter_invalid_integer"
    assert failed.value.param == "balance"


def test_a_new_subscription_leaves_another_subscriptions_prorations_pending(
    billing: Harness,
) -> None:
    """Found by `harness fuzz --seed 13`: a second subscription's first invoice swept up the
    first subscription's pending prorations. Each waits for its own subscription's invoice."""
    client = billing.client
    seats = monthly_price(client, "Seats", 1000)
    team = monthly_price(client, "Team", 5000)
    customer = paying_customer(client)
    first = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": seats.id, "quantity": 2}]}
    )
    (item,) = first["items"].data
    client.v1.subscriptions.update(
        first.id,
        params={
            "items": [{"id": item.id, "quantity": 4}],
            "proration_behavior": "create_prorations",
        },
    )
    pending = client.v1.invoice_items.list(params={"customer": customer.id, "pending": True})
    assert len(pending.data) == 2  # the credit for 2 seats and the charge for 4, same instant
    second = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": team.id, "quantity": 1}]}
    )
    (opening,) = sub_invoices(client, second.id)
    assert [line.amount for line in lines_of(opening)] == [5000]
    still = client.v1.invoice_items.list(params={"customer": customer.id, "pending": True})
    assert {ii.id for ii in still.data} == {ii.id for ii in pending.data}

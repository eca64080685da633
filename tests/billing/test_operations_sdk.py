"""Billing operations the lifecycle tests do not reach, through the real SDK."""

from __future__ import annotations

from fractions import Fraction
from typing import cast

import pytest
import stripe

from examples.reference_integration.erp import NetSuite
from examples.reference_integration.sync import Syncer
from tests.billing.conftest import Harness, monthly_price, paying_customer

DAY = 86400


def _half_up(value: Fraction) -> int:
    sign = -1 if value < 0 else 1
    whole, rest = divmod(abs(value), 1)
    return sign * int(whole + (1 if rest >= Fraction(1, 2) else 0))


def _plan(billing: Harness, unit_amount: int = 1000) -> tuple[str, str]:
    price = monthly_price(billing.client, "Seat", unit_amount)
    return str(price.product), str(price.id)


def _paying_customer(billing: Harness, **extra: object) -> str:
    return str(paying_customer(billing.client, **extra).id)


def test_pagination_with_cursors_and_sdk_auto_paging(billing: Harness) -> None:
    client = billing.client
    made = [client.v1.customers.create(params={"name": f"c{n}"}).id for n in range(7)]
    newest_first = list(reversed(made))
    first = client.v1.customers.list(params={"limit": 3})
    assert [c.id for c in first.data] == newest_first[:3] and first.has_more
    second = client.v1.customers.list(params={"limit": 3, "starting_after": first.data[-1].id})
    assert [c.id for c in second.data] == newest_first[3:6]
    back = client.v1.customers.list(params={"limit": 2, "ending_before": second.data[0].id})
    assert [c.id for c in back.data] == newest_first[1:3]
    assert [c.id for c in first.auto_paging_iter()] == newest_first


def test_expand_replaces_ids_with_objects(billing: Harness) -> None:
    _, price = _plan(billing)
    customer = _paying_customer(billing)
    sub = billing.client.v1.subscriptions.create(
        params={
            "customer": customer,
            "items": [{"price": price}],
            "expand": ["latest_invoice", "customer"],
        }
    )
    assert sub.latest_invoice.object == "invoice" and sub.latest_invoice.total == 1000
    assert sub.customer.id == customer
    with pytest.raises(stripe.InvalidRequestError) as failed:
        billing.client.v1.subscriptions.retrieve(sub.id, params={"expand": ["nothing_here"]})
    assert failed.value.param == "expand"
    # An invoice's subscription is expandable, as on Stripe, and the answer honours the
    # contract (the invoice holds the subscription, which holds its latest invoice's id).
    invoice = billing.client.v1.invoices.retrieve(
        sub.latest_invoice.id,
        params={"expand": ["customer", "parent.subscription_details.subscription"]},
    )
    expanded = invoice.parent.subscription_details.subscription
    assert expanded.object == "subscription" and expanded.id == sub.id
    assert expanded.latest_invoice == invoice.id and invoice.customer.id == customer


def test_expand_replaces_a_list_of_ids_with_the_objects(billing: Harness) -> None:
    """``discounts`` is a list of ids; expanded, each is its discount (with its coupon)."""
    _, price = _plan(billing)
    coupon = billing.client.v1.coupons.create(params={"percent_off": 20, "duration": "forever"})
    sub = billing.client.v1.subscriptions.create(
        params={
            "customer": _paying_customer(billing),
            "items": [{"price": price}],
            "discounts": [{"coupon": coupon.id}],
        }
    )
    assert [d for d in sub.discounts if not isinstance(d, str)] == []
    found = billing.client.v1.subscriptions.retrieve(sub.id, params={"expand": ["discounts"]})
    [discount] = found.discounts
    assert (discount.object, discount.source.coupon) == ("discount", coupon.id)


def test_invoice_preview_shows_the_prorated_change_without_making_it(billing: Harness) -> None:
    client = billing.client
    _, low = _plan(billing, 1000)
    _, high = _plan(billing, 3000)
    customer = _paying_customer(billing)
    sub = client.v1.subscriptions.create(
        params={"customer": customer, "items": [{"price": low, "quantity": 2}]}
    )
    item = sub["items"].data[0]
    start, end = item.current_period_start, item.current_period_end
    at = start + 12 * DAY
    billing.world.clock.set(at)
    before = billing.store()
    preview = client.v1.invoices.create_preview(
        params={
            "subscription": sub.id,
            "subscription_details": {
                "items": [{"id": item.id, "price": high}],
                "proration_date": at,
            },
        }
    )
    share = Fraction(end - at, end - start)
    credit, debit = -_half_up(2 * 1000 * share), _half_up(2 * 3000 * share)
    prorations = sorted(
        line.amount
        for line in preview.lines.data
        if line.parent.subscription_item_details.proration
    )
    assert prorations == sorted([credit, debit])
    assert preview.total == credit + debit + 2 * 3000  # prorations plus the next period
    assert preview.id.startswith("upcoming_")
    assert billing.store() == before  # nothing was changed
    assert client.v1.subscriptions.retrieve(sub.id)["items"].data[0].price.id == low


def test_void_uncollectible_and_credit_note_void(billing: Harness) -> None:
    client = billing.client
    customer = client.v1.customers.create(params={"name": "Manual"})
    for amount in (2500, 4000):
        client.v1.invoice_items.create(
            params={"customer": customer.id, "amount": amount, "currency": "usd"}
        )
    draft = client.v1.invoices.create(
        params={"customer": customer.id, "pending_invoice_items_behavior": "include"}
    )
    assert draft.status == "draft" and draft.total == 6500
    opened = client.v1.invoices.finalize_invoice(draft.id, params={"auto_advance": False})
    note = client.v1.credit_notes.create(params={"invoice": opened.id, "amount": 1500})
    assert note.type == "pre_payment" and note.pre_payment_amount == 1500
    assert client.v1.invoices.retrieve(opened.id).amount_remaining == 5000
    client.v1.credit_notes.void_credit_note(note.id)
    assert client.v1.invoices.retrieve(opened.id).amount_remaining == 6500
    voided = client.v1.invoices.void_invoice(opened.id)
    assert voided.status == "void" and voided.status_transitions.voided_at is not None
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.pay(opened.id)

    client.v1.invoice_items.create(
        params={"customer": customer.id, "amount": 900, "currency": "usd"}
    )
    other = client.v1.invoices.create(
        params={"customer": customer.id, "pending_invoice_items_behavior": "include"}
    )
    client.v1.invoices.finalize_invoice(other.id, params={"auto_advance": False})
    lost = client.v1.invoices.mark_uncollectible(other.id)
    assert lost.status == "uncollectible" and lost.amount_remaining == 900
    kinds = {e.type for e in client.v1.events.list(params={"limit": 100}).data}
    assert {"invoice.voided", "invoice.marked_uncollectible", "credit_note.voided"} <= kinds


def test_meter_event_summaries_sum_deduplicated_usage(billing: Harness) -> None:
    client = billing.client
    meter = client.v1.billing.meters.create(
        params={
            "display_name": "Calls",
            "event_name": "calls",
            "default_aggregation": {"formula": "sum"},
        }
    )
    customer = _paying_customer(billing)
    now = billing.world.clock.now()
    values = [5, 7, 11]
    for n, value in enumerate(values):
        client.v1.billing.meter_events.create(
            params={
                "event_name": "calls",
                "identifier": f"call-{n}",
                "timestamp": now - 60 * n,
                "payload": {"stripe_customer_id": customer, "value": str(value)},
            }
        )
    client.v1.billing.meter_events.create(
        params={  # a retry of call-0: counted once
            "event_name": "calls",
            "identifier": "call-0",
            "timestamp": now,
            "payload": {"stripe_customer_id": customer, "value": "5"},
        }
    )
    summaries = client.v1.billing.meters.event_summaries.list(
        meter.id, params={"customer": customer, "start_time": now - 3600, "end_time": now + 60}
    )
    assert summaries.data[0].aggregated_value == sum(values)
    with pytest.raises(stripe.InvalidRequestError) as failed:
        client.v1.billing.meter_events.create(
            params={
                "event_name": "calls",
                "timestamp": now - 40 * DAY,
                "payload": {"stripe_customer_id": customer, "value": "1"},
            }
        )
    assert failed.value.param == "timestamp"


def test_deleting_a_test_clock_deletes_its_customers(billing: Harness) -> None:
    client = billing.client
    clock = client.v1.test_helpers.test_clocks.create(
        params={"frozen_time": billing.world.clock.now()}
    )
    customer = client.v1.customers.create(params={"test_clock": clock.id})
    bystander = client.v1.customers.create(params={"name": "not on the clock"})
    deleted = client.v1.test_helpers.test_clocks.delete(clock.id)
    assert deleted.deleted is True
    assert client.v1.customers.retrieve(customer.id).deleted is True
    assert "deleted" not in client.v1.customers.retrieve(bystander.id)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.test_helpers.test_clocks.advance(clock.id, params={"frozen_time": 1})


def test_events_filter_by_type_and_time(billing: Harness) -> None:
    client = billing.client
    first = client.v1.customers.create(params={"name": "early"})
    billing.world.clock.advance(3600)
    client.v1.customers.update(first.id, params={"name": "renamed"})
    updated = client.v1.events.list(params={"type": "customer.updated"})
    assert [e.data.previous_attributes["name"] for e in updated.data] == ["early"]
    later = client.v1.events.list(params={"created": {"gte": billing.world.clock.now()}})
    assert {e.type for e in later.data} == {"customer.updated"}
    wildcard = client.v1.events.list(params={"type": "customer.*"})
    assert {e.type for e in wildcard.data} == {"customer.created", "customer.updated"}


def test_a_test_card_token_pays_for_any_number_of_customers(billing: Harness) -> None:
    # Stripe mints a fresh card from pm_card_visa on every use; a real card of another
    # customer would be refused.
    client = billing.client
    for name, amount in (("First", 1200), ("Second", 3400)):
        customer = client.v1.customers.create(params={"name": name})
        client.v1.invoice_items.create(
            params={"customer": customer.id, "amount": amount, "currency": "usd"}
        )
        draft = client.v1.invoices.create(
            params={"customer": customer.id, "pending_invoice_items_behavior": "include"}
        )
        client.v1.invoices.finalize_invoice(draft.id, params={"auto_advance": False})
        paid = client.v1.invoices.pay(draft.id, params={"payment_method": "pm_card_visa"})
        assert paid.status == "paid" and paid.amount_paid == amount


def test_an_invoice_carries_its_first_ten_lines_and_lists_them_all(billing: Harness) -> None:
    # Stripe's invoice holds "the first handful" of its lines (the list's default page of
    # ten); a reader that trusts the embedded list alone misses the rest.
    client = billing.client
    customer = client.v1.customers.create(params={"name": "Many lines"})
    amounts = [100 * (n + 1) for n in range(12)]
    for amount in amounts:
        client.v1.invoice_items.create(
            params={"customer": customer.id, "amount": amount, "currency": "usd"}
        )
    draft = client.v1.invoices.create(
        params={"customer": customer.id, "pending_invoice_items_behavior": "include"}
    )
    invoice = client.v1.invoices.retrieve(draft.id)
    assert invoice.total == sum(amounts)
    assert len(invoice.lines.data) == 10 and invoice.lines.has_more is True
    listed = list(client.v1.invoices.line_items.list(draft.id).auto_paging_iter())
    assert sorted(line.amount for line in listed) == amounts
    # The reference integration reads the embedded lines only when they are all there.
    reader = Syncer(client, cast(NetSuite, None))
    assert sorted(line["amount"] for line in reader._lines(invoice.to_dict())) == amounts

    few = client.v1.customers.create(params={"name": "Few lines"})
    client.v1.invoice_items.create(params={"customer": few.id, "amount": 700, "currency": "usd"})
    small = client.v1.invoices.create(
        params={"customer": few.id, "pending_invoice_items_behavior": "include"}
    )
    assert [line.amount for line in small.lines.data] == [700]
    assert small.lines.has_more is False

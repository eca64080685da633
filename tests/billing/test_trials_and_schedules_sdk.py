"""Trials and schedule controls through the real ``stripe`` SDK: trial_period_days / trial_end
(a zero first invoice, ``trialing``, ``trial_will_end`` three days before, conversion to paid),
``cancel_at`` (the last period prorated), ``pause_collection`` (void, keep as draft, mark
uncollectible, resumes_at). Expected figures are computed here."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from tests.billing.conftest import Harness, monthly_price, paying_customer
from tests.billing.helpers import add_months, proration

DAY = 86400
HOUR = 3600
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def clocked(client: stripe.StripeClient, **customer: Any) -> tuple[Any, Any]:
    clock = client.v1.test_helpers.test_clocks.create(params={"frozen_time": T0})
    return clock, paying_customer(client, test_clock=clock.id, **customer)


def advance(client: stripe.StripeClient, clock: Any, to: int) -> None:
    client.v1.test_helpers.test_clocks.advance(clock.id, params={"frozen_time": to})


def invoices(client: stripe.StripeClient, sub: str) -> list[Any]:
    found = client.v1.invoices.list(params={"subscription": sub, "limit": 100}).data
    return list(reversed(found))


def events(client: stripe.StripeClient, kind: str) -> list[Any]:
    return list(client.v1.events.list(params={"type": kind, "limit": 100}).data)


def test_a_trial_bills_nothing_then_converts_to_paid(billing: Harness) -> None:
    client = billing.client
    clock, customer = clocked(client)
    price = monthly_price(client, "Pro", 4_900)
    sub = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}], "trial_period_days": 14}
    )
    trial_end = T0 + 14 * DAY
    assert (sub.status, sub.trial_start, sub.trial_end) == ("trialing", T0, trial_end)
    assert sub.billing_cycle_anchor == trial_end
    item = sub["items"].data[0]
    assert (item.current_period_start, item.current_period_end) == (T0, trial_end)
    (first,) = invoices(client, sub.id)
    assert (first.total, first.status, first.billing_reason) == (0, "paid", "subscription_create")
    assert [line.amount for line in first.lines.data] == [0]
    # Three days before the end: customer.subscription.trial_will_end, once.
    advance(client, clock, trial_end - 3 * DAY - 60)
    assert events(client, "customer.subscription.trial_will_end") == []
    advance(client, clock, trial_end - 3 * DAY + 60)
    (warning,) = events(client, "customer.subscription.trial_will_end")
    assert warning.data.object.id == sub.id
    # At the end: active, and the first paid period invoiced and paid.
    advance(client, clock, trial_end + 2 * HOUR)
    after = client.v1.subscriptions.retrieve(sub.id)
    assert (after.status, after.trial_end) == ("active", trial_end)
    paid = invoices(client, sub.id)[-1]
    assert (paid.total, paid.status, paid.billing_reason) == (4_900, "paid", "subscription_cycle")
    assert paid.lines.data[0].period.start == trial_end
    assert paid.lines.data[0].period.end == add_months(trial_end, 1)
    assert len(events(client, "customer.subscription.trial_will_end")) == 1


def test_trial_end_at_a_timestamp_and_ended_now(billing: Harness) -> None:
    client = billing.client
    clock, customer = clocked(client)
    price = monthly_price(client, "Team", 12_000)
    ends = T0 + 5 * DAY + 7 * HOUR
    sub = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}], "trial_end": ends}
    )
    assert (sub.status, sub.trial_end) == ("trialing", ends)
    # A trial shorter than three days from now warns at once.
    advance(client, clock, T0 + 3 * DAY)
    assert len(events(client, "customer.subscription.trial_will_end")) == 1
    ended = client.v1.subscriptions.update(sub.id, params={"trial_end": "now"})
    now = T0 + 3 * DAY
    assert (ended.status, ended.trial_end, ended.billing_cycle_anchor) == ("active", now, now)
    last = invoices(client, sub.id)[-1]
    assert (last.total, last.amount_paid) == (12_000, 12_000)
    with pytest.raises(stripe.InvalidRequestError) as past:
        client.v1.subscriptions.create(
            params={"customer": customer.id, "items": [{"price": price.id}], "trial_end": T0}
        )
    assert past.value.param == "trial_end"


def test_a_trial_without_a_payment_method_goes_past_due(billing: Harness) -> None:
    client = billing.client
    clock = client.v1.test_helpers.test_clocks.create(params={"frozen_time": T0})
    customer = client.v1.customers.create(params={"name": "No card", "test_clock": clock.id})
    price = monthly_price(client, "Basic", 900)
    sub = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}], "trial_period_days": 7}
    )
    assert sub.status == "trialing"
    advance(client, clock, T0 + 7 * DAY + 2 * HOUR)
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"


def test_cancel_at_bills_the_last_period_up_to_it(billing: Harness) -> None:
    client = billing.client
    clock, customer = clocked(client)
    price = monthly_price(client, "Seat", 3_100)
    cancel_at = add_months(T0, 1) + 9 * DAY + 5 * HOUR
    sub = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}], "cancel_at": cancel_at}
    )
    assert sub.cancel_at == cancel_at
    advance(client, clock, add_months(T0, 1) + 2 * HOUR)
    renewal = invoices(client, sub.id)[-1]
    start, end = add_months(T0, 1), add_months(T0, 2)
    (line,) = renewal.lines.data
    assert (line.period.start, line.period.end) == (start, cancel_at)
    assert line.amount == 3_100 - proration(3_100, 1, start, end, cancel_at)
    advance(client, clock, cancel_at + 60)
    gone = client.v1.subscriptions.retrieve(sub.id)
    assert (gone.status, gone.ended_at) == ("canceled", cancel_at)
    assert gone.cancellation_details.reason == "cancellation_requested"


def test_cancel_at_inside_the_paid_period_credits_the_rest(billing: Harness) -> None:
    client = billing.client
    clock, customer = clocked(client)
    price = monthly_price(client, "Seat", 3_100)
    sub = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    cancel_at = T0 + 12 * DAY
    updated = client.v1.subscriptions.update(sub.id, params={"cancel_at": cancel_at})
    assert updated.cancel_at == cancel_at
    pending = client.v1.invoice_items.list(params={"customer": customer.id, "pending": True})
    assert [ii.amount for ii in pending.data] == [
        -proration(3_100, 1, T0, add_months(T0, 1), cancel_at)
    ]
    cleared = client.v1.subscriptions.update(sub.id, params={"cancel_at": ""})
    assert cleared.cancel_at is None
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.update(sub.id, params={"cancel_at": T0 - 1})
    advance(client, clock, add_months(T0, 1) + 2 * HOUR)
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"


@pytest.mark.parametrize(
    ("behavior", "status"),
    [("void", "void"), ("keep_as_draft", "draft"), ("mark_uncollectible", "uncollectible")],
)
def test_pause_collection_and_resume(billing: Harness, behavior: str, status: str) -> None:
    client = billing.client
    clock, customer = clocked(client)
    price = monthly_price(client, "Paused", 2_500)
    sub = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    resumes_at = add_months(T0, 2) - DAY
    paused = client.v1.subscriptions.update(
        sub.id, params={"pause_collection": {"behavior": behavior, "resumes_at": resumes_at}}
    )
    assert (paused.status, paused.pause_collection.behavior) == ("active", behavior)
    assert paused.pause_collection.resumes_at == resumes_at
    advance(client, clock, add_months(T0, 1) + 2 * HOUR)
    during = invoices(client, sub.id)[-1]
    assert (during.status, during.amount_paid, during.total) == (status, 0, 2_500)
    advance(client, clock, add_months(T0, 2) + 2 * HOUR)
    assert client.v1.subscriptions.retrieve(sub.id).pause_collection is None
    assert invoices(client, sub.id)[-1].status == "paid"


def test_resuming_by_clearing_pause_collection(billing: Harness) -> None:
    client = billing.client
    customer = paying_customer(client)
    price = monthly_price(client, "Resume", 1_000)
    sub = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    client.v1.subscriptions.update(sub.id, params={"pause_collection": {"behavior": "void"}})
    resumed = client.v1.subscriptions.update(sub.id, params={"pause_collection": ""})
    assert resumed.pause_collection is None
    kinds = [e.data.previous_attributes for e in events(client, "customer.subscription.updated")]
    assert any("pause_collection" in (p or {}) for p in kinds)

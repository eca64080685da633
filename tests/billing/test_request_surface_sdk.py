"""The request surface integrations touch that the simulator used to refuse: decimal unit
prices (``unit_amount_decimal``), through the real ``stripe`` SDK. (Customer address and tax
ids: ``test_tax_sdk.py``; ``cancel_at``: ``test_trials_and_schedules_sdk.py``.)"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
import stripe

from tests.billing.conftest import Harness, paying_customer
from tests.billing.helpers import proration, round_half_up

DAY = 86400


def times(unit: str, quantity: int) -> int:
    """quantity × a decimal unit price, rounded half-up once for the line."""
    return round_half_up(Fraction(Decimal(unit)) * quantity)


def test_a_decimal_unit_price_bills_quantity_times_it_rounded_once(billing: Harness) -> None:
    client = billing.client
    product = client.v1.products.create(params={"name": "API calls"})
    price = client.v1.prices.create(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount_decimal": "12.345",
            "recurring": {"interval": "month"},
        }
    )
    # Stripe shows no whole unit_amount for a fractional price.
    assert (price.unit_amount, price.unit_amount_decimal) == (None, Decimal("12.345"))
    customer = paying_customer(client)
    sub = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id, "quantity": 7}]}
    )
    item = sub["items"].data[0]
    assert (item.plan.amount, item.plan.amount_decimal) == (None, Decimal("12.345"))
    first = client.v1.invoices.retrieve(sub.latest_invoice)
    assert first.total == times("12.345", 7)
    # A proration of a decimal price prorates the whole line's amount.
    start, end = item.current_period_start, item.current_period_end
    at = start + 9 * DAY
    client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": item.id, "quantity": 10}],
            "proration_date": at,
            "proration_behavior": "always_invoice",
        },
    )
    upgrade = client.v1.invoices.retrieve(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    assert sorted(line.amount for line in upgrade.lines.data) == sorted(
        [
            -proration(times("12.345", 7), 1, start, end, at),
            proration(times("12.345", 10), 1, start, end, at),
        ]
    )


def test_a_whole_decimal_is_an_ordinary_price_and_both_forms_are_refused(
    billing: Harness,
) -> None:
    client = billing.client
    product = client.v1.products.create(params={"name": "Seats"})
    whole = client.v1.prices.create(
        params={"product": product.id, "currency": "usd", "unit_amount_decimal": "1500.000"}
    )
    assert (whole.unit_amount, whole.unit_amount_decimal) == (1500, Decimal("1500"))
    tiny = client.v1.prices.create(
        params={"product": product.id, "currency": "usd", "unit_amount_decimal": "0.0125"}
    )
    customer = client.v1.customers.create(params={"name": "Tiny"})
    item = client.v1.invoice_items.create(
        params={"customer": customer.id, "pricing": {"price": tiny.id}, "quantity": 1_000}
    )
    assert item.amount == times("0.0125", 1_000)
    for bad in (
        {"unit_amount": 100, "unit_amount_decimal": "100"},
        {"unit_amount_decimal": "1.0000000000001"},
        {"unit_amount_decimal": "-1"},
        {},
    ):
        with pytest.raises(stripe.InvalidRequestError):
            client.v1.prices.create(params={"product": product.id, "currency": "usd", **bad})  # type: ignore[typeddict-item]

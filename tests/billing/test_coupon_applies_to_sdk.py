"""Coupons restricted to products (``applies_to[products][]``) through the real ``stripe`` SDK:
the discount comes off those products' lines only, on invoices, amounts off and prorations.
Expected figures are computed here (``tests/billing/helpers.py``)."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from tests.billing.conftest import Harness, monthly_price, paying_customer
from tests.billing.helpers import percent, proration

DAY = 86400


def off(line: Any) -> int:
    return sum(d.amount for d in line.discount_amounts)


def _pro_and_support(client: stripe.StripeClient) -> tuple[Any, Any]:
    return monthly_price(client, "Pro", 10_000), monthly_price(client, "Support", 5_001)


def _restricted_subscription(
    client: stripe.StripeClient, terms: dict[str, Any], *, pro_seats: int
) -> tuple[Any, Any, Any]:
    """Pro seats and support on one subscription with a coupon of ``terms`` restricted to
    support: (Pro price, support price, subscription)."""
    pro, support = _pro_and_support(client)
    coupon = client.v1.coupons.create(
        params={**terms, "applies_to": {"products": [support.product]}}  # type: ignore[typeddict-item]
    )
    sub = client.v1.subscriptions.create(
        params={
            "customer": paying_customer(client).id,
            "items": [{"price": pro.id, "quantity": pro_seats}, {"price": support.id}],
            "discounts": [{"coupon": coupon.id}],
        }
    )
    return pro, support, sub


def test_a_restricted_coupon_shows_its_products_only_when_expanded(billing: Harness) -> None:
    client = billing.client
    _, support = _pro_and_support(client)
    coupon = client.v1.coupons.create(
        params={"percent_off": 50, "applies_to": {"products": [support.product]}}
    )
    assert "applies_to" not in coupon  # includable: not shown by default (Stripe)
    shown = client.v1.coupons.retrieve(coupon.id, params={"expand": ["applies_to"]})
    assert shown.applies_to.products == [support.product]
    listed = client.v1.coupons.list(params={"expand": ["data.applies_to"]}).data
    assert [c.applies_to.products for c in listed] == [[support.product]]
    plain = client.v1.coupons.create(params={"percent_off": 10})
    assert "applies_to" not in client.v1.coupons.retrieve(
        plain.id, params={"expand": ["applies_to"]}
    )


def test_an_unknown_product_is_refused_and_nothing_is_made(billing: Harness) -> None:
    client = billing.client
    pro, _ = _pro_and_support(client)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.coupons.create(
            params={
                "id": "HALF",
                "percent_off": 50,
                "applies_to": {"products": [pro.product, "prod_missing"]},
            }
        )
    assert (refused.value.code, refused.value.param) == (
        "resource_missing",
        "applies_to[products][1]",
    )
    assert client.v1.coupons.list().data == []


def test_a_percent_off_one_product_leaves_the_other_lines_alone(billing: Harness) -> None:
    client = billing.client
    pro, support, sub = _restricted_subscription(
        client, {"percent_off": 50, "duration": "forever"}, pro_seats=3
    )
    inv = client.v1.invoices.retrieve(sub.latest_invoice)
    (discount,) = inv.discounts
    by_price = {line.pricing.price_details.price: off(line) for line in inv.lines.data}
    half = percent(5_001, "50")
    assert by_price == {pro.id: 0, support.id: half}
    assert [(d.amount, d.discount) for d in inv.total_discount_amounts] == [(half, discount)]
    assert inv.total == 30_000 + 5_001 - half


def test_an_amount_off_goes_to_the_restricted_lines_only(billing: Harness) -> None:
    client = billing.client
    pro, support, sub = _restricted_subscription(
        client, {"amount_off": 7_000, "currency": "usd"}, pro_seats=1
    )
    inv = client.v1.invoices.retrieve(sub.latest_invoice)
    # Never more than the support line comes to, and nothing off Pro.
    by_price = {line.pricing.price_details.price: off(line) for line in inv.lines.data}
    assert by_price == {pro.id: 0, support.id: 5_001}
    assert inv.total == 10_000


def test_prorations_are_discounted_only_for_the_restricted_product(billing: Harness) -> None:
    client = billing.client
    pro, support, sub = _restricted_subscription(
        client, {"percent_off": 40, "duration": "forever"}, pro_seats=1
    )
    items = {i.price.id: i for i in sub["items"].data}
    start, end = items[pro.id].current_period_start, items[pro.id].current_period_end
    at = start + 11 * DAY
    client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [
                {"id": items[pro.id].id, "quantity": 2},
                {"id": items[support.id].id, "quantity": 2},
            ],
            "proration_date": at,
            "proration_behavior": "always_invoice",
        },
    )
    inv = client.v1.invoices.retrieve(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    support_period = 5_001 - percent(5_001, "40")
    got = sorted((line.amount, off(line)) for line in inv.lines.data)
    assert got == sorted(
        [
            (-proration(10_000, 1, start, end, at), 0),
            (proration(10_000, 2, start, end, at), 0),
            (-proration(support_period, 1, start, end, at), 0),
            (proration(support_period, 2, start, end, at), 0),
        ]
    )

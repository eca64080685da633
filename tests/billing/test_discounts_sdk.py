"""Discounts through the real ``stripe`` SDK: coupons, promotion codes, discounts on customers,
subscriptions, invoices and items, durations on the clock, prorations and credit notes under
a discount. Expected figures are computed here (``tests/billing/helpers.py``)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
import stripe

from tests.billing.conftest import Harness, monthly_price, paying_customer
from tests.billing.helpers import add_months, percent, proration, round_half_up

DAY = 86400
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def largest_remainder(total: int, weights: list[int]) -> list[int]:
    """``total`` split in proportion to ``weights``, the leftover cents to the largest
    fractions (the allocation Stripe's amount-off discounts make across lines)."""
    shares = [Fraction(total * w, sum(weights)) for w in weights]
    floors = [int(s) for s in shares]
    order = sorted(range(len(shares)), key=lambda n: -(shares[n] - floors[n]))
    for n in order[: total - sum(floors)]:
        floors[n] += 1
    return floors


def off(line: Any) -> int:
    return sum(d.amount for d in line.discount_amounts)


def items_invoice(
    client: stripe.StripeClient, customer: str, amounts: list[int], **params: Any
) -> Any:
    for amount in amounts:
        client.v1.invoice_items.create(
            params={"customer": customer, "amount": amount, "currency": "usd"}
        )
    return client.v1.invoices.create(
        params={"customer": customer, "pending_invoice_items_behavior": "include", **params}
    )


def test_coupons_are_created_read_updated_and_deleted(billing: Harness) -> None:
    client = billing.client
    pct = client.v1.coupons.create(
        params={"percent_off": 12.5, "duration": "repeating", "duration_in_months": 3}
    )
    assert (pct.percent_off, pct.duration_in_months, pct.valid) == (12.5, 3, True)
    cash = client.v1.coupons.create(
        params={"id": "TENOFF", "amount_off": 1_000, "currency": "usd", "name": "Ten off"}
    )
    assert (cash.id, cash.duration, cash.amount_off, cash.currency) == (
        "TENOFF",
        "once",
        1_000,
        "usd",
    )
    renamed = client.v1.coupons.update("TENOFF", params={"name": "Ten dollars off"})
    assert renamed.name == "Ten dollars off"
    for bad, param in (
        ({"amount_off": 100}, "currency"),
        ({"percent_off": 10, "duration": "repeating"}, "duration_in_months"),
        ({"percent_off": 10, "amount_off": 5, "currency": "usd"}, "percent_off"),
    ):
        with pytest.raises(stripe.InvalidRequestError) as refused:
            client.v1.coupons.create(params=bad)  # type: ignore[arg-type]
        assert refused.value.param == param, bad
    client.v1.coupons.delete("TENOFF")
    with pytest.raises(stripe.InvalidRequestError) as gone:
        client.v1.coupons.retrieve("TENOFF")
    assert gone.value.code == "resource_missing"
    assert [c.id for c in client.v1.coupons.list().data] == [pct.id]


def test_a_percent_discount_comes_off_every_line_rounded_per_line(billing: Harness) -> None:
    client = billing.client
    coupon = client.v1.coupons.create(params={"percent_off": 10})
    customer = client.v1.customers.create(params={"name": "Pct"})
    inv = items_invoice(client, customer.id, [1_000, 333], discounts=[{"coupon": coupon.id}])
    (discount,) = inv.discounts
    by_amount = {line.amount: off(line) for line in inv.lines.data}
    assert by_amount == {1_000: percent(1_000, "10"), 333: percent(333, "10")}
    assert [(d.amount, d.discount) for d in inv.total_discount_amounts] == [
        (sum(by_amount.values()), discount)
    ]
    assert inv.subtotal == 1_333  # invoice-level discounts are not in the subtotal
    assert inv.total == 1_333 - sum(by_amount.values())
    assert client.v1.coupons.retrieve(coupon.id).times_redeemed == 1


def test_an_amount_off_is_split_across_lines_in_proportion(billing: Harness) -> None:
    client = billing.client
    coupon = client.v1.coupons.create(params={"amount_off": 500, "currency": "usd"})
    customer = client.v1.customers.create(params={"name": "Cash"})
    inv = items_invoice(client, customer.id, [1_000, 333], discounts=[{"coupon": coupon.id}])
    assert sorted((line.amount, off(line)) for line in inv.lines.data) == sorted(
        zip([1_000, 333], largest_remainder(500, [1_000, 333]), strict=True)
    )
    assert inv.total == 833
    # Never more than the invoice comes to.
    small = client.v1.customers.create(params={"name": "Small"})
    tiny = items_invoice(client, small.id, [300], discounts=[{"coupon": coupon.id}])
    assert (tiny.total, off(tiny.lines.data[0])) == (0, 300)
    other = client.v1.coupons.create(params={"amount_off": 500, "currency": "eur"})
    with pytest.raises(stripe.InvalidRequestError) as mismatch:
        items_invoice(client, small.id, [300], discounts=[{"coupon": other.id}])
    assert mismatch.value.param == "discounts[0][coupon]"


def test_tax_is_charged_on_the_discounted_amount(billing: Harness) -> None:
    client = billing.client
    coupon = client.v1.coupons.create(params={"percent_off": 20})
    vat = client.v1.tax_rates.create(
        params={"display_name": "Tax", "percentage": 10, "inclusive": False}
    )
    customer = client.v1.customers.create(params={"name": "Taxed"})
    inv = items_invoice(
        client,
        customer.id,
        [10_001],
        discounts=[{"coupon": coupon.id}],
        default_tax_rates=[vat.id],
    )
    (line,) = inv.lines.data
    net = 10_001 - percent(10_001, "20")
    assert [(t.amount, t.taxable_amount) for t in line.taxes] == [(percent(net, "10"), net)]
    assert inv.total == net + percent(net, "10")
    assert inv.total_excluding_tax == net


def test_an_items_own_discount_is_inside_the_subtotal(billing: Harness) -> None:
    client = billing.client
    own = client.v1.coupons.create(params={"amount_off": 700, "currency": "usd"})
    whole = client.v1.coupons.create(params={"percent_off": 50})
    customer = client.v1.customers.create(params={"name": "Items"})
    client.v1.invoice_items.create(
        params={
            "customer": customer.id,
            "amount": 5_000,
            "currency": "usd",
            "discounts": [{"coupon": own.id}],
        }
    )
    client.v1.invoice_items.create(
        params={"customer": customer.id, "amount": 2_000, "currency": "usd", "discountable": False}
    )
    inv = client.v1.invoices.create(
        params={
            "customer": customer.id,
            "pending_invoice_items_behavior": "include",
            "discounts": [{"coupon": whole.id}],
        }
    )
    lines = {line.amount: line for line in inv.lines.data}
    # The item's own 700 first, then half of what is left; the non-discountable line: none.
    assert off(lines[5_000]) == 700 + percent(4_300, "50")
    assert off(lines[2_000]) == 0 and lines[2_000].discountable is False
    assert inv.subtotal == 7_000 - 700
    assert inv.total == 7_000 - 700 - percent(4_300, "50")


def test_promotion_codes_redeem_their_coupon_until_spent(billing: Harness) -> None:
    client = billing.client
    coupon = client.v1.coupons.create(params={"percent_off": 25, "max_redemptions": 2})
    promo = client.v1.promotion_codes.create(
        params={"promotion": {"type": "coupon", "coupon": coupon.id}, "code": "SPRING25"}
    )
    assert (promo.code, promo.promotion.coupon, promo.active) == ("SPRING25", coupon.id, True)
    assert [p.id for p in client.v1.promotion_codes.list(params={"code": "SPRING25"}).data] == [
        promo.id
    ]
    first = client.v1.customers.create(params={"name": "First"})
    inv = items_invoice(client, first.id, [4_000], discounts=[{"promotion_code": promo.id}])
    assert inv.total == 3_000
    assert client.v1.promotion_codes.retrieve(promo.id).times_redeemed == 1
    client.v1.promotion_codes.update(promo.id, params={"active": False})
    second = client.v1.customers.create(params={"name": "Second"})
    with pytest.raises(stripe.InvalidRequestError) as inactive:
        items_invoice(client, second.id, [4_000], discounts=[{"promotion_code": promo.id}])
    assert inactive.value.param == "discounts[0][promotion_code]"
    # The coupon itself: one redemption left, then it is spent.
    items_invoice(client, second.id, [1_000], discounts=[{"coupon": coupon.id}])
    assert client.v1.coupons.retrieve(coupon.id).valid is False
    with pytest.raises(stripe.InvalidRequestError) as spent:
        items_invoice(client, second.id, [1_000], discounts=[{"coupon": coupon.id}])
    assert spent.value.code == "coupon_expired"
    five = client.v1.coupons.create(params={"percent_off": 5})
    restricted = client.v1.promotion_codes.create(
        params={"promotion": {"type": "coupon", "coupon": five.id}, "customer": first.id}
    )
    with pytest.raises(stripe.InvalidRequestError):
        items_invoice(client, second.id, [1_000], discounts=[{"promotion_code": restricted.id}])


def _clocked_subscription(
    client: stripe.StripeClient, sub_coupon: str | None, **extra: Any
) -> tuple[Any, Any, Any]:
    clock = client.v1.test_helpers.test_clocks.create(params={"frozen_time": T0})
    customer = paying_customer(client, test_clock=clock.id, **extra)
    price = monthly_price(client, "Plan", 10_000)
    params: dict[str, Any] = {"customer": customer.id, "items": [{"price": price.id}]}
    if sub_coupon:
        params["discounts"] = [{"coupon": sub_coupon}]
    return clock, customer, client.v1.subscriptions.create(params=params)


def _totals_after(client: stripe.StripeClient, clock: Any, sub: Any, months: int) -> list[int]:
    client.v1.test_helpers.test_clocks.advance(
        clock.id, params={"frozen_time": add_months(T0, months) + 2 * 3600}
    )
    found = client.v1.invoices.list(params={"subscription": sub.id, "limit": 100}).data
    return [inv.total for inv in reversed(found)]


@pytest.mark.parametrize(
    ("duration", "months", "expect"),
    [
        ("once", {}, [5_000, 10_000, 10_000]),
        ("repeating", {"duration_in_months": 2}, [5_000, 5_000, 10_000]),
        ("forever", {}, [5_000, 5_000, 5_000]),
    ],
)
def test_a_subscription_discount_lasts_as_its_coupon_says(
    billing: Harness, duration: str, months: dict[str, int], expect: list[int]
) -> None:
    client = billing.client
    coupon = client.v1.coupons.create(params={"percent_off": 50, "duration": duration, **months})
    clock, _, sub = _clocked_subscription(client, coupon.id)
    first = client.v1.invoices.retrieve(sub.latest_invoice)
    (discount,) = first.discounts
    # A once-coupon's discount is spent by the first invoice: it leaves the subscription.
    assert sub.discounts == ([] if duration == "once" else [discount])
    assert _totals_after(client, clock, sub, 2) == expect


def test_a_customer_discount_applies_where_the_subscription_has_none(billing: Harness) -> None:
    client = billing.client
    coupon = client.v1.coupons.create(params={"percent_off": 30, "duration": "forever"})
    clock, customer, sub = _clocked_subscription(client, None, coupon=coupon.id)
    assert customer.discount.source.coupon == coupon.id
    assert client.v1.invoices.retrieve(sub.latest_invoice).total == 7_000
    client.v1.customers.delete_discount(customer.id)
    assert client.v1.customers.retrieve(customer.id).discount is None
    assert _totals_after(client, clock, sub, 1) == [7_000, 10_000]


def test_prorations_under_a_discount_are_discounted_and_not_discountable(billing: Harness) -> None:
    client = billing.client
    coupon = client.v1.coupons.create(params={"percent_off": 40, "duration": "forever"})
    customer = paying_customer(client)
    small = monthly_price(client, "Small", 2_999)
    big = monthly_price(client, "Big", 7_001)
    sub = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": small.id}],
            "discounts": [{"coupon": coupon.id}],
        }
    )
    item = sub["items"].data[0]
    start, end = item.current_period_start, item.current_period_end
    at = start + 11 * DAY
    client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": item.id, "price": big.id}],
            "proration_date": at,
            "proration_behavior": "always_invoice",
        },
    )
    inv = client.v1.invoices.retrieve(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    old = 2_999 - percent(2_999, "40")
    new = 7_001 - percent(7_001, "40")
    got = sorted((line.amount, line.discountable, off(line)) for line in inv.lines.data)
    assert got == sorted(
        [
            (-proration(old, 1, start, end, at), False, 0),
            (proration(new, 1, start, end, at), False, 0),
        ]
    )
    assert inv.total == sum(line.amount for line in inv.lines.data)


def test_a_credit_note_gives_back_the_lines_discount_share(billing: Harness) -> None:
    client = billing.client
    coupon = client.v1.coupons.create(params={"percent_off": 25})
    customer = client.v1.customers.create(params={"name": "Credit"})
    draft = items_invoice(client, customer.id, [8_000], discounts=[{"coupon": coupon.id}])
    inv = client.v1.invoices.finalize_invoice(draft.id, params={"auto_advance": False})
    (line,) = inv.lines.data
    note = client.v1.credit_notes.create(
        params={
            "invoice": inv.id,
            "lines": [{"type": "invoice_line_item", "invoice_line_item": line.id, "amount": 2_001}],
        }
    )
    share = round_half_up(Fraction(off(line) * 2_001, 8_000))
    assert (note.lines.data[0].amount, note.lines.data[0].discount_amount) == (2_001, share)
    assert note.discount_amount == share
    assert note.total == 2_001 - share
    rest = client.v1.credit_notes.create(
        params={"invoice": inv.id, "amount": inv.total - note.total}
    )
    assert client.v1.invoices.retrieve(inv.id).amount_remaining == 0 and rest.total > 0

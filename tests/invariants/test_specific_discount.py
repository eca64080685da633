"""INV-52 with a coupon restricted to one product (ASC 606-10-32-37): it holds when the contract
gives the discount to that obligation alone, and fires when it was spread by SSP.

The deal: 3 Pro seats at 100.00 a month and support at 50.00 a month (SSP 100.00), 50 % off
support for ever. By hand over the 12-month term: Pro 3 × 100.00 × 12 = 3,600.00, support
undiscounted 600.00 and its discount 12 × 25.00 = 300.00; SSPs 3,600.00 : 1,200.00.
"""

from __future__ import annotations

from typing import Any

import pytest

from simulators.common.clock import add_months
from tests.invariants.helpers import fires, holds
from tests.invariants.stack import Stack

PRO_TERM, SUPPORT_TERM, SUPPORT_OFF = 3 * 10000 * 12, 5000 * 12, 12 * (5000 // 2)


def _deal(stack: Stack) -> tuple[str, str, str, int]:
    """The subscription with the restricted coupon: (subscription, Pro item, support item,
    its start)."""
    stack.revrec("PUT", "/v1/entities/US", {"functional_currency": "usd"}, harness=True)
    prices = []
    for name, amount in (("Pro", 10000), ("Support", 5000)):
        product = stack.billing("POST", "/v1/products", {"name": name}, harness=True)
        price = stack.billing(
            "POST",
            "/v1/prices",
            {
                "product": product["id"],
                "currency": "usd",
                "unit_amount": amount,
                "recurring": {"interval": "month"},
            },
            harness=True,
        )
        prices.append((product["id"], price["id"]))
    (_, pro), (support_product, support) = prices
    coupon = stack.billing(
        "POST",
        "/v1/coupons",
        {"percent_off": 50, "duration": "forever", "applies_to": {"products": [support_product]}},
        harness=True,
    )
    customer = stack.billing(
        "POST", "/v1/customers", {"name": "Acme", "metadata": {"entity": "US"}}, harness=True
    )
    sub = stack.billing(
        "POST",
        "/v1/subscriptions",
        {
            "customer": customer["id"],
            "items": [{"price": pro, "quantity": 3}, {"price": support}],
            "collection_method": "send_invoice",
            "days_until_due": 30,
            "metadata": {"entity": "US"},
            "discounts": [{"coupon": coupon["id"]}],
        },
        harness=True,
    )
    pro_item, support_item = (i["id"] for i in sub["items"]["data"])
    return sub["id"], pro_item, support_item, sub["start_date"]


def _book(stack: Stack, support_amount: int, discounts: list[dict[str, Any]]) -> str:
    sub, pro_item, support_item, start = _deal(stack)
    period = {"service_start_at": start, "service_end_at": add_months(start, 12)}
    contract = stack.revrec(
        "POST",
        "/v1/contracts",
        {
            "external_id": sub,
            "customer": "acme",
            "entity": "US",
            "currency": "usd",
            "booked_at": start,
            "lines": [
                {
                    "external_id": pro_item,
                    "product": "pro",
                    "pattern": "ratable",
                    "quantity": 3,
                    "unit_price_minor": PRO_TERM // 3,
                    **period,
                },
                {
                    "external_id": support_item,
                    "product": "support",
                    "pattern": "ratable",
                    "unit_price_minor": SUPPORT_TERM,
                    "amount_minor": support_amount,
                    "unit_ssp_minor": 10000 * 12,
                    **period,
                },
            ],
            "discounts": [
                {
                    "amount_minor": d["amount_minor"],
                    "lines": [(pro_item, support_item)[n] for n in d["lines"]],
                }
                for d in discounts
            ],
        },
    )
    return str(contract["id"])


def test_inv52_holds_when_the_discount_is_the_supports_alone(stack: Stack) -> None:
    _book(stack, SUPPORT_TERM, [{"amount_minor": SUPPORT_OFF, "lines": [1]}])
    holds(stack, "INV-52")


@pytest.mark.parametrize(
    "support_amount, discounts",
    [
        # The restricted coupon's discount named on every line: the subledger splits it by SSP.
        (SUPPORT_TERM, [{"amount_minor": SUPPORT_OFF, "lines": [0, 1]}]),
        # The discount left in the support line's amount: the price spread by SSP.
        (SUPPORT_TERM - SUPPORT_OFF, []),
    ],
)
def test_inv52_violated_when_the_discount_is_spread_by_ssp(
    stack: Stack, support_amount: int, discounts: list[dict[str, Any]]
) -> None:
    contract = _book(stack, support_amount, discounts)
    fires(stack, "INV-52", f"revrec:{contract}")

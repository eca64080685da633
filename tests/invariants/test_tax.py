"""Tax and discounts through the ERP and the subledger: INV-50, INV-51 and INV-52 hold after a
correct flow and fire on one bug each.

The deal: 2 seats at 10.00 a month in the US entity, a 25 % forever coupon and an exclusive
19 % tax rate on the subscription. By hand: gross 2 × 1000 = 2000, discount 25 % = 500, the
line earns 1500, tax 19 % × 1500 = 285, the invoice totals 1785. Over the 12-month term the
contract's price is 12 × 1500 = 18000, not 12 × 2000.
"""

from __future__ import annotations

from typing import Any

from tests.invariants import flow
from tests.invariants.helpers import fires, holds
from tests.invariants.stack import Stack

EARNED, TAX, TOTAL = 1500, 285, 1785
TERM_PRICE = 12 * EARNED


def taxed_deal(stack: Stack, contract_amount: int = TERM_PRICE) -> tuple[flow.Deal, str]:
    """The deal closed with the coupon and the tax rate: (deal, tax rate id)."""
    product, price = flow.fixtures(stack, "US", 1000)
    rate = stack.billing(
        "POST",
        "/v1/tax_rates",
        {"display_name": "VAT", "percentage": 19, "inclusive": False, "jurisdiction": "DE"},
        harness=True,
    )
    coupon = stack.billing(
        "POST", "/v1/coupons", {"percent_off": 25, "duration": "forever"}, harness=True
    )
    account, opp, lines = flow.won_opportunity(stack, price, 2, 1000)
    deal = flow.Deal("US", "usd", price, product, account, opp, lines)
    extra = {"default_tax_rates": [rate["id"]], "discounts": [{"coupon": coupon["id"]}]}
    flow.close_won_new_business(
        stack, deal, 2, subscription_extra=extra, contract_amount=contract_amount
    )
    return deal, str(rate["id"])


def right(rate: str) -> dict[str, Any]:
    """The correct ERP line: 15.00 earned, 2.85 tax under the rate's id."""
    return {"amount": 15, "tax1Amt": 2.85, "taxCode": rate}


def post(
    stack: Stack,
    deal: flow.Deal,
    *,
    line: dict[str, Any],
    billed: int = EARNED,
) -> None:
    """The ERP invoice with ``line`` as its one line and the subledger billing event."""
    invoice = deal.invoices[0]
    stack.erp_write(
        "PUT",
        f"/invoice/eid:{invoice}",
        {
            "entity": {"externalId": deal.customer},
            "subsidiary": {"externalId": "US"},
            "currency": {"externalId": "USD"},
            "item": {"items": [{"item": {"externalId": "SUBSCRIPTION"}, **line}]},
        },
    )
    stack.revrec(
        "POST",
        "/v1/billing_events",
        {
            "external_id": invoice,
            "type": "invoice",
            "contract": deal.contract,
            "currency": "usd",
            "issued_at": stack.books().invoices[invoice].finalized_at,
            "lines": [{"line": deal.items[0], "amount_minor": billed}],
        },
    )


def test_billing_computes_the_hand_figures(stack: Stack) -> None:
    deal, rate = taxed_deal(stack)
    inv = stack.books().invoices[deal.invoices[0]]
    assert (inv.total, inv.total_excluding_tax) == (TOTAL, EARNED)
    assert [(t.tax_rate, t.amount) for t in inv.lines[0].taxes] == [(rate, TAX)]


def test_inv50_holds(stack: Stack) -> None:
    deal, rate = taxed_deal(stack)
    post(stack, deal, line=right(rate))
    holds(stack, "INV-50")
    holds(stack, "INV-06")


def test_inv50_violated(stack: Stack) -> None:
    deal, _ = taxed_deal(stack)
    post(stack, deal, line={"amount": 17.85})  # the total is right, the tax is revenue
    holds(stack, "INV-06")
    [found] = fires(stack, "INV-50", f"billing:{deal.invoices[0]}")
    assert (found.details["erp_tax_minor"], found.details["billing_tax"]) == (0, TAX)


def test_inv50_violated_by_tax_under_another_code(stack: Stack) -> None:
    deal, rate = taxed_deal(stack)
    other = stack.billing(
        "POST",
        "/v1/tax_rates",
        {"display_name": "VAT", "percentage": 20, "inclusive": False, "jurisdiction": "FR"},
        harness=True,
    )
    post(stack, deal, line={"amount": 15, "tax1Amt": 2.85, "taxCode": other["id"]})
    [found] = fires(stack, "INV-50", f"billing:{deal.invoices[0]}")
    assert found.details["billed"] == {rate: TAX}


def test_inv51_holds(stack: Stack) -> None:
    deal, rate = taxed_deal(stack)
    post(stack, deal, line=right(rate))
    holds(stack, "INV-51")
    holds(stack, "INV-16")


def test_inv51_violated(stack: Stack) -> None:
    deal, rate = taxed_deal(stack)
    post(stack, deal, line=right(rate), billed=TOTAL)
    [found] = fires(stack, "INV-51", f"billing:{deal.invoices[0]}")
    assert (found.details["subledger_minor"], found.details["earned"]) == (TOTAL, EARNED)


def test_inv51_violated_by_the_discount_left_in_revenue(stack: Stack) -> None:
    deal, rate = taxed_deal(stack)
    post(stack, deal, line=right(rate), billed=2000)
    fires(stack, "INV-51", f"billing:{deal.invoices[0]}")


def test_inv52_holds(stack: Stack) -> None:
    taxed_deal(stack)
    holds(stack, "INV-52")
    holds(stack, "INV-18")


def test_inv52_violated(stack: Stack) -> None:
    deal, _ = taxed_deal(stack, contract_amount=12 * 2000)
    [found] = fires(stack, "INV-52", f"revrec:{deal.contract}")
    assert (found.details["line_amount_minor"], found.details["term_price"]) == (24000, TERM_PRICE)

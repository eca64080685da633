"""Test helpers: a price book and a deal built through simple-salesforce, and money by hand."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from simple_salesforce import Salesforce

CENT = Decimal("0.01")


def line_total(quantity: str, unit_price: str, discount: str = "0") -> Decimal:
    """TotalPrice computed independently: quantity × price × (1 − discount%), half-up to cents."""
    gross = Decimal(quantity) * Decimal(unit_price) * (1 - Decimal(discount) / 100)
    return gross.quantize(CENT, rounding=ROUND_HALF_UP)


def money(value: Any) -> Decimal:
    """A JSON number from the API as an exact 2-decimal amount (floats print their decimal)."""
    return Decimal(repr(value)).quantize(CENT)


@dataclass
class Deal:
    account: str
    opportunity: str
    product: str
    entry: str  # standard price book entry
    lines: list[str]


def product_with_price(
    sf: Salesforce, pricebook: str, name: str, price: float, currency: str = "USD"
) -> tuple[str, str]:
    product: str = sf.Product2.create(
        {"Name": name, "ProductCode": name.upper(), "IsActive": True}
    )["id"]
    entry: str = sf.PricebookEntry.create(
        {
            "Pricebook2Id": pricebook,
            "Product2Id": product,
            "UnitPrice": price,
            "IsActive": True,
            "CurrencyIsoCode": currency,
        }
    )["id"]
    return product, entry


def deal(
    sf: Salesforce,
    pricebook: str,
    lines: list[dict[str, Any]],
    *,
    price: float = 19.99,
    stage: str = "Prospecting",
) -> Deal:
    account = sf.Account.create({"Name": "Acme Corp", "Billing_Customer_Id__c": None})["id"]
    product, entry = product_with_price(sf, pricebook, "Pro Plan", price)
    opportunity = sf.Opportunity.create(
        {"Name": "Acme Pro", "AccountId": account, "StageName": stage, "CloseDate": "2026-02-01"}
    )["id"]
    created = [
        sf.OpportunityLineItem.create(
            {"OpportunityId": opportunity, "PricebookEntryId": entry, **line}
        )["id"]
        for line in lines
    ]
    return Deal(account, opportunity, product, entry, created)

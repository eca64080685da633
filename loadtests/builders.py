"""Request payloads of the reference flow, as the Locust users send them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from loadtests.target import Catalog

API = "/services/data/v60.0"

TERM_MONTHS = 12  # the deal's term, as sales ops book it


# billing (Stripe form bodies, nested; encoded with simulators.common.formcodec) --------------


def customer(key: str, entity: str, *, pays_by_card: bool) -> dict[str, Any]:
    """A self-serve customer (no CRM deal), routed like the integration's own customers."""
    body: dict[str, Any] = {
        "name": f"{key} Inc",
        "email": f"{key}@example.com",
        "metadata": {"entity": entity},
    }
    if pays_by_card:
        body["payment_method"] = "pm_card_visa"
        body["invoice_settings"] = {"default_payment_method": "pm_card_visa"}
    return body


def subscription(
    customer_id: str, price_id: str, *, quantity: int | None, send_invoice: bool
) -> dict[str, Any]:
    """A monthly subscription; ``send_invoice`` leaves its invoices open for a payer to pay."""
    item: dict[str, Any] = {"price": price_id}
    if quantity is not None:  # metered prices take no quantity
        item["quantity"] = quantity
    body: dict[str, Any] = {"customer": customer_id, "items": [item]}
    if send_invoice:
        body["collection_method"] = "send_invoice"
        body["days_until_due"] = 30
    return body


def meter_event(event_name: str, customer_id: str, value: int, identifier: str) -> dict[str, Any]:
    return {
        "event_name": event_name,
        "identifier": identifier,
        "payload": {"stripe_customer_id": customer_id, "value": str(value)},
    }


def payment() -> dict[str, Any]:
    """Pay with the customer's default card (a test id like pm_card_visa is attached to the
    customer as its own payment method, so it cannot be named again on another's invoice)."""
    return {}


# CRM (Salesforce JSON) ------------------------------------------------------------------------


def account(key: str, entity: str) -> dict[str, Any]:
    return {"Name": f"{key} Inc", "External_Id__c": key, "Contracting_Entity__c": entity}


def opportunity(
    key: str, account_id: str, close_on: dt.date, entity: str, catalog: Catalog
) -> dict[str, Any]:
    return {
        "AccountId": account_id,
        "Name": f"{key} new business",
        "StageName": "Prospecting",
        "CloseDate": close_on.isoformat(),
        "Contracting_Entity__c": entity,
        "Type": "New Business",
        "Term_Months__c": TERM_MONTHS,
        "External_Id__c": key,
        "CurrencyIsoCode": catalog.currency.upper(),
    }


def opportunity_line(opportunity_id: str, catalog: Catalog, quantity: int) -> dict[str, Any]:
    # Amount is not sent: the CRM rolls it up from the lines (Σ quantity × unit price).
    return {
        "OpportunityId": opportunity_id,
        "PricebookEntryId": catalog.pricebook_entry_id,
        "Quantity": quantity,
        "UnitPrice": major(catalog.price_minor),
        "Billing_Price_Id__c": catalog.price_id,
    }


def close_won() -> dict[str, Any]:
    return {"StageName": "Closed Won"}


# subledger -------------------------------------------------------------------------------------


def month_of(epoch_s: int) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).strftime("%Y-%m")


def next_month(period: str) -> str:
    year, month = map(int, period.split("-"))
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


def major(minor: int) -> float:
    """Salesforce speaks currency fields in major units; USD has two decimals."""
    return minor / 100

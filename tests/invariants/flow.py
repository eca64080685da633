"""The reference flow, played by hand: the runner's actions and a correct integration's writes.

Tests call these to reach a state where every invariant holds, then introduce one bug.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from simulators.common.clock import add_months
from tests.invariants.stack import Stack

ENTITY_CURRENCY = {"US": "usd", "UK": "gbp", "DE": "eur"}


def utc_day(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).date().isoformat()


def major(minor: int, currency: str = "usd") -> float | int:
    amount = Decimal(minor).scaleb(-2 if currency.lower() != "jpy" else 0)
    return int(amount) if amount == amount.to_integral_value() else float(amount)


@dataclass
class Deal:
    """Ids of everything one closed-won deal produced across the four systems."""

    entity: str
    currency: str
    price: str
    product: str
    account: str
    opportunity: str
    lines: list[str] = field(default_factory=list)
    customer: str = ""
    subscription: str = ""
    items: list[str] = field(default_factory=list)
    erp_customer: str = ""
    contract: str = ""
    invoices: list[str] = field(default_factory=list)


# --- the runner ------------------------------------------------------------------------------
def fixtures(
    stack: Stack, entity: str = "US", unit_amount: int = 1000, *, metered: bool = False
) -> tuple[str, str]:
    """Product and price in billing, the subledger entity: (product id, price id)."""
    currency = ENTITY_CURRENCY[entity]
    stack.revrec("PUT", f"/v1/entities/{entity}", {"functional_currency": currency}, harness=True)
    product = stack.billing(
        "POST", "/v1/products", {"name": "Pro", "metadata": {"key": "pro"}}, harness=True
    )
    recurring: dict[str, Any] = {"interval": "month"}
    if metered:
        meter = stack.billing(
            "POST",
            "/v1/billing/meters",
            {
                "display_name": "API calls",
                "event_name": "api_calls",
                "default_aggregation": {"formula": "sum"},
            },
            harness=True,
        )
        recurring |= {"usage_type": "metered", "meter": meter["id"]}
    price = stack.billing(
        "POST",
        "/v1/prices",
        {
            "product": product["id"],
            "currency": currency,
            "unit_amount": unit_amount,
            "recurring": recurring,
            "lookup_key": f"pro_{currency}_{unit_amount}_{int(metered)}",
        },
        harness=True,
    )
    return product["id"], price["id"]


def won_opportunity(
    stack: Stack,
    price: str,
    quantity: int,
    unit_amount: int,
    *,
    entity: str = "US",
    account: str | None = None,
    kind: str = "New Business",
    subscription: str | None = None,
) -> tuple[str, str, list[str]]:
    """Sales ops: account (unless given), opportunity with one line, closed won."""
    if account is None:
        account = stack.crm(
            "POST",
            "/sobjects/Account/",
            {"Name": "Acme", "External_Id__c": "acme", "Contracting_Entity__c": entity},
            harness=True,
        )["id"]
    fields: dict[str, Any] = {
        "AccountId": account,
        "Name": f"Acme {kind}",
        "StageName": "Prospecting",
        "CloseDate": utc_day(stack.world.clock.now()),
        "Contracting_Entity__c": entity,
        "Type": kind,
        "Term_Months__c": 12,
    }
    if subscription:
        fields["Billing_Subscription_Id__c"] = subscription
    opp = stack.crm("POST", "/sobjects/Opportunity/", fields, harness=True)["id"]
    entry = _pricebook_entry(stack, price, unit_amount)
    line = stack.crm(
        "POST",
        "/sobjects/OpportunityLineItem/",
        {
            "OpportunityId": opp,
            "PricebookEntryId": entry,
            "Quantity": quantity,
            "UnitPrice": major(unit_amount),
            "Billing_Price_Id__c": price,
        },
        harness=True,
    )["id"]
    stack.crm("PATCH", f"/sobjects/Opportunity/{opp}", {"StageName": "Closed Won"}, harness=True)
    return account, opp, [line]


def _pricebook_entry(stack: Stack, price: str, unit_amount: int) -> str:
    product = stack.crm(
        "POST",
        "/sobjects/Product2/",
        {"Name": f"Pro {price}", "ProductCode": price[-8:]},
        harness=True,
    )["id"]
    pricebook = _standard_pricebook(stack)
    return str(
        stack.crm(
            "POST",
            "/sobjects/PricebookEntry/",
            {
                "Pricebook2Id": pricebook,
                "Product2Id": product,
                "UnitPrice": major(unit_amount),
                "IsActive": True,
            },
            harness=True,
        )["id"]
    )


def _standard_pricebook(stack: Stack) -> str:
    response = stack.client.get(
        f"{stack.urls['crm']}/services/data/v60.0/query/",
        params={"q": "SELECT Id FROM Pricebook2 WHERE IsStandard = true"},
        headers={
            "Authorization": f"Bearer {stack.crm_sim.session_id}",
            "X-Sim-Actor": "harness",
            "X-Sim-Control-Token": stack.world.control_token,
        },
    )
    assert response.is_success, response.text
    return str(response.json()["records"][0]["Id"])


# --- a correct integration -------------------------------------------------------------------
def close_won_new_business(
    stack: Stack,
    deal: Deal,
    quantity: int,
    *,
    contract_quantity: int | None = None,
    subscription_metadata: dict[str, str] | None = None,
    subscription_extra: dict[str, Any] | None = None,
    contract_amount: int | None = None,
) -> None:
    """Closed won: Stripe customer and subscription, ERP customer, subledger contract, and the
    write-back to the CRM. The subscription's first invoice is finalised at once."""
    customer = stack.billing(
        "POST",
        "/v1/customers",
        {"name": "Acme", "metadata": {"crm_account_id": deal.account, "entity": deal.entity}},
        key=f"cus-{deal.account}",
    )
    deal.customer = customer["id"]
    sub = stack.billing(
        "POST",
        "/v1/subscriptions",
        {
            "customer": deal.customer,
            "items": [{"price": deal.price, **({"quantity": quantity} if quantity else {})}],
            "collection_method": "send_invoice",
            "days_until_due": 30,
            "metadata": {
                **(subscription_metadata or {"crm_opportunity_id": deal.opportunity}),
                "entity": deal.entity,
            },
            **(subscription_extra or {}),
        },
        key=f"sub-{deal.opportunity}",
    )
    deal.subscription = sub["id"]
    deal.items = [item["id"] for item in sub["items"]["data"]]
    deal.erp_customer = stack.erp_write(
        "PUT",
        f"/customer/eid:{deal.customer}",
        {
            "companyName": "Acme",
            "subsidiary": {"externalId": deal.entity},
            "currency": {"externalId": deal.currency.upper()},
        },
    )
    book_contract(
        stack,
        deal,
        quantity if contract_quantity is None else contract_quantity,
        amount_minor=contract_amount,
    )
    stack.crm(
        "PATCH",
        f"/sobjects/Opportunity/{deal.opportunity}",
        {"Billing_Subscription_Id__c": deal.subscription, "Synced_To_Billing__c": True},
    )
    stack.crm(
        "PATCH",
        f"/sobjects/Account/{deal.account}",
        {"Billing_Customer_Id__c": deal.customer, "ERP_Customer_Id__c": deal.erp_customer},
    )
    deal.invoices.append(str(sub["latest_invoice"]))


def book_contract(
    stack: Stack,
    deal: Deal,
    quantity: int,
    currency: str | None = None,
    amount_minor: int | None = None,
) -> None:
    sub = stack.books().subscriptions[deal.subscription]
    price = stack.books().prices[deal.price]
    metered = price.metered
    line: dict[str, Any] = {
        "external_id": deal.items[0],
        "product": deal.product,
        "pattern": "usage" if metered else "ratable",
        # A ratable line prices the whole 12-month term; a usage line prices one unit.
        "unit_price_minor": price.unit_amount * (1 if metered else 12),
    }
    if not metered:
        line |= {
            "quantity": quantity,
            "service_start_at": sub.start_date,
            "service_end_at": add_months(sub.start_date, 12),
        }
    if amount_minor is not None:
        line["amount_minor"] = amount_minor
    contract = stack.revrec(
        "POST",
        "/v1/contracts",
        {
            "external_id": deal.subscription,
            "customer": deal.customer,
            "entity": deal.entity,
            "currency": currency or deal.currency,
            "booked_at": sub.start_date,
            "lines": [line],
        },
    )
    deal.contract = contract["id"]


def sync_invoice(
    stack: Stack,
    invoice_id: str,
    *,
    external_id: str | None = None,
    amount_delta: int = 0,
    tran_on: str | None = None,
    subledger: bool = True,
    extra: dict[str, Any] | None = None,
    item: str = "SUBSCRIPTION",
    write_back: bool = True,
) -> str:
    """invoice.finalized: the ERP invoice (upsert by external id), its id written back to the
    invoice's metadata, and the subledger billing event. The keyword arguments are the bugs
    tests introduce."""
    books = stack.books()
    inv = books.invoices[invoice_id]
    assert inv.finalized_at is not None
    entity = books.customer_entity(inv.customer) or "US"
    items = [
        {
            "item": {"externalId": item if line.subscription_item else "SERVICES"},
            "amount": major(line.amount + (amount_delta if n == 0 else 0), inv.currency),
        }
        for n, line in enumerate(inv.lines)
    ]
    body: dict[str, Any] = {
        "entity": {"externalId": inv.customer},
        "subsidiary": {"externalId": entity},
        "currency": {"externalId": inv.currency.upper()},
        "tranDate": tran_on or utc_day(inv.finalized_at),
        "item": {"items": items},
        **(extra or {}),
    }
    if external_id == "":
        erp_id = stack.erp_write("POST", "/invoice", body)
    else:
        erp_id = stack.erp_write("PUT", f"/invoice/eid:{external_id or invoice_id}", body)
    if write_back:
        stack.billing(
            "POST", f"/v1/invoices/{invoice_id}", {"metadata": {"erp_document_id": str(erp_id)}}
        )
    if subledger and inv.subscription and inv.total > 0:
        bill(stack, invoice_id)
    return erp_id


def bill(stack: Stack, invoice_id: str, amount_delta: int = 0) -> None:
    """The subledger billing event for an invoice: one entry per subscription item, the
    positive nets; the negative nets as a ``credit_note`` ``<invoice>-credit``. A negative
    invoice is a ``credit_note`` under its own id (its positive nets ``<invoice>-charge``)."""
    books = stack.books()
    inv = books.invoices[invoice_id]
    contract = books.rr_contract_by_external_id(inv.subscription or "")
    assert contract is not None
    by_item: dict[str, int] = {}
    for line in inv.lines:
        if line.subscription_item:
            by_item[line.subscription_item] = by_item.get(line.subscription_item, 0) + line.amount
    charged = {k: v + amount_delta for k, v in by_item.items() if v + amount_delta > 0}
    credited = {k: -v for k, v in by_item.items() if v < 0}
    if inv.total < 0:
        events = [
            (invoice_id, "credit_note", credited),
            (f"{invoice_id}-charge", "invoice", charged),
        ]
    else:
        events = [
            (invoice_id, "invoice", charged),
            (f"{invoice_id}-credit", "credit_note", credited),
        ]
    for external_id, kind, amounts in events:
        if not amounts:
            continue
        stack.revrec(
            "POST",
            "/v1/billing_events",
            {
                "external_id": external_id,
                "type": kind,
                "contract": contract.id,
                "currency": inv.currency,
                "issued_at": inv.finalized_at,
                "lines": [{"line": k, "amount_minor": v} for k, v in amounts.items()],
            },
        )


def sync_credit_invoice(stack: Stack, invoice_id: str, *, amount_delta: int = 0) -> str:
    """invoice.finalized for a negative invoice (a cancellation's credit): an unapplied ERP
    credit memo under the invoice id for the negated total, and the subledger credit note."""
    books = stack.books()
    inv = books.invoices[invoice_id]
    assert inv.finalized_at is not None and inv.total < 0
    erp_id = stack.erp_write(
        "PUT",
        f"/creditMemo/eid:{invoice_id}",
        {
            "entity": {"externalId": inv.customer},
            "subsidiary": {"externalId": books.customer_entity(inv.customer) or "US"},
            "currency": {"externalId": inv.currency.upper()},
            "tranDate": utc_day(inv.finalized_at),
            "item": {
                "items": [
                    {
                        "item": {"externalId": "SUBSCRIPTION"},
                        "amount": major(-inv.total + amount_delta, inv.currency),
                    }
                ]
            },
        },
    )
    if inv.subscription:
        bill(stack, invoice_id)
    return erp_id


def cancel_now(stack: Stack, deal: Deal, at: str) -> str:
    """The finance team cancels now with a proration credit invoiced at once: the final
    invoice's id (negative total: the unused time)."""
    stack.advance_to(at)
    stack.billing(
        "DELETE",
        f"/v1/subscriptions/{deal.subscription}?prorate=true&invoice_now=true",
        harness=True,
    )
    final = [
        inv.id
        for inv in stack.books().invoices.values()
        if inv.subscription == deal.subscription and inv.id not in deal.invoices
    ]
    assert len(final) == 1
    deal.invoices.append(final[0])
    return final[0]


def sync_payment(stack: Stack, invoice_id: str, *, amount_delta: int = 0) -> str:
    """invoice.paid: the ERP payment ``pay_<invoice>``, applied to the ERP invoice."""
    inv = stack.books().invoices[invoice_id]
    assert inv.paid_at is not None
    amount = major(inv.amount_paid + amount_delta, inv.currency)
    return stack.erp_write(
        "PUT",
        f"/customerPayment/eid:pay_{invoice_id}",
        {
            "customer": {"externalId": inv.customer},
            "subsidiary": {"externalId": stack.books().customer_entity(inv.customer) or "US"},
            "currency": {"externalId": inv.currency.upper()},
            "tranDate": utc_day(inv.paid_at),
            "payment": amount,
            "apply": {
                "items": [{"doc": {"externalId": invoice_id}, "apply": True, "amount": amount}]
            },
        },
    )


def new_deal(
    stack: Stack,
    *,
    quantity: int = 2,
    unit_amount: int = 1000,
    entity: str = "US",
    metered: bool = False,
    sync: bool = True,
) -> Deal:
    """The runner's deal and a correct integration's whole response to it, invoice included."""
    product, price = fixtures(stack, entity, unit_amount, metered=metered)
    account, opp, lines = won_opportunity(
        stack, price, 1 if metered else quantity, unit_amount, entity=entity
    )
    deal = Deal(entity, ENTITY_CURRENCY[entity], price, product, account, opp, lines)
    close_won_new_business(stack, deal, quantity if not metered else 0)
    if sync:
        sync_invoice(stack, deal.invoices[0])
    return deal

"""Declared links: each kind holds when the integration follows it and catches it when it does
not, naming the records — the judge reads documents only through the declaration."""

from __future__ import annotations

from typing import Any

import pytest

from harness.config import Link, LinksConfig
from tests.invariants import flow
from tests.invariants.helpers import fires, holds
from tests.invariants.stack import Stack

HOOK = "tests/invariants/link_hooks.py:stripe_invoice"


def _declared(**links: dict[str, str]) -> LinksConfig:
    return LinksConfig(links={key.replace("__", "."): Link(**v) for key, v in links.items()})


def _deal(stack: Stack) -> tuple[flow.Deal, str]:
    deal = flow.new_deal(stack, sync=False)
    return deal, deal.invoices[0]


def _erp_id(stack: Stack, external_id: str) -> str:
    txn = stack.books().erp_by_external_id("invoice", external_id)
    assert txn is not None
    return txn.id


# --- template: the target's external id, rendered from the source ------------------------------
TEMPLATE = _declared(erp__invoice={"external_id": "STRIPE-{invoice.id}"})


def test_a_template_link_holds_when_the_integration_follows_it(stack: Stack) -> None:
    _, invoice = _deal(stack)
    flow.sync_invoice(stack, invoice, external_id=f"STRIPE-{invoice}")
    holds(stack, "INV-06", TEMPLATE)
    # The same documents under the reference's convention are what the template rules out.
    assert stack.check("INV-06")


def test_a_template_link_broken_is_caught_naming_the_records(stack: Stack) -> None:
    _, invoice = _deal(stack)
    flow.sync_invoice(stack, invoice)  # the bare invoice id: the integration forgot its prefix
    erp = _erp_id(stack, invoice)
    found = fires(stack, "INV-06", f"billing:{invoice}", f"erp:invoice/{erp}", links=TEMPLATE)
    assert any(f"external id STRIPE-{invoice}" in v.message for v in found)


# --- custom field: a NetSuite custbody field holding the source id -----------------------------
FIELD = _declared(erp__invoice={"field": "custbody_stripe_invoice"})


def test_a_custom_field_link_holds_when_the_field_names_the_invoice(stack: Stack) -> None:
    _, invoice = _deal(stack)
    flow.sync_invoice(
        stack,
        invoice,
        external_id="NS-0001",
        extra={"custbody_stripe_invoice": invoice},
    )
    holds(stack, "INV-06", FIELD)


def test_a_custom_field_link_broken_is_caught_naming_the_records(stack: Stack) -> None:
    deal, invoice = _deal(stack)
    # The connector filled the field with the customer id instead of the invoice id.
    flow.sync_invoice(
        stack, invoice, external_id="NS-0001", extra={"custbody_stripe_invoice": deal.customer}
    )
    erp = _erp_id(stack, "NS-0001")
    found = fires(stack, "INV-06", f"billing:{invoice}", f"erp:invoice/{erp}", links=FIELD)
    assert any(f"custom field custbody_stripe_invoice {invoice}" in v.message for v in found)


# --- metadata key: a Stripe metadata key holding the CRM id ------------------------------------
METADATA = _declared(billing__subscription={"metadata": "sf_opportunity"})


def test_a_metadata_link_holds_when_the_subscription_carries_the_key(stack: Stack) -> None:
    deal = _provision(stack, {"sf_opportunity": "{opportunity}"})
    assert deal.subscription
    holds(stack, "INV-24", METADATA)


def test_a_metadata_link_broken_is_caught_naming_the_records(stack: Stack) -> None:
    # The subscription carries the reference's key, not the one this integration declared.
    deal = _provision(stack, {"crm_opportunity_id": "{opportunity}"})
    found = fires(stack, "INV-24", f"crm:{deal.opportunity}", links=METADATA)
    assert any("metadata.sf_opportunity" in v.message for v in found)


def _provision(stack: Stack, metadata: dict[str, str]) -> flow.Deal:
    product, price = flow.fixtures(stack)
    account, opp, lines = flow.won_opportunity(stack, price, 2, 1000)
    deal = flow.Deal("US", "usd", price, product, account, opp, lines)
    flow.close_won_new_business(
        stack,
        deal,
        2,
        subscription_metadata={k: v.format(opportunity=opp) for k, v in metadata.items()},
    )
    return deal


# --- number and memo: the ERP transaction number or memo, rendered from the source -------------
@pytest.mark.parametrize(
    ("kind", "declared", "body"),
    [
        ("number", "{invoice.number}", lambda inv: {"tranId": inv.number}),
        ("memo", "Stripe {invoice.number}", lambda inv: {"memo": f"Stripe {inv.number}"}),
    ],
)
def test_number_and_memo_links_hold_when_the_document_carries_them(
    stack: Stack, kind: str, declared: str, body: Any
) -> None:
    _, invoice = _deal(stack)
    inv = stack.books().invoices[invoice]
    assert inv.number
    flow.sync_invoice(stack, invoice, external_id="NS-0002", extra=body(inv))
    holds(stack, "INV-06", _declared(erp__invoice={kind: declared}))


@pytest.mark.parametrize(
    ("kind", "declared", "field"),
    [("number", "{invoice.number}", "tranId"), ("memo", "Stripe {invoice.number}", "memo")],
)
def test_number_and_memo_links_broken_are_caught_naming_the_records(
    stack: Stack, kind: str, declared: str, field: str
) -> None:
    _, invoice = _deal(stack)
    flow.sync_invoice(stack, invoice, external_id="NS-0003", extra={field: "INV-MANUAL"})
    erp = _erp_id(stack, "NS-0003")
    fires(
        stack,
        "INV-06",
        f"billing:{invoice}",
        f"erp:invoice/{erp}",
        links=_declared(erp__invoice={kind: declared}),
    )


# --- hook: matching no template expresses --------------------------------------------------------
HOOKED = _declared(erp__invoice={"hook": HOOK})


def test_a_hook_link_holds_when_the_hook_finds_the_source(stack: Stack) -> None:
    _, invoice = _deal(stack)
    flow.sync_invoice(stack, invoice, external_id="NS-0004", extra={"memo": f"ref={invoice};"})
    holds(stack, "INV-06", HOOKED)


def test_a_hook_link_broken_is_caught_naming_the_records(stack: Stack) -> None:
    _, invoice = _deal(stack)
    flow.sync_invoice(stack, invoice, external_id="NS-0004", extra={"memo": "ref=;"})
    erp = _erp_id(stack, "NS-0004")
    fires(stack, "INV-06", f"billing:{invoice}", f"erp:invoice/{erp}", links=HOOKED)


def test_a_template_with_other_values_than_the_id_is_read_by_rendering(stack: Stack) -> None:
    deal, invoice = _deal(stack)
    inv = stack.books().invoices[invoice]
    flow.sync_invoice(stack, invoice, external_id=f"{inv.number}-{deal.customer}")
    links = _declared(erp__invoice={"external_id": "{invoice.number}-{invoice.customer}"})
    holds(stack, "INV-06", links)
    books = stack.books(links)
    assert books.links.target("erp.invoice", invoice) is not None


def test_two_documents_linked_to_one_source_are_duplicates(stack: Stack) -> None:
    _, invoice = _deal(stack)
    flow.sync_invoice(
        stack, invoice, external_id="NS-A", extra={"custbody_stripe_invoice": invoice}
    )
    flow.sync_invoice(
        stack,
        invoice,
        external_id="NS-B",
        subledger=False,
        extra={"custbody_stripe_invoice": invoice},
    )
    first, second = _erp_id(stack, "NS-A"), _erp_id(stack, "NS-B")
    found = fires(
        stack,
        "INV-06",
        f"billing:{invoice}",
        f"erp:invoice/{first}",
        f"erp:invoice/{second}",
        links=FIELD,
    )
    assert any("has 2 ERP invoices" in v.message for v in found)


# --- ERP items: which item the lines go to ------------------------------------------------------
def test_lines_on_the_declared_items_hold(stack: Stack) -> None:
    _, invoice = _deal(stack)
    flow.sync_invoice(stack, invoice, item="USAGE")  # this integration books subscriptions so
    holds(stack, "INV-06", LinksConfig(erp_items={"subscription": "USAGE", "other": "SERVICES"}))


def test_lines_on_another_item_are_caught_naming_the_records(stack: Stack) -> None:
    _, invoice = _deal(stack)
    flow.sync_invoice(stack, invoice, item="USAGE")  # the reference declares SUBSCRIPTION
    erp = _erp_id(stack, invoice)
    found = fires(stack, "INV-06", f"billing:{invoice}", f"erp:invoice/{erp}")
    assert any("ERP item(s) USAGE" in v.message for v in found)

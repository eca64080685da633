"""FX, CRM ↔ billing, delivery and contract checks: each holds, and fires on one bug."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from harness.invariants import REGISTRY
from tests.invariants import flow
from tests.invariants.helpers import fires, holds
from tests.invariants.stack import Stack


# --- INV-22 -----------------------------------------------------------------------------------
def _gbp_invoice(stack: Stack, rate: float | None) -> str:
    """An ERP invoice in GBP for a US-subsidiary customer that buys in GBP."""
    stack.erp_write(
        "PUT",
        "/customer/eid:cus_gbp",
        {
            "companyName": "Brit",
            "subsidiary": {"externalId": "US"},
            "currency": {"externalId": "GBP"},
        },
    )
    body: dict[str, Any] = {
        "entity": {"externalId": "cus_gbp"},
        "subsidiary": {"externalId": "US"},
        "currency": {"externalId": "GBP"},
        "tranDate": "2026-01-15",
        "item": {"items": [{"item": {"externalId": "SERVICES"}, "amount": 100}]},
    }
    if rate is not None:
        body["exchangeRate"] = rate
    return stack.erp_write("PUT", "/invoice/eid:in_gbp", body)


def test_inv22_holds(stack: Stack) -> None:
    erp_id = _gbp_invoice(stack, None)
    assert stack.books().erp_transactions[erp_id].exchange_rate != "1"
    holds(stack, "INV-22")


def test_inv22_violated(stack: Stack) -> None:
    erp_id = _gbp_invoice(stack, 1.5)  # a rate from nowhere
    fires(stack, "INV-22", f"erp:invoice/{erp_id}")


# --- INV-23 -----------------------------------------------------------------------------------
def test_inv23_holds(stack: Stack) -> None:
    flow.new_deal(stack, entity="DE")
    holds(stack, "INV-23")


def test_inv23_violated(stack: Stack) -> None:
    # The ERP customer is opened in GBP, so the USD invoice reaches the ERP in pounds.
    deal = flow.new_deal(stack, sync=False)
    stack.erp_write(
        "PUT",
        f"/customer/eid:{deal.customer}",
        {
            "companyName": "Acme",
            "subsidiary": {"externalId": "US"},
            "currency": {"externalId": "GBP"},
        },
    )
    erp_id = flow.sync_invoice(stack, deal.invoices[0], extra={"currency": {"externalId": "GBP"}})
    fires(stack, "INV-23", f"billing:{deal.subscription}", f"erp:invoice/{erp_id}")


# --- INV-24 -----------------------------------------------------------------------------------
def test_inv24_holds(stack: Stack) -> None:
    flow.new_deal(stack, quantity=4, unit_amount=1250)
    holds(stack, "INV-24")


def test_inv24_violated(stack: Stack) -> None:
    deal = flow.new_deal(stack)
    # A redelivered opportunity.closed handled again with a fresh idempotency key.
    again = stack.billing(
        "POST",
        "/v1/subscriptions",
        {
            "customer": deal.customer,
            "items": [{"price": deal.price, "quantity": 2}],
            "collection_method": "send_invoice",
            "days_until_due": 30,
            "metadata": {"crm_opportunity_id": deal.opportunity, "entity": "US"},
        },
        key="another-key",
    )
    fires(
        stack,
        "INV-24",
        f"crm:{deal.opportunity}",
        f"billing:{deal.subscription}",
        f"billing:{again['id']}",
    )


def test_inv24_violated_by_a_wrong_quantity(stack: Stack) -> None:
    product, price = flow.fixtures(stack)
    account, opp, lines = flow.won_opportunity(stack, price, 2, 1000)
    deal = flow.Deal("US", "usd", price, product, account, opp, lines)
    flow.close_won_new_business(stack, deal, 3)
    fires(stack, "INV-24", f"crm:{opp}", f"billing:{deal.subscription}")


# --- INV-25 -----------------------------------------------------------------------------------
def test_inv25_holds(stack: Stack) -> None:
    flow.new_deal(stack, quantity=3, unit_amount=1999)
    holds(stack, "INV-25")


def test_inv25_violated(stack: Stack) -> None:
    # The CRM rolls Amount up from its lines and ignores writes to it: broken by hand.
    deal = flow.new_deal(stack)
    stack.crm_sim.store.tables["Opportunity"][deal.opportunity].fields["Amount"] += 1
    fires(stack, "INV-25", f"crm:{deal.opportunity}", f"crm:{deal.lines[0]}")


# --- INV-26 -----------------------------------------------------------------------------------
def test_inv26_holds(stack: Stack) -> None:
    deal = flow.new_deal(stack)
    flow.sync_invoice(stack, deal.invoices[0])  # a replayed event: upserts change nothing
    holds(stack, "INV-26")


def _void_event(stack: Stack, deal: flow.Deal, external_id: str) -> str:
    """The subledger side of a void: a credit note reversing what the invoice billed."""
    inv = stack.books().invoices[deal.invoices[0]]
    event = stack.revrec(
        "POST",
        "/v1/billing_events",
        {
            "external_id": external_id,
            "type": "credit_note",
            "contract": deal.contract,
            "currency": inv.currency,
            "issued_at": stack.world.clock.now(),
            "lines": [{"line": deal.items[0], "amount_minor": inv.total}],
        },
    )
    return str(event["id"])


def test_inv26_holds_for_the_flows_suffixed_billing_events(stack: Stack) -> None:
    deal = flow.new_deal(stack)
    stack.billing("POST", f"/v1/invoices/{deal.invoices[0]}/void", harness=True)
    _void_event(stack, deal, f"{deal.invoices[0]}-void")
    holds(stack, "INV-26")
    holds(stack, "INV-16")  # the void's reversal is the one the flow owes


def test_inv26_violated_by_a_suffix_on_no_invoice(stack: Stack) -> None:
    deal = flow.new_deal(stack)
    event = _void_event(stack, deal, f"{deal.subscription}-void")
    fires(stack, "INV-26", f"revrec:{event}")


def test_inv26_violated(stack: Stack) -> None:
    deal = flow.new_deal(stack)
    # A replayed event creates the ERP customer again with a POST that carries no external id.
    copy = stack.erp_write(
        "POST", "/customer", {"companyName": "Acme", "subsidiary": {"externalId": deal.entity}}
    )
    fires(stack, "INV-26", f"erp:customer/{copy}")


# --- INV-28 -----------------------------------------------------------------------------------
def _listen(stack: Stack) -> None:
    stack.billing(
        "POST",
        "/v1/webhook_endpoints",
        {"url": f"{stack.urls['receiver']}/webhooks/stripe", "enabled_events": ["*"]},
        harness=True,
    )


def test_inv28_holds(stack: Stack) -> None:
    _listen(stack)
    flow.new_deal(stack)
    stack.drain()
    assert stack.receiver.count > 0
    holds(stack, "INV-28")


def test_inv28_violated(stack: Stack) -> None:
    _listen(stack)
    deal = flow.new_deal(stack, sync=False)  # acknowledged, then never applied
    stack.drain()
    delivered = [
        d
        for d in stack.books().deliveries
        if d.event_type == "invoice.finalized" and d.status == "delivered"
    ]
    assert delivered
    fires(stack, "INV-28", f"billing:delivery/{delivered[0].id}", f"billing:{deal.invoices[0]}")


def test_inv28_holds_for_credit_and_zero_invoices(stack: Stack) -> None:
    _listen(stack)
    flow.new_deal(stack, metered=True, sync=False)  # a zero invoice: nothing owed
    deal = flow.new_deal(stack, entity="UK")
    final = flow.cancel_now(stack, deal, "2026-01-25T00:00:00Z")
    flow.sync_credit_invoice(stack, final)  # a negative invoice: the credit memo
    stack.drain()
    holds(stack, "INV-28")


def test_inv28_violated_by_a_credit_invoice_never_posted(stack: Stack) -> None:
    _listen(stack)
    deal = flow.new_deal(stack)
    final = flow.cancel_now(stack, deal, "2026-01-25T00:00:00Z")
    stack.drain()
    found = fires(stack, "INV-28", f"billing:{final}")
    assert "no creditMemo" in found[0].message


# --- INV-29 -----------------------------------------------------------------------------------
def _reuse_key(stack: Stack, *, retry: bool) -> int:
    stack.billing("POST", "/v1/customers", {"name": "First"}, key="same-key")
    stack.billing("POST", "/v1/customers", {"name": "Second"}, key="same-key", ok=False)
    refused = [e for e in stack.books().journal("billing") if e.status == 400]
    assert len(refused) == 1
    if retry:
        stack.billing("POST", "/v1/customers", {"name": "Second"}, key="fresh-key")
    return refused[0].seq


def test_inv29_holds(stack: Stack) -> None:
    _reuse_key(stack, retry=True)
    holds(stack, "INV-29")


def test_inv29_violated(stack: Stack) -> None:
    seq = _reuse_key(stack, retry=False)
    fires(stack, "INV-29", f"billing:journal/{seq}")


# --- CONTRACT ---------------------------------------------------------------------------------
def test_contract_holds(stack: Stack) -> None:
    flow.new_deal(stack)
    holds(stack, "CONTRACT")


def test_contract_violated(stack: Stack) -> None:
    response = stack.erp(
        "POST",
        "/customer",
        {"companyName": "Acme", "subsidiary": {"externalId": "US"}, "colour": "red"},
        ok=False,
    )
    assert response.status_code == 400
    entry = stack.books().journal("erp")[-1]
    found = fires(stack, "CONTRACT", f"erp:journal/{entry.seq}")
    assert found[0].details["path"] == "/services/rest/record/v1/customer"


def test_contract_leaves_the_harness_out(stack: Stack) -> None:
    stack.crm(
        "POST", "/sobjects/Account/", {"Name": "x", "Colour__c": "red"}, harness=True, ok=False
    )
    holds(stack, "CONTRACT")


# --- the registry ------------------------------------------------------------------------------
def _test_names() -> set[str]:
    """Every test function of every ``test_*.py`` module in this folder."""
    folder = Path(__file__).parent
    names: set[str] = set()
    for path in sorted(folder.glob("test_*.py")):
        module = importlib.import_module(f"tests.invariants.{path.stem}")
        names |= {name for name in dir(module) if name.startswith("test_")}
    return names


@pytest.mark.parametrize("rule", sorted(REGISTRY))
def test_every_invariant_has_a_holding_and_a_violated_test(rule: str) -> None:
    stem = "test_" + rule.lower().replace("-", "")
    names = _test_names()
    assert f"{stem}_holds" in names and f"{stem}_violated" in names, stem


def test_the_catalogue_is_covered() -> None:
    catalogue = {k for k in REGISTRY if k.startswith("INV-")}
    groups = {inv.group for inv in REGISTRY.values()}
    assert len(catalogue) >= 22
    assert {
        "ledger",
        "billing_ar",
        "lifecycle",
        "subledger",
        "fx",
        "crm_billing",
        "delivery",
    } <= groups
    assert all(inv.rule for inv in REGISTRY.values())

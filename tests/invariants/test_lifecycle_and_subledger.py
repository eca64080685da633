"""Lifecycle and subledger invariants: each holds after a correct flow and fires on one bug."""

from __future__ import annotations

import dataclasses

from tests.invariants import flow
from tests.invariants.helpers import fires, holds
from tests.invariants.stack import Stack


def _upgrade(
    stack: Stack, deal: flow.Deal, quantity: int, behavior: str = "create_prorations"
) -> None:
    stack.billing(
        "POST",
        f"/v1/subscriptions/{deal.subscription}",
        {"items": [{"id": deal.items[0], "quantity": quantity}], "proration_behavior": behavior},
        key=f"upgrade-{deal.subscription}-{quantity}-{behavior}",
    )


def _prorations(stack: Stack, deal: flow.Deal) -> list[str]:
    return [
        ii.id
        for ii in stack.books().invoice_items.values()
        if ii.proration and ii.subscription == deal.subscription
    ]


# --- INV-11 -----------------------------------------------------------------------------------
def test_inv11_holds(stack: Stack) -> None:
    deal = flow.new_deal(stack)
    stack.advance_to("2026-01-25T07:30:00Z")
    _upgrade(stack, deal, 3)
    assert len(_prorations(stack, deal)) == 2
    holds(stack, "INV-11")


def test_inv11_violated(stack: Stack) -> None:
    # Billing computes prorations itself; a wrong one is made by hand, a unit off.
    deal = flow.new_deal(stack)
    stack.advance_to("2026-01-25T07:30:00Z")
    _upgrade(stack, deal, 3)
    wrong = _prorations(stack, deal)[0]
    stack.billing_sim.store.invoice_items[wrong].amount += 1
    fires(stack, "INV-11", f"billing:{wrong}", f"billing:{deal.subscription}")


# --- INV-13 -----------------------------------------------------------------------------------
def _renewal(stack: Stack, deal: flow.Deal, quantity: int) -> str:
    _, opp, _ = flow.won_opportunity(
        stack,
        deal.price,
        quantity,
        1000,
        account=deal.account,
        kind="Renewal",
        subscription=deal.subscription,
    )
    return opp


def test_inv13_holds(stack: Stack) -> None:
    deal = flow.new_deal(stack, quantity=3)
    stack.advance_to("2026-02-10T00:00:00Z")
    opp = _renewal(stack, deal, 2)
    _upgrade(stack, deal, 2, behavior="none")
    stack.crm("PATCH", f"/sobjects/Opportunity/{opp}", {"Synced_To_Billing__c": True})
    holds(stack, "INV-13")


def test_inv13_violated(stack: Stack) -> None:
    deal = flow.new_deal(stack, quantity=3)
    stack.advance_to("2026-02-10T00:00:00Z")
    opp = _renewal(stack, deal, 2)
    _upgrade(stack, deal, 2)  # the renewal's downgrade applied at once, with prorations
    stack.crm("PATCH", f"/sobjects/Opportunity/{opp}", {"Synced_To_Billing__c": True})
    fires(
        stack,
        "INV-13",
        f"crm:{opp}",
        f"billing:{deal.subscription}",
        f"billing:{_prorations(stack, deal)[0]}",
    )


# --- INV-14 -----------------------------------------------------------------------------------
def test_inv14_holds(stack: Stack) -> None:
    deal = flow.new_deal(stack)
    stack.advance_to("2026-01-20T00:00:00Z")
    stack.billing("DELETE", f"/v1/subscriptions/{deal.subscription}", harness=True)
    assert stack.books().subscriptions[deal.subscription].status == "canceled"
    holds(stack, "INV-14")


def test_inv14_violated(stack: Stack) -> None:
    # A cancellation that ended before the service it already billed: made by hand.
    deal = flow.new_deal(stack)
    stack.advance_to("2026-01-20T00:00:00Z")
    stack.billing("DELETE", f"/v1/subscriptions/{deal.subscription}", harness=True)
    sub = stack.billing_sim.store.subscriptions[deal.subscription]
    sub.ended_at = sub.start_date
    fires(stack, "INV-14", f"billing:{deal.subscription}", f"billing:{deal.invoices[0]}")


# --- INV-15 -----------------------------------------------------------------------------------
def _usage_invoice(stack: Stack) -> tuple[flow.Deal, str]:
    deal = flow.new_deal(stack, metered=True, unit_amount=3, sync=False)
    for n, value in enumerate((5, 7, 7)):
        identifier = f"use-{n}" if n < 2 else "use-1"  # the third repeats the second: counted once
        stack.billing(
            "POST",
            "/v1/billing/meter_events",
            {
                "event_name": "api_calls",
                "identifier": identifier,
                "payload": {"stripe_customer_id": deal.customer, "value": value},
            },
            harness=True,
        )
    stack.advance_to("2026-02-15T02:00:00Z")
    renewal = [
        inv.id
        for inv in stack.books().invoices.values()
        if inv.subscription == deal.subscription and inv.id != deal.invoices[0]
    ]
    assert renewal
    return deal, renewal[0]


def test_inv15_holds(stack: Stack) -> None:
    _, invoice = _usage_invoice(stack)
    billed = stack.books().invoices[invoice]
    assert any(line.quantity == 12 for line in billed.lines)
    holds(stack, "INV-15")


def test_inv15_violated(stack: Stack) -> None:
    _, invoice = _usage_invoice(stack)
    # A repeated identifier stored twice (dedup bypassed): the billed usage no longer matches.
    store = stack.billing_sim.store
    store.meter_events.append(dataclasses.replace(store.meter_events[0]))
    fires(stack, "INV-15", "billing:use-0", f"billing:{invoice}")


# --- INV-16 -----------------------------------------------------------------------------------
def test_inv16_holds(stack: Stack) -> None:
    deal = flow.new_deal(stack)
    assert stack.books().rr_billing_event_by_external_id(deal.invoices[0]) is not None
    holds(stack, "INV-16")


def test_inv16_violated(stack: Stack) -> None:
    deal = flow.new_deal(stack, sync=False)
    flow.sync_invoice(stack, deal.invoices[0], subledger=False)
    flow.bill(stack, deal.invoices[0], amount_delta=-1)
    fires(stack, "INV-16", f"billing:{deal.invoices[0]}", f"revrec:{deal.contract}")


# --- INV-18 -----------------------------------------------------------------------------------
def test_inv18_holds(stack: Stack) -> None:
    flow.new_deal(stack, quantity=3)
    holds(stack, "INV-18")


def test_inv18_violated(stack: Stack) -> None:
    product, price = flow.fixtures(stack)
    account, opp, lines = flow.won_opportunity(stack, price, 2, 1000)
    deal = flow.Deal("US", "usd", price, product, account, opp, lines)
    flow.close_won_new_business(stack, deal, 2, contract_quantity=3)
    fires(stack, "INV-18", f"billing:{deal.items[0]}", f"revrec:{deal.contract}")


# --- INV-19 -----------------------------------------------------------------------------------
def _amend(stack: Stack, deal: flow.Deal, *, send: str | None) -> None:
    stack.advance_to("2026-01-25T00:00:00Z")
    _upgrade(stack, deal, 3)
    if send:
        stack.revrec(
            "POST",
            f"/v1/contracts/{deal.contract}/modifications",
            {
                "external_id": f"amend-{deal.subscription}",
                "effective_at": stack.world.clock.now(),
                "treatment": send,
                "changes": [{"line": deal.items[0], "quantity": 3}],
            },
        )


def test_inv19_holds(stack: Stack) -> None:
    deal = flow.new_deal(stack)
    _amend(stack, deal, send="prospective")
    holds(stack, "INV-19")


def test_inv19_violated(stack: Stack) -> None:
    deal = flow.new_deal(stack)
    _amend(stack, deal, send=None)  # billing amended, the subledger never told
    fires(stack, "INV-19", f"billing:{deal.subscription}", f"revrec:{deal.contract}")


def test_inv19_violated_by_a_catch_up(stack: Stack) -> None:
    deal = flow.new_deal(stack)
    _amend(stack, deal, send="cumulative_catch_up")
    fires(stack, "INV-19", f"revrec:{deal.contract}")


# --- INV-21 -----------------------------------------------------------------------------------
NUMBERS = {
    "deferred_revenue": "2400",
    "unbilled_receivable": "1150",
    "revenue": "4000",
    "fx_gain_loss": "7100",
}


def _close_january(stack: Stack, delta: int = 0, *, post: bool = True) -> tuple[str, str | None]:
    """Close January in the subledger and post its one journal as the flow does: external id
    = the close id, in USD (US's functional currency), every summary row's functional
    amounts on its role's account: (close id, journal id)."""
    stack.advance_to("2026-02-01T00:00:00Z")
    stack.revrec("POST", "/v1/periods/US/2026-01/close", harness=True)
    record = next(iter(stack.books().rr_period_closes.values()))
    lines = []
    for row in record.journal:
        for side in ("debit", "credit"):
            amount = row[f"functional_{side}_minor"]
            if amount:
                lines.append(
                    {
                        "account": {"externalId": NUMBERS[row["account_role"]]},
                        side: flow.major(amount + delta),
                    }
                )
    if not post or not lines:
        return record.id, None
    journal = stack.erp_write(
        "PUT",
        f"/journalEntry/eid:{record.id}",
        {
            "subsidiary": {"externalId": "US"},
            "currency": {"externalId": "USD"},
            "tranDate": "2026-01-31",
            "line": {"items": lines},
        },
    )
    return record.id, journal


def _gbp_contract(stack: Stack, deal: flow.Deal) -> None:
    """A GBP contract in the USD entity, booked at 1.25 and billed at 1.30: the close has
    GBP rows at the booking rate and an FX row with no GBP amount at all."""
    contract = stack.revrec(
        "POST",
        "/v1/contracts",
        {
            "external_id": "sub_gbp",
            "customer": deal.customer,
            "entity": "US",
            "currency": "gbp",
            "exchange_rate": "1.25",
            "booked_at": stack.world.clock.now(),
            "lines": [
                {
                    "external_id": "si_gbp",
                    "product": "gbp_plan",
                    "pattern": "ratable",
                    "quantity": 1,
                    "unit_price_minor": 12000,
                    "service_start_at": stack.world.clock.now(),
                    "service_end_at": flow.add_months(stack.world.clock.now(), 12),
                }
            ],
        },
    )
    stack.revrec(
        "POST",
        "/v1/billing_events",
        {
            "external_id": "in_gbp",
            "type": "invoice",
            "contract": contract["id"],
            "currency": "gbp",
            "exchange_rate": "1.30",
            "issued_at": stack.world.clock.now(),
            "lines": [{"line": "si_gbp", "amount_minor": 1000}],
        },
    )


def test_inv21_holds(stack: Stack) -> None:
    flow.new_deal(stack)
    _close_january(stack)
    holds(stack, "INV-21")


def test_inv21_holds_for_several_currencies_in_one_functional_journal(stack: Stack) -> None:
    deal = flow.new_deal(stack)
    _gbp_contract(stack, deal)
    close, journal = _close_january(stack)
    rows = stack.books().rr_period_closes[close].journal
    assert {row["currency"] for row in rows} == {"usd", "gbp"}
    # The FX release carries a functional amount and no GBP one.
    fx = [row for row in rows if row["account_role"] == "fx_gain_loss"]
    assert fx and all(not (row["debit_minor"] or row["credit_minor"]) for row in fx), rows
    # One journal, every currency's functional amounts together.
    assert journal is not None
    holds(stack, "INV-21")
    holds(stack, "INV-03")


def test_inv21_violated_by_a_journal_per_currency(stack: Stack) -> None:
    # The retired convention: one journal per transaction currency, under <close>-<CUR>.
    deal = flow.new_deal(stack)
    _gbp_contract(stack, deal)
    close, _ = _close_january(stack, post=False)
    record = stack.books().rr_period_closes[close]
    for currency in ("usd", "gbp"):
        lines = []
        for row in record.journal:
            if row["currency"] != currency:
                continue
            for side in ("debit", "credit"):
                if row[f"{side}_minor"]:
                    lines.append(
                        {
                            "account": {"externalId": NUMBERS[row["account_role"]]},
                            side: flow.major(row[f"{side}_minor"]),
                        }
                    )
        stack.erp_write(
            "PUT",
            f"/journalEntry/eid:{close}-{currency.upper()}",
            {
                "subsidiary": {"externalId": "US"},
                "currency": {"externalId": currency.upper()},
                "tranDate": "2026-01-31",
                "line": {"items": lines},
            },
        )
    found = fires(stack, "INV-21", f"revrec:{close}")
    assert any(f"no live ERP journal (external id {close})" in v.message for v in found)


def test_inv21_holds_when_a_close_recognised_nothing(stack: Stack) -> None:
    # Nothing booked in the entity: the close recognises nothing and is owed no journal.
    flow.fixtures(stack)
    close, journal = _close_january(stack)
    assert journal is None
    assert not stack.books().rr_period_closes[close].journal
    holds(stack, "INV-21")
    holds(stack, "INV-28")


def test_inv21_violated(stack: Stack) -> None:
    flow.new_deal(stack)
    close, journal = _close_january(stack, delta=100)  # balanced, a dollar too much each side
    fires(stack, "INV-21", f"revrec:{close}", f"erp:journalEntry/{journal}")

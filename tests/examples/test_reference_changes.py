"""Billing-side changes, credit invoices, customer credit and a foreign-currency entity, played
through the reference integration against the four real simulators."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from harness.session import open_session
from tests.examples.test_reference_flow import REPO, Harness, _config, _dollars, _half_up

JAN_1 = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
FEB_1 = int(datetime(2026, 2, 1, tzinfo=UTC).timestamp())
DAY = 86400
UNIT = 10000  # pro, per seat per month, cents


def _fixtures(h: Harness, entity: str, currency: str) -> None:
    put = h.revrec.put(f"/v1/entities/{entity}", json={"functional_currency": currency})
    assert put.status_code in (200, 201), put.text


def _deal(h: Harness, account: str, entry: str, price: str, quantity: int, unit: int) -> str:
    deal = h.opportunity(account, [(entry, price, quantity, unit)])
    h.patch("Opportunity", deal, {"StageName": "Closed Won"})
    h.settle()
    sub_id: str = h.record("Opportunity", deal)["Billing_Subscription_Id__c"]
    assert sub_id
    return sub_id


def _contract(h: Harness, sub_id: str) -> dict[str, Any]:
    [contract] = h.revrec_get("/v1/contracts", external_id=sub_id)["data"]
    assert isinstance(contract, dict)
    return contract


def _events(h: Harness, contract: dict[str, Any]) -> dict[str, dict[str, Any]]:
    rows = h.revrec_get("/v1/billing_events", contract=contract["id"], limit=100)["data"]
    return {e["external_id"]: e for e in rows}


def _erp(h: Harness, kind: str, external_id: str) -> dict[str, Any]:
    response = h.erp.get(
        f"/services/rest/record/v1/{kind}/eid:{external_id}",
        params={"expandSubResources": "true"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_billing_side_changes_reach_the_subledger_and_credit_reaches_ar(tmp_path: Path) -> None:
    with open_session(_config(tmp_path / "inbox.sqlite"), cwd=REPO) as session:
        h = Harness(session)
        try:
            _play_changes(h)
        finally:
            h.close()


def _play_changes(h: Harness) -> None:
    _fixtures(h, "US", "usd")
    pro = h.stripe.v1.products.create(params={"name": "Pro", "metadata": {"key": "pro"}})
    price = h.stripe.v1.prices.create(
        params={
            "product": pro.id,
            "currency": "usd",
            "unit_amount": UNIT,
            "recurring": {"interval": "month"},
        }
    )
    entry = h.product("Pro", price.id, UNIT)
    account = h.sobject(
        "Account", {"Name": "Umbrella", "External_Id__c": "umbrella", "Contracting_Entity__c": "US"}
    )
    sub_id = _deal(h, account, entry, price.id, 3, UNIT)
    contract = _contract(h, sub_id)
    [line] = contract["lines"]
    assert line["amount_minor"] == 12 * 3 * UNIT

    # Jan 11: the customer upgrades to 5 seats in the portal, invoiced at once.
    h.advance("P10D")
    upgraded_at = JAN_1 + 10 * DAY
    sub = h.stripe.v1.subscriptions.retrieve(sub_id)
    item = sub["items"].data[0].id
    h.stripe.v1.subscriptions.update(
        sub_id,
        params={
            "items": [{"id": item, "quantity": 5}],
            "proration_behavior": "always_invoice",
        },
    )
    h.settle()
    unused = Decimal(FEB_1 - upgraded_at) / (FEB_1 - JAN_1)  # 21 of 31 days
    credit = _half_up(3 * UNIT * unused)
    debit = _half_up(5 * UNIT * unused)
    assert (credit, debit) == (20323, 33871)
    proration_invoice = h.stripe.v1.subscriptions.retrieve(sub_id).latest_invoice
    assert isinstance(proration_invoice, str)
    invoices = h.erp_documents("CustInvc")
    assert Decimal(invoices[proration_invoice]["foreigntotal"]) == _dollars(debit - credit)
    contract = _contract(h, sub_id)
    [line] = contract["lines"]
    upgraded = 12 * 3 * UNIT - credit + debit + 2 * UNIT * 11
    assert (line["quantity"], line["amount_minor"]) == (5, upgraded)
    [mod] = h.revrec_get(f"/v1/contracts/{contract['id']}/modifications")["data"]
    assert (mod["external_id"], mod["effective_at"], mod["treatment"]) == (
        f"{sub_id}-{upgraded_at}",
        upgraded_at,
        "prospective",
    )
    assert _events(h, contract)[proration_invoice]["total_minor"] == debit - credit

    # Jan 16: cancelled now, prorated and invoiced at once: a credit invoice.
    h.advance("P5D")
    cancelled_at = JAN_1 + 15 * DAY
    h.stripe.v1.subscriptions.cancel(sub_id, params={"prorate": True, "invoice_now": True})
    h.settle()
    refund = _half_up(5 * UNIT * Decimal(FEB_1 - cancelled_at) / (FEB_1 - JAN_1))
    assert refund == 25806  # 5 seats × 16 of 31 days
    final = h.stripe.v1.subscriptions.retrieve(sub_id).latest_invoice
    assert isinstance(final, str) and final != proration_invoice
    assert h.stripe.v1.invoices.retrieve(final).total == -refund
    assert final not in h.erp_documents("CustInvc")
    memo = _erp(h, "creditMemo", final)
    assert Decimal(str(memo["total"])) == _dollars(refund)
    assert Decimal(str(memo["unapplied"])) == _dollars(refund)  # customer credit
    contract = _contract(h, sub_id)
    [line] = contract["lines"]
    assert line["terminated_at"] == cancelled_at
    assert line["amount_minor"] == upgraded - refund - 5 * UNIT * 11
    event = _events(h, contract)[final]
    assert (event["type"], event["total_minor"]) == ("credit_note", -refund)

    # A new deal for the account: its first invoice (100.00) is paid from the credit balance,
    # so the ERP applies that much of the credit memo and nothing stays open.
    customer = h.record("Account", account)["Billing_Customer_Id__c"]
    assert h.stripe.v1.customers.retrieve(customer).balance == -refund
    second = _deal(h, account, entry, price.id, 1, UNIT)
    first_of_second = h.stripe.v1.subscriptions.retrieve(second).latest_invoice
    assert isinstance(first_of_second, str)
    billed = h.stripe.v1.invoices.retrieve(first_of_second)
    assert (billed.total, billed.amount_remaining) == (UNIT, 0)
    erp_invoice = _erp(h, "invoice", first_of_second)
    assert Decimal(str(erp_invoice["amountRemaining"])) == 0
    memo = _erp(h, "creditMemo", final)
    assert Decimal(str(memo["unapplied"])) == _dollars(refund - UNIT)
    assert [Decimal(str(a["amount"])) for a in memo["apply"]["items"]] == [_dollars(UNIT)]


def test_a_uk_entity_billing_in_dollars_posts_at_the_erp_rates(tmp_path: Path) -> None:
    with open_session(_config(tmp_path / "inbox.sqlite"), cwd=REPO) as session:
        h = Harness(session)
        try:
            _play_fx(h)
        finally:
            h.close()


def _set_rate(h: Harness, on: str, rate: str) -> None:
    """usd→gbp effective ``on``, replacing the seed's rate of that day."""
    rows = h.suiteql(
        "SELECT r.id FROM currencyrate r JOIN currency b ON b.id = r.basecurrency"
        " JOIN currency t ON t.id = r.transactioncurrency"
        f" WHERE b.externalid = 'GBP' AND t.externalid = 'USD' AND r.effectivedate = '{on}'"
    )
    body = {"exchangeRate": float(rate)}
    path = "/services/rest/record/v1/currencyRate"
    if rows:
        response = h.erp.patch(f"{path}/{rows[0]['id']}", json=body)
    else:
        response = h.erp.post(
            path,
            json={
                **body,
                "baseCurrency": {"externalId": "GBP"},
                "transactionCurrency": {"externalId": "USD"},
                "effectiveDate": on,
            },
        )
    assert response.status_code == 204, response.text


def _gl(h: Harness, external_id: str) -> dict[str, Decimal]:
    """Net base-currency debit per account number of one ERP document."""
    rows = h.suiteql(
        "SELECT a.externalid account, tal.debit, tal.credit FROM transactionaccountingline tal"
        " JOIN transaction t ON t.id = tal.transaction JOIN account a ON a.id = tal.account"
        f" WHERE t.externalid = '{external_id}'"
    )
    net: dict[str, Decimal] = {}
    for row in rows:
        amount = Decimal(row.get("debit", "0")) - Decimal(row.get("credit", "0"))
        net[row["account"]] = net.get(row["account"], Decimal(0)) + amount
    return {k: v for k, v in net.items() if v}


def _play_fx(h: Harness) -> None:
    _fixtures(h, "UK", "gbp")
    _set_rate(h, "2026-01-01", "0.80")
    _set_rate(h, "2026-02-01", "0.75")
    ent = h.stripe.v1.products.create(params={"name": "Enterprise", "metadata": {"key": "ent"}})
    price = h.stripe.v1.prices.create(
        params={
            "product": ent.id,
            "currency": "usd",
            "unit_amount": 100000,
            "recurring": {"interval": "year"},
        }
    )
    entry = h.product("Enterprise", price.id, 100000)
    account = h.sobject(
        "Account", {"Name": "Oscorp", "External_Id__c": "oscorp", "Contracting_Entity__c": "UK"}
    )
    h.advance("P4D")  # Jan 5
    deal = h.opportunity(account, [(entry, price.id, 1, 100000)])
    h.patch("Opportunity", deal, {"Contracting_Entity__c": "UK", "StageName": "Closed Won"})
    h.settle()
    sub_id = h.record("Opportunity", deal)["Billing_Subscription_Id__c"]
    invoice_id = h.stripe.v1.subscriptions.retrieve(sub_id).latest_invoice
    assert isinstance(invoice_id, str)

    # The invoice: 1,000.00 USD in the UK subsidiary at Jan 5's 0.80: 800.00 GBP of AR.
    [row] = h.suiteql(
        "SELECT t.foreigntotal, t.exchangerate, t.trandate, c.externalid cur"
        " FROM transaction t JOIN currency c ON c.id = t.currency"
        f" WHERE t.externalid = '{invoice_id}'"
    )
    assert (Decimal(row["foreigntotal"]), Decimal(row["exchangerate"])) == (
        Decimal(1000),
        Decimal("0.8"),
    )
    assert (row["trandate"], row["cur"]) == ("2026-01-05", "USD")
    assert _gl(h, invoice_id) == {"1100": Decimal(800), "2400": Decimal(-800)}
    contract = _contract(h, sub_id)
    assert (contract["entity"], contract["currency"]) == ("UK", "usd")
    assert Decimal(contract["exchange_rate"]) == Decimal("0.8")

    # Paid on Feb 10 at 0.75: 750.00 GBP of cash relieves 800.00 of AR; 50.00 realised loss.
    h.advance("P36D")
    h.stripe.v1.invoices.pay(invoice_id, params={"paid_out_of_band": True})
    h.settle()
    assert _gl(h, f"pay_{invoice_id}") == {
        "1000": Decimal(750),
        "1100": Decimal(-800),
        "7100": Decimal(50),
    }
    [open_ar] = h.suiteql(
        f"SELECT foreignamountunpaid FROM transaction WHERE externalid = '{invoice_id}'"
    )
    assert Decimal(open_ar["foreignamountunpaid"]) == 0

    # January closes in the subledger: 27 of 365 days recognised, carried at the booking rate.
    closed = h.revrec.post("/v1/periods/UK/2026-01/close")
    assert closed.status_code in (200, 201), closed.text
    h.settle()
    close_id = h.revrec_get("/v1/periods/UK/2026-01")["close_id"]
    assert close_id
    recognised_usd = 100000 * 27 // 365  # by day, truncated: 7397 cents
    recognised_gbp = Decimal(_half_up(Decimal(recognised_usd) * Decimal("0.8"))) / 100
    assert recognised_gbp == Decimal("59.18")
    [journal] = h.suiteql(
        "SELECT t.trandate, c.externalid cur FROM transaction t"
        f" JOIN currency c ON c.id = t.currency WHERE t.externalid = '{close_id}'"
    )
    assert (journal["trandate"], journal["cur"]) == ("2026-01-31", "GBP")
    assert _gl(h, close_id) == {"2400": recognised_gbp, "4000": -recognised_gbp}

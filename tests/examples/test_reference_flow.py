"""The whole reference flow against the four real simulators and the integration process."""

from __future__ import annotations

import hashlib
import hmac
import ssl
import sys
import time
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import stripe

from examples.reference_integration.app import verify_sim_signature
from harness.config import HarnessConfig, IntegrationConfig, Probe, Receiver, SimulatorsConfig
from harness.session import Session, open_session

REPO = Path(__file__).resolve().parents[2]
JAN_1 = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
FEB_1 = int(datetime(2026, 2, 1, tzinfo=UTC).timestamp())
JAN_1_2027 = int(datetime(2027, 1, 1, tzinfo=UTC).timestamp())
UNIT = 5000  # pro, per seat per month, cents
ADDON = 1200  # support add-on, per month, cents


def _config(inbox: Path) -> HarnessConfig:
    return HarnessConfig(
        simulators=SimulatorsConfig(
            systems=["billing", "crm", "erp", "revrec"], tls=["crm"], webhook_time_scale=1e-5
        ),
        integration=IntegrationConfig(
            command=[sys.executable, "-m", "examples.reference_integration"],
            cwd=".",
            env={
                "PORT": "{port}",
                "INBOX_PATH": str(inbox),
                "STRIPE_API_BASE": "{billing.url}",
                "STRIPE_API_KEY": "{billing.api_key}",
                "STRIPE_WEBHOOK_SECRET": "{billing.webhook_secret}",
                "SF_INSTANCE_URL": "{crm.url}",
                "SF_SESSION_ID": "{crm.session_id}",
                "CRM_WEBHOOK_SECRET": "{crm.webhook_secret}",
                "REQUESTS_CA_BUNDLE": "{ca_bundle}",
                "NETSUITE_URL": "{erp.url}",
                "NETSUITE_TOKEN": "{erp.token}",
                "REVREC_URL": "{revrec.url}",
                "REVREC_TOKEN": "{revrec.token}",
                "REVREC_WEBHOOK_SECRET": "{revrec.webhook_secret}",
            },
            ready=Probe(http="http://127.0.0.1:{port}/healthz", timeout_s=20),
            idle=Probe(http="http://127.0.0.1:{port}/idle"),
            webhooks={
                "billing": Receiver(url="http://127.0.0.1:{port}/webhooks/stripe"),
                "crm": Receiver(url="http://127.0.0.1:{port}/webhooks/crm"),
                "revrec": Receiver(
                    url="http://127.0.0.1:{port}/webhooks/revrec", events=["period.closed"]
                ),
            },
            stop_timeout_s=5,
        ),
    )


class Harness:
    """The runner's side: vendor users acting with `X-Sim-Actor: harness` (never faulted)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        ctx = session.context
        self.ctx = ctx
        self.control = {"X-Sim-Control-Token": ctx["control_token"]}
        self.actor = {"X-Sim-Actor": "harness", **self.control}
        self.stripe = stripe.StripeClient(
            ctx["billing"]["api_key"], base_addresses={"api": ctx["billing"]["url"]}
        )
        self.crm = httpx.Client(
            base_url=f"{ctx['crm']['url']}/services/data/v60.0",
            headers={"Authorization": f"Bearer {ctx['crm']['session_id']}", **self.actor},
            verify=ssl.create_default_context(cafile=ctx["ca_bundle"]),
            trust_env=False,
            timeout=10,
        )
        self.erp = httpx.Client(
            base_url=ctx["erp"]["url"],
            headers={"Authorization": f"Bearer {ctx['erp']['token']}", **self.actor},
            trust_env=False,
            timeout=10,
        )
        self.revrec = httpx.Client(
            base_url=ctx["revrec"]["url"],
            headers={"Authorization": f"Bearer {ctx['revrec']['token']}", **self.actor},
            trust_env=False,
            timeout=10,
        )

    def close(self) -> None:
        for client in (self.crm, self.erp, self.revrec):
            client.close()

    def sim(self, system: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = httpx.request(
            method,
            f"{self.ctx[system]['url']}/_sim{path}",
            headers=self.control,
            trust_env=False,
            verify=ssl.create_default_context(cafile=self.ctx["ca_bundle"]),
            timeout=10,
            **kwargs,
        )
        assert response.is_success, response.text
        return response

    def advance(self, duration: str) -> None:
        self.sim("billing", "POST", "/clock/advance", json={"duration": duration})

    def settle(self) -> None:
        result = self.session.settle(window_s=0.3, timeout_s=30)
        assert self.session.integration is not None
        log = "\n".join(self.session.integration.output()[-60:])
        assert result.settled, f"{result}\n{log}"
        assert " ERROR " not in log, log

    # CRM, as sales ops ------------------------------------------------------------------------
    def sobject(self, kind: str, fields: dict[str, Any]) -> str:
        response = self.crm.post(f"/sobjects/{kind}/", json=fields)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def record(self, kind: str, record_id: str) -> dict[str, Any]:
        response = self.crm.get(f"/sobjects/{kind}/{record_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def patch(self, kind: str, record_id: str, fields: dict[str, Any]) -> None:
        response = self.crm.patch(f"/sobjects/{kind}/{record_id}", json=fields)
        assert response.status_code == 204, response.text

    def opportunity(
        self,
        account: str,
        lines: list[tuple[str, str, int, int]],
        *,
        kind: str = "New Business",
        amends: str | None = None,
    ) -> str:
        """lines: (pricebook entry, Stripe price, quantity, unit price in cents)."""
        fields: dict[str, Any] = {
            "AccountId": account,
            "Name": f"{kind} {account}",
            "StageName": "Prospecting",
            "CloseDate": "2026-01-01",
            "Contracting_Entity__c": "US",
            "Type": kind,
            "Term_Months__c": 12,
        }
        if amends:
            fields["Billing_Subscription_Id__c"] = amends
        opp = self.sobject("Opportunity", fields)
        for entry, price, quantity, unit in lines:
            self.sobject(
                "OpportunityLineItem",
                {
                    "OpportunityId": opp,
                    "PricebookEntryId": entry,
                    "Quantity": quantity,
                    "UnitPrice": unit / 100,
                    "Billing_Price_Id__c": price,
                },
            )
        return opp

    def product(self, name: str, price: str, unit: int) -> str:
        """A Product2 with its standard price book entry; the entry's id."""
        product = self.sobject(
            "Product2", {"Name": name, "ProductCode": name.lower(), "IsActive": True}
        )
        books = self.crm.get(
            "/query/", params={"q": "SELECT Id FROM Pricebook2 WHERE IsStandard = true"}
        )
        book = books.json()["records"][0]["Id"]
        return self.sobject(
            "PricebookEntry",
            {
                "Pricebook2Id": book,
                "Product2Id": product,
                "UnitPrice": unit / 100,
                "IsActive": True,
            },
        )

    # ERP, read as the controller --------------------------------------------------------------
    def suiteql(self, query: str) -> list[dict[str, Any]]:
        response = self.erp.post(
            "/services/rest/query/v1/suiteql", json={"q": query}, headers={"Prefer": "transient"}
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def erp_documents(self, kind: str) -> dict[str, dict[str, Any]]:
        """ERP transactions of a type by external id; fails on any duplicate."""
        rows = self.suiteql(
            "SELECT t.externalid, t.foreigntotal, t.trandate, t.status, p.externalid period,"
            " s.externalid subsidiary FROM transaction t"
            " JOIN accountingperiod p ON p.id = t.postingperiod"
            " JOIN subsidiary s ON s.id = p.subsidiary"
            f" WHERE t.type = '{kind}'"
        )
        found: dict[str, dict[str, Any]] = {}
        for row in rows:
            if "externalid" not in row:
                continue  # a system journal (a void's reversal) has none
            assert row["externalid"] not in found, f"duplicate {kind} {row['externalid']}"
            found[row["externalid"]] = row
        return found

    def revrec_get(self, path: str, **params: Any) -> dict[str, Any]:
        response = self.revrec.get(path, params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def _half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _dollars(cents: int) -> Decimal:
    return Decimal(cents) / 100


def test_a_won_deal_flows_through_billing_erp_and_the_subledger_once(tmp_path: Path) -> None:
    with open_session(_config(tmp_path / "inbox.sqlite"), cwd=REPO) as session:
        h = Harness(session)
        try:
            _play(h)
        finally:
            h.close()


def _play(h: Harness) -> None:
    # Fixtures, as the runner creates them.
    put = h.revrec.put("/v1/entities/US", json={"functional_currency": "usd"})
    assert put.status_code in (200, 201), put.text
    pro = h.stripe.v1.products.create(params={"name": "Pro", "metadata": {"key": "pro"}})
    pro_usd = h.stripe.v1.prices.create(
        params={
            "product": pro.id,
            "currency": "usd",
            "unit_amount": UNIT,
            "recurring": {"interval": "month"},
            "lookup_key": "pro_usd",
        }
    )
    support = h.stripe.v1.products.create(params={"name": "Support"})
    support_usd = h.stripe.v1.prices.create(
        params={
            "product": support.id,
            "currency": "usd",
            "unit_amount": ADDON,
            "recurring": {"interval": "month"},
        }
    )
    pro_entry = h.product("Pro", pro_usd.id, UNIT)
    support_entry = h.product("Support", support_usd.id, ADDON)
    account = h.sobject(
        "Account", {"Name": "Acme Corp", "External_Id__c": "acme", "Contracting_Entity__c": "US"}
    )
    # Every push from every system now arrives twice.
    h.sim("billing", "POST", "/faults", json={"kind": "duplicate", "operation": "*", "copies": 2})

    # 1. New business: 10 seats of Pro for 12 months, closed won on Jan 1.
    deal = h.opportunity(account, [(pro_entry, pro_usd.id, 10, UNIT)])
    h.patch("Opportunity", deal, {"StageName": "Closed Won"})
    h.settle()

    opp = h.record("Opportunity", deal)
    acct = h.record("Account", account)
    assert opp["Synced_To_Billing__c"] is True
    sub_id = opp["Billing_Subscription_Id__c"]
    customer_id = acct["Billing_Customer_Id__c"]
    assert sub_id and customer_id and acct["ERP_Customer_Id__c"]
    customers = h.stripe.v1.customers.list(params={"limit": 100}).data
    assert [c.id for c in customers] == [customer_id]
    metadata = customers[0].metadata
    assert metadata is not None
    assert (metadata["entity"], metadata["crm_account_id"]) == ("US", account)
    sub = h.stripe.v1.subscriptions.retrieve(sub_id)
    assert sub.collection_method == "send_invoice"
    assert [(i.price.id, i.quantity) for i in sub["items"].data] == [(pro_usd.id, 10)]
    assert sub.metadata["crm_opportunity_id"] == deal
    item_id = sub["items"].data[0].id
    erp_customers = h.suiteql(
        "SELECT c.externalid, s.externalid sub FROM customer c"
        " JOIN subsidiary s ON s.id = c.subsidiary"
    )
    assert erp_customers == [{"links": [], "externalid": customer_id, "sub": "US"}]
    first = sub.latest_invoice
    assert isinstance(first, str)
    invoices = h.erp_documents("CustInvc")
    assert set(invoices) == {first}
    assert Decimal(invoices[first]["foreigntotal"]) == _dollars(10 * UNIT)
    assert invoices[first]["trandate"] == "2026-01-01"
    contracts = h.revrec_get("/v1/contracts", external_id=sub_id)["data"]
    assert len(contracts) == 1
    contract = contracts[0]
    assert contract["entity"] == "US" and contract["booked_at"] == JAN_1
    [line] = contract["lines"]
    assert line["external_id"] == item_id and line["quantity"] == 10
    assert line["amount_minor"] == 10 * UNIT * 12  # the term's consideration
    assert (line["service_start_at"], line["service_end_at"]) == (JAN_1, JAN_1_2027)
    events = h.revrec_get("/v1/billing_events", contract=contract["id"])["data"]
    assert [(e["external_id"], e["type"], e["total_minor"]) for e in events] == [
        (first, "invoice", 10 * UNIT)
    ]

    # 2. The customer pays (out of band): one ERP payment, dated the payment day.
    h.advance("P5D")
    h.stripe.v1.invoices.pay(first, params={"paid_out_of_band": True})
    h.settle()
    payments = h.erp_documents("CustPymt")
    assert set(payments) == {f"pay_{first}"}
    assert Decimal(payments[f"pay_{first}"]["foreigntotal"]) == _dollars(10 * UNIT)
    assert payments[f"pay_{first}"]["trandate"] == "2026-01-06"

    # 3. Amendment on Jan 16: 15 seats and a support add-on, with prorations.
    h.advance("P10D")
    at = JAN_1 + 15 * 86400
    upsell = h.opportunity(
        account,
        [(pro_entry, pro_usd.id, 15, UNIT), (support_entry, support_usd.id, 1, ADDON)],
        kind="Amendment",
        amends=sub_id,
    )
    h.patch("Opportunity", upsell, {"StageName": "Closed Won"})
    h.settle()
    assert h.record("Opportunity", upsell)["Synced_To_Billing__c"] is True
    sub = h.stripe.v1.subscriptions.retrieve(sub_id)
    quantities = {i.price.id: i.quantity for i in sub["items"].data}
    assert quantities == {pro_usd.id: 15, support_usd.id: 1}
    assert len(h.revrec_get("/v1/contracts", entity="US")["data"]) == 1  # not a new contract
    remaining = Decimal(FEB_1 - at) / (FEB_1 - JAN_1)  # 16 of January's 31 days
    credit = _half_up(10 * UNIT * remaining)
    debit = _half_up(15 * UNIT * remaining)
    addon_now = _half_up(ADDON * remaining)
    contract = h.revrec_get(f"/v1/contracts/{contract['id']}")
    by_item = {x["external_id"]: x for x in contract["lines"]}
    assert by_item[item_id]["quantity"] == 15
    # Paid in all: 12 months at 10 seats, less January's unused part, plus January's rest and
    # the 11 months after January at 15 seats.
    assert by_item[item_id]["amount_minor"] == 12 * 10 * UNIT - credit + debit + 11 * 5 * UNIT
    addon_item = next(i.id for i in sub["items"].data if i.price.id == support_usd.id)
    assert by_item[addon_item]["amount_minor"] == addon_now + 11 * ADDON
    [modification] = h.revrec_get(f"/v1/contracts/{contract['id']}/modifications")["data"]
    assert modification["effective_at"] == at and modification["treatment"] == "prospective"

    # 4. The renewal on Feb 1 bills the prorations with the new period.
    h.advance("P16DT2H")
    h.settle()
    renewal = h.stripe.v1.invoices.list(params={"customer": customer_id, "limit": 10}).data[0]
    assert renewal.id != first and renewal.status == "open"
    expected_renewal = -credit + debit + addon_now + 15 * UNIT + ADDON
    assert renewal.total == expected_renewal
    invoices = h.erp_documents("CustInvc")
    assert Decimal(invoices[renewal.id]["foreigntotal"]) == _dollars(expected_renewal)
    billed = {
        e["external_id"]: e["total_minor"]
        for e in h.revrec_get("/v1/billing_events", contract=contract["id"])["data"]
    }
    assert billed == {first: 10 * UNIT, renewal.id: expected_renewal}

    # 5. Billing ops credits 25.00 on the renewal: a credit memo applied to it, and a subledger
    # credit note split over the invoice's items by what each was billed.
    note = h.stripe.v1.credit_notes.create(params={"invoice": renewal.id, "amount": 2500})
    h.settle()
    memos = h.erp_documents("CustCred")
    assert Decimal(memos[note.id]["foreigntotal"]) == _dollars(2500)
    unpaid = h.suiteql(
        f"SELECT foreignamountunpaid FROM transaction WHERE externalid = '{renewal.id}'"
    )
    assert Decimal(unpaid[0]["foreignamountunpaid"]) == _dollars(expected_renewal - 2500)
    [credit_event] = [
        e
        for e in h.revrec_get("/v1/billing_events", contract=contract["id"])["data"]
        if e["external_id"] == note.id
    ]
    assert credit_event["type"] == "credit_note" and credit_event["total_minor"] == -2500

    # 6. A one-off invoice, finalised then voided: posted, then voided in the ERP.
    h.stripe.v1.invoice_items.create(
        params={"customer": customer_id, "amount": 777, "currency": "usd"}
    )
    one_off = h.stripe.v1.invoices.create(
        params={
            "customer": customer_id,
            "collection_method": "send_invoice",
            "days_until_due": 30,
            "pending_invoice_items_behavior": "include",
        }
    )
    h.stripe.v1.invoices.finalize_invoice(one_off.id)
    h.settle()
    h.stripe.v1.invoices.void_invoice(one_off.id)
    h.settle()
    invoices = h.erp_documents("CustInvc")
    assert Decimal(invoices[one_off.id]["foreigntotal"]) == _dollars(777)
    assert (
        invoices[one_off.id]["status"] == "Voided"
        or h.suiteql(f"SELECT voided FROM transaction WHERE externalid = '{one_off.id}'")[0][
            "voided"
        ]
        == "T"
    )

    # 7. Month end: the ERP closes January, then the subledger closes it. The journal is dated
    # January 31 but lands in February, the first open period.
    h.sim("erp", "POST", "/periods/US/2026-01", json={"state": "closed"})
    closed = h.revrec.post("/v1/periods/US/2026-01/close")
    assert closed.status_code in (200, 201), closed.text
    h.settle()
    journals = h.erp_documents("Journal")
    close_id = h.revrec_get("/v1/periods/US/2026-01")["close_id"]
    journal = journals[close_id]  # the close's own id
    assert journal["trandate"] == "2026-01-31" and journal["period"] == "US-2026-02"
    summary = h.revrec_get("/v1/periods/US/2026-01")["journal_summary"]["lines"]
    expected: dict[tuple[str, str], Decimal] = {}
    accounts = {"deferred_revenue": "2400", "unbilled_receivable": "1150", "revenue": "4000"}
    for row in summary:
        signed = Decimal(row["debit_minor"] - row["credit_minor"]) / 100
        key = (accounts[row["account_role"]], "USD")
        expected[key] = expected.get(key, Decimal(0)) + signed
    lines = h.suiteql(
        "SELECT a.externalid account, tl.foreignamount FROM transactionline tl"
        " JOIN transaction t ON t.id = tl.transaction"
        " JOIN transactionaccountingline tal"
        " ON tal.transaction = tl.transaction AND tal.transactionline = tl.id"
        " JOIN account a ON a.id = tal.account"
        f" WHERE t.externalid = '{close_id}'"
    )
    posted: dict[tuple[str, str], Decimal] = {}
    for row in lines:
        key = (row["account"], "USD")
        posted[key] = posted.get(key, Decimal(0)) + Decimal(row["foreignamount"])
    assert {k: v for k, v in posted.items() if v} == {k: v for k, v in expected.items() if v}
    assert sum(posted.values()) == 0
    assert posted[("4000", "USD")] < 0  # revenue recognised in January

    # Every push arrived twice; nothing was made twice (documents are keyed above).
    assert h.session.integration is not None
    output = h.session.integration.output()
    assert any("(duplicate)" in line for line in output), "no duplicate was delivered"
    assert len(h.stripe.v1.subscriptions.list(params={"customer": customer_id}).data) == 1
    assert len(h.erp_documents("CustPymt")) == 1


def test_sim_signatures_are_verified_and_forgeries_refused(tmp_path: Path) -> None:
    body = b'{"id": "evt_1", "type": "period.closed"}'
    now = int(time.time())
    good = hmac.new(b"whsec_x", f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    assert verify_sim_signature("whsec_x", f"t={now},v1={good}", body, now)
    assert not verify_sim_signature("whsec_y", f"t={now},v1={good}", body, now)
    assert not verify_sim_signature("whsec_x", f"t={now},v1={good}", body + b" ", now)
    assert not verify_sim_signature("whsec_x", f"t={now},v1={good}", body, now + 301)
    assert not verify_sim_signature("", f"t={now},v1={good}", body, now)
    assert not verify_sim_signature("whsec_x", "garbage", body, now)

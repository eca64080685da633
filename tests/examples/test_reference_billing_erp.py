"""The reference integration as a real process: Stripe invoices land once in NetSuite."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

from examples.reference_integration.retry import PermanentError, TransientError, with_retries
from examples.reference_integration.sync import json_number, to_amount, utc_date
from harness.config import HarnessConfig, IntegrationConfig, Probe, Receiver, SimulatorsConfig
from harness.session import Session, open_session

REPO = Path(__file__).resolve().parents[2]


def _config(inbox: Path) -> HarnessConfig:
    return HarnessConfig(
        simulators=SimulatorsConfig(systems=["billing", "erp"], tls=[], webhook_time_scale=1e-5),
        integration=IntegrationConfig(
            command=[sys.executable, "-m", "examples.reference_integration"],
            cwd=".",
            env={
                "PORT": "{port}",
                "STRIPE_API_BASE": "{billing.url}",
                "STRIPE_API_KEY": "{billing.api_key}",
                "STRIPE_WEBHOOK_SECRET": "{billing.webhook_secret}",
                "NETSUITE_URL": "{erp.url}",
                "NETSUITE_TOKEN": "{erp.token}",
                "INBOX_PATH": str(inbox),
            },
            ready=Probe(http="http://127.0.0.1:{port}/healthz", timeout_s=20),
            idle=Probe(http="http://127.0.0.1:{port}/idle"),
            webhooks={"billing": Receiver(url="http://127.0.0.1:{port}/webhooks/stripe")},
            stop_timeout_s=5,
        ),
    )


def _stripe(session: Session) -> stripe.StripeClient:
    billing = session.context["billing"]
    return stripe.StripeClient(billing["api_key"], base_addresses={"api": billing["url"]})


def _suiteql(session: Session, query: str) -> list[dict[str, Any]]:
    erp = session.context["erp"]
    response = httpx.post(
        f"{erp['url']}/services/rest/query/v1/suiteql",
        json={"q": query},
        headers={"Authorization": f"Bearer {erp['token']}", "Prefer": "transient"},
        trust_env=False,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _subscribe(client: stripe.StripeClient, name: str, unit_amount: int) -> str:
    """A paying customer on a monthly price; returns the first (paid) invoice id."""
    product = client.v1.products.create(params={"name": name})
    price = client.v1.prices.create(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount": unit_amount,
            "recurring": {"interval": "month"},
        }
    )
    customer = client.v1.customers.create(
        params={
            "name": f"{name} Corp",
            "email": f"{name.lower()}@example.com",
            "metadata": {"entity": "US"},  # the integration routes by entity, not by currency
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        }
    )
    sub = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id, "quantity": 2}]}
    )
    assert isinstance(sub.latest_invoice, str)
    return sub.latest_invoice


def _erp_invoices(session: Session) -> dict[str, Decimal]:
    rows = _suiteql(
        session, "SELECT externalid, foreigntotal FROM transaction WHERE type = 'CustInvc'"
    )
    totals: dict[str, Decimal] = {}
    for row in rows:
        assert row["externalid"] not in totals, f"duplicate ERP invoice {row['externalid']}"
        totals[row["externalid"]] = Decimal(row["foreigntotal"])
    return totals


def _settle(session: Session) -> None:
    result = session.settle(window_s=0.3, timeout_s=20)
    assert session.integration is not None
    log = "\n".join(session.integration.output()[-40:])
    assert result.settled, f"{result}\n{log}"
    assert " ERROR " not in log, log


def _count(session: Session, query: str) -> int:
    return len(_suiteql(session, query))


def test_invoices_and_payments_reach_the_erp_once(tmp_path: Path) -> None:
    with open_session(_config(tmp_path / "inbox.sqlite"), cwd=REPO) as session:
        client = _stripe(session)
        forged = httpx.post(
            f"http://127.0.0.1:{session.context['port']}/webhooks/stripe",
            content=b'{"id": "evt_forged", "type": "invoice.paid"}',
            headers={"Stripe-Signature": "t=1,v1=00"},
            trust_env=False,
        )
        assert forged.status_code == 400
        first = _subscribe(client, "Alpha", 1250)
        _settle(session)

        invoice = client.v1.invoices.retrieve(first)
        assert invoice.status == "paid"
        assert _erp_invoices(session) == {first: Decimal(invoice.total) / 100}
        assert _count(session, "SELECT id FROM customer") == 1
        payments = _suiteql(
            session, "SELECT externalid, foreigntotal FROM transaction WHERE type = 'CustPymt'"
        )
        assert [p["externalid"] for p in payments] == [f"pay_{first}"]
        unpaid = _suiteql(
            session,
            f"SELECT foreignamountunpaid FROM transaction WHERE externalid = '{first}'",
        )
        assert Decimal(unpaid[0]["foreignamountunpaid"]) == 0

        # Every invoice.* webhook now arrives three times; the ERP must not notice.
        billing = session.context["billing"]
        fault = httpx.post(
            f"{billing['url']}/_sim/faults",
            json={"kind": "duplicate", "operation": "invoice.*", "copies": 3},
            headers={"X-Sim-Control-Token": session.context["control_token"]},
            trust_env=False,
        )
        assert fault.is_success, fault.text
        second = _subscribe(client, "Beta", 4999)
        _settle(session)

        totals = {
            inv: Decimal(client.v1.invoices.retrieve(inv).total) / 100 for inv in (first, second)
        }
        assert _erp_invoices(session) == totals
        assert _count(session, "SELECT id FROM customer") == 2
        assert _count(session, "SELECT id FROM transaction WHERE type = 'CustPymt'") == 2
        assert session.integration is not None
        duplicates = [line for line in session.integration.output() if "(duplicate)" in line]
        assert duplicates, "the duplicate fault delivered no second copies"


def test_retries_back_off_and_honour_retry_after() -> None:
    waits: list[float] = []
    calls: Iterator[Exception | str] = iter(
        [TransientError("429", retry_after_s=3.0), TransientError("503"), "ok"]
    )

    def call() -> str:
        outcome = next(calls)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert with_retries(call, what="test", base_s=0.1, sleep=waits.append) == "ok"
    assert waits[0] == 3.0 and 0.05 <= waits[1] <= 0.2


def test_permanent_errors_are_not_retried_and_amounts_convert_once() -> None:
    waits: list[float] = []

    def call() -> None:
        raise PermanentError("400 INVALID_CONTENT")

    with pytest.raises(PermanentError):
        with_retries(call, what="test", sleep=waits.append)
    assert waits == []
    assert to_amount(123456, "usd") == Decimal("1234.56")
    assert to_amount(1000, "JPY") == Decimal("1000")
    assert to_amount(1005, "kwd") == Decimal("1.005")
    assert json_number(to_amount(1001, "usd")) == 10.01
    assert utc_date(1767225599, "finalized_at") == "2025-12-31"


def test_kill_minus_nine_mid_queue_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    with open_session(_config(tmp_path / "inbox.sqlite"), cwd=REPO) as session:
        client = _stripe(session)
        erp_url = session.context["erp"]["url"]
        control = {"X-Sim-Control-Token": session.context["control_token"]}
        # An ERP outage keeps every acknowledged event waiting in the inbox.
        outage = httpx.post(
            f"{erp_url}/_sim/faults",
            headers=control,
            trust_env=False,
            json={"system": "erp", "kind": "outage"},
        )
        assert outage.is_success, outage.text
        invoices = {_subscribe(client, f"Kill{n}", 1000 + n) for n in range(3)}
        world = session.stack.world
        assert world.dispatcher.wait_drained_threadsafe(10)  # all acknowledged by the inbox
        assert session.integration is not None
        assert session.integration.kill() == -9
        httpx.delete(f"{erp_url}/_sim/faults", headers=control, trust_env=False)
        assert (
            _count(session, "SELECT id FROM transaction WHERE type = 'CustInvc'") == 0
        )  # none yet
        session.integration.start()
        result = session.settle(window_s=0.3, timeout_s=60)
        assert result.settled, result
        totals = _erp_invoices(session)  # fails on any duplicate
        assert set(totals) == invoices
        assert _count(session, "SELECT id FROM transaction WHERE type = 'CustPymt'") == 3

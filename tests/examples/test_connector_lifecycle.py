"""The connector through subscription lifecycles: every ERP figure computed by hand here."""

from __future__ import annotations

import hashlib
import hmac
import time
from decimal import Decimal

import httpx

from tests.examples.test_connector_world import connector_world, major, round_half_up

JAN = 31 * 86400  # seconds in January: the proration denominator of a Jan 1 – Feb 1 period


def test_new_business_upgrade_with_prorations_and_payment() -> None:
    with connector_world() as w:
        price = w.price(10000)
        acme = w.customer("Acme Corp", "US")
        sub = w.subscribe(acme, price, 3)
        first = sub.latest_invoice
        w.settle()

        erp_customer = w.document("customer", f"STRIPE-{acme}")
        assert erp_customer["custentity_stripe_customer_id"] == acme
        assert erp_customer["subsidiary"]["refName"].startswith("Finsim Inc")
        doc = w.document("invoice", f"STRIPE-{first}")
        assert doc["custbody_stripe_invoice_id"] == first
        assert doc["tranId"] == w.invoice(first).number
        assert doc["tranDate"] == "2026-01-01" and w.period_of(doc) == "Jan 2026"
        assert w.lines(doc) == [("SUBSCRIPTION", Decimal("300.00"))]  # 3 × 100.00
        assert doc["entity"]["id"] == erp_customer["id"]

        # Jan 11, 21 of 31 days left: 3 → 5 seats, invoiced at once.
        w.advance("P10D")
        w.change_seats(sub, 5, "always_invoice")
        w.advance("P7D")  # paid a week later
        w.pay(first)
        w.settle()

        left = 21 * 86400
        credit = -round_half_up(Decimal(3 * 10000 * left) / JAN)
        charge = round_half_up(Decimal(5 * 10000 * left) / JAN)
        assert (credit, charge) == (-20323, 33871)  # the published example (scenario 02)
        proration = [inv for inv in w.invoices(acme) if inv.id != first]
        assert len(proration) == 1
        upgrade = w.document("invoice", f"STRIPE-{proration[0].id}")
        # The credit is netted into the line it offsets: one line, no negative amount.
        assert w.lines(upgrade) == [("SUBSCRIPTION", major(credit + charge))]
        assert upgrade["tranDate"] == "2026-01-11"

        payment = w.document("customerPayment", f"PMT-{first}")
        assert Decimal(str(payment["payment"])) == Decimal("300.00")
        assert payment["tranDate"] == "2026-01-18"  # paid_at, not the finalisation
        assert w.applied(payment) == {doc["id"]: Decimal("300.00")}
        assert w.document("invoice", f"STRIPE-{first}")["amountRemaining"] == 0
        assert w.count("type = 'CustInvc'") == 2 and w.count("type = 'CustPymt'") == 1
        assert w.violations() == []


def test_create_prorations_ride_on_the_renewal_as_one_line() -> None:
    with connector_world("2026-01-15T00:00:00Z") as w:
        price = w.price(10000)
        acme = w.customer("Acme Corp", "US")
        sub = w.subscribe(acme, price, 3)
        w.advance("P10D")  # Jan 25: 21 of the 31 days to Feb 15 left
        w.change_seats(sub, 5, "create_prorations")
        w.advance("P21DT2H")  # past Feb 15: the renewal draft finalises an hour after it is made
        w.settle()

        invoices = w.invoices(acme)
        assert len(invoices) == 2
        left, period = 21 * 86400, 31 * 86400
        net = round_half_up(Decimal(5 * 10000 * left) / period) - round_half_up(
            Decimal(3 * 10000 * left) / period
        )
        renewal = w.document("invoice", f"STRIPE-{invoices[1].id}")
        assert w.lines(renewal) == [("SUBSCRIPTION", major(5 * 10000 + net))]  # 635.48
        assert major(5 * 10000 + net) == Decimal("635.48")
        assert renewal["tranDate"] == "2026-02-15" and w.period_of(renewal) == "Feb 2026"
        assert w.violations() == []


def test_a_uk_customer_books_in_pounds_and_a_us_dollar_customer_of_uk_at_the_dated_rate() -> None:
    with connector_world() as w:
        gbp = w.price(8000, "gbp")
        usd = w.price(100000, "usd", "year")
        tyrell = w.customer("Tyrell Ltd", "UK")
        oscorp = w.customer("Oscorp (US) Inc.", "uk")  # routed by entity, not by currency
        t_inv = w.subscribe(tyrell, gbp, 3).latest_invoice
        o_inv = w.subscribe(oscorp, usd, 1).latest_invoice
        w.settle()

        uk = w.suiteql("SELECT id FROM subsidiary WHERE externalid = 'UK'")[0]["id"]
        for customer, currency in ((tyrell, "GBP"), (oscorp, "USD")):
            record = w.document("customer", f"STRIPE-{customer}")
            assert record["subsidiary"]["id"] == uk
            assert w.currency_of(record) == currency
        pounds = w.document("invoice", f"STRIPE-{t_inv}")
        assert pounds["subsidiary"]["id"] == uk and w.currency_of(pounds) == "GBP"
        assert Decimal(str(pounds["total"])) == Decimal("240.00") and pounds["exchangeRate"] == 1
        dollars = w.document("invoice", f"STRIPE-{o_inv}")
        assert dollars["subsidiary"]["id"] == uk and w.currency_of(dollars) == "USD"
        rate = w.suiteql(
            "SELECT r.exchangerate FROM currencyrate r JOIN currency b ON b.id = r.basecurrency "
            "JOIN currency t ON t.id = r.transactioncurrency WHERE b.symbol = 'GBP' "
            "AND t.symbol = 'USD' AND r.effectivedate <= '2026-01-01' ORDER BY r.effectivedate"
        )[-1]["exchangerate"]
        assert Decimal(str(dollars["exchangeRate"])) == Decimal(rate)  # the ERP's own dated rate
        assert w.violations() == []


def test_signatures_are_verified_and_bodies_bounded() -> None:
    with connector_world() as w:
        url = f"http://127.0.0.1:{w.ctx['port']}/stripe/webhook"
        forged = httpx.post(
            url,
            content=b'{"id": "evt_forged", "type": "invoice.paid", "data": {"object": {}}}',
            headers={"Stripe-Signature": "t=1,v1=00"},
            trust_env=False,
        )
        assert forged.status_code == 400
        assert forged.json()["error"]["message"] == "signature verification failed"
        unsigned = httpx.post(url, content=b"{}", trust_env=False)
        assert unsigned.status_code == 400
        huge = httpx.post(url, content=b"x" * (2 << 20), trust_env=False)
        assert huge.status_code == 413
        # Signed, yet not what a Stripe event looks like: refused or ignored, never a 500.
        secret = w.ctx["billing"]["webhook_secret"]
        odd = {
            b"[]": 400,
            b"null": 400,
            b"not json": 400,
            b'{"id": 5}': 400,
            b'{"id": "evt_odd1", "type": "invoice.paid", "data": {"object": "nope"}}': 200,
            b'{"id": "evt_odd2", "type": "invoice.paid", "data": [1], "created": "x"}': 200,
            b'{"id": "evt_odd3", "type": "invoice.voided", "data": {"object": {"id": 7}}}': 200,
        }
        for body, status in odd.items():
            stamp = int(time.time())
            mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
            answer = httpx.post(
                url,
                content=body,
                headers={"Stripe-Signature": f"t={stamp},v1={mac.hexdigest()}"},
                trust_env=False,
            )
            assert answer.status_code == status, (body, answer.text)
            if status == 200:
                assert answer.json()["outcome"] == "ignored"
        idle = httpx.get(f"http://127.0.0.1:{w.ctx['port']}/idle", trust_env=False)
        assert idle.status_code == 200
        assert idle.json() == {"open_jobs": 0, "catching_up": False}

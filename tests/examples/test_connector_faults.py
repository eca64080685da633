"""The connector under delivery faults: duplicated, reordered, lost replies, throttling, outages
and kill -9 — every ERP document exactly once, with the amounts Stripe has."""

from __future__ import annotations

import time
from decimal import Decimal

from tests.examples.test_connector_world import ConnectorWorld, connector_world, major


def _erp_invoice_totals(w: ConnectorWorld) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for row in w.suiteql(
        "SELECT custbody_stripe_invoice_id, foreigntotal FROM transaction WHERE type = 'CustInvc'"
    ):
        source = row["custbody_stripe_invoice_id"]
        assert source not in totals, f"two ERP invoices for {source}"
        totals[source] = Decimal(row["foreigntotal"])
    return totals


def test_duplicated_and_reordered_webhooks_post_everything_once() -> None:
    with connector_world() as w:
        w.fault({"system": "billing", "kind": "duplicate", "copies": 3})
        w.fault({"system": "billing", "kind": "reorder", "probability": 0.5})
        price = w.price(10000)
        customers = [w.customer(f"Noisy {n}", "US", card=True) for n in range(3)]
        for n, customer in enumerate(customers):
            w.subscribe(customer, price, n + 1, invoiced=False)  # charged at once
        w.advance("P1MT2H")  # renewals, charged too
        w.settle()

        expected = {
            inv.id: major(inv.total) for c in customers for inv in w.invoices(c)
        }  # fmt: skip
        assert len(expected) == 6
        assert _erp_invoice_totals(w) == expected
        payments = w.suiteql(
            "SELECT externalid, foreigntotal FROM transaction WHERE type = 'CustPymt'"
        )
        assert {p["externalid"]: Decimal(p["foreigntotal"]) for p in payments} == {
            f"PMT-{inv}": total for inv, total in expected.items()
        }
        assert w.count("type = 'CustInvc' AND foreignamountunpaid <> 0") == 0
        assert len(w.suiteql("SELECT id FROM customer")) == 3
        assert ": duplicate" in w.log(), "the fault delivered no second copies"
        assert w.violations() == []


def test_a_lost_reply_is_not_posted_twice() -> None:
    with connector_world() as w:
        for operation in ("createInvoice", "createCustomerPayment", "createCustomer"):
            w.fault(
                {"system": "erp", "operation": operation, "kind": "ambiguous_commit", "max_hits": 1}
            )
        acme = w.customer("Acme Corp", "US", card=True)
        invoice = w.subscribe(acme, w.price(10000), 3, invoiced=False).latest_invoice
        w.settle()
        hits = w.sim("GET", "/faults")["hits"]
        assert len(hits) == 3, hits  # every write's reply was lost once
        assert _erp_invoice_totals(w) == {invoice: Decimal("300.00")}
        assert w.count("type = 'CustPymt'") == 1
        assert len(w.suiteql("SELECT id FROM customer")) == 1
        assert w.violations() == []


def test_throttling_and_an_outage_are_waited_out_as_retry_after_says() -> None:
    with connector_world() as w:
        w.fault({"system": "erp", "kind": "throttle", "retry_after_s": 1, "max_hits": 3})
        w.fault({"system": "billing", "kind": "throttle", "retry_after_s": 1, "max_hits": 2})
        price = w.price(10000)
        customers = [w.customer(f"Busy {n}", "US") for n in range(4)]
        invoices = {w.subscribe(c, price, 2).latest_invoice for c in customers}
        w.settle()
        w.fault({"system": "erp", "kind": "outage", "retry_after_s": 2, "max_hits": 2})
        w.advance("P1MT2H")
        w.settle()
        hits = w.sim("GET", "/faults")["hits"]  # one fault plan for the world
        assert len(hits) == 3 + 2 + 2, hits
        renewals = {inv.id for c in customers for inv in w.invoices(c)} - invoices
        assert set(_erp_invoice_totals(w)) == invoices | renewals and len(renewals) == 4
        assert w.violations() == []  # INV-30 among them: nothing sent before Retry-After


def test_kill_minus_nine_mid_queue_loses_and_duplicates_nothing() -> None:
    with connector_world() as w:
        # Every job waits in the queue; the restarted process still owes the ERP some of the 6 s.
        w.fault({"system": "erp", "kind": "outage", "retry_after_s": 6})
        price = w.price(10000)
        customers = [w.customer(f"Kill {n}", "US", card=True) for n in range(3)]
        invoices = {w.subscribe(c, price, 1, invoiced=False).latest_invoice for c in customers}
        assert w.session.stack.world.dispatcher.wait_drained_threadsafe(10)  # all acknowledged
        assert w.connector.kill() == -9
        w.clear_faults()
        assert w.count("type = 'CustInvc'") == 0
        w.connector.start()
        w.settle()
        assert _erp_invoice_totals(w) == dict.fromkeys(invoices, Decimal("100.00"))
        assert w.count("type = 'CustPymt'") == 3
        assert w.violations() == []


def test_events_whose_deliveries_gave_up_while_it_was_down_are_caught_up_on_start() -> None:
    with connector_world() as w:
        price = w.price(10000)
        first = w.subscribe(w.customer("Early", "US"), price, 1).latest_invoice
        w.settle()  # the watermark: the latest event it has received
        w.connector.stop()
        late = w.subscribe(w.customer("Late", "US"), price, 2).latest_invoice
        deadline = time.monotonic() + 30
        while w.sim("GET", "/webhooks/deliveries?status=pending", system="billing")["pending"]:
            assert time.monotonic() < deadline, "the deliveries never gave up"
            time.sleep(0.2)
        gave_up = w.sim("GET", "/webhooks/deliveries?status=gave_up", system="billing")["data"]
        assert gave_up, "nothing was left undelivered"
        w.connector.start()
        w.settle()
        assert _erp_invoice_totals(w) == {first: Decimal("100.00"), late: Decimal("200.00")}
        assert "caught up on" in w.log()
        assert w.violations() == []

"""Credit through the connector: credit notes before and after payment, cancellation credit,
the customer's credit balance, voids and a period closed under a late credit note."""

from __future__ import annotations

from decimal import Decimal

from tests.examples.test_connector_world import connector_world, major, round_half_up


def test_credit_notes_before_and_after_payment_and_a_balance_drawn_later() -> None:
    with connector_world() as w:
        wayne = w.customer("Wayne Enterprises", "US")
        first = w.subscribe(wayne, w.price(10000), 4).latest_invoice  # 400.00, Jan 1
        before = w.stripe.v1.credit_notes.create(params={"invoice": first, "amount": 5000})
        w.pay(first)  # 350.00 left to pay
        w.advance("P1MT2H")  # Feb 1 renewal, finalised an hour after it is made
        second = w.invoices(wayne)[1].id
        w.pay(second)
        after = w.stripe.v1.credit_notes.create(
            params={"invoice": second, "amount": 8000, "credit_amount": 8000}
        )
        w.advance("P1M")  # Mar 1 renewal draws the 80.00 of credit balance
        third = w.invoices(wayne)[2]
        w.settle()

        assert (third.total, third.amount_remaining) == (40000, 40000 - 8000)
        inv1, inv2, inv3 = (w.document("invoice", f"STRIPE-{i}") for i in (first, second, third.id))
        memo1 = w.document("creditMemo", f"STRIPE-{before.id}")
        assert memo1["custbody_stripe_credit_note_id"] == before.id
        assert memo1["createdFrom"]["id"] == inv1["id"] and memo1["tranDate"] == "2026-01-01"
        assert w.lines(memo1) == [("SUBSCRIPTION", Decimal("50.00"))]
        assert w.applied(memo1) == {inv1["id"]: Decimal("50.00")}  # all of it pre-payment
        pay1 = w.document("customerPayment", f"PMT-{first}")
        assert Decimal(str(pay1["payment"])) == Decimal("350.00")  # amount_paid, not the total
        assert inv1["amountRemaining"] == 0

        memo2 = w.document("creditMemo", f"STRIPE-{after.id}")
        assert memo2["createdFrom"]["id"] == inv2["id"] and memo2["tranDate"] == "2026-02-01"
        # Post-payment: nothing settles the paid invoice; the credit went to March's.
        assert w.applied(memo2) == {inv3["id"]: Decimal("80.00")}
        assert Decimal(str(inv3["amountRemaining"])) == major(third.amount_remaining)

        w.pay(third.id)
        w.settle()
        pay3 = w.document("customerPayment", f"PMT-{third.id}")
        assert Decimal(str(pay3["payment"])) == Decimal("320.00")
        assert w.document("invoice", f"STRIPE-{third.id}")["amountRemaining"] == 0
        assert w.count("type = 'CustCred'") == 2 and w.count("type = 'CustPymt'") == 3
        assert w.violations() == []


def test_cancellation_credit_is_an_unapplied_memo_that_a_later_invoice_draws_on() -> None:
    with connector_world() as w:
        price = w.price(10000)
        umbrella = w.customer("Umbrella Co", "US")
        sub = w.subscribe(umbrella, price, 2)
        w.pay(sub.latest_invoice)
        w.advance("P10D")  # Jan 11: 21 of 31 days unused
        w.stripe.v1.subscriptions.cancel(sub.id, params={"prorate": True, "invoice_now": True})
        w.settle()

        credit = round_half_up(Decimal(2 * 10000 * 21) / 31)
        negative = w.invoices(umbrella)[1]
        assert negative.total == -credit == -13548
        memo = w.document("creditMemo", f"STRIPE-{negative.id}")
        assert Decimal(str(memo["total"])) == major(credit) and memo["tranDate"] == "2026-01-11"
        assert w.lines(memo) == [("SUBSCRIPTION", major(credit))]
        assert Decimal(str(memo["unapplied"])) == major(credit) and "createdFrom" not in memo

        w.advance("P9D")  # Jan 20: back for one seat, paid entirely from the credit
        again = w.subscribe(umbrella, price, 1).latest_invoice
        w.settle()
        invoice = w.invoice(again)
        assert (invoice.status, invoice.amount_paid, invoice.amount_remaining) == ("paid", 0, 0)
        doc = w.document("invoice", f"STRIPE-{again}")
        assert doc["amountRemaining"] == 0
        memo = w.document("creditMemo", f"STRIPE-{negative.id}")
        assert w.applied(memo) == {doc["id"]: Decimal("100.00")}
        assert Decimal(str(memo["unapplied"])) == major(credit - 10000)
        assert w.record("customerPayment", f"eid:PMT-{again}") is None  # no money moved
        assert w.violations() == []


def test_voided_credit_note_and_voided_one_off_invoice() -> None:
    with connector_world() as w:
        initech = w.customer("Initech", "US")
        w.stripe.v1.invoice_items.create(
            params={
                "customer": initech,
                "amount": 25000,
                "currency": "usd",
                "description": "Onboarding",
            }
        )
        draft = w.stripe.v1.invoices.create(
            params={
                "customer": initech,
                "collection_method": "send_invoice",
                "days_until_due": 30,
                "pending_invoice_items_behavior": "include",
            }
        )
        w.stripe.v1.invoices.finalize_invoice(draft.id)
        note = w.stripe.v1.credit_notes.create(params={"invoice": draft.id, "amount": 5000})
        w.settle()
        doc = w.document("invoice", f"STRIPE-{draft.id}")
        assert w.lines(doc) == [("SERVICES", Decimal("250.00"))]  # a one-off charge
        assert Decimal(str(doc["amountRemaining"])) == Decimal("200.00")
        memo = w.document("creditMemo", f"STRIPE-{note.id}")
        assert w.lines(memo) == [("SERVICES", Decimal("50.00"))]

        w.stripe.v1.credit_notes.void_credit_note(note.id)
        w.settle()
        assert w.document("creditMemo", f"STRIPE-{note.id}")["status"] == "Voided"
        assert Decimal(str(w.document("invoice", f"STRIPE-{draft.id}")["amountRemaining"])) == (
            Decimal("250.00")
        )
        w.stripe.v1.invoices.void_invoice(draft.id)
        w.settle()
        assert w.document("invoice", f"STRIPE-{draft.id}")["status"] == "Voided"
        assert w.count("type = 'CustInvc'") == 1 and w.count("type = 'CustCred'") == 1
        assert w.violations() == []


def test_a_credit_note_of_a_closed_month_lands_in_the_first_open_period() -> None:
    with connector_world() as w:
        acme = w.customer("Acme Corp", "US")
        invoice = w.subscribe(acme, w.price(10000), 5).latest_invoice
        w.settle()
        w.advance("P30D")  # Jan 31
        w.connector.stop()
        note = w.stripe.v1.credit_notes.create(params={"invoice": invoice, "amount": 10000})
        w.advance("PT12H")
        w.close_period("US", "2026-01")
        w.connector.start()
        w.settle()

        memo = w.document("creditMemo", f"STRIPE-{note.id}")
        assert memo["tranDate"] == "2026-01-31"  # dated by the credit note ...
        assert w.period_of(memo) == "Feb 2026"  # ... posted in the first open period
        doc = w.document("invoice", f"STRIPE-{invoice}")
        assert w.period_of(doc) == "Jan 2026"  # the invoice itself was never re-posted
        assert Decimal(str(doc["amountRemaining"])) == Decimal("400.00")
        assert w.invoice(invoice).amount_remaining == 40000
        assert w.violations() == []

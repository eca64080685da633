"""Each mutant of the connector (mutants.toml) really changes the ERP books, the way its bug
says: the same small lifecycles the other test modules hold the correct connector to."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from harness.invariants import REGISTRY
from harness.mutants import load_mutants, materialize, subject
from tests.examples.test_connector_exceptions import inactive_at_renewal, paid_while_ar_locked
from tests.examples.test_connector_world import (
    PACKAGE,
    REPO,
    ConnectorWorld,
    connector_world,
    major,
)

CONNECTOR = subject(PACKAGE / "harness.toml")
MUTANTS = {m.name: m for m in load_mutants(CONNECTOR.mutants_file)}
JAN_1, JAN_15 = "2026-01-01T00:00:00Z", "2026-01-15T00:00:00Z"
Check = Callable[[ConnectorWorld], None]
CHECKS: dict[str, tuple[str, Check]] = {}  # mutant → (sim start, lifecycle and book checks)


def check(name: str, start_at: str = JAN_1) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        CHECKS[name] = (start_at, fn)
        return fn

    return register


def _invoice_on_jan_15(w: ConnectorWorld) -> str:
    """A 3-seat subscription finalised on Jan 15 at 00:00 UTC."""
    invoice: str = w.subscribe(w.customer("Acme Corp", "US"), w.price(10000), 3).latest_invoice
    w.settle()
    return invoice


@check("dates_in_pacific_time", JAN_15)
def _pacific(w: ConnectorWorld) -> None:
    doc = w.document("invoice", f"STRIPE-{_invoice_on_jan_15(w)}")
    finalised = datetime(2026, 1, 15, tzinfo=UTC)
    assert (
        doc["tranDate"] == finalised.astimezone(ZoneInfo("America/Los_Angeles")).date().isoformat()
    )
    assert doc["tranDate"] == "2026-01-14"  # its UTC day is the 15th


@check("next_period_off_by_one", JAN_15)
def _next_period(w: ConnectorWorld) -> None:
    doc = w.document("invoice", f"STRIPE-{_invoice_on_jan_15(w)}")
    assert doc["tranDate"] == "2026-01-15" and w.period_of(doc) == "Feb 2026"


@check("payment_dated_by_finalisation", JAN_15)
def _payment_date(w: ConnectorWorld) -> None:
    invoice = _invoice_on_jan_15(w)
    w.advance("P7D")
    w.pay(invoice)
    w.settle()
    assert w.document("customerPayment", f"PMT-{invoice}")["tranDate"] == "2026-01-15"


@check("posts_into_closed_period")
def _closed_period(w: ConnectorWorld) -> None:
    invoice = w.subscribe(w.customer("Acme Corp", "US"), w.price(10000), 5).latest_invoice
    w.settle()
    w.advance("P30D")
    w.connector.stop()
    note = w.stripe.v1.credit_notes.create(params={"invoice": invoice, "amount": 10000})
    w.advance("PT12H")
    w.close_period("US", "2026-01")
    w.connector.start()
    w.settle(errors_allowed=True)
    assert w.record("creditMemo", f"eid:STRIPE-{note.id}") is None
    assert "Jan 2026 is closed" in w.log()
    doc = w.document("invoice", f"STRIPE-{invoice}")
    assert Decimal(str(doc["amountRemaining"])) == Decimal("500.00")  # Stripe: 400.00


@check("drops_prorations", JAN_15)
def _prorations(w: ConnectorWorld) -> None:
    acme = w.customer("Acme Corp", "US")
    sub = w.subscribe(acme, w.price(10000), 3)
    w.advance("P10D")
    w.change_seats(sub, 5, "create_prorations")
    w.advance("P21DT2H")
    w.settle()
    renewal = w.invoices(acme)[1]
    assert renewal.total == 63548
    assert Decimal(str(w.document("invoice", f"STRIPE-{renewal.id}")["total"])) == Decimal(
        "500.00"
    )  # 5 seats, the proration credit and debit left off


@check("payment_is_the_invoice_total")
def _gross_payment(w: ConnectorWorld) -> None:
    invoice = w.subscribe(w.customer("Wayne", "US"), w.price(10000), 4).latest_invoice
    w.stripe.v1.credit_notes.create(params={"invoice": invoice, "amount": 5000})
    w.settle()
    w.pay(invoice)
    w.settle(errors_allowed=True)
    # 400.00 cannot be applied where 350.00 is open: the payment is refused, set aside.
    assert w.record("customerPayment", f"eid:PMT-{invoice}") is None
    assert " ERROR " in w.log()
    doc = w.document("invoice", f"STRIPE-{invoice}")
    assert Decimal(str(doc["amountRemaining"])) == Decimal("350.00")
    assert w.invoice(invoice).amount_remaining == 0


@check("posts_invoice_without_lookup")
def _no_lookup(w: ConnectorWorld) -> None:
    invoice = w.subscribe(w.customer("Acme Corp", "US"), w.price(10000), 3).latest_invoice
    w.settle()
    w.pay(invoice)  # invoice.paid: the same invoice is reconciled a second time
    w.settle(errors_allowed=True)
    copies = w.suiteql(
        "SELECT id FROM transaction WHERE type = 'CustInvc' "
        f"AND custbody_stripe_invoice_id = '{invoice}'"
    )
    assert len(copies) >= 2  # one per reconcile: invoice.paid may come with payment_succeeded


@check("routes_by_currency")
def _currency_routing(w: ConnectorWorld) -> None:
    oscorp = w.customer("Oscorp (US) Inc.", "UK")
    w.subscribe(oscorp, w.price(100000, "usd", "year"), 1)
    w.settle()
    us = w.suiteql("SELECT id FROM subsidiary WHERE externalid = 'US'")[0]["id"]
    assert w.document("customer", f"STRIPE-{oscorp}")["subsidiary"]["id"] == us


@check("ignores_retry_after")
def _retry_after(w: ConnectorWorld) -> None:
    w.fault({"system": "erp", "kind": "outage", "retry_after_s": 2, "max_hits": 2})
    invoice = w.subscribe(w.customer("Acme Corp", "US"), w.price(10000), 1).latest_invoice
    w.settle()
    assert w.count(f"custbody_stripe_invoice_id = '{invoice}'") == 1
    early = [v for v in w.violations(["INV-30"]) if "came" in v and "early" in v]
    assert early, "the second request waited for Retry-After"


@check("ignores_credit_balance")
def _credit_balance(w: ConnectorWorld) -> None:
    price = w.price(10000)
    umbrella = w.customer("Umbrella Co", "US")
    sub = w.subscribe(umbrella, price, 2)
    w.pay(sub.latest_invoice)
    w.advance("P10D")
    w.stripe.v1.subscriptions.cancel(sub.id, params={"prorate": True, "invoice_now": True})
    w.advance("P9D")
    again = w.subscribe(umbrella, price, 1).latest_invoice
    w.settle()
    assert w.invoice(again).amount_remaining == 0
    doc = w.document("invoice", f"STRIPE-{again}")
    assert Decimal(str(doc["amountRemaining"])) == major(10000)  # still open in the ERP


@check("applies_whole_credit_note")
def _whole_note(w: ConnectorWorld) -> None:
    invoice = w.subscribe(w.customer("Wayne", "US"), w.price(10000), 4).latest_invoice
    w.pay(invoice)
    note = w.stripe.v1.credit_notes.create(
        params={"invoice": invoice, "amount": 8000, "credit_amount": 8000}
    )
    w.settle(errors_allowed=True)
    # 80.00 applied to a paid invoice: refused, so the credit memo is never posted.
    assert w.record("creditMemo", f"eid:STRIPE-{note.id}") is None
    assert " ERROR " in w.log()


@check("drops_negative_invoices")
def _negative(w: ConnectorWorld) -> None:
    umbrella = w.customer("Umbrella Co", "US")
    sub = w.subscribe(umbrella, w.price(10000), 2)
    w.advance("P10D")
    w.stripe.v1.subscriptions.cancel(sub.id, params={"prorate": True, "invoice_now": True})
    w.settle()
    negative = w.invoices(umbrella)[1]
    assert negative.total == -13548
    assert w.record("creditMemo", f"eid:STRIPE-{negative.id}") is None
    assert w.count("type = 'CustCred'") == 0


@check("swallows_refusal", JAN_15)
def _swallowed(w: ConnectorWorld) -> None:
    _, renewal = inactive_at_renewal(w)
    assert w.record("invoice", f"eid:STRIPE-{renewal}") is None
    assert w.set_aside().items == ()  # refused, and on no list


@check("replay_leaves_items_open", JAN_15)
def _left_open(w: ConnectorWorld) -> None:
    customer, renewal = inactive_at_renewal(w)
    w.set_inactive(customer, False)
    w.replay()
    w.document("invoice", f"STRIPE-{renewal}")  # posted by the replay …
    assert [i.status for i in w.set_aside().items] == ["open"]  # … and still listed open


@check("posts_past_an_ar_lock", JAN_15)
def _past_the_lock(w: ConnectorWorld) -> None:
    invoice = paid_while_ar_locked(w)
    payment = w.document("customerPayment", f"PMT-{invoice}")
    assert payment["tranDate"] == "2026-01-22" and w.period_of(payment) == "Feb 2026"


def test_every_mutant_is_declared_completely_and_checked_here() -> None:
    assert len(MUTANTS) >= 8
    assert set(MUTANTS) == set(CHECKS)
    assert CONNECTOR.mutants_file == PACKAGE / "mutants.toml"
    for name, mutant in MUTANTS.items():
        assert mutant.bug and (REPO / "scenarios" / mutant.scenario).is_file(), name
        assert mutant.caught_by in REGISTRY, (name, mutant.caught_by)
        for edit in mutant.edits:
            text = (PACKAGE / edit.file).read_text(encoding="utf-8")
            assert text.count(edit.find) == 1, (name, edit.find)
            assert edit.replace != edit.find


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_the_mutant_changes_the_books_as_its_bug_says(name: str, tmp_path: Path) -> None:
    """The lifecycle's books show the bug, and the mutant's named rule fires on them (the
    correct connector, on the same lifecycles elsewhere, leaves no violation at all)."""
    start_at, lifecycle = CHECKS[name]
    root = materialize(MUTANTS[name], tmp_path, CONNECTOR)
    with connector_world(start_at, root=root) as w:
        lifecycle(w)
        fired = {violation.split(":")[0] for violation in w.violations()}
    assert MUTANTS[name].caught_by in fired, fired

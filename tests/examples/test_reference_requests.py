"""What the reference leaves unasked: a renewal's subscription update, and master data it wrote
already — and what it still asks when something did change."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import stripe

from examples.reference_integration.sync import Syncer, only_the_cycle_moved
from harness.config import load_config
from harness.judging import Judge
from harness.play import Run, play_step
from harness.results import ScenarioResult
from harness.runner import Tally, begin
from harness.scenario import load_scenario
from harness.session import open_session
from tests.examples.vendor import recording_erp

REPO = Path(__file__).resolve().parents[2]


def _item(item_id: str, quantity: int, start: int, price: str = "price_pro") -> dict[str, Any]:
    return {
        "id": item_id,
        "object": "subscription_item",
        "price": {"id": price, "unit_amount": 10000},
        "quantity": quantity,
        "current_period_start": start,
        "current_period_end": start + 2_678_400,
    }


def _sub(*items: dict[str, Any], status: str = "active", **more: Any) -> dict[str, Any]:
    return {
        "id": "sub_1",
        "status": status,
        "items": {"object": "list", "data": list(items), "has_more": False},
        **more,
    }


FEB = 1_769_904_000
MAR = 1_772_323_200
NOW = _sub(_item("si_1", 2, MAR))


@pytest.mark.parametrize(
    ("previous", "now", "cycle_only"),
    [
        # A renewal as the simulator (and Stripe's newer API) says it: the items' periods moved.
        ({"items": _sub(_item("si_1", 2, FEB))["items"]}, NOW, True),
        # Older API versions: the periods on the subscription, and its latest invoice.
        ({"current_period_start": FEB, "latest_invoice": "in_1"}, NOW, True),
        # The first payment: incomplete → active.
        ({"status": "incomplete"}, NOW, True),
        ({"status": "past_due"}, NOW, True),
        # Anything the contract follows.
        ({"items": _sub(_item("si_1", 1, FEB))["items"]}, NOW, False),  # quantity
        ({"items": _sub(_item("si_1", 2, FEB, "price_old"))["items"]}, NOW, False),  # price
        ({"items": _sub(_item("si_1", 2, MAR), _item("si_2", 1, MAR))["items"]}, NOW, False),
        ({"status": "active"}, _sub(_item("si_1", 2, MAR), status="canceled"), False),
        ({"cancel_at": None}, NOW, False),
        ({"cancel_at_period_end": False}, NOW, False),
        ({"discounts": []}, NOW, False),
        ({"metadata": {}}, NOW, False),
        # Nothing said, or not all of it: mirror.
        (None, NOW, False),
        ({}, NOW, False),
        ({"items": {**_sub(_item("si_1", 2, FEB))["items"], "has_more": True}}, NOW, False),
    ],
)
def test_only_a_cycle_or_payment_change_is_left_unmirrored(
    previous: dict[str, Any] | None, now: dict[str, Any], cycle_only: bool
) -> None:
    assert only_the_cycle_moved(previous, now) is cycle_only


def _syncer(calls: list[str], written: dict[str, tuple[str, str]] | None) -> Syncer:
    client = stripe.StripeClient("sk_test_unused", base_addresses={"api": "http://127.0.0.1:9"})
    return Syncer(client, recording_erp(calls), customers_upserted=written)


CUSTOMER = {"id": "cus_1", "name": "Acme", "email": "ap@acme.test", "metadata": {"entity": "us"}}


def test_an_erp_customer_is_written_again_only_when_it_changed() -> None:
    calls: list[str] = []
    written: dict[str, tuple[str, str]] = {}
    first = _syncer(calls, written)
    assert first.sync_customer(CUSTOMER, "usd") == "7"
    assert first.sync_customer(CUSTOMER, "usd") == "7"  # the renewal after: nothing to write
    # Another worker of the process shares what was written.
    assert _syncer(calls, written).sync_customer(copy.deepcopy(CUSTOMER), "usd") == "7"
    assert calls == ["PUT /services/rest/record/v1/customer/eid:cus_1"]
    renamed = {**CUSTOMER, "name": "Acme Holdings"}
    first.sync_customer(renamed, "usd")
    first.sync_customer(CUSTOMER, "eur")  # another currency: another body
    # A new process (nothing written yet) writes it again.
    _syncer(calls, None).sync_customer(CUSTOMER, "eur")
    assert calls == ["PUT /services/rest/record/v1/customer/eid:cus_1"] * 4


SUBSCRIBED_IN_BILLING = """
name: a subscription made in billing, renewed once
start_at: 2026-01-15T00:00:00Z
seed: 7
fixtures:
  entities: [{key: us, name: Finsim Inc., currency: usd}]
  products: [{key: pro, name: Pro plan, ssp_minor: 10000}]
  prices: [{key: pro_monthly, product: pro, currency: usd, unit_amount: 10000}]
  customers: [{key: acme, name: Acme Corp, entity: us, currency: usd}]
steps:
  - billing.create_subscription:
      key: acme_sub
      customer: acme
      lines: [{price: pro_monthly, quantity: 2}]
  - billing.pay: {customer: acme}
  - clock.advance: P1M
"""


def test_a_customer_expanded_on_the_invoice_is_not_read_again(tmp_path: Path) -> None:
    """The subscription's own event reads its customer (to route its contract); each invoice
    event has it expanded on the invoice and reads it no more."""
    source = tmp_path / "scenario.yaml"
    source.write_text(SUBSCRIBED_IN_BILLING)
    scenario = load_scenario(source)
    config = load_config(REPO / "harness.toml")
    with open_session(config, cwd=REPO, seed=scenario.seed, start_at=scenario.start_at) as session:
        run = Run(scenario, session, config, Judge.from_config(config, base=str(REPO)))
        tally = Tally()
        assert begin(run, ScenarioResult(scenario.name, "", scenario.seed, ""), tally)
        for index, step in enumerate(scenario.steps, start=1):
            played = play_step(run, index, step, tally)
            assert not played.violations, played.violations
        books = run.snapshot()
    asked = Counter(e.operation_id for e in books.journal("billing") if e.actor == "integration")
    assert len(books.invoices) == 2 and asked["retrieveInvoice"] >= 2
    assert asked["retrieveCustomer"] == 1, asked

"""Fixtures: scenarios from YAML text, and a small player that acts out a scenario's billing
side (the runner's steps and the reference integration's Stripe calls) on the real billing
simulator through the real ``stripe`` SDK."""

from __future__ import annotations

import contextlib
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

from harness.scenario import Scenario, load_scenario
from simulators.billing.simulator import BillingSimulator
from simulators.common.app import build_app
from simulators.common.server import Site, ThreadedServer
from simulators.common.world import World
from tests.billing.conftest import sdk_client

FIXTURES = """\
fixtures:
  entities: [{key: us, name: US Inc, currency: usd}]
  products:
    - {key: pro, name: Pro, ssp_minor: 12000}
    - {key: support, name: Support, ssp_minor: 3000}
    - {key: api, name: API calls, recognition: usage}
    - {key: team, name: Team, ssp_minor: 2000}
    - {key: ent, name: Enterprise, ssp_minor: 50000}
    - {key: premium, name: Premium support, ssp_minor: 5000}
    # The CRM price book holds one price per product and currency: other prices, other products.
    - {key: team25, name: Team (2025 list), ssp_minor: 2500}
    - {key: pro_yearly, name: Pro billed yearly, ssp_minor: 120000}
  prices:
    - {key: pro_usd, product: pro, currency: usd, unit_amount: 10000}
    - {key: support_usd, product: support, currency: usd, unit_amount: 2500}
    - {key: api_usd, product: api, currency: usd, unit_amount: 3, usage: true}
    - {key: team_usd, product: team, currency: usd, unit_amount: 2000}
    - {key: team25_usd, product: team25, currency: usd, unit_amount: 2500}
    - {key: ent_usd, product: ent, currency: usd, unit_amount: 50000}
    - {key: premium_usd, product: premium, currency: usd, unit_amount: 2500}
    - {key: pro_annual, product: pro_yearly, currency: usd, unit_amount: 100000, interval: year}
  customers: [{key: acme, name: Acme Corp, entity: us, currency: usd}]
"""


@pytest.fixture
def scenario(tmp_path: Path) -> Callable[[str], Scenario]:
    """Builds a scenario through the real loader from its name, start and steps (YAML)."""

    def make(text: str) -> Scenario:
        path = tmp_path / "scenario.yaml"
        path.write_text(FIXTURES + textwrap.dedent(text))
        return load_scenario(path)

    return make


class BillingPlayer:
    """Plays billing steps as the runner and the reference integration would on Stripe; the
    other systems are out of this test's scope. ``names`` collects the ids the oracle needs."""

    def __init__(self, world: World, url: str, client: stripe.StripeClient) -> None:
        self.world, self.url, self.client = world, url, client
        self.names: dict[str, str] = {}
        self.prices: dict[str, Any] = {}
        self.opportunities: dict[str, Any] = {}
        self.customers: dict[str, Any] = {}

    def play(self, scenario: Scenario) -> None:
        self.fixtures = scenario.fixtures
        for product in scenario.fixtures.products:
            created = self.client.v1.products.create(
                params={"name": product.name, "metadata": {"key": product.key}}
            )
            self.names[f"product:{product.key}"] = created.id
        for price in scenario.fixtures.prices:
            recurring: dict[str, Any] = {"interval": price.interval}
            if price.usage:
                meter = self.client.v1.billing.meters.create(
                    params={
                        "display_name": price.key,
                        "event_name": price.key,
                        "default_aggregation": {"formula": "sum"},
                    }
                )
                recurring |= {"usage_type": "metered", "meter": meter.id}
            self.prices[price.key] = self.client.v1.prices.create(
                params={
                    "product": self.names[f"product:{price.product}"],
                    "currency": price.currency,
                    "unit_amount": price.unit_amount,
                    "recurring": recurring,
                    "lookup_key": price.key,
                }
            )
        for index, step in enumerate(scenario.steps):
            self.step_index = index
            getattr(self, step.kind.replace(".", "_"), lambda _p: None)(step.params)

    # --- steps -------------------------------------------------------------------------------
    def crm_create_opportunity(self, p: Any) -> None:
        self.opportunities[p.key] = p

    def crm_close_won(self, p: Any) -> None:
        opp = self.opportunities[p.opportunity]
        if opp.kind != "new":
            self.names[f"opportunity:{opp.key}"] = self.names[f"opportunity:{opp.amends}"]
            behavior = "create_prorations" if opp.kind == "amendment" else "none"
            self._set_items(opp.key, opp.lines, behavior)
            return
        customer = self._customer(opp.customer)
        sub = self.client.v1.subscriptions.create(
            params={
                "customer": customer.id,
                "items": [self._item(line) for line in opp.lines],
                "collection_method": "send_invoice",
                "days_until_due": 30,
                "metadata": {"crm_opportunity_id": opp.key},
            }
        )
        self.names[f"opportunity:{opp.key}"] = sub.id

    def billing_update_subscription(self, p: Any) -> None:
        self._set_items(p.opportunity, p.lines, p.proration_behavior)

    def billing_cancel(self, p: Any) -> None:
        sub_id = self.names[f"opportunity:{p.opportunity}"]
        if p.at_period_end:
            self.client.v1.subscriptions.update(sub_id, params={"cancel_at_period_end": True})
        else:
            self.client.v1.subscriptions.cancel(
                sub_id, params={"prorate": p.prorate, "invoice_now": p.invoice_now}
            )

    def billing_report_usage(self, p: Any) -> None:
        # As the runner does: an event without an identifier is named after its step.
        params: dict[str, Any] = {
            "event_name": p.price,
            "identifier": p.identifier or f"step-{self.step_index}",
            "payload": {
                "stripe_customer_id": self.names[f"customer:{p.customer}"],
                "value": str(p.value),
            },
        }
        for _ in range(p.repeat):
            # A repeated identifier is the vendor's own de-duplication at work.
            with contextlib.suppress(stripe.InvalidRequestError):
                self.client.v1.billing.meter_events.create(params=params)

    def billing_pay(self, p: Any) -> None:
        found = self.client.v1.invoices.list(
            params={"customer": self.names[f"customer:{p.customer}"], "status": "open"}
        ).data
        for inv in found[:1] if p.invoice == "latest" else found:
            self.client.v1.invoices.pay(
                inv.id, params={"payment_method": self.fixture_customer(p.customer).payment_method}
            )

    def billing_credit_note(self, p: Any) -> None:
        invoices = self.client.v1.invoices.list(
            params={"customer": self.names[f"customer:{p.customer}"]}
        ).data
        inv = next(i for i in invoices if i.status in ("open", "paid"))
        params: dict[str, Any] = {"invoice": inv.id, "amount": p.amount}
        if inv.status == "paid":
            field = {"balance": "credit_amount", "refund": "refund_amount"}.get(
                p.credit_to, "out_of_band_amount"
            )
            params[field] = p.amount
        self.client.v1.credit_notes.create(params=params)

    def clock_advance(self, p: Any) -> None:
        body = {"to": p.to} if p.to is not None else {"duration": p.duration}
        path = "/_sim/clock/set" if p.to is not None else "/_sim/clock/advance"
        self.control("POST", path, body)

    # --- helpers -----------------------------------------------------------------------------
    def control(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(
            method,
            f"{self.url}{path}",
            json=body,
            timeout=30,
            headers={"X-Sim-Control-Token": self.world.control_token},
            trust_env=False,
        )
        assert response.is_success, (response.status_code, response.text)
        return response.json()

    def snapshot(self) -> dict[str, Any]:
        snapshot: dict[str, Any] = self.control("GET", "/_sim/snapshot")
        return snapshot

    def fixture_customer(self, key: str) -> Any:
        return next(c for c in self.fixtures.customers if c.key == key)

    def _customer(self, key: str) -> Any:
        if key not in self.customers:
            fixture = self.fixture_customer(key)
            self.customers[key] = self.client.v1.customers.create(
                params={"name": fixture.name, "metadata": {"entity": fixture.entity}}
            )
            self.names[f"customer:{key}"] = self.customers[key].id
        return self.customers[key]

    def _item(self, line: Any) -> dict[str, Any]:
        price = self.prices[line.price]
        if price.recurring.usage_type == "metered":
            return {"price": price.id}
        return {"price": price.id, "quantity": line.quantity}

    def _set_items(self, opportunity: str, lines: list[Any], behavior: str) -> None:
        """Items become the lines, matched by price, as the reference integration does."""
        sub_id = self.names[f"opportunity:{opportunity}"]
        items = self.client.v1.subscription_items.list(params={"subscription": sub_id}).data
        wanted = {line.price: line for line in lines}
        changes: list[dict[str, Any]] = []
        for item in items:
            key = item.price.lookup_key
            if key not in wanted:
                changes.append({"id": item.id, "deleted": True})
            elif item.price.recurring.usage_type != "metered":
                changes.append({"id": item.id, "quantity": wanted[key].quantity})
            wanted.pop(key, None)
        changes.extend(self._item(line) for line in wanted.values())
        self.client.v1.subscriptions.update(
            sub_id, params={"items": changes, "proration_behavior": behavior}
        )


@pytest.fixture
def billing_player(scenario: Callable[[str], Scenario]) -> Iterator[Callable[[Scenario], Any]]:
    """Serves a fresh billing world starting at the scenario's start and plays it."""
    servers: list[ThreadedServer] = []

    def play(s: Scenario) -> BillingPlayer:
        world = World(seed=3, start_at=s.start_at, webhook_time_scale=0.001)
        sim = BillingSimulator(world)
        server = ThreadedServer([Site("billing", build_app(sim, validate_responses=True))])
        server.__enter__()
        servers.append(server)
        url = server.urls["billing"]
        player = BillingPlayer(world, url, sdk_client(sim.api_key, url))
        player.play(s)
        return player

    yield play
    for server in servers:
        server.__exit__(None, None, None)

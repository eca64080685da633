"""The consumer view: usage from a real journal, and a diff that knows breaking-for-us."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
import yaml

from harness.cli import main
from harness.contracts.usage import usage_from_journal
from simulators.billing.simulator import BillingSimulator
from simulators.common.app import build_app
from simulators.common.server import Site, ThreadedServer
from simulators.common.simulator import CONTRACTS
from simulators.common.world import World


@pytest.fixture(scope="module")
def journal() -> Iterator[list[dict[str, Any]]]:
    world = World(seed=4)
    sim = BillingSimulator(world)
    with ThreadedServer([Site("billing", build_app(sim))]) as srv:
        url = srv.urls["billing"]
        client = stripe.StripeClient(sim.api_key, base_addresses={"api": url})
        customer = client.v1.customers.create(
            {
                "name": "Acme",
                "metadata": {"crm_id": "001"},
                "payment_method": "pm_card_visa",
                "invoice_settings": {"default_payment_method": "pm_card_visa"},
            }
        )
        product = client.v1.products.create({"name": "Seats"})
        price = client.v1.prices.create(
            {
                "product": product.id,
                "currency": "usd",
                "unit_amount": 1000,
                "recurring": {"interval": "month"},
            }
        )
        client.v1.subscriptions.create(
            {"customer": customer.id, "items": [{"price": price.id, "quantity": 2}]}
        )
        client.v1.customers.list({"limit": 3})
        # The harness acting as a user: not the integration's usage.
        httpx.post(
            f"{url}/v1/customers",
            data={"description": "by hand"},
            headers={
                "Authorization": f"Bearer {sim.api_key}",
                "X-Sim-Actor": "harness",
                "X-Sim-Control-Token": world.control_token,
            },
        )
        answer = httpx.get(
            f"{url}/_sim/journal",
            params={"limit": 1000},
            headers={"X-Sim-Control-Token": world.control_token},
        )
        yield answer.json()["data"]


def test_usage_names_the_operations_fields_and_parameters_sent(
    journal: list[dict[str, Any]],
) -> None:
    usage = usage_from_journal(journal).to_json()["operations"]
    assert set(usage) == {
        "createCustomer",
        "createProduct",
        "createPrice",
        "createSubscription",
        "listCustomers",
    }
    customer = set(usage["createCustomer"]["request_fields"])
    assert {
        "name",
        "metadata",
        "metadata.*",
        "invoice_settings",
        "invoice_settings.default_payment_method",
        "payment_method",
    } <= customer
    assert "description" not in customer  # only the harness sent that
    assert {"items", "items[].price", "items[].quantity"} <= set(
        usage["createSubscription"]["request_fields"]
    )
    assert usage["listCustomers"]["parameters"] == ["limit"]
    assert "response_fields" not in usage["createCustomer"]  # unknown: assume all


def _without(path: Path, operation: str, field: str, to: Path) -> Path:
    spec = yaml.safe_load(path.read_text())
    for item in spec["paths"].values():
        for op in item.values():
            if isinstance(op, dict) and op.get("operationId") == operation:
                body = op["requestBody"]["content"]["application/x-www-form-urlencoded"]
                schema = body["schema"]
                *parents, leaf = field.split(".")
                for part in parents:
                    schema = schema["properties"][part]["items"]
                del schema["properties"][leaf]
    to.write_text(yaml.safe_dump(spec, sort_keys=False))
    return to


def test_diff_with_usage_fails_only_on_what_the_integration_uses(
    journal: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    usage = tmp_path / "usage.json"
    usage.write_text(json.dumps(usage_from_journal(journal).to_json()))
    old = CONTRACTS / "billing.yaml"
    unused = _without(old, "createCustomer", "description", tmp_path / "unused.yaml")
    used = _without(old, "createSubscription", "items.quantity", tmp_path / "used.yaml")
    assert main(["contracts", "diff", str(old), str(unused)]) == 1  # breaking in general
    assert main(["contracts", "diff", str(old), str(unused), "--usage", str(usage)]) == 0
    assert main(["contracts", "diff", str(old), str(used), "--usage", str(usage)]) == 1
    capsys.readouterr()

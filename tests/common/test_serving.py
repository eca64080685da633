"""Faults and serving over real loopback sockets: resets, truncation, TLS, `harness up`."""

from __future__ import annotations

import signal
import ssl
from pathlib import Path

import httpx
import pytest
import stripe

from simulators.billing.simulator import BillingSimulator
from simulators.common.tls import LocalCA
from simulators.common.world import DEFAULT_START, World
from tests.common.helpers import harness_up
from tests.conftest import SessionApps


@pytest.fixture
def served(
    session_apps: SessionApps, tls_billing: tuple[str, LocalCA]
) -> tuple[World, BillingSimulator, str, LocalCA]:
    fresh = session_apps.fresh("billing", 3, DEFAULT_START)
    return fresh.world, fresh.sim, *tls_billing


def _client(url: str, ca: LocalCA, sim: BillingSimulator) -> httpx.Client:
    return httpx.Client(
        base_url=url,
        verify=ca.ssl_context_for_clients(),
        trust_env=False,
        timeout=5,
        headers={"Authorization": f"Bearer {sim.api_key}"},
    )


def _rule(world: World, url: str, ca: LocalCA, **rule: object) -> None:
    r = httpx.post(
        f"{url}/_sim/faults",
        json=rule,
        verify=ca.ssl_context_for_clients(),
        trust_env=False,
        headers={"X-Sim-Control-Token": world.control_token},
    )
    assert r.status_code == 201, r.text


def test_billing_serves_https_with_the_local_ca(served: tuple) -> None:
    _, sim, url, ca = served
    assert url.startswith("https://127.0.0.1:")
    with _client(url, ca, sim) as client:
        assert client.get("/v1/customers").status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/v1/customers", trust_env=False)  # not trusted without the CA


@pytest.mark.parametrize("kind", ["reset", "hang"])
def test_reset_and_hang_reach_a_real_client_as_a_broken_connection(
    served: tuple, kind: str
) -> None:
    world, sim, url, ca = served
    _rule(world, url, ca, operation="createCustomer", kind=kind, hang_s=0.3, max_hits=1)
    with _client(url, ca, sim) as client:
        with pytest.raises(httpx.TransportError):
            client.post("/v1/customers", data={"name": "lost"})
        assert sim.store.customers == {}
        # The server lives on: the next request is served.
        assert client.post("/v1/customers", data={"name": "kept"}).status_code == 200


def test_truncated_body_is_cut_short_on_the_wire(served: tuple) -> None:
    world, sim, url, ca = served
    _rule(world, url, ca, operation="listCustomers", kind="truncated", max_hits=1)
    with _client(url, ca, sim) as client, pytest.raises(httpx.TransportError):
        client.get("/v1/customers")


def test_stripe_sdk_resolves_an_ambiguous_commit_over_tls(
    served: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    world, sim, url, ca = served
    _rule(world, url, ca, operation="createProduct", kind="ambiguous_commit", max_hits=1)
    # The SDK trusts one CA bundle, set module-wide; monkeypatch puts it back.
    monkeypatch.setattr(stripe, "ca_bundle_path", str(ca.ca_path))
    client = stripe.StripeClient(sim.api_key, base_addresses={"api": url}, max_network_retries=2)
    product = client.v1.products.create({"name": "Once"})
    assert list(sim.store.products) == [product.id]


def test_harness_up_writes_ready_json_and_stops_on_sigterm(tmp_path: Path) -> None:
    with harness_up(
        tmp_path, "--seed", "9", "--tls", "billing", "--ca-dir", str(tmp_path / "ca")
    ) as (proc, doc):
        billing = doc["systems"]["billing"]
        assert billing["credentials"]["api_key"].startswith("sk_test_")
        assert doc["seed"] == 9 and doc["control_token"] and Path(doc["ca_bundle"]).exists()
        trust = ssl.create_default_context(cafile=doc["ca_bundle"])
        r = httpx.get(
            f"{billing['url']}/_sim/health",
            verify=trust,
            trust_env=False,
            headers={"X-Sim-Control-Token": doc["control_token"]},
        )
        assert r.json()["seed"] == 9
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0

"""The reference's urllib3 client: TLS verified by the context it is given, transport failures
transient, the Stripe SDK speaking through it to the real billing simulator."""

from __future__ import annotations

import socket
import ssl

import certifi
import pytest
import stripe

from examples.reference_integration.http import Http
from examples.reference_integration.reads import CachingStripeClient, Reads
from examples.reference_integration.retry import Gate, TransientError
from simulators.common.tls import LocalCA
from tests.conftest import SessionApps


def test_a_context_holding_the_ca_connects_and_one_without_it_is_refused(
    tls_billing: tuple[str, LocalCA],
) -> None:
    url, ca = tls_billing
    trusting = Http(url, verify=str(ca.write_bundle()))
    # The simulator answers (401 without a key): the TLS handshake went through.
    assert trusting.request("GET", "/v1/customers").status_code == 401
    public_only = Http(url, verify=ssl.create_default_context(cafile=certifi.where()))
    with pytest.raises(TransientError, match="CERTIFICATE_VERIFY_FAILED"):
        public_only.request("GET", "/v1/customers")


def test_a_refused_connection_is_transient() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(TransientError, match="GET"):
        Http(f"http://127.0.0.1:{port}").request("GET", "/v1/customers")


def test_paths_below_the_base_only() -> None:
    http = Http("http://127.0.0.1:9/stripe/")
    assert http.path_of("http://127.0.0.1:9/stripe/v1/invoices?limit=1") == "/v1/invoices?limit=1"
    assert http.path_of("http://127.0.0.1:9/stripes/v1") is None
    assert http.path_of("http://127.0.0.1:10/stripe/v1") is None


def test_the_stripe_sdk_reads_and_writes_through_it(
    tls_billing: tuple[str, LocalCA], session_apps: SessionApps
) -> None:
    url, ca = tls_billing
    reads = Reads()
    client = stripe.StripeClient(
        session_apps.get("billing").sim.api_key,
        base_addresses={"api": url},
        max_network_retries=0,
        http_client=CachingStripeClient(reads, Gate(), Http(url, verify=str(ca.write_bundle()))),
    )
    made = client.v1.customers.create(params={"name": "Acme", "metadata": {"k": "v"}})
    path = f"/v1/customers/{made.id}"
    assert client.raw_request("get", path).data["metadata"] == {"k": "v"}
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.customers.retrieve("cus_missing")
    assert refused.value.http_status == 404


def test_a_worker_reads_a_price_once(
    tls_billing: tuple[str, LocalCA], session_apps: SessionApps
) -> None:
    """A price's currency, product and recurrence never change: each worker reads it once."""
    from examples.reference_integration.sync import Syncer
    from tests.examples.vendor import recording_erp

    url, ca = tls_billing
    sim = session_apps.get("billing").sim

    event = Reads()  # the per-event read cache: started afresh below, as for a new event

    def client() -> stripe.StripeClient:
        http = Http(url, verify=str(ca.write_bundle()))
        return stripe.StripeClient(
            sim.api_key,
            base_addresses={"api": url},
            max_network_retries=0,
            http_client=CachingStripeClient(event, Gate(), http),
        )

    product = client().v1.products.create(params={"name": "Pro"})
    price = client().v1.prices.create(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount": 1000,
            "recurring": {"interval": "month"},
        }
    )

    def reads() -> int:
        return sum(
            1
            for e in sim.journal.snapshot()
            if e.operation_id == "retrievePrice" and e.path.endswith(price.id)
        )

    worker = Syncer(client(), recording_erp([]))
    before = reads()
    assert worker._price(price.id)["currency"] == "usd"
    event.fresh()  # the next event
    assert worker._price(price.id)["product"] == product.id
    assert reads() == before + 1
    # Another worker (a process of its own) reads it for itself.
    event.fresh()
    assert Syncer(client(), recording_erp([]))._price(price.id)["recurring"]["interval"] == "month"
    assert reads() == before + 2

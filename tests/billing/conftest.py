"""Fixtures: the billing simulator served on a real loopback socket, driven by the stripe SDK.

``billing`` yields a :class:`Harness` (unpacks as ``world, sim, client, urls``): a fresh world
per test, the simulator behind uvicorn on 127.0.0.1 port 0, the webhook dispatcher running as
a background task, and a :class:`stripe.StripeClient` pointed at it. Every JSON object that
client receives, and every webhook the receiver gets, must be shaped as Stripe's published
schemas shape it (``tests/billing/shapes.py``): the fixture fails the test otherwise.
``receiver`` is a tiny Starlette app served by the same ThreadedServer as a second site; it
records every webhook delivery (raw body and headers) it is sent.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import httpx
import pytest
import requests
import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulators.billing.simulator import BillingSimulator
from simulators.common.app import build_app
from simulators.common.server import Site, ThreadedServer
from simulators.common.world import World
from tests.billing.shapes import ShapeRecorder

START_AT = "2026-01-15T00:00:00Z"


@dataclass(frozen=True)
class Delivery:
    """One webhook request as the receiver saw it; header names are lower-case."""

    path: str
    body: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    """Records raw webhook deliveries; ``url`` is known once the server has started."""

    deliveries: list[Delivery] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            with self._lock:
                self.deliveries.append(
                    Delivery(
                        request.url.path, body, {k.lower(): v for k, v in request.headers.items()}
                    )
                )
            return Response(status_code=200)

        return Starlette(routes=[Route("/{path:path}", hook, methods=["POST"])])

    def received(self) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries)


class Harness(NamedTuple):
    world: World
    sim: BillingSimulator
    client: stripe.StripeClient
    urls: dict[str, str]

    @property
    def url(self) -> str:
        return self.urls["billing"]

    def control(self, method: str, path: str, json: Any = None) -> Any:
        """Call the control plane (``/_sim/...``) and return its JSON; fails on non-2xx."""
        response = httpx.request(
            method,
            f"{self.url}{path}",
            json=json,
            timeout=30,
            headers={"X-Sim-Control-Token": self.world.control_token},
            trust_env=False,
        )
        assert response.is_success, (response.status_code, response.text)
        return response.json()

    def raw(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A raw vendor-API request with the API key, for what the SDK cannot send or show."""
        headers = {"Authorization": f"Bearer {self.sim.api_key}", **kwargs.pop("headers", {})}
        return httpx.request(
            method, f"{self.url}{path}", headers=headers, timeout=30, trust_env=False, **kwargs
        )

    def store(self) -> dict[str, Any]:
        """The billing store part of ``GET /_sim/snapshot``."""
        snapshot: dict[str, Any] = self.control("GET", "/_sim/snapshot")
        store: dict[str, Any] = snapshot["systems"]["billing"]["store"]
        return store


def monthly_price(
    client: stripe.StripeClient, name: str, unit_amount: int, currency: str = "usd"
) -> Any:
    """A new product with one licensed monthly price; the price."""
    product = client.v1.products.create(params={"name": name})
    return client.v1.prices.create(
        params={
            "product": product.id,
            "currency": currency,
            "unit_amount": unit_amount,
            "recurring": {"interval": "month"},
        }
    )


def paying_customer(client: stripe.StripeClient, **extra: Any) -> Any:
    """A customer whose default payment method is Stripe's always-succeeding test card."""
    return client.v1.customers.create(
        params={
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
            **extra,
        }
    )


def sdk_client(
    api_key: str, base: str, retries: int = 2, recorder: ShapeRecorder | None = None
) -> stripe.StripeClient:
    session = requests.Session()
    session.trust_env = False  # loopback only: never through a proxy from the environment
    if recorder is not None:
        recorder.attach(session)
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": base},
        max_network_retries=retries,
        http_client=stripe.RequestsClient(session=session),
    )


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def billing(receiver: Receiver) -> Iterator[Harness]:
    world = World(seed=7, start_at=START_AT, webhook_time_scale=0.001)
    sim = BillingSimulator(world)
    app = build_app(sim, validate_responses=True)
    sites = [Site("billing", app), Site("receiver", receiver.app)]
    shapes = ShapeRecorder()
    with ThreadedServer(sites, background=[world.dispatcher.run]) as srv:
        urls = srv.urls
        receiver.url = f"{urls['receiver']}/hooks/stripe"
        yield Harness(world, sim, sdk_client(sim.api_key, urls["billing"], recorder=shapes), urls)
    # Every object the test received, and every event delivered, is shaped as Stripe's are.
    for delivery in receiver.received():
        shapes.add(f"webhook {delivery.path}", json.loads(delivery.body))
    problems = shapes.problems()
    if not os.environ.get("FINSIM_SHAPES_REPORT"):
        assert not problems, "\n".join(problems[:40]) + f"\n({len(problems)} in all)"

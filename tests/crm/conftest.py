"""Fixtures: the CRM simulator over real HTTPS (local CA), driven by simple-salesforce.

``crm`` gives a :class:`Harness`: the simulator served on 127.0.0.1 port 0 with TLS from a
session-wide local CA, the webhook dispatcher running, a plain-HTTP receiver site recording
pushes, and a ``simple_salesforce.Salesforce`` client whose requests session trusts the CA.
Its server lives for the session (building an app and stopping a TLS server cost ~0.5 s) and
its world is reset before every test, so each test starts from an empty org at START_AT.
``make_crm(**options)`` builds a fresh one with simulator options (quotas, page size, ...).
``inprocess`` serves the app through httpx's ASGI transport for fast, raw-HTTP checks.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from simple_salesforce import Salesforce
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulators.common.app import build_app
from simulators.common.server import Site, ThreadedServer
from simulators.common.tls import LocalCA
from simulators.common.world import World
from simulators.crm.simulator import CrmSimulator
from tests.conftest import SessionApp, SessionApps

START_AT = "2026-01-15T00:00:00Z"
VERSION = "60.0"


@dataclass(frozen=True)
class Push:
    """One notification as the receiver got it; header names are lower-case."""

    body: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    pushes: list[Push] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            with self._lock:
                self.pushes.append(Push(body, {k.lower(): v for k, v in request.headers.items()}))
            return Response(status_code=200)

        return Starlette(routes=[Route("/{path:path}", hook, methods=["POST"])])

    def received(self) -> list[Push]:
        with self._lock:
            return list(self.pushes)

    def clear(self) -> None:
        with self._lock:
            self.pushes.clear()


@dataclass
class Harness:
    world: World
    sim: CrmSimulator
    sf: Salesforce
    urls: dict[str, str]
    ca: LocalCA
    receiver: Receiver

    @property
    def url(self) -> str:
        return self.urls["crm"]

    def client(self, version: str = VERSION, session_id: str | None = None) -> Salesforce:
        return sf_client(self.url, session_id or self.sim.session_id, self.ca.ca_path, version)

    def raw(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A raw request with the session (for what the SDK hides: headers, bodies of errors)."""
        headers = {"Authorization": f"Bearer {self.sim.session_id}", **kwargs.pop("headers", {})}
        return httpx.request(
            method,
            f"{self.url}{path}",
            headers=headers,
            verify=self.ca.ssl_context_for_clients(),
            trust_env=False,
            timeout=10,
            **kwargs,
        )

    def control(self, method: str, path: str, json: Any = None) -> Any:
        response = httpx.request(
            method,
            f"{self.url}{path}",
            json=json,
            headers={"X-Sim-Control-Token": self.world.control_token},
            verify=self.ca.ssl_context_for_clients(),
            trust_env=False,
            timeout=30,
        )
        assert response.is_success, (response.status_code, response.text)
        return response.json()

    def records(self) -> list[dict[str, Any]]:
        """Every stored record (the store part of a snapshot), to prove nothing changed."""
        with self.world.lock:
            rows: list[dict[str, Any]] = self.sim.store.snapshot()["records"]
            return rows

    def standard_pricebook(self) -> str:
        with self.world.lock:
            book = self.sim.backend.standard_pricebook()
            assert book is not None
            return book.id


def sf_client(url: str, session_id: str, ca_path: Path, version: str = VERSION) -> Salesforce:
    session = requests.Session()
    session.verify = str(ca_path)  # the local CA: TLS is verified, not switched off
    session.trust_env = False  # loopback only: never through a proxy from the environment
    return Salesforce(instance_url=url, session_id=session_id, version=version, session=session)


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA.create(tmp_path_factory.mktemp("crm-ca"))


def _serve(
    stack: ExitStack,
    ca: LocalCA,
    seed: int,
    options: dict[str, Any],
    shared: SessionApp | None = None,
) -> Harness:
    if shared is None:
        world = World(seed=seed, start_at=START_AT, webhook_time_scale=0.001)
        sim = CrmSimulator(world, **options)
        app = build_app(sim, validate_responses=True)
    else:
        world, sim, app = shared.world, shared.sim, shared.app
    receiver = Receiver()
    sites = [Site("crm", app, tls=True), Site("receiver", receiver.app)]
    server = stack.enter_context(ThreadedServer(sites, ca=ca, background=[world.dispatcher.run]))
    urls = server.urls
    client = sf_client(urls["crm"], sim.session_id, ca.ca_path)
    return Harness(world, sim, client, urls, ca, receiver)


@pytest.fixture
def make_crm(ca: LocalCA) -> Iterator[Callable[..., Harness]]:
    with ExitStack() as stack:

        def make(seed: int = 7, **options: Any) -> Harness:
            return _serve(stack, ca, seed, options)

        yield make


@pytest.fixture(scope="session")
def _shared_crm(ca: LocalCA, session_apps: SessionApps) -> Iterator[Harness]:
    with ExitStack() as stack:
        yield _serve(stack, ca, 7, {}, session_apps.get("crm"))


@pytest.fixture
def crm(_shared_crm: Harness, session_apps: SessionApps) -> Harness:
    session_apps.fresh("crm", 7, START_AT, webhook_time_scale=0.001)
    _shared_crm.receiver.clear()
    return _shared_crm


@dataclass
class InProcess:
    world: World
    sim: CrmSimulator
    client: httpx.AsyncClient
    base: str = f"/services/data/v{VERSION}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.sim.session_id}"}

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(self.base + path, headers=self.auth, **kwargs)

    async def post(self, path: str, json: Any) -> httpx.Response:
        return await self.client.post(self.base + path, json=json, headers=self.auth)

    async def patch(self, path: str, json: Any) -> httpx.Response:
        return await self.client.patch(self.base + path, json=json, headers=self.auth)

    async def create(self, sobject: str, **fields: Any) -> str:
        response = await self.post(f"/sobjects/{sobject}/", fields)
        assert response.status_code == 201, response.text
        created: str = response.json()["id"]
        return created

    async def soql(self, text: str) -> list[dict[str, Any]]:
        response = await self.get("/query/", params={"q": text})
        assert response.status_code == 200, response.text
        records: list[dict[str, Any]] = response.json()["records"]
        return records


@pytest.fixture
async def inprocess(session_apps: SessionApps) -> AsyncIterator[InProcess]:
    served = session_apps.fresh("crm", 3, START_AT, webhook_time_scale=0.001)
    async with served.client("https://crm.test") as client:
        yield InProcess(served.world, served.sim, client)

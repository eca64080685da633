"""Fixtures: the revrec simulator on a real loopback socket, plus a webhook receiver.

``revrec`` yields a :class:`Harness`: the session's simulator behind uvicorn on 127.0.0.1
port 0 with response validation on, its world reset per test, the webhook dispatcher running,
and helpers that call the API (``api``) or the control plane (``control``) with ``httpx``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulators.common.clock import parse_instant
from simulators.common.server import Site, ThreadedServer
from simulators.common.world import World
from simulators.revrec.simulator import RevrecSimulator
from tests.conftest import SessionApp, SessionApps

START_AT = "2026-01-01T00:00:00Z"


@dataclass
class Receiver:
    """Records raw webhook deliveries (body and lower-cased headers)."""

    deliveries: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            with self._lock:
                self.deliveries.append((body, {k.lower(): v for k, v in request.headers.items()}))
            return Response(status_code=204)

        return Starlette(routes=[Route("/{path:path}", hook, methods=["POST"])])

    def received(self) -> list[tuple[bytes, dict[str, str]]]:
        with self._lock:
            return list(self.deliveries)

    def clear(self) -> None:
        with self._lock:
            self.deliveries.clear()


@dataclass
class Harness:
    world: World
    sim: RevrecSimulator
    urls: dict[str, str]
    receiver: Receiver
    client: httpx.Client

    @property
    def url(self) -> str:
        return self.urls["revrec"]

    def api(self, method: str, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.sim.credentials()['token']}"}
        headers.update(kwargs.pop("headers", {}))
        return self.client.request(
            method, f"{self.url}{path}", json=json, headers=headers, **kwargs
        )

    def ok(self, method: str, path: str, json: Any = None, **kwargs: Any) -> Any:
        """An API call that must succeed; returns its JSON."""
        response = self.api(method, path, json, **kwargs)
        assert response.is_success, (response.status_code, response.text)
        return response.json()

    def control(self, method: str, path: str, json: Any = None) -> Any:
        response = self.client.request(
            method,
            f"{self.url}{path}",
            json=json,
            headers={"X-Sim-Control-Token": self.world.control_token},
        )
        assert response.is_success, (response.status_code, response.text)
        return response.json()

    def advance_to(self, instant: str) -> None:
        self.control("POST", "/_sim/clock/set", {"to": instant})

    def store(self) -> dict[str, Any]:
        snapshot: dict[str, Any] = self.control("GET", "/_sim/snapshot")
        store: dict[str, Any] = snapshot["systems"]["revrec"]["store"]
        return store

    def server_errors(self) -> list[dict[str, Any]]:
        """Journal entries answered 5xx without an injected fault: with response validation on,
        a response that breaks the contract shows up here."""
        data: list[dict[str, Any]] = self.control("GET", "/_sim/journal?limit=100000")["data"]
        return [e for e in data if e["status"] >= 500 and not e["faults"]]


def at(text: str) -> int:
    return parse_instant(text)


Served = tuple[SessionApp, Receiver, dict[str, str]]


@pytest.fixture(scope="session")
def _served_revrec(
    session_apps: SessionApps,
) -> Iterator[tuple[SessionApp, Receiver, dict[str, str]]]:
    served = session_apps.get("revrec")
    receiver = Receiver()
    sites = [Site("revrec", served.app), Site("receiver", receiver.app)]
    with ThreadedServer(sites, background=[served.world.dispatcher.run]) as srv:
        yield served, receiver, srv.urls


@pytest.fixture
def revrec(session_apps: SessionApps, _served_revrec: Served) -> Iterator[Harness]:
    _, receiver, urls = _served_revrec
    served = session_apps.fresh("revrec", 5, START_AT, webhook_time_scale=0.001)
    receiver.clear()
    with httpx.Client(timeout=30, trust_env=False) as client:
        harness = Harness(served.world, served.sim, urls, receiver, client)
        yield harness
        assert harness.server_errors() == []

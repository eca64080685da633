"""Fixtures: the ERP simulator served on a real loopback socket, reset to its seed per test.

Building the app from the contract costs about a second, so the session's app
(tests/conftest.py) is served once and ``erp`` resets its world (seed data, clock, ids,
faults) before every test. ``erp`` yields an :class:`Erp` with helpers that speak
NetSuite's REST conventions over plain httpx.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest

from simulators.common.server import Site, ThreadedServer
from simulators.common.world import World
from simulators.erp.simulator import ErpSimulator
from tests.conftest import SessionApps

START_AT = "2026-01-15T00:00:00Z"
SEED = 5
RECORD = "/services/rest/record/v1"
SUITEQL = "/services/rest/query/v1/suiteql"


@dataclass
class Erp:
    world: World
    sim: ErpSimulator
    url: str
    client: httpx.Client

    # raw HTTP ------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        admin: bool = False,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        token = self.sim.admin_token if admin else self.sim.token
        return self.client.request(
            method, path, headers={"Authorization": f"Bearer {token}", **(headers or {})}, **kwargs
        )

    def control(self, method: str, path: str, json: Any = None) -> Any:
        response = self.client.request(
            method, path, json=json, headers={"X-Sim-Control-Token": self.world.control_token}
        )
        assert response.is_success, (response.status_code, response.text)
        return response.json()

    # NetSuite conventions ------------------------------------------------------------------
    def create(self, kind: str, body: dict[str, Any], *, admin: bool = False) -> str:
        """POST a record; NetSuite answers 204 with its Location, whose last segment is the id."""
        response = self.request("POST", f"{RECORD}/{kind}", json=body, admin=admin)
        assert response.status_code == 204, response.text
        location = response.headers["Location"]
        assert location.startswith(f"{RECORD}/{kind}/")
        return location.rsplit("/", 1)[1]

    def get(self, kind: str, key: str, *, expand: bool = True) -> dict[str, Any]:
        params = {"expandSubResources": "true"} if expand else {}
        response = self.request("GET", f"{RECORD}/{kind}/{key}", params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def suiteql(self, q: str, **params: Any) -> list[dict[str, str]]:
        response = self.request(
            "POST", SUITEQL, json={"q": q}, params=params, headers={"Prefer": "transient"}
        )
        assert response.status_code == 200, response.text
        rows = []
        for item in response.json()["items"]:
            assert item.pop("links") == []
            rows.append(item)
        return rows

    def snapshot(self) -> dict[str, Any]:
        """The ERP part of ``GET /_sim/snapshot``."""
        snap: dict[str, Any] = self.control("GET", "/_sim/snapshot")["systems"]["erp"]
        return snap

    def state(self) -> tuple[Any, Any]:
        """What a refused request must leave alone: the ERP store and the world's id counters
        (all but the kernel's request-id counter, which every request advances)."""
        snap = self.control("GET", "/_sim/snapshot")
        ids = {k: v for k, v in snap["ids"].items() if k != "request"}
        return snap["systems"]["erp"]["store"], ids

    def customer(self, name: str, subsidiary: str, currency: str | None = None) -> str:
        body: dict[str, Any] = {
            "companyName": name,
            "externalId": name.lower().replace(" ", "-"),
            "subsidiary": {"externalId": subsidiary},
        }
        if currency:
            body["currency"] = {"externalId": currency}
        return self.create("customer", body)


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    """Status, o:errorCode and detail of a NetSuite error, checking the envelope on the way."""
    assert response.headers["content-type"].startswith("application/vnd.oracle.resource+json")
    body = response.json()
    assert set(body) == {"type", "title", "status", "o:errorDetails"}, body
    assert body["status"] == response.status_code
    detail = body["o:errorDetails"][0]
    return response.status_code, detail["o:errorCode"], detail["detail"]


def dec(value: Any) -> Decimal:
    """A JSON number or SuiteQL string as the Decimal it spells."""
    return Decimal(str(value))


@pytest.fixture(scope="session")
def served(session_apps: SessionApps) -> Iterator[tuple[World, ErpSimulator, str]]:
    shared = session_apps.get("erp")
    world = shared.world
    with ThreadedServer([Site("erp", shared.app)], background=[world.dispatcher.run]) as server:
        yield world, shared.sim, server.urls["erp"]


@pytest.fixture
def erp(session_apps: SessionApps, served: tuple[World, ErpSimulator, str]) -> Iterator[Erp]:
    world, sim, url = served
    session_apps.fresh("erp", SEED, START_AT)
    sim.concurrency_cap = 15
    with httpx.Client(base_url=url, timeout=10, trust_env=False) as client:
        yield Erp(world, sim, url, client)

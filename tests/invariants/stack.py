"""A four-system world served on loopback, with helpers that speak each vendor's wire format."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from harness.books import Books, take_books
from harness.config import LinksConfig
from harness.invariants import check_all
from harness.violations import Violation
from simulators.billing.simulator import BillingSimulator
from simulators.common.app import build_app
from simulators.common.server import Site, ThreadedServer
from simulators.common.world import World
from simulators.crm.simulator import CrmSimulator
from simulators.erp.simulator import ErpSimulator
from simulators.revrec.simulator import RevrecSimulator

START_AT = "2026-01-15T00:00:00Z"
SEED = 3
# harness.toml's [accounts], mapped onto the ERP seed's chart of accounts.
ACCOUNTS = {
    "ar": "1100",
    "unbilled_ar": "1150",
    "cash": "1000",
    "deferred_revenue": "2400",
    "revenue": "4000",
    "tax": "2200",
    "fx_gain_loss": "7100",
}
SF = "/services/data/v60.0"
NS = "/services/rest/record/v1"


@dataclass
class Receiver:
    """Acknowledges every webhook with 200, as an integration's durable inbox would."""

    count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            await request.body()
            with self._lock:
                self.count += 1
            return Response(status_code=200)

        return Starlette(routes=[Route("/{path:path}", hook, methods=["POST"])])


def _form(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Stripe's form encoding: bracketed nesting and indexed lists."""
    out: list[tuple[str, str]] = []
    for key, value in data.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, Mapping):
            out += _form(value, name)
        elif isinstance(value, list):
            for n, item in enumerate(value):
                if isinstance(item, Mapping):
                    out += _form(item, f"{name}[{n}]")
                else:
                    out.append((f"{name}[{n}]", str(item)))
        elif isinstance(value, bool):
            out.append((name, "true" if value else "false"))
        else:
            out.append((name, str(value)))
    return out


@dataclass
class Stack:
    world: World
    billing_sim: BillingSimulator
    crm_sim: CrmSimulator
    erp_sim: ErpSimulator
    revrec_sim: RevrecSimulator
    urls: dict[str, str]
    client: httpx.Client
    receiver: Receiver

    # raw vendor calls ------------------------------------------------------------------------
    def _actor(self, harness: bool) -> dict[str, str]:
        if not harness:
            return {}
        return {"X-Sim-Actor": "harness", "X-Sim-Control-Token": self.world.control_token}

    def billing(
        self,
        method: str,
        path: str,
        data: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        harness: bool = False,
        ok: bool = True,
    ) -> Any:
        headers = {"Authorization": f"Bearer {self.billing_sim.api_key}", **self._actor(harness)}
        if key:
            headers["Idempotency-Key"] = key
        if method == "GET":
            response = self.client.request(
                method,
                f"{self.urls['billing']}{path}",
                params=urlencode(_form(data or {})),
                headers=headers,
            )
        else:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            response = self.client.request(
                method,
                f"{self.urls['billing']}{path}",
                content=urlencode(_form(data or {})),
                headers=headers,
            )
        return _answer(response, ok)

    def crm(
        self, method: str, path: str, body: Any = None, *, harness: bool = False, ok: bool = True
    ) -> Any:
        headers = {
            "Authorization": f"Bearer {self.crm_sim.session_id}",
            **self._actor(harness),
        }
        response = self.client.request(
            method, f"{self.urls['crm']}{SF}{path}", json=body, headers=headers
        )
        return _answer(response, ok)

    def erp(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        admin: bool = False,
        ok: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        token = self.erp_sim.admin_token if admin else self.erp_sim.token
        response = self.client.request(
            method,
            f"{self.urls['erp']}{NS}{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}", **(headers or {})},
        )
        if ok:
            assert response.is_success, (response.status_code, response.text)
        return response

    def erp_write(self, method: str, path: str, body: Any) -> str:
        """A create or upsert; the record id from ``Location``."""
        response = self.erp(method, path, body)
        return response.headers["Location"].rsplit("/", 1)[1]

    def revrec(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        harness: bool = False,
        ok: bool = True,
        key: str | None = None,
    ) -> Any:
        headers = {
            "Authorization": f"Bearer {self.revrec_sim.credentials()['token']}",
            **self._actor(harness),
        }
        if key:
            headers["Idempotency-Key"] = key
        response = self.client.request(
            method, f"{self.urls['revrec']}{path}", json=body, headers=headers
        )
        return _answer(response, ok)

    def control(self, system: str, method: str, path: str, body: Any = None) -> Any:
        response = self.client.request(
            method,
            f"{self.urls[system]}{path}",
            json=body,
            headers={"X-Sim-Control-Token": self.world.control_token},
        )
        assert response.is_success, (response.status_code, response.text)
        return response.json() if response.content else None

    def advance_to(self, instant: str) -> None:
        self.control("billing", "POST", "/_sim/clock/set", {"to": instant})

    def drain(self) -> None:
        assert self.world.dispatcher.wait_drained_threadsafe(10)

    # judging ---------------------------------------------------------------------------------
    def books(
        self,
        links: LinksConfig | None = None,
        scope: Iterable[str] | None = None,
        before: Books | None = None,
    ) -> Books:
        return take_books(self.world, ACCOUNTS, links=links, scope=scope, before=before)

    def check(
        self, rule: str, links: LinksConfig | None = None, scope: Iterable[str] | None = None
    ) -> list[Violation]:
        return check_all(self.books(links, scope), only=[rule])


def _answer(response: httpx.Response, ok: bool) -> Any:
    if ok:
        assert response.is_success, (response.status_code, response.text)
    if not response.content:
        return None
    return response.json()


def serve() -> Iterator[Stack]:
    world = World(seed=SEED, start_at=START_AT, webhook_time_scale=1e-5)
    sims = (
        BillingSimulator(world),
        CrmSimulator(world),
        ErpSimulator(world),
        RevrecSimulator(world),
    )
    receiver = Receiver()
    sites = [Site(sim.name, build_app(sim, validate_responses=True)) for sim in sims]
    sites.append(Site("receiver", receiver.app))
    with (
        ThreadedServer(sites, background=[world.dispatcher.run]) as server,
        httpx.Client(timeout=30, trust_env=False) as client,
    ):
        yield Stack(world, *sims, server.urls, client, receiver)

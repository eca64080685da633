"""Shared fixtures: one app per system per test session, its world reset before every test.

Building an app from its contract costs about a second (more on a busy machine), a world
reset well under a millisecond, so ``session_apps.fresh(system, ...)`` hands every test the
session's app over a world that is as new: same seed, same start, no records, no faults.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp

from simulators.billing.simulator import BillingSimulator
from simulators.common.app import build_app
from simulators.common.server import Site, ThreadedServer
from simulators.common.simulator import Simulator
from simulators.common.tls import LocalCA
from simulators.common.world import World
from simulators.crm.simulator import CrmSimulator
from simulators.erp.simulator import ErpSimulator
from simulators.revrec.simulator import RevrecSimulator

SIMULATORS: dict[str, type[Simulator]] = {
    "billing": BillingSimulator,
    "crm": CrmSimulator,
    "erp": ErpSimulator,
    "revrec": RevrecSimulator,
}


@dataclass
class SessionApp:
    """A world holding one simulator, and that simulator's app (response validation on)."""

    world: World
    sim: Any
    app: ASGIApp

    def client(self, base_url: str = "http://sim.test") -> httpx.AsyncClient:
        """An in-process client (ASGI transport) through the whole kernel."""
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=base_url)


class SessionApps:
    """Apps built on first use and kept for the session; ``fresh`` resets one for a test."""

    def __init__(self) -> None:
        self._apps: dict[str, SessionApp] = {}

    def get(self, system: str) -> SessionApp:
        if system not in self._apps:
            world = World()
            sim = SIMULATORS[system](world)
            self._apps[system] = SessionApp(world, sim, build_app(sim, validate_responses=True))
        return self._apps[system]

    def fresh(
        self, system: str, seed: int, start_at: str, *, webhook_time_scale: float = 1.0
    ) -> SessionApp:
        """The system's app over a world reset to ``seed`` at ``start_at``."""
        served = self.get(system)
        served.world.reset(seed=seed, start_at=start_at)
        served.world.dispatcher.time_scale = webhook_time_scale
        return served


@pytest.fixture(scope="session")
def session_apps() -> SessionApps:
    return SessionApps()


@dataclass
class InProcess:
    world: World
    sim: BillingSimulator
    client: httpx.AsyncClient

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.sim.api_key}"}

    @property
    def control(self) -> dict[str, str]:
        return {"X-Sim-Control-Token": self.world.control_token}


@pytest.fixture
async def billing(session_apps: SessionApps) -> AsyncIterator[InProcess]:
    served = session_apps.fresh("billing", 11, "2026-03-01T00:00:00Z", webhook_time_scale=0.001)
    async with served.client("http://billing.test") as client:
        yield InProcess(served.world, served.sim, client)


@pytest.fixture(scope="session")
def tls_billing(
    session_apps: SessionApps, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, LocalCA]]:
    """The billing app served over TLS by a CA of its own: its URL and the CA."""
    ca = LocalCA.create(tmp_path_factory.mktemp("billing-ca"))
    app = session_apps.get("billing").app
    with ThreadedServer([Site("billing", app, tls=True)], ca=ca) as server:
        yield server.urls["billing"], ca


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``slow`` tests run only when asked for (``-m slow``), never in ``make test``."""
    if "slow" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="a long run: select it with -m slow")
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip)


# The contract-diff corpus prints its accuracy at the end of the run; the hook lives with it.
from tests.contracts.summary import pytest_terminal_summary  # noqa: E402, F401

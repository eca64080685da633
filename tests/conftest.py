"""Shared fixtures: a fresh world per test, served in-process through the real kernel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from simulators.billing.simulator import BillingSimulator
from simulators.common.app import build_app
from simulators.common.world import World


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
async def billing() -> AsyncIterator[InProcess]:
    world = World(seed=11, start_at="2026-03-01T00:00:00Z", webhook_time_scale=0.001)
    sim = BillingSimulator(world)
    transport = httpx.ASGITransport(app=build_app(sim, validate_responses=True))
    async with httpx.AsyncClient(transport=transport, base_url="http://billing.test") as client:
        yield InProcess(world, sim, client)


# The contract-diff corpus prints its accuracy at the end of the run; the hook lives with it.
from tests.contracts.summary import pytest_terminal_summary  # noqa: E402, F401

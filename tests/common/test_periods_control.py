"""Month-end through the control plane: ERP and revrec periods without vendor tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.types import ASGIApp

from simulators.billing.simulator import BillingSimulator
from simulators.common.app import build_app
from simulators.common.world import World
from simulators.erp.simulator import ErpSimulator
from simulators.revrec.simulator import RevrecSimulator

Clients = dict[str, httpx.AsyncClient]


@pytest.fixture(scope="session")
def _three_systems() -> tuple[World, dict[str, ASGIApp]]:
    """One world with three systems, built once (apps cost a second each)."""
    world = World()
    sims = [BillingSimulator(world), ErpSimulator(world), RevrecSimulator(world)]
    return world, {sim.name: build_app(sim) for sim in sims}


@pytest.fixture
async def world(
    _three_systems: tuple[World, dict[str, ASGIApp]],
) -> AsyncIterator[tuple[World, Clients]]:
    world, apps = _three_systems
    world.reset(seed=2, start_at="2026-01-01T00:00:00Z")
    clients = {
        name: httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=f"http://{name}.test",
            headers={"X-Sim-Control-Token": world.control_token},
        )
        for name, app in apps.items()
    }
    yield world, clients
    for client in clients.values():
        await client.aclose()


async def test_erp_periods_close_in_order_and_show_in_the_erp_api(
    world: tuple[World, Clients],
) -> None:
    w, c = world
    early = await c["erp"].post("/_sim/periods/UK/2026-02", json={"state": "closed"})
    assert early.status_code == 400  # January is still open: NetSuite's rule, its envelope
    assert "o:errorDetails" in early.json()
    r = await c["erp"].post("/_sim/periods/UK/2026-01", json={"state": "closed"})
    assert r.status_code == 200 and r.json()["state"] == "closed"
    token = w.systems["erp"].credentials()["token"]
    period = await c["erp"].get(
        "/services/rest/record/v1/accountingPeriod/eid:UK-2026-01",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert period.json()["closed"] is True
    other = await c["erp"].get(
        "/services/rest/record/v1/accountingPeriod/eid:US-2026-01",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert other.json()["closed"] is False  # one subsidiary at a time
    locked = await c["erp"].post("/_sim/periods/US/2026-01", json={"state": "locked"})
    assert locked.json()["state"] == "locked"


async def test_revrec_periods_close_once_ended_and_billing_has_none(
    world: tuple[World, Clients],
) -> None:
    w, c = world
    token = w.systems["revrec"].credentials()["token"]
    await c["revrec"].put(
        "/v1/entities/us",
        json={"functional_currency": "usd"},
        headers={"Authorization": f"Bearer {token}"},
    )
    too_soon = await c["revrec"].post("/_sim/periods/us/2026-01", json={"state": "closed"})
    assert too_soon.status_code == 409  # the month has not ended on the sim clock
    await c["revrec"].post("/_sim/clock/advance", json={"duration": "P1M"})
    r = await c["revrec"].post("/_sim/periods/us/2026-01", json={"state": "closed"})
    assert r.status_code == 200 and r.json()["state"] == "closed"
    assert (
        await c["revrec"].post("/_sim/periods/us/2026-02", json={"state": "locked"})
    ).status_code == 409
    none = await c["billing"].post("/_sim/periods/us/2026-01", json={"state": "closed"})
    assert none.status_code == 404 and none.json()["error"]["code"] == "not_supported"

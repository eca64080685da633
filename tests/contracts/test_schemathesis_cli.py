"""An independent check of the contracts: the schemathesis CLI, every check on, against each
simulator served on a free port with its own contract. It must find nothing.

A bounded run is part of ``make test``; ``-m slow`` runs a longer one. A system is one line of
``TARGETS``: its contract, the simulator that serves it and the headers that authenticate.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from simulators.common.server import Site, ThreadedServer
from simulators.common.simulator import CONTRACTS
from tests.conftest import SessionApp, SessionApps
from tests.schemathesis_cli import schemathesis_command

START_AT = "2026-01-15T00:00:00Z"
# What OpenAPI cannot state (rules on state, or across fields), per operation, with reasons.
CONFIG = CONTRACTS.parent / "schemathesis.toml"


def bearer(credential: str) -> Callable[[SessionApp], dict[str, str]]:
    return lambda served: {"Authorization": f"Bearer {served.sim.credentials()[credential]}"}


def control_token(served: SessionApp) -> dict[str, str]:
    return {"X-Sim-Control-Token": served.world.control_token}


@dataclass(frozen=True)
class Target:
    contract: str
    system: str  # the simulator that serves it
    headers: Callable[[SessionApp], dict[str, str]]


TARGETS = {
    "crm": Target("crm.yaml", "crm", bearer("session_id")),
    "erp": Target("erp.yaml", "erp", bearer("token")),
    "revrec": Target("revrec.yaml", "revrec", bearer("token")),
    "control": Target("control.yaml", "revrec", control_token),
}


def schemathesis(url: str, target: Target, served: SessionApp, examples: int) -> str:
    """Run the CLI; its output, with the exit status checked by the caller."""
    contract = CONTRACTS / target.contract
    command = schemathesis_command(CONFIG, contract, url, target.headers(served), examples)
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    return f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"


@pytest.fixture
def serve(session_apps: SessionApps) -> Iterator[Callable[[Target], tuple[str, SessionApp]]]:
    servers: list[ThreadedServer] = []

    def start(target: Target) -> tuple[str, SessionApp]:
        served = session_apps.fresh(target.system, 1, START_AT)
        server = ThreadedServer([Site(target.system, served.app)])
        server.start()
        servers.append(server)
        return server.urls[target.system], served

    yield start
    for server in servers:
        server.stop()


def _run(serve: Callable[[Target], tuple[str, SessionApp]], name: str, examples: int) -> None:
    target = TARGETS[name]
    url, served = serve(target)
    output = schemathesis(url, target, served, examples)
    assert output.startswith("exit 0\n"), output[-20000:]


# Bounded by its examples, not by the clock: on a shared machine the ERP run alone takes minutes.
@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_schemathesis_finds_nothing(
    serve: Callable[[Target], tuple[str, SessionApp]], name: str
) -> None:
    _run(serve, name, examples=5)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_schemathesis_finds_nothing_in_a_longer_run(
    serve: Callable[[Target], tuple[str, SessionApp]], name: str
) -> None:
    _run(serve, name, examples=100)

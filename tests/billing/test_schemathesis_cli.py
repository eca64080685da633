"""The billing contract tells the truth: the schemathesis CLI, every check on, against the billing
simulator served on a free port with its own contract, finds nothing.

``tests/billing/schemathesis.toml`` lists the rules OpenAPI 3.0 cannot state (and why);
``tests/billing/schemathesis_hooks.py`` gives the CLI Stripe's bracket notation. A bounded
run is part of ``make test``; ``-m slow`` runs a longer one.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from simulators.billing.simulator import BillingSimulator
from simulators.common.app import build_app
from simulators.common.server import Site, ThreadedServer
from simulators.common.simulator import CONTRACTS
from simulators.common.world import World
from tests.schemathesis_cli import schemathesis_command

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("schemathesis.toml")
HOOKS = "tests.billing.schemathesis_hooks"


@pytest.fixture
def served() -> Iterator[tuple[str, BillingSimulator]]:
    world = World(seed=1, start_at="2026-01-15T00:00:00Z")
    sim = BillingSimulator(world)
    with ThreadedServer([Site("billing", build_app(sim, validate_responses=False))]) as server:
        yield server.urls["billing"], sim


def _unparsable_requests_get_the_vendor_envelope(url: str) -> bool:
    """Whether the server layer answers a request it cannot parse (an overlong URL) in the
    simulator's own envelope; until it does, such answers are plain text (simulators/common)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), 10) as conn:
        conn.sendall(b"GET /v1/customers/" + b"x" * 70_000 + b" HTTP/1.1\r\nHost: t\r\n\r\n")
        head = conn.recv(4096).lower()
    return b"application/json" in head


def _schemathesis(url: str, sim: BillingSimulator, examples: int) -> str:
    command = schemathesis_command(
        CONFIG,
        CONTRACTS / "billing.yaml",
        url,
        {"Authorization": f"Bearer {sim.api_key}"},
        examples,
    )
    env = {**os.environ, "SCHEMATHESIS_HOOKS": HOOKS, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=3000)
    return f"exit {done.returncode}\n{done.stdout[-20000:]}\n{done.stderr[-5000:]}"


def _run(served: tuple[str, BillingSimulator], examples: int) -> None:
    url, sim = served
    if not _unparsable_requests_get_the_vendor_envelope(url):
        pytest.xfail("the server layer still answers unparsable requests in plain text")
    output = _schemathesis(url, sim, examples)
    assert output.startswith("exit 0\n"), output


@pytest.mark.timeout(1200)
def test_schemathesis_finds_nothing_in_the_billing_contract(
    served: tuple[str, BillingSimulator],
) -> None:
    _run(served, examples=5)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_schemathesis_finds_nothing_in_a_longer_run(
    served: tuple[str, BillingSimulator], request: pytest.FixtureRequest
) -> None:
    if "slow" not in (request.config.option.markexpr or ""):
        pytest.skip("the long run: pytest -m slow tests/billing/test_schemathesis_cli.py")
    _run(served, examples=100)

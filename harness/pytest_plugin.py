"""A pytest plugin: fixtures for a served world and for playing scenarios against an integration.

Enable with ``-p harness.pytest_plugin`` or ``pytest_plugins = ["harness.pytest_plugin"]`` in a
conftest (the ``finsim-harness`` package also registers it as the ``harness`` plugin). Every
world binds free loopback ports, so tests run side by side under pytest-xdist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.actors import Actors
from harness.config import HarnessConfig, load_config
from harness.runner import ScenarioResult, run_scenario
from harness.scenario import Scenario, load_scenario
from harness.session import Session, open_session


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "finsim harness")
    group.addoption(
        "--harness-config",
        default=None,
        help="harness.toml declaring the integration under test (default: <rootdir>/harness.toml)",
    )


@dataclass
class ServedWorld:
    """Four simulators on loopback with no integration: URLs, credentials and the world."""

    session: Session
    actors: Actors

    @property
    def world(self) -> Any:
        return self.session.stack.world

    @property
    def context(self) -> dict[str, Any]:
        """What harness.toml templates see: ``context["billing"]["url"]``, ``["api_key"]``…"""
        return self.session.context

    def url(self, system: str) -> str:
        return str(self.session.context[system]["url"])

    def settle(self, timeout_s: float = 30.0) -> bool:
        return self.session.settle(timeout_s=timeout_s).settled


@pytest.fixture
def harness_config(request: pytest.FixtureRequest) -> HarnessConfig:
    """The harness.toml given by --harness-config, or the one at the root of the project."""
    option = request.config.getoption("--harness-config")
    path = Path(option) if option else Path(request.config.rootpath) / "harness.toml"
    return load_config(path)


@pytest.fixture
def served_world(harness_config: HarnessConfig) -> Iterator[ServedWorld]:
    """A fresh world served on free ports, without starting the integration."""
    config = harness_config.model_copy(update={"integration": None})
    with open_session(config, cwd=Path.cwd()) as session:
        actors = Actors(session.context)
        try:
            yield ServedWorld(session, actors)
        finally:
            actors.close()


@pytest.fixture
def play_scenario(
    harness_config: HarnessConfig, request: pytest.FixtureRequest
) -> Callable[..., ScenarioResult]:
    """``play_scenario("scenarios/01_new_business.yaml", seed=7)`` → the ScenarioResult:
    a fresh world and a fresh integration process per call."""
    option = request.config.getoption("--harness-config")
    cwd = Path(option).parent.resolve() if option else Path(request.config.rootpath)

    def play(scenario: Scenario | str | Path, seed: int | None = None) -> ScenarioResult:
        loaded = scenario if isinstance(scenario, Scenario) else load_scenario(Path(scenario))
        return run_scenario(loaded, harness_config, cwd=cwd, seed=seed)

    return play


def describe(result: ScenarioResult) -> str:
    """A failure message that names every violation and the seed that reproduces it."""
    lines = [f"{result.name}: {len(result.violations)} violation(s), seed {result.seed}"]
    lines += [f"  {v}" for v in result.violations]
    if result.error:
        lines.append(result.error)
    return "\n".join(lines)

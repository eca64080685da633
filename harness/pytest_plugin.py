"""A pytest plugin: fixtures for served simulators and for playing scenarios against an integration.

Registered by the ``finsim-harness`` package as the ``harness`` plugin (or enable it with
``-p harness.pytest_plugin``). Every world binds free loopback ports, so tests run side by side
under pytest-xdist. Heavy imports wait for the first fixture used, so installing the harness
does not slow down test sessions that never use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from harness.config import HarnessConfig
    from harness.runner import ScenarioResult
    from harness.scenario import Scenario
    from harness.served import ServedWorld, Simulators


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "finsim harness")
    group.addoption(
        "--harness-config",
        default=None,
        help="harness.toml declaring the integration under test "
        "(default: the nearest harness.toml from the rootdir upwards)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "finsim(systems=[...], seed=0): which simulators finsim_simulators serves (default all)",
    )


def __getattr__(name: str) -> Any:
    # ServedWorld lives with the served simulators; importing it here on first use keeps the
    # plugin's import (in every pytest session of an environment that has it) cheap.
    if name == "ServedWorld":
        from harness.served import ServedWorld

        return ServedWorld
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _config_path(request: pytest.FixtureRequest) -> Path | None:
    from harness.config import ConfigError, locate_config

    option = request.config.getoption("--harness-config")
    if option:
        return locate_config(option)
    try:
        return locate_config(None, start=Path(request.config.rootpath))
    except ConfigError:
        return None


@pytest.fixture
def harness_config(request: pytest.FixtureRequest) -> HarnessConfig:
    """The harness.toml given by --harness-config, or the nearest one from the rootdir up;
    with none, the defaults (simulators only, no integration)."""
    from harness.config import HarnessConfig, load_config

    path = _config_path(request)
    return HarnessConfig() if path is None else load_config(path)


@pytest.fixture
def finsim_simulators(request: pytest.FixtureRequest) -> Iterator[Simulators]:
    """Simulators in a fresh world for one test, no harness.toml needed:
    ``finsim_simulators.billing.url``, ``.billing.api_key``, ``.settle()``. Choose them with
    ``@pytest.mark.finsim(systems=["billing", "erp"], seed=7)``; all four by default."""
    from harness.served import serve

    marker = request.node.get_closest_marker("finsim")
    options = dict(marker.kwargs) if marker else {}
    systems = options.pop("systems", ())
    with serve(*systems, **options) as sims:
        yield sims


@pytest.fixture
def served_world(harness_config: HarnessConfig) -> Iterator[ServedWorld]:
    """A fresh world served on free ports, without starting the integration."""
    from harness.actors import Actors
    from harness.served import ServedWorld
    from harness.session import open_session

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
    path = _config_path(request)
    cwd = path.parent.resolve() if path is not None else Path(request.config.rootpath)

    def play(scenario: Scenario | str | Path, seed: int | None = None) -> ScenarioResult:
        from harness.runner import run_scenario
        from harness.scenario import Scenario, load_scenario

        if harness_config.integration is None:
            where = path or "no harness.toml found"
            pytest.fail(f"play_scenario needs an [integration] in harness.toml ({where})")
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

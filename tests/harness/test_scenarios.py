"""Every shipped scenario passes against the reference integration: what `make demo` shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import load_config
from harness.pytest_plugin import describe
from harness.runner import run_scenario
from harness.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_passes_against_the_reference_integration(path: Path) -> None:
    result = run_scenario(load_scenario(path), load_config(ROOT / "harness.toml"), cwd=ROOT)
    assert result.passed, describe(result)
    # Every step settled and was judged; nothing was left deferred at the end.
    assert result.steps[-1].kind == "final" and result.steps[-1].settled

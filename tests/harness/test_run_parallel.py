"""`harness run -n N`: scenarios played side by side, each in its own process, world,
integration and ports — the same verdicts and fingerprints as one after another."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.config import load_config
from harness.runner import run_scenario
from harness.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ["scenarios/01_new_business.yaml", "scenarios/19_billing_first_self_serve.yaml"]


@pytest.mark.timeout(600)
def test_parallel_runs_give_the_sequential_verdicts_and_fingerprints(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", *SCENARIOS, "-n", "2", "--json", str(report)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    parallel = json.loads(report.read_text())["scenarios"]
    assert [s["source"] for s in parallel] == SCENARIOS  # in the order asked, not of finishing
    config = load_config(ROOT / "harness.toml")
    for path, played in zip(SCENARIOS, parallel, strict=True):
        alone = run_scenario(load_scenario(ROOT / path), config, cwd=ROOT)
        assert played["passed"] and alone.passed
        assert played["fingerprint"] == alone.fingerprint


def test_a_worker_count_below_one_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", SCENARIOS[0], "-n", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "-n takes a number of workers" in done.stdout + done.stderr

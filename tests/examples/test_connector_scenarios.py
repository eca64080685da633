"""The second example integration, judged as any team's would be: it passes every scenario with
stand-ins playing what it does not own, a short fuzz finds nothing, and each of its mutants is
caught by its named rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import load_config
from harness.fuzz.run import fuzz
from harness.judging import Judge
from harness.mutants import Mutant, load_mutants, play_mutant, subject
from harness.pytest_plugin import describe
from harness.runner import run_scenario
from harness.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
DECLARATION = ROOT / "examples" / "stripe_netsuite_connector" / "harness.toml"
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
CONNECTOR = subject(DECLARATION)
MUTANTS = load_mutants(CONNECTOR.mutants_file)


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_the_connector_passes_every_scenario(path: Path) -> None:
    config = load_config(DECLARATION)
    result = run_scenario(load_scenario(path), config, cwd=DECLARATION.parent)
    assert result.passed, describe(result)
    assert result.exceptions["declared"], result.exceptions
    assert result.exceptions["open"] == 0, result.exceptions  # every refusal mended and replayed
    assert result.judged["owned"] == [
        "erp.customers",
        "erp.invoices",
        "erp.payments",
        "erp.credit_memos",
    ]


def test_a_short_fuzz_of_the_connector_finds_nothing(tmp_path: Path) -> None:
    """Generated lifecycles (faults, kills, credit notes, closes) through the connector, judged
    after every step; small enough for `make test` (a lifecycle costs about 13 s)."""
    config = load_config(DECLARATION)
    here = DECLARATION.parent
    report = fuzz(
        config,
        cwd=here,
        judge=Judge.from_config(config, base=str(here)),
        seed=5,
        examples=2,
        steps=4,
        max_time_s=90,
        out=tmp_path,
    )
    assert not report.errors, report.errors
    assert not report.found, [str(v) for v in report.failure.violations]  # type: ignore[union-attr]
    assert len(report.examples) >= 1
    assert all(r.steps[-1].kind == "final" and r.passed for r in report.examples)
    assert not list(tmp_path.iterdir())  # no failing lifecycle written


def test_the_connector_has_at_least_six_realistic_mutants() -> None:
    assert len(MUTANTS) >= 6
    assert len({m.name for m in MUTANTS}) == len(MUTANTS)


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_each_connector_mutant_is_caught_by_its_named_rule(mutant: Mutant, tmp_path: Path) -> None:
    verdict = play_mutant(mutant, CONNECTOR, tmp_path)
    assert verdict.caught, f"{mutant.name} escaped {mutant.caught_by}:\n{describe(verdict.result)}"

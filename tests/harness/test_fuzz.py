"""`harness fuzz`: generated lifecycles are valid scenarios; against the reference integration
it finds nothing; against a mutant it finds the bug, shrinks it and writes a scenario that
reproduces it with `harness run`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.cli import main
from harness.config import load_config
from harness.fuzz.life import FuzzLifecycle
from harness.fuzz.machine import Drawn, Probe, lifecycle_machine
from harness.fuzz.run import FIXTURES, fuzz
from harness.judging import Judge
from harness.mutants import load_mutants, materialize, subject
from harness.scenario import Step, dump_scenario, load_scenario, scenario_from_data
from harness.steps import STEPS

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "harness.toml"
# Small enough for `make test`: a scenario costs seconds.
EXAMPLES, STEPS_PER_EXAMPLE = 2, 5


def test_the_machine_has_a_rule_for_every_generated_step_kind() -> None:
    rules = {name for name in vars(lifecycle_machine(_fuzzer_stub())) if name.startswith("play_")}
    generated = {k for k, cls in STEPS.items() if cls.not_generated is None}
    assert {n.removeprefix("play_").rstrip("_0123456789") for n in rules} == {
        k.replace(".", "_") for k in generated
    }
    # Every kind is generated or says why not; the ones not generated move no money.
    assert all(STEPS[k].not_generated for k in set(STEPS) - generated)
    assert not any(STEPS[k].moves_money for k in set(STEPS) - generated)


def _fuzzer_stub() -> Any:
    return type("Stub", (), {"over_budget": False})()


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_every_generated_lifecycle_is_a_scenario_the_loader_accepts(data: st.DataObject) -> None:
    """Generation without playing: each step drawn as the fuzzer draws it, the lifecycle then
    checked whole by the scenario loader (names, deals won and live, clock, fault rules)."""
    base = load_scenario(FIXTURES)
    scenario = base.model_copy(update={"steps": []})
    life = FuzzLifecycle(scenario)
    chooser = Drawn(data)
    generated = [k for k, cls in STEPS.items() if cls.not_generated is None]
    for _ in range(data.draw(st.integers(1, 12))):
        # While the integration is down, only its start and what people do anyway.
        down = life.ctx.stopped
        possible = [
            k
            for k in generated
            if (not down or k == "integration" or STEPS[k].plays_while_down)
            and STEPS[k].generate(Probe(), life) is not None
        ]
        kind = chooser.pick(possible)
        params = STEPS[kind].generate(chooser, life)
        assert params is not None, kind
        step = Step(kind=kind, params=STEPS[kind].model_validate(params))
        scenario.steps.append(step)
        life.note(step)
    again = scenario_from_data(yaml.safe_load(dump_scenario(scenario)))
    assert [s.kind for s in again.steps] == [s.kind for s in scenario.steps]


def test_a_short_fuzz_of_the_reference_integration_finds_nothing(tmp_path: Path) -> None:
    config = load_config(CONFIG)
    report = fuzz(
        config,
        cwd=ROOT,
        judge=Judge.from_config(config, base=str(ROOT)),
        seed=3,
        examples=EXAMPLES,
        steps=STEPS_PER_EXAMPLE,
        max_time_s=150,
        out=tmp_path,
    )
    assert not report.errors, report.errors
    assert not report.found, [str(v) for v in report.failure.violations]  # type: ignore[union-attr]
    # Lifecycles were played and judged, each beyond its opening deal.
    assert len(report.examples) >= 1
    assert all(r.steps[-1].kind == "final" and r.passed for r in report.examples)
    assert sum(len(r.steps) for r in report.examples) > 4 * len(report.examples)
    assert not list(tmp_path.iterdir())


def test_a_fuzz_of_a_mutant_finds_it_and_writes_a_scenario_that_reproduces_it(
    tmp_path: Path,
) -> None:
    reference = subject(CONFIG)
    (mutant,) = [m for m in load_mutants(reference.mutants_file) if m.name == "decimal_slip"]
    root = materialize(mutant, tmp_path / "mutant", reference)
    spec = reference.config.integration
    assert spec is not None
    config = reference.config.model_copy(
        update={"integration": spec.model_copy(update={"cwd": str(root)})}
    )
    judge = Judge.from_config(config, base=str(ROOT))
    report = fuzz(
        config,
        cwd=ROOT,
        judge=judge,
        seed=0,
        examples=3,
        steps=4,
        max_time_s=30,
        out=tmp_path / "out",
    )
    assert report.found and report.scenario_path is not None
    assert mutant.caught_by in {v.rule for v in report.failure.violations}  # type: ignore[union-attr]
    assert report.reproduction is not None and mutant.caught_by in report.reproduction.rules
    # The file is a scenario `harness run` plays: against the mutant it fails by the same rule...
    mutant_toml = tmp_path / "harness.toml"
    mutant_toml.write_text(CONFIG.read_text().replace('cwd = "."', f'cwd = "{root}"', 1))
    found = tmp_path / "replay.json"
    run = ["run", str(report.scenario_path), "--quiet"]
    assert main([*run, "--integration", str(mutant_toml), "--json", str(found)]) == 1
    assert mutant.caught_by in {
        v["rule"] for s in json.loads(found.read_text())["scenarios"] for v in s["violations"]
    }
    # ...and against the reference integration it passes: the finding is the mutant's.
    assert main([*run, "--integration", str(CONFIG)]) == 0


def test_harness_fuzz_refuses_bad_arguments_and_bad_fixtures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fuzz", "--integration", str(CONFIG), "--examples", "0"]) == 2
    bad = tmp_path / "fixtures.yaml"
    bad.write_text(FIXTURES.read_text().replace("entity: us, currency", "entity: usa, currency", 1))
    assert main(["fuzz", "--integration", str(CONFIG), "--fixtures", str(bad)]) == 2
    out = capsys.readouterr().out
    assert "no entity named 'usa'" in out and "Traceback" not in out


def test_an_integration_that_will_not_start_is_an_error_not_a_finding(tmp_path: Path) -> None:
    config = load_config(CONFIG)
    assert config.integration is not None
    broken = config.model_copy(
        update={
            "integration": config.integration.model_copy(
                update={"command": ["python", "-c", "import sys; print('boom'); sys.exit(3)"]}
            )
        }
    )
    report = fuzz(
        broken,
        cwd=ROOT,
        judge=Judge.from_config(broken, base=str(ROOT)),
        examples=2,
        steps=2,
        max_time_s=60,
        out=tmp_path,
    )
    assert not report.found and not list(tmp_path.iterdir())
    assert report.errors and "boom" in report.errors[0]

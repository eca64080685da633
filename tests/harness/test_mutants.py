"""Every check can fail: each mutant of the reference integration is caught by its named rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.mutants import (
    Edit,
    Mutant,
    MutantError,
    load_mutants,
    materialize,
    play_mutant,
    subject,
)
from harness.pytest_plugin import describe

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = subject(ROOT / "harness.toml")
MUTANTS = load_mutants(REFERENCE.mutants_file)


def test_at_least_twelve_mutants_with_distinct_bugs() -> None:
    assert len(MUTANTS) >= 12
    assert len({m.name for m in MUTANTS}) == len(MUTANTS)
    assert len({m.edits for m in MUTANTS}) == len(MUTANTS)


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_the_mutant_is_caught_by_its_named_rule(mutant: Mutant, tmp_path: Path) -> None:
    verdict = play_mutant(mutant, REFERENCE, tmp_path)
    assert verdict.caught, f"{mutant.name} escaped {mutant.caught_by}:\n{describe(verdict.result)}"


def test_a_snippet_that_drifted_is_an_error_not_a_silent_reference(tmp_path: Path) -> None:
    drifted = Mutant("drifted", "", (Edit("sync.py", "no such code", "x"),), "", "")
    with pytest.raises(MutantError):
        materialize(drifted, tmp_path, REFERENCE)


def test_a_malformed_mutants_file_names_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "mutants.toml"
    path.write_text('[[mutant]]\nname = "x"\nbug = "y"\nscenario = "s.yaml"\n')
    with pytest.raises(MutantError, match="mutant #1"):
        load_mutants(path)

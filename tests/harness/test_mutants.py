"""Every check can fail: each mutant of the reference integration is caught by its named rule.

Each mutant plays one scenario (about 5–13 s on a served world from the pool, with the
machine's load). `make test` plays every one of them — the mutant of every obligation in
docs/obligations.md and the map's "more mutants" — so each obligation is shown broken and
caught on every run."""

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
from tests.harness.test_obligations import OBLIGATIONS

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = subject(ROOT / "harness.toml")
MUTANTS = load_mutants(REFERENCE.mutants_file)


def test_at_least_thirty_mutants_with_distinct_bugs() -> None:
    assert len(MUTANTS) >= 30
    assert len({m.name for m in MUTANTS}) == len(MUTANTS)
    assert len({m.edits for m in MUTANTS}) == len(MUTANTS)
    assert len({m.bug for m in MUTANTS}) == len(MUTANTS)


def test_every_mutant_becomes_a_copy_that_differs_from_the_reference(tmp_path: Path) -> None:
    source = REFERENCE.workdir / REFERENCE.source
    for mutant in MUTANTS:
        root = materialize(mutant, tmp_path / mutant.name, REFERENCE)
        for edit in mutant.edits:
            mutated = (root / REFERENCE.source / edit.file).read_text(encoding="utf-8")
            assert mutated != (source / edit.file).read_text(encoding="utf-8"), mutant.name


# One mutant per obligation, the map's own choice; the others are the map's "more mutants".
OBLIGATION_MUTANTS = {row[4] for row in OBLIGATIONS}
REPRESENTATIVE = [m for m in MUTANTS if m.name in OBLIGATION_MUTANTS]
MORE = [m for m in MUTANTS if m.name not in OBLIGATION_MUTANTS]


def test_the_representative_set_is_one_mutant_per_obligation() -> None:
    assert {m.name for m in REPRESENTATIVE} == OBLIGATION_MUTANTS
    assert len(REPRESENTATIVE) + len(MORE) == len(MUTANTS)


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

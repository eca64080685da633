"""The obligation map (docs/obligations.md) covers the whole flow, and names only real things."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.invariants import REGISTRY
from harness.mutants import Mutant, load_mutants, subject

ROOT = Path(__file__).resolve().parents[2]
MAP = (ROOT / "docs" / "obligations.md").read_text(encoding="utf-8")
NONE = "—"  # a "more mutants" cell with none
FLOW = (ROOT / "docs" / "reference-flow.md").read_text(encoding="utf-8")
MUTANTS = {m.name: m for m in load_mutants(subject(ROOT / "harness.toml").mutants_file)}


def table(name: str) -> list[list[str]]:
    """The rows of the table between ``<!-- name:start -->`` and ``<!-- name:end -->``."""
    found = re.search(rf"<!-- {name}:start -->\n(.*?)<!-- {name}:end -->", MAP, re.S)
    assert found, f"docs/obligations.md has no {name} table"
    rows = [line for line in found.group(1).splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def names(cell: str) -> list[str]:
    """The comma-separated names of a cell (none for ``—``)."""
    return [] if cell == NONE else [name.strip() for name in cell.split(",")]


def _flow_obligations() -> dict[str, str]:
    """id → wording: the numbered points' titles, and ``9.k`` for the k-th "Always" rule."""
    points = {m[1]: m[2] for m in re.finditer(r"^(\d+b?)\. \*\*(.+?)\*\*", FLOW, re.M)}
    always = re.search(r"^9\. \*\*Always\*\*: (.*?)\n\n", FLOW, re.M | re.S)
    assert always and points.pop("9") == "Always"
    rules = " ".join(always.group(1).split()).rstrip(".").split("; ")
    return points | {f"9.{k}": rule for k, rule in enumerate(rules, start=1)}


OBLIGATIONS = table("obligations")
CHANNELS = table("channels")


def test_every_obligation_of_the_flow_is_in_the_map_in_its_own_words() -> None:
    flow = _flow_obligations()
    assert len(flow) >= 16  # 1, 1b, 2-8 and the seven rules under "Always"
    assert {row[0] for row in OBLIGATIONS} == set(flow)
    for ident, wording, *_ in OBLIGATIONS:
        if ident.startswith("9."):
            assert wording in flow[ident], f"{ident}: {wording!r} is not in {flow[ident]!r}"
        else:
            assert wording == flow[ident], f"{ident}: {wording!r} is not {flow[ident]!r}"


@pytest.mark.parametrize("row", OBLIGATIONS, ids=[f"{r[0]} {r[4]}" for r in OBLIGATIONS])
def test_each_obligation_has_a_scenario_a_rule_and_a_mutant_caught_by_it_there(
    row: list[str],
) -> None:
    assert len(row) == 6 and all(row), f"an empty cell: {row}"
    _, _, scenario, rule, mutant, more = row
    assert (ROOT / "scenarios" / f"{scenario}.yaml").is_file(), scenario
    assert rule in REGISTRY, rule
    assert mutant in MUTANTS, mutant
    defined: Mutant = MUTANTS[mutant]
    assert (defined.scenario, defined.caught_by) == (f"{scenario}.yaml", rule), (
        f"mutants.toml plays {mutant} on {defined.scenario} for {defined.caught_by}"
    )
    for name in names(more):
        assert name in MUTANTS, name


@pytest.mark.parametrize("row", CHANNELS, ids=[r[0] for r in CHANNELS])
def test_each_channel_names_real_scenarios_and_mutants_played_on_them(row: list[str]) -> None:
    assert len(row) == 4 and all(row), f"an empty cell: {row}"
    _, _, scenarios, mutants = row
    files = {f"{name}.yaml" for name in names(scenarios)}
    assert all((ROOT / "scenarios" / f).is_file() for f in files), files
    for name in names(mutants):
        assert name in MUTANTS, name
        assert MUTANTS[name].scenario in files, f"{name} is played on {MUTANTS[name].scenario}"


def test_every_mutant_is_on_the_map() -> None:
    named = {name for row in OBLIGATIONS for name in [row[4], *names(row[5])]}
    named |= {name for row in CHANNELS for name in names(row[3])}
    assert set(MUTANTS) - named == set()


def test_the_adversarys_channels_are_all_there() -> None:
    channels = {row[0] for row in CHANNELS}
    assert channels >= {
        "webhook authenticity",
        "crash timing",
        "date boundaries",
        "currency exponents",
        "faults on every system's writes",
        "changes made outside the integration",
        "bursts out of order",
    }

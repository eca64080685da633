"""Mutants: copies of an integration with one realistic bug each, and the rules that catch them.

A mutant is made, not stored: the integration's source (``[integration] source`` in its
harness.toml) is copied into a scratch directory and one snippet is replaced, so every mutant
tracks the integration as it evolves. A snippet that no longer occurs exactly once is an error,
so a mutant can never silently become the original. The mutants of an integration are data,
``mutants.toml`` beside its code; `harness mutants` plays each against the scenario that should
expose it and demands that its named rule fires.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from harness.config import ConfigError, HarnessConfig, load_config
from harness.runner import ScenarioResult, run_scenario
from harness.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
MUTANTS_FILE = "mutants.toml"


@dataclass(frozen=True)
class Edit:
    file: str  # relative to the integration's source directory
    find: str
    replace: str


@dataclass(frozen=True)
class Mutant:
    name: str
    bug: str  # what a developer got wrong, in one line
    edits: tuple[Edit, ...]  # one bug, sometimes in two places
    scenario: str  # the scenario that exposes it (under scenarios/)
    caught_by: str  # the rule that must fire


class MutantError(RuntimeError):
    """The mutant's snippet is not in the integration exactly once, or its file is unusable."""


@dataclass(frozen=True)
class Subject:
    """The integration being mutated: its configuration, where it runs from and its code."""

    config: HarnessConfig
    cwd: Path  # the directory harness.toml is in (its paths are relative to it)
    source: Path  # the integration's code, relative to the integration's cwd

    @property
    def workdir(self) -> Path:
        spec = self.config.integration
        assert spec is not None
        return (self.cwd / spec.cwd).resolve()

    @property
    def mutants_file(self) -> Path:
        return self.workdir / self.source / MUTANTS_FILE


def subject(config_path: Path) -> Subject:
    """The integration a harness.toml declares, with the source its mutants edit."""
    config = load_config(config_path)
    spec = config.integration
    if spec is None or spec.source is None:
        raise ConfigError(
            f"{config_path}: integration.source: say where the integration's code is "
            "(relative to integration.cwd) to mutate it"
        )
    return Subject(config, config_path.parent.resolve(), Path(spec.source))


def load_mutants(path: Path) -> list[Mutant]:
    """The mutants in a ``mutants.toml``; a malformed entry is a MutantError naming it."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise MutantError(f"{path}: {exc}") from None
    mutants = []
    for n, entry in enumerate(data.get("mutant", []), start=1):
        try:
            edits = tuple(Edit(e["file"], e["find"], e["replace"]) for e in entry["edit"])
            mutants.append(
                Mutant(entry["name"], entry["bug"], edits, entry["scenario"], entry["caught_by"])
            )
        except (KeyError, TypeError) as exc:
            raise MutantError(f"{path}: mutant #{n}: missing or malformed {exc}") from None
    return mutants


def materialize(mutant: Mutant, into: Path, subject: Subject) -> Path:
    """Copy the integration's source to the same place under ``into`` (with the packages
    above it), put the bug in, and return ``into``: the cwd to start the mutant from."""
    source = subject.workdir / subject.source
    target = into / subject.source
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    for parent in subject.source.parents:
        marker = subject.workdir / parent / "__init__.py"
        if parent != Path(".") and marker.exists():
            (into / parent / "__init__.py").touch()
    for edit in mutant.edits:
        path = target / edit.file
        text = path.read_text(encoding="utf-8")
        count = text.count(edit.find)
        if count != 1:
            raise MutantError(
                f"mutant {mutant.name}: a snippet occurs {count} times in {edit.file}, not once"
            )
        path.write_text(text.replace(edit.find, edit.replace), encoding="utf-8")
    return into


@dataclass
class MutantVerdict:
    mutant: Mutant
    result: ScenarioResult

    @property
    def caught(self) -> bool:
        return self.mutant.caught_by in self.result.rules


def play_mutant(
    mutant: Mutant, subject: Subject, scratch: Path, scenarios: Path = ROOT / "scenarios"
) -> MutantVerdict:
    root = materialize(mutant, scratch / mutant.name, subject)
    spec = subject.config.integration
    assert spec is not None
    config = subject.config.model_copy(
        update={"integration": spec.model_copy(update={"cwd": str(root)})}
    )
    scenario = load_scenario(scenarios / mutant.scenario)
    result = run_scenario(scenario, config, cwd=subject.cwd)
    return MutantVerdict(mutant, result)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "mutants", help="prove the checks: play each buggy copy of the integration"
    )
    parser.add_argument("--integration", default="harness.toml")
    parser.add_argument("-k", dest="keyword", help="only mutants whose name contains this")
    parser.set_defaults(func=cmd_mutants)


def cmd_mutants(args: argparse.Namespace) -> int:
    console = Console()
    try:
        who = subject(Path(args.integration))
        mutants = load_mutants(who.mutants_file)
    except (ConfigError, MutantError) as exc:
        console.print(f"[red]{exc}[/]")
        return 2
    chosen = [m for m in mutants if args.keyword is None or args.keyword in m.name]
    table = Table(title=f"Mutants of {who.source}")
    for column in ("mutant", "scenario", "must be caught by", "caught", "rules fired"):
        table.add_column(column)
    missed = 0
    with tempfile.TemporaryDirectory(prefix="finsim-mutants-") as scratch:
        for mutant in chosen:
            console.print(f"[bold]{mutant.name}[/] on {mutant.scenario}: {mutant.bug}")
            verdict = play_mutant(mutant, who, Path(scratch))
            missed += not verdict.caught
            table.add_row(
                mutant.name,
                mutant.scenario.removesuffix(".yaml"),
                mutant.caught_by,
                "[green]yes[/]" if verdict.caught else "[red]NO[/]",
                ", ".join(verdict.result.rules),
            )
    console.print(table)
    return 1 if missed else 0

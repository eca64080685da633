"""Runs the labelled corpus of contract pairs through the diff engine and scores it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from harness.contracts.diff import Change, Document, Level, diff_documents, read_source

CORPUS = Path(__file__).resolve().parent / "corpus"
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Outcome:
    name: str
    expected: str  # breaking | non-breaking
    got: str
    missing: tuple[str, ...]  # expected rule ids that did not fire
    unexpected: tuple[str, ...]  # changes found where the label says there are none
    changes: tuple[Change, ...]

    @property
    def ok(self) -> bool:
        return self.expected == self.got and not self.missing and not self.unexpected

    def explain(self) -> str:
        found = ", ".join(f"{c.level.value}:{c.rule}" for c in self.changes) or "no changes"
        return (
            f"{self.name}: expected {self.expected}, got {self.got}"
            f"{f'; missing {list(self.missing)}' if self.missing else ''}"
            f"{f'; unexpected {list(self.unexpected)}' if self.unexpected else ''} ({found})"
        )


@cache
def labels() -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = yaml.safe_load((CORPUS / "labels.yaml").read_text())
    return data


def _step(doc: Any, step: dict[str, Any]) -> None:
    """One JSON-patch-like step; a path that does not exist raises, so stale patches fail."""
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in step["path"].split("/")[1:]]
    parent = doc
    for token in tokens[:-1]:
        parent = parent[int(token)] if isinstance(parent, list) else parent[token]
    last, op = tokens[-1], step["op"]
    if op == "remove-value":
        target = parent[int(last)] if isinstance(parent, list) else parent[last]
        target.remove(step["value"])
    elif isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if op == "add":
            parent.insert(index, step["value"])
        elif op == "replace":
            parent[index] = step["value"]
        elif op == "remove":
            del parent[index]
    elif op == "add":
        parent[last] = step["value"]
    elif op == "replace":
        if last not in parent:  # replacing a missing key would quietly add it
            raise KeyError(f"{step['path']} does not exist")
        parent[last] = step["value"]
    elif op == "remove":
        del parent[last]
    else:
        raise ValueError(f"unknown patch op {op!r}")


@cache
def _base(path: str) -> Document:
    return read_source(str(ROOT / path))


def load_pair(name: str) -> tuple[Document, Document]:
    label, folder = labels()[name], CORPUS / name
    if "base" in label:
        old = _base(label["base"])
        data = json.loads(json.dumps(old.data))
        for step in yaml.safe_load((folder / "patch.yaml").read_text()) or []:
            _step(data, step)
        return old, Document(f"{name} (patched)", data)
    return read_source(str(folder / "old.yaml")), read_source(str(folder / "new.yaml"))


@cache
def run_pair(name: str) -> Outcome:
    label = labels()[name]
    changes = tuple(diff_documents(*load_pair(name)))
    fired = {c.rule for c in changes}
    breaking = any(c.level is Level.BREAKING for c in changes)
    return Outcome(
        name=name,
        expected=label["verdict"],
        got="breaking" if breaking else "non-breaking",
        missing=tuple(r for r in label["rules"] if r not in fired),
        unexpected=tuple(c.rule for c in changes) if label.get("no_changes") else (),
        changes=changes,
    )


@cache
def run_corpus() -> tuple[Outcome, ...]:
    return tuple(run_pair(name) for name in labels())


def accuracy_line(outcomes: tuple[Outcome, ...]) -> str:
    right = sum(o.ok for o in outcomes)
    verdicts = sum(o.expected == o.got for o in outcomes)
    share = 100 * right / len(outcomes)
    return (
        f"contract diff corpus: {right}/{len(outcomes)} pairs fully right ({share:.1f}%), "
        f"{verdicts}/{len(outcomes)} verdicts right"
    )

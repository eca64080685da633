"""The layer rules, checked on the source: who may import whom, and one door into state.

simulators never import the harness; loadtests never import the harness; nobody edits
sys.path; Books (harness/books.py) is the only door from the harness into simulator state —
every other harness module reads the systems through a Books snapshot or the vendors' APIs.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The harness modules that build or serve worlds (and so hold the simulators themselves).
SERVING = {"books.py", "up.py", "demo.py", "session.py"}


def _modules(folder: str) -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted((ROOT / folder).rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def _imports(tree: ast.Module) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_simulators_never_import_the_harness() -> None:
    found = [
        f"{path.relative_to(ROOT)}: {name}"
        for path, tree in _modules("simulators")
        for name in _imports(tree)
        if name == "harness" or name.startswith("harness.")
    ]
    assert not found


@pytest.mark.parametrize("folder", ["simulators", "harness", "examples", "bench"])
def test_nobody_edits_sys_path(folder: str) -> None:
    found = []
    for path, tree in _modules(folder):
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "path"
                and isinstance(node.value, ast.Name)
                and node.value.id == "sys"
            ):
                parent = _parents(tree).get(node)
                if isinstance(parent, ast.Attribute) and parent.attr in ("insert", "append"):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, found


def test_books_is_the_only_door_into_simulator_state() -> None:
    found = []
    for path, tree in _modules("harness"):
        if path.name in SERVING:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("store", "backend"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
    assert not found, found


def _parents(tree: ast.Module) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}

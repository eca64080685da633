"""YAML with line numbers: every value's line, so load errors can say file:line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[str | int, ...]


class YamlError(ValueError):
    """A YAML document that cannot be read, with file and line."""


def load(path: Path) -> tuple[Any, dict[Path_, int]]:
    """The document and the line (1-based) of every mapping value and sequence item in it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise YamlError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise YamlError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    lines: dict[Path_, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return data, lines


def _walk(node: yaml.Node, at: Path_, lines: dict[Path_, int]) -> None:
    lines[at] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else str(key)
            lines[(*at, name)] = key.start_mark.line + 1
            _walk(value, (*at, name), lines)
            # The key's own line is what a reader looks for ("unknown key foo" points at foo).
            lines[(*at, name)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*at, index), lines)


def line_of(lines: dict[Path_, int], at: Path_) -> int | None:
    """The line of ``at`` or of its nearest ancestor that has one."""
    for end in range(len(at), -1, -1):
        line = lines.get(tuple(at[:end]))
        if line is not None:
            return line
    return None

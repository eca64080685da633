"""Snapshot and restore of a store's tables: dicts of dataclass rows keyed by id."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

Build = Callable[[type[Any], dict[str, Any]], Any]


def _plain(cls: type[Any], row: dict[str, Any]) -> Any:
    return cls(**row)


def dump_tables(store: Any, tables: Mapping[str, type[Any]]) -> dict[str, Any]:
    """Every row of every named table as JSON-able dicts, in insertion order."""
    return {
        name: [dataclasses.asdict(row) for row in getattr(store, name).values()] for name in tables
    }


def load_tables(
    store: Any, tables: Mapping[str, type[Any]], data: Mapping[str, Any], build: Build = _plain
) -> None:
    """Refill the named tables from ``dump_tables`` output; ``build`` makes nested records."""
    for name, cls in tables.items():
        table = getattr(store, name)
        for row in data.get(name, []):
            record = build(cls, row)
            table[record.id] = record

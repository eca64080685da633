"""CRM tables by object, open query cursors; reset, snapshot and restore — no rules."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from simulators.crm.ids import KEY_PREFIXES
from simulators.crm.models import Record

# Salesforce keeps a query locator for a while after the last page is read; we keep this many
# and forget the oldest (its nextRecordsUrl then answers INVALID_QUERY_LOCATOR).
MAX_CURSORS = 50


@dataclass
class Cursor:
    """The rows of a query beyond its first page, already rendered, for ``nextRecordsUrl``."""

    id: str
    endpoint: str  # query | queryAll
    version: str
    records: list[dict[str, Any]] = field(default_factory=list)


class CrmStore:
    """Rows per object in insertion order (dicts keep it): SOQL without ORDER BY uses it."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.tables: dict[str, dict[str, Record]] = {name: {} for name in KEY_PREFIXES}
        self.cursors: dict[str, Cursor] = {}
        self._prefixes = {prefix: name for name, prefix in KEY_PREFIXES.items()}

    def table(self, sobject: str) -> dict[str, Record]:
        return self.tables[sobject]

    def get(self, record_id: str | None) -> Record | None:
        """Any record by id (deleted ones too); the key prefix names its table."""
        if not record_id:
            return None
        name = self._prefixes.get(record_id[:3])
        return self.tables[name].get(record_id) if name else None

    def put(self, record: Record) -> None:
        self.tables[record.sobject][record.id] = record

    def add_cursor(self, cursor: Cursor) -> None:
        self.cursors[cursor.id] = cursor
        while len(self.cursors) > MAX_CURSORS:
            del self.cursors[next(iter(self.cursors))]

    # transactions (composite allOrNone) ----------------------------------------------------
    def checkpoint(self) -> dict[str, Any]:
        return {"tables": copy.deepcopy(self.tables), "cursors": dict(self.cursors)}

    def rollback(self, saved: dict[str, Any]) -> None:
        self.tables = saved["tables"]
        self.cursors = saved["cursors"]

    # persistence ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "records": [
                dataclasses.asdict(record)
                for table in self.tables.values()
                for record in table.values()
            ],
            "cursors": [dataclasses.asdict(c) for c in self.cursors.values()],
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.reset()
        for row in data.get("records", []):
            self.put(Record(**row))
        for row in data.get("cursors", []):
            self.add_cursor(Cursor(**row))

"""What an invariant reads of the books, recorded while it runs (for test_reads.py)."""

from __future__ import annotations

import dataclasses
import inspect
import types
from typing import Any

from harness.books import Books, resource

STORES = {
    "billing_store": "billing",
    "crm_store": "crm",
    "erp_store": "erp",
    "revrec_store": "revrec",
}
FIELDS = {
    "journals": "journal.*",
    "deliveries": "deliveries",
    "now": "now",
    "exceptions": "exceptions",
    "forged": "forged",
}


class _Store:
    """A store that notes every attribute read through it as ``system.attribute``; its
    methods and properties run on the recorder, so what they read is noted too."""

    def __init__(self, target: Any, system: str, seen: set[str]) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_system", system)
        object.__setattr__(self, "_seen", seen)

    def __getattr__(self, name: str) -> Any:
        target = object.__getattribute__(self, "_target")
        found = inspect.getattr_static(type(target), name, None)
        if isinstance(found, property) and found.fget is not None:
            return found.fget(self)
        if inspect.isfunction(found):
            return types.MethodType(found, self)
        if name == "tables":  # CRM keeps its tables in one dict: note the table read
            return _Tables(target.tables, self._seen)
        self._seen.add(resource(self._system, name))
        return getattr(target, name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AssertionError(f"an invariant wrote {self._system}.{name} of the books")


class _Tables(dict[str, Any]):
    def __init__(self, tables: dict[str, Any], seen: set[str]) -> None:
        super().__init__(tables)
        self._seen = seen

    def __getitem__(self, name: str) -> Any:
        self._seen.add(f"crm.{name}")
        return super().__getitem__(name)

    def get(self, name: str, default: Any = None) -> Any:
        self._seen.add(f"crm.{name}")
        return super().get(name, default)

    def __iter__(self) -> Any:
        self._seen.add("crm.*")
        return super().__iter__()

    def items(self) -> Any:
        self._seen.add("crm.*")
        return super().items()

    def values(self) -> Any:
        self._seen.add("crm.*")
        return super().values()


def recording(books: Books) -> tuple[Books, set[str]]:
    """A fresh copy of ``books`` (no indexes built yet) and the set its reads are noted in."""
    seen: set[str] = set()
    values = {f.name: getattr(books, f.name) for f in dataclasses.fields(Books)}
    for name, system in STORES.items():
        values[name] = _Store(values[name], system, seen)

    class Recorded(Books):
        def __getattribute__(self, name: str) -> Any:
            if name in FIELDS:
                seen.add(FIELDS[name])
            return super().__getattribute__(name)

    return Recorded(**values), seen

"""Snapshot and restore of a store's tables: dicts of dataclass rows keyed by id."""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from simulators.common.errors import SimError

T = TypeVar("T")
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


class Table(dict[str, T]):
    """Rows by id in insertion order, with the order lists use: newest first by (stamp, insertion).

    ``stamp`` gives a row's creation instant (fixed once the row exists). While rows arrive with
    non-decreasing stamps, which is the usual case, that order is plain insertion order reversed
    and costs one list slot per row; the first row that arrives out of order makes the table
    keep a sorted list instead. A cursor is then found in O(1) or O(log n) instead of a scan.
    """

    def __init__(self, stamp: Callable[[T], int | None], by: tuple[str, ...] = ()) -> None:
        super().__init__()
        self._stamp = stamp
        # Secondary indexes: for each attribute in ``by`` (fixed once a row exists, such as an
        # invoice's customer), its value -> the keys of the rows with it, in insertion order.
        self._by_fields = by
        self._reset_index()

    def where(self, attribute: str, value: Any) -> list[T]:
        """Rows whose ``attribute`` (one of ``by``) is ``value``, in insertion order."""
        get = dict.__getitem__
        return [get(self, key) for key in self._by[attribute].get(value, ())]

    def _index_add(self, key: str, row: T) -> None:
        for name in self._by_fields:
            self._by[name].setdefault(getattr(row, name), []).append(key)

    def _index_remove(self, key: str, row: T) -> None:
        for name in self._by_fields:
            value = getattr(row, name)
            keys = self._by[name].get(value)
            if keys is not None:
                keys.remove(key)
                if not keys:
                    del self._by[name][value]

    def _reset_index(self) -> None:
        self._pos: dict[str, int] = {}  # key -> insertion number
        self._keys: list[str | None] = []  # by insertion number; None where a row was removed
        self._holes = 0
        self._last: int | None = None  # largest stamp so far
        self._monotonic = True
        self._sorted: list[tuple[int, int, str]] | None = None  # kept once out of order
        self._stamps: dict[str, int] = {}  # key -> stamp, once out of order
        self.indexed = True  # False once a row has no stamp: lists fall back to sorting
        self._by: dict[str, dict[Any, list[str]]] = {name: {} for name in self._by_fields}
        self._generation = getattr(self, "_generation", 0) + 1

    # dict writes, all through the index ---------------------------------------------------
    def __setitem__(self, key: str, row: T) -> None:
        get = dict.__getitem__
        old = get(self, key) if key in self else None
        super().__setitem__(key, row)
        if self._by_fields:
            if old is None:
                self._index_add(key, row)
            elif any(getattr(old, n) != getattr(row, n) for n in self._by_fields):
                self._index_remove(key, old)
                self._index_add(key, row)
        if not self.indexed:
            return
        stamp = self._stamp(row)
        if stamp is None:
            self.indexed = False
            return
        if old is not None:
            # A replaced row keeps its insertion place; only a new stamp moves it.
            if stamp != self._stamp(old):
                self._go_sorted()
                self._resort(key, stamp)
            return
        seq = len(self._keys)
        self._pos[key] = seq
        self._keys.append(key)
        if self._monotonic:
            if self._last is not None and stamp < self._last:
                self._go_sorted()
            else:
                self._last = stamp
                return
        assert self._sorted is not None
        if key not in self._stamps:
            self._stamps[key] = stamp
            bisect.insort(self._sorted, (stamp, seq, key))

    def _go_sorted(self) -> None:
        if not self._monotonic:
            return
        self._monotonic = False
        self._stamps = {}
        entries = []
        for key in self._keys:
            if key is None or key not in self:
                continue
            stamp = self._stamp(dict.__getitem__(self, key))
            assert stamp is not None
            self._stamps[key] = stamp
            entries.append((stamp, self._pos[key], key))
        entries.sort()
        self._sorted = entries

    def _resort(self, key: str, stamp: int) -> None:
        assert self._sorted is not None
        old = self._stamps.get(key)
        if old == stamp:
            return
        if old is not None:
            entry = (old, self._pos[key], key)
            index = bisect.bisect_left(self._sorted, entry)
            del self._sorted[index]
        self._stamps[key] = stamp
        bisect.insort(self._sorted, (stamp, self._pos[key], key))

    def __delitem__(self, key: str) -> None:
        row = dict.__getitem__(self, key)
        super().__delitem__(key)
        self._forget(key, row)

    def pop(self, key: str, *default: Any) -> Any:
        if key not in self:
            if default:
                return default[0]
            raise KeyError(key)
        row = super().pop(key)
        self._forget(key, row)
        return row

    def popitem(self) -> tuple[str, T]:
        key, row = super().popitem()
        self._forget(key, row)
        return key, row

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, row in dict(*args, **kwargs).items():
            self[key] = row

    def clear(self) -> None:
        super().clear()
        self._reset_index()

    def __ior__(self, other: Any) -> Table[T]:  # type: ignore[override,misc]
        self.update(other)
        return self

    def _forget(self, key: str, row: T) -> None:
        if self._by_fields:
            self._index_remove(key, row)
        if not self.indexed:
            return
        seq = self._pos.pop(key)
        self._keys[seq] = None
        self._holes += 1
        if self._sorted is not None:
            stamp = self._stamps.pop(key)
            index = bisect.bisect_left(self._sorted, (stamp, seq, key))
            del self._sorted[index]
        if self._holes > 1024 and self._holes * 2 > len(self._keys):
            self._compact()

    def _compact(self) -> None:
        self._generation += 1
        keys = [k for k in self._keys if k is not None]
        self._keys = list(keys)
        self._pos = {k: n for n, k in enumerate(keys)}
        self._holes = 0
        if self._sorted is not None:
            self._sorted = sorted((self._stamps[k], self._pos[k], k) for k in keys)

    def added_since(self, mark: tuple[int, int] | None) -> tuple[list[str] | None, tuple[int, int]]:
        """Keys inserted since ``mark`` (from an earlier call) in insertion order, and the new
        mark; None instead of keys when the mark is too old to tell (start again from all)."""
        if not self.indexed:
            return None, (-1, 0)
        now = (self._generation, len(self._keys))
        if mark is None or mark[0] != self._generation:
            return None, now
        return [k for k in self._keys[mark[1] :] if k is not None], now

    # the list order ----------------------------------------------------------------------
    def _view(self) -> tuple[Sequence[Any], Callable[[str], int]]:
        """Keys ascending by (stamp, insertion) — with holes — and a key's index in them."""
        if self._monotonic:
            return self._keys, self._pos.__getitem__
        assert self._sorted is not None
        entries = self._sorted

        def where(key: str) -> int:
            return bisect.bisect_left(entries, (self._stamps[key], self._pos[key], key))

        return entries, where

    def newest_first(self, after: str | None = None) -> Iterator[T]:
        """Rows newest first; with ``after``, only those listed after that key.

        A cursor that names no row is a 400 in the simulator's envelope (param
        ``starting_after``), checked before the first row is yielded."""
        view, where = self._view()
        if after is not None:
            self._check_cursor(after, "starting_after")
        start = len(view) - 1 if after is None else where(after) - 1
        get = dict.__getitem__
        for n in range(start, -1, -1):
            entry = view[n]
            if entry is None:
                continue
            yield get(self, entry if isinstance(entry, str) else entry[2])

    def newer_than(self, key: str) -> Iterator[T]:
        """Rows listed before ``key`` (newer than it), nearest first; an unknown ``key`` is a
        400 (param ``ending_before``)."""
        view, where = self._view()
        self._check_cursor(key, "ending_before")
        get = dict.__getitem__
        for n in range(where(key) + 1, len(view)):
            entry = view[n]
            if entry is None:
                continue
            yield get(self, entry if isinstance(entry, str) else entry[2])

    def _check_cursor(self, key: str, param: str) -> None:
        if key == "":
            # Stripe's words for an empty value of a parameter that cannot be unset.
            raise SimError(
                400,
                "parameter_invalid_empty",
                f"You passed an empty string for '{param}'. We assume empty values are an "
                f"attempt to unset a parameter; however '{param}' cannot be unset. You should "
                f"remove '{param}' from your request or supply a non-empty value.",
                param,
            )
        if key not in self:
            raise SimError(400, "resource_missing", f"No such object: '{key}'", param)

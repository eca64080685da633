"""ERP tables, the ledger and async jobs; indexes, reset, snapshot and restore — no rules."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from simulators.erp.models import (
    TRANSACTION_KINDS,
    Account,
    Application,
    Currency,
    CurrencyRate,
    Customer,
    GlLine,
    Item,
    ItemLine,
    Job,
    JournalLine,
    Period,
    Subsidiary,
    Transaction,
)

# Record kind (NetSuite's record type name) → table attribute and row class.
TABLES: dict[str, tuple[str, type[Any]]] = {
    "currency": ("currencies", Currency),
    "currencyRate": ("currency_rates", CurrencyRate),
    "subsidiary": ("subsidiaries", Subsidiary),
    "account": ("accounts", Account),
    "serviceSaleItem": ("items", Item),
    "accountingPeriod": ("periods", Period),
    "customer": ("customers", Customer),
    "transaction": ("transactions", Transaction),
}


def table_of(kind: str) -> str:
    return "transaction" if kind in TRANSACTION_KINDS else kind


class ErpStore:
    """Rows by id in creation order; external ids are unique per record kind (NetSuite's rule)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.currencies: dict[str, Currency] = {}
        self.currency_rates: dict[str, CurrencyRate] = {}
        self.subsidiaries: dict[str, Subsidiary] = {}
        self.accounts: dict[str, Account] = {}
        self.items: dict[str, Item] = {}
        self.periods: dict[str, Period] = {}
        self.customers: dict[str, Customer] = {}
        self.transactions: dict[str, Transaction] = {}
        self.gl: dict[str, list[GlLine]] = {}  # transaction id → its ledger lines
        # Oldest first, purged from the front (an OrderedDict pops its first item in O(1)).
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self.idempotency_keys: dict[str, str] = {}  # key → job id
        self.roles: dict[str, str] = {}  # account role → account id
        self.first_period: str = ""  # YYYY-MM of the earliest period
        self.periods_ahead: int = 12
        self._external: dict[str, dict[str, str]] = {}
        # Per table: whether rows were added in ascending integer id order, and the largest id.
        self._ascending: dict[str, bool] = {}
        self._top: dict[str, int] = {}
        self._period_index: dict[tuple[str, str], str] = {}
        self.period_months: set[str] = set()  # YYYY-MM of every month that has periods

    # tables ------------------------------------------------------------------------------
    def table(self, kind: str) -> dict[str, Any]:
        table: dict[str, Any] = getattr(self, TABLES[table_of(kind)][0])
        return table

    def get(self, kind: str, record_id: str) -> Any:
        row = self.table(kind).get(record_id)
        if row is not None and kind in TRANSACTION_KINDS and row.kind != kind:
            return None
        return row

    def rows(self, kind: str) -> list[Any]:
        rows = list(self.table(kind).values())
        if kind in TRANSACTION_KINDS:
            rows = [t for t in rows if t.kind == kind]
        return rows

    def add(self, kind: str, row: Any) -> None:
        table = self.table(kind)
        if row.id not in table:
            name = TABLES[table_of(kind)][0]
            if self._ascending.get(name, True):
                record_id: str = row.id
                canonical = record_id.isdigit() and record_id[0] != "0"
                if canonical and int(record_id) > self._top.get(name, 0):
                    self._top[name] = int(record_id)
                else:
                    self._ascending[name] = False
        table[row.id] = row
        self._index(kind, row)

    def ids_ascending(self, table: str) -> int | None:
        """The largest id of a table (an attribute name) whose order is ascending integer ids
        from 1, or None when its order is not that (a record re-added, an id not a number)."""
        return self._top.get(table, 0) if self._ascending.get(table, True) else None

    def remove(self, kind: str, row: Any) -> None:
        self.table(kind).pop(row.id, None)
        if row.external_id is not None:
            self._external.get(kind, {}).pop(row.external_id, None)
        if kind == "accountingPeriod":
            self._period_index.pop((row.subsidiary, row.ym), None)

    def by_external_id(self, kind: str, external_id: str) -> Any:
        record_id = self._external.get(kind, {}).get(external_id)
        return None if record_id is None else self.get(kind, record_id)

    def set_external_id(self, kind: str, row: Any, external_id: str | None) -> None:
        if row.external_id is not None:
            self._external.get(kind, {}).pop(row.external_id, None)
        row.external_id = external_id
        self._index(kind, row)

    def period_at(self, subsidiary: str, ym: str) -> Period | None:
        period_id = self._period_index.get((subsidiary, ym))
        return None if period_id is None else self.periods[period_id]

    def _index(self, kind: str, row: Any) -> None:
        if row.external_id is not None:
            self._external.setdefault(kind, {})[row.external_id] = row.id
        if kind == "accountingPeriod":
            self._period_index[(row.subsidiary, row.ym)] = row.id
            self.period_months.add(row.ym)

    def gl_lines(self) -> Iterator[GlLine]:
        for lines in self.gl.values():
            yield from lines

    # state -------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            table: [dataclasses.asdict(row) for row in getattr(self, table).values()]
            for table, _ in TABLES.values()
        }
        data["gl_lines"] = [dataclasses.asdict(line) for line in self.gl_lines()]
        data["jobs"] = [dataclasses.asdict(job) for job in self.jobs.values()]
        data["idempotency_keys"] = dict(self.idempotency_keys)
        data["roles"] = dict(self.roles)
        data["first_period"] = self.first_period
        data["periods_ahead"] = self.periods_ahead
        return data

    def restore(self, data: dict[str, Any]) -> None:
        self.reset()
        for kind, (table, cls) in TABLES.items():
            for row in data.get(table, []):
                record = _build(cls, row)
                self.add(record.kind if kind == "transaction" else kind, record)
        for line in data.get("gl_lines", []):
            self.gl.setdefault(line["transaction"], []).append(GlLine(**line))
        self.jobs = OrderedDict((j["id"], Job(**j)) for j in data.get("jobs", []))
        self.idempotency_keys = dict(data.get("idempotency_keys", {}))
        self.roles = dict(data.get("roles", {}))
        self.first_period = data.get("first_period", "")
        self.periods_ahead = int(data.get("periods_ahead", 12))


def _build(cls: type[Any], row: dict[str, Any]) -> Any:
    row = dict(row)
    if cls is Transaction:
        row["items"] = [ItemLine(**line) for line in row.get("items", [])]
        row["lines"] = [JournalLine(**line) for line in row.get("lines", [])]
        row["applies"] = [Application(**a) for a in row.get("applies", [])]
    return cls(**row)

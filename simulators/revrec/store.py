"""Revrec tables and the event log; reset, snapshot and restore — no rules."""

from __future__ import annotations

import dataclasses
from typing import Any

from simulators.common.tables import dump_tables, load_tables
from simulators.revrec.models import (
    BillingEntry,
    BillingEvent,
    Contract,
    Delivery,
    Entity,
    Event,
    Line,
    Modification,
    PeriodClose,
    RevenueMapping,
    UsageRecord,
    Version,
)

TABLES: dict[str, type[Any]] = {
    "entities": Entity,
    "contracts": Contract,
    "lines": Line,
    "modifications": Modification,
    "billing_events": BillingEvent,
    "period_closes": PeriodClose,
    "mappings": RevenueMapping,
}


class RevrecStore:
    """Rows by id in insertion order; ``seq`` numbers every write, so reads can ask what was
    known at any earlier write (closed periods are computed as of their close)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.entities: dict[str, Entity] = {}
        self.contracts: dict[str, Contract] = {}
        self.lines: dict[str, Line] = {}
        self.modifications: dict[str, Modification] = {}
        self.billing_events: dict[str, BillingEvent] = {}
        self.period_closes: dict[str, PeriodClose] = {}
        self.mappings: dict[str, RevenueMapping] = {}
        self.events: list[Event] = []
        self.seq = 0
        # Indexes, rebuilt on restore.
        self.contract_by_external_id: dict[str, str] = {}
        self.billing_event_by_external_id: dict[str, str] = {}

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def table(self, name: str) -> dict[str, Any]:
        table: dict[str, Any] = getattr(self, name)
        return table

    def snapshot(self) -> dict[str, Any]:
        data = dump_tables(self, TABLES)
        data["events"] = [dataclasses.asdict(e) for e in self.events]
        data["seq"] = self.seq
        return data

    def restore(self, data: dict[str, Any]) -> None:
        self.reset()
        load_tables(self, TABLES, data, _build)
        self.events = [Event(**e) for e in data.get("events", [])]
        self.seq = int(data.get("seq", 0))
        self.contract_by_external_id = {c.external_id: c.id for c in self.contracts.values()}
        self.billing_event_by_external_id = {
            b.external_id: b.id for b in self.billing_events.values()
        }


def _build(cls: type[Any], row: dict[str, Any]) -> Any:
    row = dict(row)
    if cls is Line:
        row["versions"] = [Version(**v) for v in row.get("versions", [])]
        row["deliveries"] = [Delivery(**d) for d in row.get("deliveries", [])]
        row["usage"] = [UsageRecord(**u) for u in row.get("usage", [])]
        row["billing"] = [BillingEntry(**b) for b in row.get("billing", [])]
    return cls(**row)

"""A violation: one broken rule, naming the records that break it across the four systems."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Violation:
    """``rule`` is an invariant id (``INV-06``), ``ORACLE`` or ``CONTRACT``; ``records`` are
    ids as each system names them, prefixed by system (``billing:in_…``, ``erp:invoice/12``)."""

    rule: str
    message: str
    records: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "message": self.message,
            "records": list(self.records),
            "details": self.details,
        }

    def __str__(self) -> str:
        named = f" [{', '.join(self.records)}]" if self.records else ""
        return f"{self.rule}: {self.message}{named}"

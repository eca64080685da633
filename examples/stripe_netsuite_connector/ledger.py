"""What the connector reads from NetSuite before it posts: subsidiaries and open periods."""

from __future__ import annotations

import re
import threading

from .mapping import Period, posting_period
from .netsuite import NetSuite
from .throttle import Rejected


class PeriodLocked(Rejected):
    """The document's period is AR-locked: it is set aside until finance unlocks it."""


_SAFE = re.compile(r"[A-Za-z0-9_-]{1,255}")


def literal(value: str) -> str:
    """A SuiteQL string literal for an id (its charset admits no quote to escape)."""
    if not _SAFE.fullmatch(value):
        raise Rejected(f"{value!r} is not a usable NetSuite id")
    return f"'{value}'"


class Ledger:
    def __init__(self, erp: NetSuite) -> None:
        self.erp = erp
        self._lock = threading.Lock()
        self._subsidiaries: dict[str, str] = {}  # external id → internal id; they never move

    def subsidiary(self, external_id: str) -> str:
        with self._lock:
            known = self._subsidiaries.get(external_id)
        if known is not None:
            return known
        rows = self.erp.query(
            f"SELECT id FROM subsidiary WHERE externalid = {literal(external_id)}"
        )
        if not rows:
            raise Rejected(f"NetSuite has no subsidiary with external id {external_id}")
        found = str(rows[0]["id"])
        with self._lock:
            self._subsidiaries[external_id] = found
        return found

    def periods(self, subsidiary_id: str) -> list[Period]:
        """Monthly posting periods of a subsidiary as they stand now (closing moves them)."""
        rows = self.erp.query(
            "SELECT id, periodname, startdate, closed, alllocked, arlocked FROM accountingperiod "
            f"WHERE subsidiary = {literal(subsidiary_id)} AND isposting = 'T' "
            "AND isquarter = 'F' AND isyear = 'F' ORDER BY startdate"
        )
        return [
            Period(
                str(row["id"]),
                str(row["startdate"]),
                all(row.get(flag) != "T" for flag in ("closed", "alllocked")),
                row.get("arlocked") == "T",
                str(row.get("periodname") or row["startdate"]),
            )
            for row in rows
        ]

    def period_for(self, subsidiary_id: str, day: str) -> str:
        period = posting_period(self.periods(subsidiary_id), day)
        if period is None:
            raise Rejected(
                f"no open NetSuite period on or after {day} (subsidiary {subsidiary_id})"
            )
        if period.ar_locked:
            raise PeriodLocked(
                f"NetSuite's accounting period {period.name} is locked for receivables; "
                f"a document dated {day} waits for finance to unlock it"
            )
        return period.id

    def open_period_ids(self, subsidiary_id: str) -> set[str]:
        """Periods whose AR documents can still be changed (applications, voids)."""
        return {p.id for p in self.periods(subsidiary_id) if p.takes_ar and not p.ar_locked}

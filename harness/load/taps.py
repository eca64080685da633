"""Wall-clock moments the verdict needs and the simulators do not keep, observed in-process."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from harness.session import Session
    from simulators.common.journal import JournalEntry
    from simulators.common.webhooks import Payload

# A NetSuite write by external id (the flow's upsert): PUT …/record/v1/<kind>/eid:<id>.
ERP_WRITE = re.compile(r"/record/v1/([A-Za-z]+)/eid:([^/?]+)$")
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Taps:
    """While the run lasts: when each invoice was finalised (its ``invoice.finalized`` was
    published), when each ERP document was first written by external id, and how many writes
    the integration has had accepted (its progress, as the simulators see it)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.finalised_wall: dict[str, float] = {}
        self.posted_wall: dict[tuple[str, str], float] = {}
        self.zero_total: set[str] = set()  # the flow posts nothing for these
        self.integration_writes = 0
        self._undo: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def __enter__(self) -> Taps:
        dispatcher = self.session.stack.world.dispatcher
        publish = dispatcher.publish

        def tapped_publish(
            system: str, event_id: str, event_type: str, payload: Payload, order_key: str = ""
        ) -> Any:
            if system == "billing" and event_type == "invoice.finalized":
                if not isinstance(payload, bytes):
                    payload = payload()  # made here once; the dispatcher takes the bytes
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    invoice = orjson.loads(payload)["data"]["object"]
                    with self._lock:
                        self.finalised_wall.setdefault(invoice["id"], time.time())
                        if invoice.get("total") == 0:
                            self.zero_total.add(invoice["id"])
            return publish(system, event_id, event_type, payload, order_key)

        dispatcher.publish = tapped_publish  # type: ignore[method-assign]
        self._undo.append(lambda: setattr(dispatcher, "publish", publish))
        for name, sim in self.session.stack.sims.items():
            self._tap_journal(sim.journal, erp=name == "erp")
        return self

    def _tap_journal(self, journal: Any, *, erp: bool) -> None:
        close = journal.close

        def tapped_close(entry: JournalEntry) -> None:
            close(entry)
            # The integration's writes and its stand-in's (the hand-offs it does not own).
            if entry.actor not in ("integration", "standin") or entry.method not in WRITES:
                return
            if not 200 <= entry.status < 300:
                return
            match = ERP_WRITE.search(entry.path) if erp else None
            with self._lock:
                self.integration_writes += 1
                if match is not None:
                    self.posted_wall.setdefault((match.group(1), match.group(2)), time.time())

        journal.close = tapped_close
        self._undo.append(lambda: setattr(journal, "close", close))

    def __exit__(self, *_: object) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()

    def counts(self) -> tuple[int, int, int]:
        """(invoices finalised, ERP documents posted, integration writes) so far."""
        with self._lock:
            return len(self.finalised_wall), len(self.posted_wall), self.integration_writes

    def awaiting_erp(self) -> int:
        """Invoices finalised with a total whose ERP document is not written yet: a live
        gauge of the backlog, not a verdict (that reads the books)."""
        with self._lock:
            posted = {eid for _, eid in self.posted_wall}
            return sum(
                1 for i in self.finalised_wall if i not in posted and i not in self.zero_total
            )

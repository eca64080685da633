"""The request journal: every request a simulator answered, with its contract violations."""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from simulators.common.activity import Activity


@dataclass
class JournalEntry:
    seq: int
    request_id: str
    system: str
    method: str
    path: str
    query: str
    operation_id: str | None
    sim_at: int
    status: int = 0
    duration_ms: float = 0.0
    idempotency_key: str | None = None
    violations: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    replayed: bool = False
    # "integration"; "harness": the harness as the vendors' own users; "standin": the
    # harness's stand-in integration for the hand-offs the integration under test does not own
    actor: str = "integration"
    control: bool = False  # a /_sim control-plane call
    fields: list[str] = field(default_factory=list)  # body fields sent, as contract paths
    parameters: list[str] = field(default_factory=list)  # declared query parameters sent
    wall_at: float = 0.0  # Unix time the request arrived: sim time stands still, waits do not
    retry_after_s: float | None = None  # the Retry-After the response asked the client to honour
    # The client's end of the TCP connection ("host:port"): HTTP/1.1 sends one request at a
    # time on a connection, so a request on it after an answer was sent after that answer.
    connection: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class Journal:
    """A bounded, append-only log; the bound keeps a week-long soak from growing without end.

    Readers get a consistent copy taken under the journal's own lock: the server thread keeps
    appending while the harness reads (a deque iterated across an append raises)."""

    def __init__(
        self, system: str, capacity: int = 100_000, activity: Activity | None = None
    ) -> None:
        self.system = system
        self._activity = activity
        self._entries: deque[JournalEntry] = deque(maxlen=capacity)
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._max_seq = 0
        self.total = 0
        self.in_flight = 0

    def open(
        self,
        request_id: str,
        method: str,
        path: str,
        query: str,
        sim_at: int,
        *,
        control: bool = False,
    ) -> JournalEntry:
        entry = JournalEntry(
            next(self._seq), request_id, self.system, method, path, query, None, sim_at
        )
        entry.control = control
        entry.wall_at = time.time()
        # Control-plane calls (a runner waiting on /_sim/webhooks/drain) are neither vendor
        # load for concurrency caps nor activity that keeps a world from settling.
        if not control:
            self.in_flight += 1
            if self._activity is not None:
                self._activity.begin()
        return entry

    def close(self, entry: JournalEntry) -> None:
        with self._lock:
            self.total += 1
            self._max_seq = max(self._max_seq, entry.seq)
            self._entries.append(entry)
        if not entry.control:
            self.in_flight -= 1
            if self._activity is not None:
                self._activity.end(touch=entry.actor != "harness")

    def last_seq(self) -> int:
        """The highest sequence number of any closed entry (0 when none)."""
        with self._lock:
            return self._max_seq

    def snapshot(self) -> list[JournalEntry]:
        """Every kept entry, copied at one instant (safe while requests are being served)."""
        with self._lock:
            return list(self._entries)

    def entries(
        self,
        *,
        since_seq: int = 0,
        operation_id: str | None = None,
        violations_only: bool = False,
        limit: int | None = None,
    ) -> Iterator[JournalEntry]:
        count = 0
        for entry in self.snapshot():
            if entry.seq <= since_seq:
                continue
            if operation_id and entry.operation_id != operation_id:
                continue
            if violations_only and not entry.violations:
                continue
            yield entry
            count += 1
            if limit is not None and count >= limit:
                return

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._max_seq = 0
            self._seq = itertools.count(1)  # a reset world numbers its requests afresh

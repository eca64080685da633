"""A durable inbox: every pushed event stored once (by source and event id) before it is acked,
then handed to parallel workers one at a time per lane (events of one customer in order); beside
it the exception list (exceptions.py), in the same file."""

from __future__ import annotations

import contextlib
import heapq
import json
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from examples.reference_integration import exceptions

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " source TEXT NOT NULL, event_id TEXT NOT NULL, kind TEXT NOT NULL,"
    " payload TEXT NOT NULL, received_at REAL NOT NULL, done_at REAL,"
    " attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, lane TEXT NOT NULL DEFAULT '',"
    " subject TEXT NOT NULL DEFAULT '', UNIQUE (source, event_id))"
)
# Only the rows still to do, in arrival order: finding work never walks the done ones.
PENDING_INDEX = (
    "CREATE INDEX IF NOT EXISTS inbox_pending ON inbox (seq, lane) WHERE done_at IS NULL"
)
# How often a taker looks for events another process stored.
POLL_S = 0.02
SYNC_MODES = ("normal", "full")


@dataclass(frozen=True)
class Message:
    seq: int
    source: str
    event_id: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    lane: str = ""
    subject: str = ""  # the record the event is about (an invoice id), when it says


class Inbox:
    """SQLite in WAL mode, shared by the process that receives (``put``, ``pending``) and the
    one that works (``take`` … ``done``). A stored event is in the database file before it is
    acknowledged, so a killed process (kill -9) loses nothing; with ``sync="full"`` each is
    also synced to the disk first, so a power cut loses nothing either (about 5 ms an event on
    this machine's disk). The primary key makes a redelivery a no-op.

    ``take`` hands out the oldest pending event whose lane is free and makes the lane busy until
    ``done``, ``retry`` or ``set_aside``; a retried lane waits out its pause while the others
    go on. Events of one lane are therefore handled one at a time, in arrival order."""

    def __init__(self, path: Path, *, sync: str = "normal") -> None:
        if sync not in SYNC_MODES:
            raise ValueError(f"INBOX_SYNC is one of {', '.join(SYNC_MODES)} (got {sync!r})")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # The wait first: the receiver and the workers open the inbox at the same moment.
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={sync.upper()}")
        # One process at a time makes or upgrades the tables (both may find them missing).
        with self._atomic():
            self._db.execute(SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(inbox)")}
            if "lane" not in columns:  # an inbox written before lanes: each event its own lane
                self._db.execute("ALTER TABLE inbox ADD COLUMN lane TEXT NOT NULL DEFAULT ''")
                self._db.execute("UPDATE inbox SET lane = source || ':' || event_id")
            if "subject" not in columns:
                self._db.execute("ALTER TABLE inbox ADD COLUMN subject TEXT NOT NULL DEFAULT ''")
            self._db.execute(PENDING_INDEX)
            exceptions.create(self._db)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        # The worker's view, in memory: pending seqs per lane (the head may be in progress),
        # lanes ready to hand out by their head seq, busy lanes and lanes pausing for a retry.
        self._seen = 0
        self._polled = 0.0
        self._poller = 0  # the thread that looks for new events while the others sleep
        self._lanes: dict[str, deque[int]] = {}
        self._ready: list[tuple[int, str]] = []
        self._busy: set[str] = set()
        self._held: list[tuple[float, str]] = []  # (due, lane), soonest first
        self._held_until: dict[str, float] = {}
        self._claims: dict[int, set[str]] = {}
        self._about: dict[int, tuple[str, str]] = {}  # queued seq → (kind, subject)

    # receiving ---------------------------------------------------------------------------
    def put(
        self,
        source: str,
        event_id: str,
        kind: str,
        payload: dict[str, Any],
        lane: str = "",
        subject: str = "",
    ) -> bool:
        """Store an event; False when it was already there (a duplicate delivery). Without a
        lane, the event is ordered with nothing else."""
        lane = lane or f"{source}:{event_id}"
        with self._changed:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO inbox"
                " (source, event_id, kind, payload, received_at, lane, subject)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (source, event_id, kind, json.dumps(payload), time.time(), lane, subject),
            )
            fresh = cursor.rowcount == 1
            if fresh:
                self._polled = 0.0  # look at once
                self._changed.notify_all()
            return fresh

    def exceptions(self) -> list[dict[str, Any]]:
        """The exception list in the documented shape (docs/exceptions.md), oldest first."""
        with self._lock:
            return exceptions.listed(self._db)

    def replay(self, ids: list[str] | None) -> list[str]:
        """Queue open exceptions (all, or those ids) again as new events; the ids queued."""
        with self._changed:
            with self._atomic():
                queued = exceptions.replay(self._db, ids, time.time())
            self._polled = 0.0  # a worker in this process looks at once
            self._changed.notify_all()
            return queued

    def pending(self) -> int:
        """Events not done yet: waiting, being worked on or waiting for a retry."""
        with self._lock:
            (count,) = self._db.execute(
                "SELECT COUNT(*) FROM inbox WHERE done_at IS NULL"
            ).fetchone()
            return int(count)

    # working -----------------------------------------------------------------------------
    def take(self, timeout_s: float) -> Message | None:
        """The oldest pending event on a free lane, waiting up to ``timeout_s`` for one."""
        deadline = time.monotonic() + timeout_s
        me = threading.get_ident()
        with self._changed:
            try:
                while True:
                    now = time.monotonic()
                    if now - self._polled >= POLL_S:
                        self._poll(now)
                    self._release_held(now)
                    while self._ready:
                        head, lane = heapq.heappop(self._ready)
                        if self._free(lane) and self._lanes[lane][0] == head:
                            return self._claim(head, lane)
                    if now >= deadline:
                        return None
                    # One waiting taker looks for new events every POLL_S; the rest sleep
                    # until something changes (or a paused lane is due).
                    self._poller = self._poller or me
                    wake = min([deadline, *(due for due, _ in self._held[:1])])
                    if self._poller == me:
                        wake = min(wake, now + POLL_S)
                    self._changed.wait(max(0.0, wake - now))
            finally:
                if self._poller == me:
                    self._poller = 0
                    self._changed.notify()  # another waiting taker looks from now on

    def _poll(self, now: float) -> None:
        """Queue the events stored since the last look (by this process or another)."""
        rows = self._db.execute(
            "SELECT seq, lane, kind, subject FROM inbox WHERE seq > ? AND done_at IS NULL"
            " ORDER BY seq",
            (self._seen,),
        ).fetchall()
        self._polled = now
        for seq, lane, kind, subject in rows:
            self._seen = max(self._seen, seq)
            self._about[seq] = (kind, subject)
            queue = self._lanes.setdefault(lane, deque())
            queue.append(seq)
            if len(queue) == 1:
                self._offer(lane)

    def _free(self, lane: str) -> bool:
        return (
            bool(self._lanes.get(lane))
            and lane not in self._busy
            and (lane not in self._held_until)
        )

    def _offer(self, lane: str) -> None:
        if self._free(lane):
            heapq.heappush(self._ready, (self._lanes[lane][0], lane))

    def _release_held(self, now: float) -> None:
        while self._held and self._held[0][0] <= now:
            _, lane = heapq.heappop(self._held)
            self._held_until.pop(lane, None)
            self._offer(lane)

    def _claim(self, seq: int, lane: str) -> Message:
        row = self._db.execute(
            "SELECT source, event_id, kind, payload, attempts, subject FROM inbox WHERE seq = ?",
            (seq,),
        ).fetchone()
        self._claims[seq] = {lane}
        self._busy.add(lane)
        return Message(seq, row[0], row[1], row[2], json.loads(row[3]), row[4], lane, row[5])

    def followers(self, message: Message, kinds: frozenset[str]) -> list[int]:
        """Events queued behind ``message`` in its lane about the same subject, of ``kinds``:
        stored before it was taken, so work that re-reads the subject now covers them too."""
        if not message.subject:
            return []
        with self._lock:
            return [
                seq
                for seq in self._lanes.get(message.lane, ())
                if seq != message.seq
                and self._about.get(seq, ("", ""))[1] == message.subject
                and self._about[seq][0] in kinds
            ]

    def join(self, message: Message, lane: str) -> None:
        """Hold another lane too while ``message`` is worked on (an event that touches two
        customers' documents), waiting until nobody works on it."""
        with self._changed:
            claims = self._claims.setdefault(message.seq, set())
            if lane in claims:
                return
            self._changed.wait_for(lambda: lane not in self._busy)
            claims.add(lane)
            self._busy.add(lane)

    def done(self, message: Message, also: list[int] | None = None) -> None:
        """``message`` is done, and so are ``also`` (its followers, covered by its work)."""
        seqs = [message.seq, *(also or [])]
        with self._changed:
            now = time.time()
            with self._atomic():
                self._db.executemany(
                    "UPDATE inbox SET done_at = ? WHERE seq = ?", [(now, s) for s in seqs]
                )
                exceptions.resolve(self._db, seqs, now)  # a replay that went through
            queue = self._lanes.get(message.lane)
            for seq in also or []:
                self._about.pop(seq, None)
                if queue is not None and seq in queue:
                    queue.remove(seq)
            self._finish(message)

    def retry(self, message: Message, error: str, after_s: float) -> None:
        """Not done: the same event comes back after ``after_s``; its lane waits for it."""
        with self._changed:
            self._db.execute(
                "UPDATE inbox SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
                (error[:2000], message.seq),
            )
            due = time.monotonic() + after_s
            heapq.heappush(self._held, (due, message.lane))
            self._held_until[message.lane] = due
            self._release(message)

    def set_aside(self, message: Message, error: str, system: str, document: str) -> None:
        """Done without effect (a permanent failure), the error kept with the event and listed
        as an exception about ``system``'s ``document`` (a replay's: its original's item)."""
        with self._changed:
            now = time.time()
            with self._atomic():
                self._db.execute(
                    "UPDATE inbox SET attempts = attempts + 1, last_error = ?, done_at = ?"
                    " WHERE seq = ?",
                    (error[:2000], now, message.seq),
                )
                exceptions.record(
                    self._db, message.seq, message.event_id, system, document, error, now
                )
            self._finish(message)

    @contextlib.contextmanager
    def _atomic(self) -> Iterator[None]:
        """One transaction (the caller holds the lock): the inbox and its list change together."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _finish(self, message: Message) -> None:
        self._about.pop(message.seq, None)
        queue = self._lanes.get(message.lane)
        if queue and queue[0] == message.seq:
            queue.popleft()
        if not queue:
            self._lanes.pop(message.lane, None)
        self._release(message)

    def _release(self, message: Message) -> None:
        for lane in self._claims.pop(message.seq, set()):
            self._busy.discard(lane)
            self._offer(lane)
        self._changed.notify_all()

    def in_progress(self) -> int:
        with self._lock:
            return len(self._claims)

    def close(self) -> None:
        with self._lock:
            self._db.close()

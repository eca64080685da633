"""Durable work queue in SQLite: one job per Stripe object, coalescing every event about it."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import setaside

SEEN_EVENTS_KEPT_S = 30 * 86400  # Stripe redelivers for 3 days; a month of ids is ample
DONE_JOBS_KEPT_S = 7 * 86400

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen_event (id TEXT PRIMARY KEY, seen_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS job (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    object_id TEXT NOT NULL,
    lane TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('ready', 'running', 'done', 'parked')),
    generation INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    due_at REAL NOT NULL,
    seq INTEGER NOT NULL,
    last_error TEXT,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS job_by_state ON job (state, due_at, seq);
CREATE INDEX IF NOT EXISTS seen_by_age ON seen_event (seen_at);
CREATE TABLE IF NOT EXISTS hold (vendor TEXT PRIMARY KEY, until REAL NOT NULL);
CREATE TABLE IF NOT EXISTS watermark (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class QueueFull(Exception):
    """More open jobs than the queue holds: the sender should come back later."""


@dataclass(frozen=True)
class Work:
    kind: str  # invoice | credit_note | subscription
    object_id: str
    lane: str  # jobs of one lane (a customer) never run at the same time


@dataclass(frozen=True)
class Claim:
    key: str
    kind: str
    object_id: str
    lane: str
    generation: int  # bumped by every event after the claim: the job then runs again
    attempts: int


class WorkQueue:
    """What is acknowledged is committed first (WAL, synchronous=FULL), so it survives kill -9.
    A job is the *object*, not the event: ten events about one invoice make one run, and an
    event arriving while it runs makes it run once more, on the state Stripe has then."""

    def __init__(self, path: Path, *, max_open_jobs: int = 10_000) -> None:
        self.path = path
        self.max_open_jobs = max_open_jobs
        self.wake = threading.Condition()
        self._local = threading.local()
        path.parent.mkdir(parents=True, exist_ok=True)
        db = self._db()
        db.executescript(_SCHEMA)
        db.executescript(setaside.SCHEMA)
        # Whatever was running when the process died runs again; reconciling is idempotent.
        db.execute("UPDATE job SET state = 'ready' WHERE state = 'running'")
        self.prune()

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            self._local.db = db
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any failure (writers take turns)."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def accept(self, event_id: str, work: Work | None, created: int | None = None) -> str:
        """Record an event: 'duplicate' (seen before), 'ignored' (owes nothing) or 'queued'.
        ``created`` (Stripe's time of the event) moves the watermark a catch-up starts from."""
        db, now = self._db(), time.time()
        db.execute("BEGIN IMMEDIATE")
        try:
            if created is not None:
                db.execute(
                    "INSERT INTO watermark (name, value) VALUES ('events', ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value)",
                    (created,),
                )
            if (
                db.execute(
                    "INSERT OR IGNORE INTO seen_event (id, seen_at) VALUES (?, ?)", (event_id, now)
                ).rowcount
                == 0
            ):
                db.execute("COMMIT")
                return "duplicate"
            if work is None:
                db.execute("COMMIT")
                return "ignored"
            (open_jobs,) = db.execute(
                "SELECT COUNT(*) FROM job WHERE state IN ('ready', 'running')"
            ).fetchone()
            if open_jobs >= self.max_open_jobs:
                raise QueueFull(f"{open_jobs} jobs are open")
            (seq,) = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM job").fetchone()
            db.execute(
                """
                INSERT INTO job (key, kind, object_id, lane, state, generation, attempts,
                                 due_at, seq, updated_at)
                VALUES (:key, :kind, :object_id, :lane, 'ready', 1, 0, :now, :seq, :now)
                ON CONFLICT (key) DO UPDATE SET
                    generation = generation + 1,
                    state = CASE state WHEN 'running' THEN 'running' ELSE 'ready' END,
                    attempts = CASE WHEN state IN ('done', 'parked') THEN 0 ELSE attempts END,
                    due_at = CASE WHEN state IN ('done', 'parked') THEN :now ELSE due_at END,
                    seq = CASE WHEN state IN ('done', 'parked') THEN :seq ELSE seq END,
                    updated_at = :now
                """,
                {
                    "key": f"{work.kind}:{work.object_id}",
                    "kind": work.kind,
                    "object_id": work.object_id,
                    "lane": work.lane,
                    "now": now,
                    "seq": seq,
                },
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        with self.wake:
            self.wake.notify_all()
        return "queued"

    def claim(self, busy_lanes: set[str]) -> Claim | None:
        """The oldest due job whose lane is free, now marked running."""
        db, now = self._db(), time.time()
        lanes = sorted(busy_lanes)
        marks = ",".join("?" * len(lanes))
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(
                "SELECT key, kind, object_id, lane, generation, attempts FROM job "
                f"WHERE state = 'ready' AND due_at <= ? AND lane NOT IN ({marks}) "
                "ORDER BY seq LIMIT 1",
                (now, *lanes),
            ).fetchone()
            if row is not None:
                db.execute(
                    "UPDATE job SET state = 'running', updated_at = ? WHERE key = ?", (now, row[0])
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return None if row is None else Claim(*row)

    def done(self, claim: Claim) -> None:
        """The job went through: an item it had on the set-aside list is resolved."""
        self._finish(
            claim,
            "done",
            0.0,
            None,
            attempts=0,
            then=lambda db, now: setaside.resolve(db, claim.key, now),
        )

    def retry(self, claim: Claim, delay_s: float, error: str) -> None:
        self._finish(claim, "ready", delay_s, error, attempts=claim.attempts + 1)

    def park(self, claim: Claim, error: str, reason: str) -> None:
        """Set aside, and listed with ``reason`` for the operator, until they replay it or a
        new event arrives for it. In one transaction: a parked job is always on the list."""

        def listed(db: sqlite3.Connection, now: float) -> None:
            (state,) = db.execute("SELECT state FROM job WHERE key = ?", (claim.key,)).fetchone()
            if state == "parked":  # not when an event came meanwhile: the job runs again
                tries = claim.attempts + 1
                setaside.record(db, claim.key, claim.kind, claim.object_id, reason, tries, now)

        self._finish(claim, "parked", 0.0, error, attempts=claim.attempts + 1, then=listed)

    def _finish(
        self,
        claim: Claim,
        state: str,
        delay_s: float,
        error: str | None,
        *,
        attempts: int,
        then: Callable[[sqlite3.Connection, float], None] | None = None,
    ) -> None:
        now = time.time()
        with self._transaction() as db:
            # An event that came in meanwhile (a new generation) means: run again, at once.
            db.execute(
                """
                UPDATE job SET
                    state = CASE WHEN generation = :gen THEN :state ELSE 'ready' END,
                    attempts = CASE WHEN generation = :gen THEN :attempts ELSE 0 END,
                    due_at = CASE WHEN generation = :gen THEN :due ELSE :now END,
                    last_error = :error, updated_at = :now
                WHERE key = :key
                """,
                {
                    "gen": claim.generation,
                    "state": state,
                    "attempts": attempts,
                    "due": now + delay_s,
                    "now": now,
                    "error": error,
                    "key": claim.key,
                },
            )
            if then is not None:
                then(db, now)
        with self.wake:
            self.wake.notify_all()

    # the set-aside list (docs/exceptions.md) -----------------------------------------------
    def set_aside(self) -> list[dict[str, Any]]:
        return setaside.listed(self._db())

    def replay(self, ids: list[str] | None) -> tuple[list[str], list[str]]:
        """Queue set-aside jobs again (all, or those item ids): the ids replayed, and the
        unknown ones."""
        with self._transaction() as db:
            outcome = setaside.replay(db, ids, time.time())
        with self.wake:
            self.wake.notify_all()
        return outcome

    def next_due_in(self) -> float | None:
        """Seconds until the earliest ready job is due (0 when one is due now)."""
        (due,) = self._db().execute("SELECT MIN(due_at) FROM job WHERE state = 'ready'").fetchone()
        return None if due is None else max(0.0, float(due) - time.time())

    def open_jobs(self) -> int:
        (count,) = (
            self._db()
            .execute("SELECT COUNT(*) FROM job WHERE state IN ('ready', 'running')")
            .fetchone()
        )
        return int(count)

    def counts(self) -> dict[str, int]:
        rows = self._db().execute("SELECT state, COUNT(*) FROM job GROUP BY state").fetchall()
        return {str(state): int(count) for state, count in rows}

    def prune(self) -> None:
        now = time.time()
        db = self._db()
        db.execute("DELETE FROM seen_event WHERE seen_at < ?", (now - SEEN_EVENTS_KEPT_S,))
        db.execute(
            "DELETE FROM job WHERE state = 'done' AND updated_at < ?", (now - DONE_JOBS_KEPT_S,)
        )
        setaside.prune(db, now)

    def events_watermark(self) -> int | None:
        """The latest ``created`` of any event received, None before the first."""
        row = self._db().execute("SELECT value FROM watermark WHERE name = 'events'").fetchone()
        return None if row is None else int(row[0])

    # vendor holds (Retry-After) outlive the process --------------------------------------
    def hold_until(self, vendor: str) -> float:
        row = self._db().execute("SELECT until FROM hold WHERE vendor = ?", (vendor,)).fetchone()
        return 0.0 if row is None else float(row[0])

    def remember_hold(self, vendor: str, until: float) -> None:
        self._db().execute(
            "INSERT INTO hold (vendor, until) VALUES (?, ?) "
            "ON CONFLICT (vendor) DO UPDATE SET until = MAX(until, excluded.until)",
            (vendor, until),
        )

    def close(self) -> None:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

"""A durable inbox: every pushed event stored once (by source and event id) before it is acked,
then taken by parallel workers, one at a time per lane (events of one customer in order)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " source TEXT NOT NULL, event_id TEXT NOT NULL, kind TEXT NOT NULL,"
    " payload TEXT NOT NULL, received_at REAL NOT NULL, done_at REAL,"
    " attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, lane TEXT NOT NULL DEFAULT '',"
    " UNIQUE (source, event_id))"
)
# Only the rows still to do, in arrival order: finding the next one never walks the done ones.
PENDING_INDEX = (
    "CREATE INDEX IF NOT EXISTS inbox_pending ON inbox (seq, lane) WHERE done_at IS NULL"
)


@dataclass(frozen=True)
class Message:
    seq: int
    source: str
    event_id: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    lane: str = ""


class Inbox:
    """SQLite in WAL mode. An acknowledged event is synced to disk before the ack (full sync on
    that connection), so kill -9 — or a power cut — loses nothing; the primary key makes a
    redelivery a no-op. Progress marks go through a second connection without a sync per
    commit: losing one (a power cut, not a process crash) only means doing an idempotent
    event again.

    ``take`` hands out the oldest pending event whose lane is free and makes the lane busy until
    ``done``, ``retry`` or ``set_aside``; a retried lane waits out its pause while the others go
    on. Events of one lane are therefore handled one at a time, in arrival order."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._ingest = self._connect(path, "FULL")
        self._db = self._connect(path, "NORMAL")
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(inbox)")}
        if "lane" not in columns:  # an inbox written before lanes: each event its own lane
            self._db.execute("ALTER TABLE inbox ADD COLUMN lane TEXT NOT NULL DEFAULT ''")
            self._db.execute("UPDATE inbox SET lane = source || ':' || event_id")
        self._db.execute(PENDING_INDEX)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._busy: set[str] = set()  # lanes being worked on
        self._held: dict[str, float] = {}  # lane → monotonic time its retry is due
        self._claims: dict[int, set[str]] = {}  # message seq → the lanes it holds

    @staticmethod
    def _connect(path: Path, synchronous: str) -> sqlite3.Connection:
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.execute("PRAGMA busy_timeout=10000")
        db.execute(SCHEMA)
        return db

    def put(
        self, source: str, event_id: str, kind: str, payload: dict[str, Any], lane: str = ""
    ) -> bool:
        """Store an event; False when it was already there (a duplicate delivery). Without a
        lane, the event is ordered with nothing else."""
        lane = lane or f"{source}:{event_id}"
        with self._changed:
            cursor = self._ingest.execute(
                "INSERT OR IGNORE INTO inbox (source, event_id, kind, payload, received_at, lane)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (source, event_id, kind, json.dumps(payload), time.time(), lane),
            )
            fresh = cursor.rowcount == 1
            if fresh:
                self._changed.notify_all()
            return fresh

    def take(self, timeout_s: float) -> Message | None:
        """The oldest pending event on a free lane, waiting up to ``timeout_s`` for one."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                seq, wake_at = self._first_free()
                if seq is not None:
                    return self._claim(seq)
                now = time.monotonic()
                if now >= deadline:
                    return None
                until = deadline if wake_at is None else min(deadline, wake_at)
                self._changed.wait(max(0.0, until - now))

    def _first_free(self) -> tuple[int | None, float | None]:
        now = time.monotonic()
        wake_at: float | None = None
        cursor = self._db.execute("SELECT seq, lane FROM inbox WHERE done_at IS NULL ORDER BY seq")
        try:
            for seq, lane in cursor:
                if lane in self._busy:
                    continue
                due = self._held.get(lane, 0.0)
                if due > now:
                    wake_at = due if wake_at is None else min(wake_at, due)
                    continue
                return int(seq), wake_at
        finally:
            cursor.close()
        return None, wake_at

    def _claim(self, seq: int) -> Message:
        row = self._db.execute(
            "SELECT seq, source, event_id, kind, payload, attempts, lane FROM inbox WHERE seq = ?",
            (seq,),
        ).fetchone()
        message = Message(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], row[6])
        self._held.pop(message.lane, None)
        self._claims[seq] = {message.lane}
        self._busy.add(message.lane)
        return message

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

    def done(self, message: Message) -> None:
        with self._changed:
            self._db.execute(
                "UPDATE inbox SET done_at = ? WHERE seq = ?", (time.time(), message.seq)
            )
            self._release(message)

    def retry(self, message: Message, error: str, after_s: float) -> None:
        """Not done: the same event comes back after ``after_s``; its lane waits for it."""
        with self._changed:
            self._db.execute(
                "UPDATE inbox SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
                (error[:2000], message.seq),
            )
            self._release(message)
            self._held[message.lane] = time.monotonic() + after_s

    def set_aside(self, message: Message, error: str) -> None:
        """Done without effect (a permanent failure), the error kept with the event."""
        with self._changed:
            self._db.execute(
                "UPDATE inbox SET attempts = attempts + 1, last_error = ?, done_at = ?"
                " WHERE seq = ?",
                (error[:2000], time.time(), message.seq),
            )
            self._release(message)

    def _release(self, message: Message) -> None:
        self._busy -= self._claims.pop(message.seq, set())
        self._changed.notify_all()

    def pending(self) -> int:
        """Events not done yet: waiting, being worked on or waiting for a retry."""
        with self._lock:
            (count,) = self._db.execute(
                "SELECT COUNT(*) FROM inbox WHERE done_at IS NULL"
            ).fetchone()
            return int(count)

    def in_progress(self) -> int:
        with self._lock:
            return len(self._claims)

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self._ingest.close()

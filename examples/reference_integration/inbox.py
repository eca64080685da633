"""A durable inbox: every pushed event stored once (by source and event id) before it is acked."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Message:
    seq: int
    source: str
    event_id: str
    kind: str
    payload: dict[str, Any]
    attempts: int


class Inbox:
    """SQLite in WAL mode with full sync: an event acknowledged is on disk, so kill -9 loses
    nothing; the primary key makes a redelivery a no-op, so nothing is processed twice."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
            " source TEXT NOT NULL, event_id TEXT NOT NULL, kind TEXT NOT NULL,"
            " payload TEXT NOT NULL, received_at REAL NOT NULL, done_at REAL,"
            " attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,"
            " UNIQUE (source, event_id))"
        )
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)

    def put(self, source: str, event_id: str, kind: str, payload: dict[str, Any]) -> bool:
        """Store an event; False when it was already there (a duplicate delivery)."""
        with self._arrived:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO inbox (source, event_id, kind, payload, received_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (source, event_id, kind, json.dumps(payload), time.time()),
            )
            fresh = cursor.rowcount == 1
            if fresh:
                self._arrived.notify_all()
            return fresh

    def next(self, timeout_s: float) -> Message | None:
        """The oldest unprocessed event, waiting up to ``timeout_s`` for one to arrive."""
        with self._arrived:
            row = self._oldest()
            if row is None:
                self._arrived.wait(timeout_s)
                row = self._oldest()
            if row is None:
                return None
            return Message(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5])

    def _oldest(self) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._db.execute(
            "SELECT seq, source, event_id, kind, payload, attempts FROM inbox"
            " WHERE done_at IS NULL ORDER BY seq LIMIT 1"
        ).fetchone()
        return row

    def done(self, seq: int) -> None:
        with self._lock:
            self._db.execute("UPDATE inbox SET done_at = ? WHERE seq = ?", (time.time(), seq))

    def failed(self, seq: int, error: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE inbox SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
                (error[:2000], seq),
            )

    def pending(self) -> int:
        with self._lock:
            (count,) = self._db.execute(
                "SELECT COUNT(*) FROM inbox WHERE done_at IS NULL"
            ).fetchone()
            return int(count)

    def close(self) -> None:
        with self._lock:
            self._db.close()

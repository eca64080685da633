"""A durable inbox: every pushed event stored once (by source and event id) before it is acked;
beside it the exception list: events set aside with a business-readable reason, until replayed."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _item(
    seq: int,
    system: str,
    document: str,
    event_id: str,
    reason: str,
    first_seen: float,
    attempts: int,
    status: str,
    resolved_at: float | None,
) -> dict[str, Any]:
    """One row as the documented list item (docs/exceptions.md)."""
    return {
        "id": f"exc_{seq}",
        "source": {"system": system, "document": document},
        "event_id": event_id,
        "reason": reason,
        "first_seen": _iso(first_seen),
        "attempts": attempts,
        "status": status,
        "resolved_at": None if resolved_at is None else _iso(resolved_at),
    }


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
        # One row per event set aside (its inbox seq): open until a replay processes it.
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS exceptions (seq INTEGER PRIMARY KEY,"
            " system TEXT NOT NULL, document TEXT NOT NULL, event_id TEXT NOT NULL,"
            " reason TEXT NOT NULL, first_seen REAL NOT NULL, attempts INTEGER NOT NULL,"
            " status TEXT NOT NULL, resolved_at REAL)"
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

    def set_aside(self, message: Message, system: str, document: str, reason: str) -> None:
        """The event is done (the queue moves on) and listed as an exception, open."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute(
                "UPDATE inbox SET done_at = ?, attempts = attempts + 1, last_error = ?"
                " WHERE seq = ?",
                (time.time(), reason[:2000], message.seq),
            )
            self._db.execute(
                "INSERT INTO exceptions (seq, system, document, event_id, reason, first_seen,"
                " attempts, status) VALUES (?, ?, ?, ?, ?, ?, 1, 'open')"
                " ON CONFLICT (seq) DO UPDATE SET reason = excluded.reason,"
                " attempts = attempts + 1, status = 'open', resolved_at = NULL",
                (message.seq, system, document, message.event_id, reason[:2000], time.time()),
            )
            self._db.execute("COMMIT")

    def resolved(self, seq: int) -> None:
        """A replayed event went through: its exception (if any) is resolved."""
        with self._lock:
            self._db.execute(
                "UPDATE exceptions SET status = 'resolved', resolved_at = ?,"
                " attempts = attempts + 1 WHERE seq = ? AND status = 'open'",
                (time.time(), seq),
            )

    def exceptions(self) -> list[dict[str, Any]]:
        """The exception list in the documented shape (docs/exceptions.md), oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, system, document, event_id, reason, first_seen, attempts, status,"
                " resolved_at FROM exceptions ORDER BY seq"
            ).fetchall()
        return [_item(*row) for row in rows]

    def replay(self, ids: list[str] | None) -> list[str]:
        """Put open exceptions (all, or those ids) back in the queue; the ids queued."""
        with self._arrived:
            rows = self._db.execute(
                "SELECT seq FROM exceptions WHERE status = 'open' ORDER BY seq"
            ).fetchall()
            wanted = None if ids is None else set(ids)
            seqs = [seq for (seq,) in rows if wanted is None or f"exc_{seq}" in wanted]
            for seq in seqs:
                # Back in the queue: the worker re-fetches current state and posts it once.
                self._db.execute("UPDATE inbox SET done_at = NULL WHERE seq = ?", (seq,))
            if seqs:
                self._arrived.notify_all()
            return [f"exc_{seq}" for seq in seqs]

    def pending(self) -> int:
        with self._lock:
            (count,) = self._db.execute(
                "SELECT COUNT(*) FROM inbox WHERE done_at IS NULL"
            ).fetchone()
            return int(count)

    def close(self) -> None:
        with self._lock:
            self._db.close()

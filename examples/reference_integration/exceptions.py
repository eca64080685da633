"""The exception list beside the inbox: events set aside with a business-readable reason, until a
replay of them goes through (docs/exceptions.md)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

# One row per event set aside (its inbox seq). A replay is a new inbox row (``replay_seq``):
# the worker process only looks at rows it has not seen, so the original cannot be re-queued.
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS exceptions (seq INTEGER PRIMARY KEY,"
    " system TEXT NOT NULL, document TEXT NOT NULL, event_id TEXT NOT NULL,"
    " reason TEXT NOT NULL, first_seen REAL NOT NULL, attempts INTEGER NOT NULL,"
    " status TEXT NOT NULL, resolved_at REAL, replay_seq INTEGER)"
)
REPLAY_INDEX = "CREATE INDEX IF NOT EXISTS exceptions_replay ON exceptions (replay_seq)"


def create(db: sqlite3.Connection) -> None:
    db.execute(SCHEMA)
    columns = {row[1] for row in db.execute("PRAGMA table_info(exceptions)")}
    if "replay_seq" not in columns:  # a list written before replays were rows of their own
        db.execute("ALTER TABLE exceptions ADD COLUMN replay_seq INTEGER")
    db.execute(REPLAY_INDEX)


def record(
    db: sqlite3.Connection,
    seq: int,
    event_id: str,
    system: str,
    document: str,
    reason: str,
    now: float,
) -> None:
    """Event ``seq`` was refused: a replay refused again updates its original's item (one
    attempt more, the new reason), anything else opens an item."""
    again = db.execute(
        "UPDATE exceptions SET reason = ?, attempts = attempts + 1, status = 'open',"
        " resolved_at = NULL, replay_seq = NULL WHERE replay_seq = ?",
        (reason[:2000], seq),
    )
    if again.rowcount == 0:
        db.execute(
            "INSERT OR IGNORE INTO exceptions (seq, system, document, event_id, reason,"
            " first_seen, attempts, status) VALUES (?, ?, ?, ?, ?, ?, 1, 'open')",
            (seq, system, document, event_id, reason[:2000], now),
        )


def resolve(db: sqlite3.Connection, seqs: list[int], now: float) -> None:
    """Events ``seqs`` went through: the items they replay are resolved."""
    db.executemany(
        "UPDATE exceptions SET status = 'resolved', resolved_at = ?, attempts = attempts + 1,"
        " replay_seq = NULL WHERE replay_seq = ? AND status = 'open'",
        [(now, seq) for seq in seqs],
    )


def listed(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """The list in the documented shape, oldest first."""
    rows = db.execute(
        "SELECT seq, system, document, event_id, reason, first_seen, attempts, status,"
        " resolved_at FROM exceptions ORDER BY seq"
    ).fetchall()
    return [_item(*row) for row in rows]


def replay(db: sqlite3.Connection, ids: list[str] | None, now: float) -> list[str]:
    """Queue open items (all, or those ids) again as new inbox rows: the same event under the id
    ``<event_id>#replay<n>``, in its lane. An item whose replay is still queued is not queued
    twice. The ids queued."""
    wanted = None if ids is None else set(ids)
    rows = db.execute(
        "SELECT seq, attempts, replay_seq FROM exceptions WHERE status = 'open' ORDER BY seq"
    ).fetchall()
    queued = []
    for seq, attempts, replay_seq in rows:
        if wanted is not None and f"exc_{seq}" not in wanted:
            continue
        queued.append(f"exc_{seq}")
        if replay_seq is not None:
            continue  # queued already, not worked on yet
        cursor = db.execute(
            "INSERT OR IGNORE INTO inbox (source, event_id, kind, payload, received_at, lane,"
            " subject) SELECT source, event_id || '#replay' || ?, kind, payload, ?, lane,"
            " subject FROM inbox WHERE seq = ?",
            (attempts, now, seq),
        )
        if cursor.rowcount == 1:
            db.execute(
                "UPDATE exceptions SET replay_seq = ? WHERE seq = ?", (cursor.lastrowid, seq)
            )
    return queued


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

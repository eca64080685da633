"""The set-aside list: jobs parked on a refusal, with a reason finance can act on, until a replay
or a new event posts them (served as the exception list of docs/exceptions.md)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

from .netsuite import ErpRefusal
from .throttle import Rejected, Transient

RESOLVED_KEPT_S = 30 * 86400  # a month of history for the operator, then pruned
MAX_LISTED = 10_000  # the newest items a listing shows
MAX_REASON = 1000  # what docs/exceptions.md allows a reason
MAX_DETAIL = 600  # of the vendor's own words, so the document's name always fits

# One row per incident: a job refused again while its item is open updates that item; a job
# refused after its item was resolved opens a new one. At most one open item per job.
SCHEMA = """
CREATE TABLE IF NOT EXISTS set_aside (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    object_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    first_seen REAL NOT NULL,
    attempts INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
    resolved_at REAL,
    replayed_at REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS set_aside_open ON set_aside (job_key) WHERE status = 'open';
"""

NOUNS = {"invoice": "invoice", "credit_note": "credit note", "subscription": "subscription"}
VERBS = {"GET": "read", "POST": "create", "PATCH": "update", "PUT": "update"}
RECORDS = {
    "customer": "customer",
    "invoice": "invoice",
    "creditMemo": "credit memo",
    "customerPayment": "customer payment",
}


def reason(kind: str, object_id: str, exc: BaseException, tries: int) -> str:
    """Why a job was set aside, for a finance user: the Stripe document, then the cause in the
    vendor's own words — never a repr, a trace or a raw body."""
    document = f"Stripe {NOUNS.get(kind, kind)} {object_id} not posted to NetSuite"
    if isinstance(exc, ErpRefusal):
        said = (
            exc.detail if exc.code != "UNKNOWN" else f"an answer it could not read ({exc.status})"
        )
        cause = f"NetSuite refused to {_action(exc)}: {_clip(said)} ({exc.code})"
    elif isinstance(exc, Rejected):
        cause = _clip(str(exc))
    elif isinstance(exc, Transient):
        cause = f"still failing after {tries} attempts: {_clip(str(exc))}"
    else:
        cause = f"the connector failed unexpectedly ({type(exc).__name__}); its log has the details"
    return f"{document}: {cause}"[:MAX_REASON]


def _action(exc: ErpRefusal) -> str:
    """'create the customer payment', 'void the invoice', … from the refused request."""
    method, _, path = exc.request.partition(" ")
    parts = path.split("/record/v1/", 1)
    if len(parts) < 2:
        return "answer a query" if "suiteql" in path else f"{VERBS.get(method, 'answer')} a request"
    record, *rest = parts[1].split("/")
    verb = "void" if rest and rest[-1] == "@void" else VERBS.get(method, "change")
    return f"{verb} the {RECORDS.get(record, record)}"


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"


def record(
    db: sqlite3.Connection, key: str, kind: str, object_id: str, why: str, tries: int, now: float
) -> None:
    """Job ``key`` was set aside after ``tries`` more attempts: its open item, updated, or a new
    one. Called inside the work queue's transaction that parks the job."""
    updated = db.execute(
        "UPDATE set_aside SET reason = ?, attempts = attempts + ? "
        "WHERE job_key = ? AND status = 'open'",
        (why, tries, key),
    )
    if updated.rowcount == 0:
        db.execute(
            "INSERT INTO set_aside (job_key, kind, object_id, reason, first_seen, attempts, status)"
            " VALUES (?, ?, ?, ?, ?, ?, 'open')",
            (key, kind, object_id, why, now, tries),
        )


def resolve(db: sqlite3.Connection, key: str, now: float) -> None:
    """Job ``key`` went through: its open item, if any, is resolved."""
    db.execute(
        "UPDATE set_aside SET status = 'resolved', resolved_at = ?, attempts = attempts + 1 "
        "WHERE job_key = ? AND status = 'open'",
        (now, key),
    )


def replay(
    db: sqlite3.Connection, ids: list[str] | None, now: float
) -> tuple[list[str], list[str]]:
    """Queue the parked jobs of open items again (every one, or those ``ids``), due now. The
    ids replayed, or (when some of ``ids`` name no item) nothing and those. A job already
    queued (a new event came) is left as it is: it runs anyway."""
    rows = db.execute("SELECT id, job_key FROM set_aside WHERE status = 'open' ORDER BY id")
    open_items = {_item_id(n): key for n, key in rows.fetchall()}
    if ids is None:
        wanted = list(open_items)
        unknown: list[str] = []
    else:
        asked = list(dict.fromkeys(ids))
        wanted = [i for i in asked if i in open_items]
        unknown = [i for i in asked if i not in open_items and not _exists(db, i)]
        if unknown:
            return [], unknown
    (seq,) = db.execute("SELECT COALESCE(MAX(seq), 0) FROM job").fetchone()
    for n, item_id in enumerate(wanted, 1):
        db.execute(
            "UPDATE job SET state = 'ready', attempts = 0, due_at = ?, seq = ?, updated_at = ? "
            "WHERE key = ? AND state = 'parked'",
            (now, seq + n, now, open_items[item_id]),
        )
        db.execute(
            "UPDATE set_aside SET replayed_at = ? WHERE id = ?", (now, _item_number(item_id))
        )
    return wanted, unknown


def listed(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """The newest items, oldest first, in the documented shape (docs/exceptions.md)."""
    rows = db.execute(
        "SELECT id, kind, object_id, reason, first_seen, attempts, status, resolved_at,"
        " replayed_at FROM set_aside ORDER BY id DESC LIMIT ?",
        (MAX_LISTED,),
    ).fetchall()
    return [
        {
            "id": _item_id(n),
            "source": {"system": "billing", "document": object_id, "kind": kind},
            "event_id": None,  # a job is the object, not one event: every event about it ran
            "reason": why,
            "first_seen": _iso(first_seen),
            "attempts": attempts,
            "status": status,
            "resolved_at": None if resolved_at is None else _iso(resolved_at),
            "replayed_at": None if replayed_at is None else _iso(replayed_at),
        }
        for n, kind, object_id, why, first_seen, attempts, status, resolved_at, replayed_at in (
            reversed(rows)
        )
    ]


def prune(db: sqlite3.Connection, now: float) -> None:
    db.execute(
        "DELETE FROM set_aside WHERE status = 'resolved' AND resolved_at < ?",
        (now - RESOLVED_KEPT_S,),
    )


def _item_id(number: int) -> str:
    return f"exc_{number}"


def _item_number(item_id: str) -> int | None:
    digits = item_id.removeprefix("exc_")
    return int(digits) if item_id.startswith("exc_") and digits.isdigit() else None


def _exists(db: sqlite3.Connection, item_id: str) -> bool:
    number = _item_number(item_id)
    found = db.execute("SELECT 1 FROM set_aside WHERE id = ?", (number,)).fetchone()
    return number is not None and found is not None


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

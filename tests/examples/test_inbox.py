"""The reference integration's inbox: once per event, and nothing acknowledged is lost."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from examples.reference_integration.app import lane_of
from examples.reference_integration.inbox import Inbox, Message
from examples.reference_integration.workers import backoff_s

ROOT = Path(__file__).resolve().parents[2]


def test_a_redelivered_event_is_stored_once_and_each_lane_is_taken_in_order(
    tmp_path: Path,
) -> None:
    inbox = Inbox(tmp_path / "inbox.db")
    assert inbox.put("billing", "evt_1", "invoice.paid", {"n": 1}, "cus_a")
    assert inbox.put("billing", "evt_2", "invoice.paid", {"n": 2}, "cus_a")
    assert not inbox.put("billing", "evt_1", "invoice.paid", {"n": 1}, "cus_a")
    assert inbox.put("crm", "evt_1", "opportunity.closed", {"n": 3}, "acct_b")  # another source
    first = inbox.take(0)
    assert first is not None and first.payload == {"n": 1}
    # Lane cus_a is busy: the next free event is the other lane's, not evt_2.
    other = inbox.take(0)
    assert other is not None and other.payload == {"n": 3}
    assert inbox.take(0) is None
    inbox.retry(first, "ERP 503", after_s=0)
    again = inbox.take(0)
    assert again is not None and again.seq == first.seq and again.attempts == 1
    inbox.done(again)
    inbox.done(other)
    assert inbox.pending() == 1
    assert [m.payload["n"] for m in _drain(inbox)] == [2]
    assert inbox.take(0.01) is None


def test_a_lane_waiting_for_its_retry_holds_back_only_itself(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path / "inbox.db")
    inbox.put("billing", "evt_1", "invoice.paid", {"n": 1}, "cus_a")
    inbox.put("billing", "evt_2", "invoice.paid", {"n": 2}, "cus_a")
    inbox.put("billing", "evt_3", "invoice.paid", {"n": 3}, "cus_b")
    first = inbox.take(0)
    assert first is not None
    inbox.retry(first, "ERP 503", after_s=60)
    assert [m.payload["n"] for m in _drain(inbox)] == [3]
    assert inbox.pending() == 2  # evt_1 waits for its retry, evt_2 behind it


def test_a_joined_lane_is_busy_until_the_event_is_done(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path / "inbox.db")
    inbox.put("crm", "n_1", "opportunity.closed", {"n": 1}, "acct_a")
    inbox.put("billing", "evt_1", "customer.subscription.updated", {"n": 2}, "cus_a")
    deal = inbox.take(0)
    assert deal is not None
    inbox.join(deal, "cus_a")
    assert inbox.take(0) is None
    inbox.done(deal)
    assert [m.payload["n"] for m in _drain(inbox)] == [2]


def test_events_queued_for_the_same_invoice_are_done_by_one_handling(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path / "inbox.db")
    same = frozenset({"invoice.finalized", "invoice.paid"})
    inbox.put("stripe", "evt_1", "invoice.finalized", {"n": 1}, "cus_a", "in_1")
    inbox.put("stripe", "evt_2", "customer.subscription.updated", {"n": 2}, "cus_a", "sub_1")
    inbox.put("stripe", "evt_3", "invoice.paid", {"n": 3}, "cus_a", "in_1")
    inbox.put("stripe", "evt_4", "invoice.paid", {"n": 4}, "cus_a", "in_2")
    first = inbox.take(0)
    assert first is not None and first.subject == "in_1"
    covered = inbox.followers(first, same)
    # Stored after it was taken: not covered (its work may have read the invoice before).
    inbox.put("stripe", "evt_5", "invoice.paid", {"n": 5}, "cus_a", "in_1")
    inbox.done(first, also=covered)
    assert [m.payload["n"] for m in _drain(inbox)] == [2, 4, 5]


def test_an_inbox_from_before_lanes_is_migrated(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "inbox.db")
    db.execute(
        "CREATE TABLE inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL,"
        " event_id TEXT NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL,"
        " received_at REAL NOT NULL, done_at REAL, attempts INTEGER NOT NULL DEFAULT 0,"
        " last_error TEXT, UNIQUE (source, event_id))"
    )
    db.execute(
        "INSERT INTO inbox (source, event_id, kind, payload, received_at)"
        " VALUES ('stripe', 'evt_old', 'invoice.paid', '{\"n\": 1}', 0)"
    )
    db.commit()
    db.close()
    message = Inbox(tmp_path / "inbox.db").take(0)
    assert message is not None and message.lane == "stripe:evt_old" and message.payload == {"n": 1}


def test_events_are_laned_by_customer_account_and_entity() -> None:
    invoice = {"data": {"object": {"object": "invoice", "id": "in_1", "customer": "cus_1"}}}
    customer = {"data": {"object": {"object": "customer", "id": "cus_1"}}}
    deal = {"sObject": {"Id": "006A", "AccountId": "001A"}}
    close = {"data": {"object": {"object": "period", "entity": "US"}}}
    assert lane_of("stripe", invoice) == lane_of("stripe", customer) == "stripe:cus_1"
    assert lane_of("crm", deal) == "crm:001A"
    assert lane_of("revrec", close) == "revrec:US"
    assert lane_of("stripe", {"data": {"object": {"object": "price"}}}) == ""


def _drain(inbox: Inbox) -> list[Message]:
    out = []
    while (message := inbox.take(0)) is not None:
        out.append(message)
        inbox.done(message)
    return out


def test_an_acknowledged_event_survives_kill_minus_nine(tmp_path: Path) -> None:
    db = tmp_path / "inbox.db"
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from examples.reference_integration.inbox import Inbox, Message\n"
        f"inbox = Inbox(Path({str(db)!r}))\n"
        "inbox.put('billing', 'evt_acked', 'invoice.paid', {'total': 1234})\n"
        "print('acked', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "acked"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    message = Inbox(db).take(0)
    assert message is not None and message.payload == {"total": 1234}


def test_the_worker_retries_within_the_runners_settle_deadline() -> None:
    assert [backoff_s(n) for n in range(5)] == [0.5, 1.0, 2.0, 4.0, 5.0]
    assert backoff_s(100) == 5.0  # a 30 s deadline after a fault leaves room for 5 retries


def test_a_refused_event_is_listed_until_a_replay_posts_it_and_the_list_survives_a_restart(
    tmp_path: Path,
) -> None:
    from examples.reference_integration.retry import Refusal
    from examples.reference_integration.workers import business_reason, source_of

    db = tmp_path / "inbox.db"
    receiver, worker = Inbox(db), Inbox(db)  # the two processes, each its own connection
    payload = {"id": "evt_1", "data": {"object": {"id": "in_1", "object": "invoice"}}}
    receiver.put("stripe", "evt_1", "invoice.finalized", payload, "stripe:cus_1", "in_1")
    message = worker.take(0)
    assert message is not None
    system, document = source_of("stripe", payload)
    assert (system, document) == ("billing", "in_1")
    reason = business_reason("invoice.finalized", system, document, Refusal("customer inactive"))
    assert reason == "invoice in_1 (invoice.finalized) not posted: customer inactive"
    worker.set_aside(message, reason, system, document)
    assert receiver.pending() == 0  # the queue moves on
    receiver.close()
    receiver = Inbox(db)  # a restart (or kill -9): the list is on disk
    [item] = receiver.exceptions()
    assert {k: item[k] for k in ("id", "source", "event_id", "reason", "attempts", "status")} == {
        "id": f"exc_{message.seq}",
        "source": {"system": "billing", "document": "in_1"},
        "event_id": "evt_1",
        "reason": reason,
        "attempts": 1,
        "status": "open",
    }
    assert receiver.replay(["exc_999"]) == []  # names nothing open
    assert receiver.replay(None) == [f"exc_{message.seq}"]
    assert receiver.replay(None) == [f"exc_{message.seq}"]  # still queued: not queued twice
    assert receiver.pending() == 1
    again = worker.take(1.0)  # the worker sees the new row (another process stored it)
    assert again is not None and again.seq > message.seq
    assert (again.event_id, again.kind, again.payload) == ("evt_1#replay1", message.kind, payload)
    assert (again.lane, again.subject) == ("stripe:cus_1", "in_1")
    worker.set_aside(again, "refused again", system, document)  # still one item
    [item] = receiver.exceptions()
    assert (item["id"], item["attempts"], item["status"]) == (f"exc_{message.seq}", 2, "open")
    assert item["reason"] == "refused again"
    receiver.replay([item["id"]])
    third = worker.take(1.0)
    assert third is not None and third.event_id == "evt_1#replay2"
    worker.done(third)
    [item] = receiver.exceptions()
    assert (item["attempts"], item["status"]) == (3, "resolved")
    assert item["resolved_at"] is not None
    assert receiver.replay(None) == []  # nothing open is left to replay
    assert receiver.pending() == 0


def test_a_list_from_before_replay_rows_is_migrated_and_its_items_replay(tmp_path: Path) -> None:
    db = tmp_path / "inbox.db"
    inbox = Inbox(db)
    inbox.put("stripe", "evt_1", "invoice.finalized", {"id": "evt_1"}, "stripe:cus_1")
    inbox.close()
    with sqlite3.connect(db) as old:  # the list as the first exceptions inbox wrote it
        old.execute("DROP TABLE exceptions")
        old.execute(
            "CREATE TABLE exceptions (seq INTEGER PRIMARY KEY, system TEXT NOT NULL,"
            " document TEXT NOT NULL, event_id TEXT NOT NULL, reason TEXT NOT NULL,"
            " first_seen REAL NOT NULL, attempts INTEGER NOT NULL, status TEXT NOT NULL,"
            " resolved_at REAL)"
        )
        old.execute("UPDATE inbox SET done_at = 1.0")
        old.execute(
            "INSERT INTO exceptions VALUES (1, 'billing', 'in_1', 'evt_1', 'refused', 1.0, 1,"
            " 'open', NULL)"
        )
    inbox = Inbox(db)
    assert inbox.replay(None) == ["exc_1"]
    message = inbox.take(1.0)
    assert message is not None and message.event_id == "evt_1#replay1"
    inbox.done(message)
    [item] = inbox.exceptions()
    assert (item["status"], item["attempts"]) == ("resolved", 2)

"""The reference integration's inbox: once per event, and nothing acknowledged is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from examples.reference_integration.inbox import Inbox, Message

ROOT = Path(__file__).resolve().parents[2]


def test_a_redelivered_event_is_stored_once_and_processed_in_arrival_order(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path / "inbox.db")
    assert inbox.put("billing", "evt_1", "invoice.paid", {"n": 1})
    assert inbox.put("billing", "evt_2", "invoice.paid", {"n": 2})
    assert not inbox.put("billing", "evt_1", "invoice.paid", {"n": 1})
    assert inbox.put("crm", "evt_1", "opportunity.closed", {"n": 3})  # another source
    first = inbox.next(0)
    assert first is not None and first.payload == {"n": 1}
    inbox.failed(first.seq, "ERP 503")
    again = inbox.next(0)
    assert again is not None and again.seq == first.seq and again.attempts == 1
    inbox.done(first.seq)
    assert inbox.pending() == 2
    assert [m.payload["n"] for m in _drain(inbox)] == [2, 3]
    assert inbox.next(0.01) is None


def _drain(inbox: Inbox) -> list[Message]:
    out = []
    while (message := inbox.next(0)) is not None:
        out.append(message)
        inbox.done(message.seq)
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
    message = Inbox(db).next(0)
    assert message is not None and message.payload == {"total": 1234}


def test_the_worker_retries_within_the_runners_settle_deadline() -> None:
    from examples.reference_integration.app import backoff_s

    assert [backoff_s(n) for n in range(5)] == [0.5, 1.0, 2.0, 4.0, 5.0]
    assert backoff_s(100) == 5.0  # a 30 s deadline after a fault leaves room for 5 retries


def test_a_refused_event_is_listed_until_a_replay_posts_it_and_the_list_survives_a_restart(
    tmp_path: Path,
) -> None:
    from examples.reference_integration.app import business_reason, source_of
    from examples.reference_integration.retry import Refusal

    inbox = Inbox(tmp_path / "inbox.db")
    payload = {"id": "evt_1", "data": {"object": {"id": "in_1", "object": "invoice"}}}
    inbox.put("stripe", "evt_1", "invoice.finalized", payload)
    message = inbox.next(0)
    assert message is not None
    system, document = source_of("stripe", payload)
    assert (system, document) == ("billing", "in_1")
    reason = business_reason("invoice.finalized", system, document, Refusal("customer inactive"))
    assert reason == "invoice in_1 (invoice.finalized) not posted: customer inactive"
    inbox.set_aside(message, system, document, reason)
    assert inbox.pending() == 0  # the queue moves on
    inbox.close()
    inbox = Inbox(tmp_path / "inbox.db")  # a restart (or kill -9): the list is on disk
    [item] = inbox.exceptions()
    assert {k: item[k] for k in ("id", "source", "event_id", "reason", "attempts", "status")} == {
        "id": f"exc_{message.seq}",
        "source": {"system": "billing", "document": "in_1"},
        "event_id": "evt_1",
        "reason": reason,
        "attempts": 1,
        "status": "open",
    }
    assert inbox.replay(["exc_999"]) == []  # names nothing open
    assert inbox.replay(None) == [f"exc_{message.seq}"]
    again = inbox.next(0)
    assert again is not None and again.seq == message.seq
    inbox.set_aside(again, system, document, reason)  # refused again: still one item
    [item] = inbox.exceptions()
    assert (item["attempts"], item["status"]) == (2, "open")
    inbox.replay([item["id"]])
    third = inbox.next(0)
    assert third is not None
    inbox.done(third.seq)
    inbox.resolved(third.seq)
    [item] = inbox.exceptions()
    assert (item["attempts"], item["status"]) == (3, "resolved")
    assert item["resolved_at"] is not None
    assert inbox.replay(None) == []  # nothing open is left to replay

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

"""The request journal read while a server thread keeps appending (the month-end load crash)."""

from __future__ import annotations

import threading

from simulators.common.journal import Journal


def _writer(journal: Journal, stop: threading.Event, n: int) -> None:
    for i in range(n):
        if stop.is_set():
            return
        entry = journal.open(f"req_{i}", "POST", "/v1/x", "", 0)
        journal.close(entry)


def test_reading_the_journal_while_it_is_written_never_raises() -> None:
    """`harness load` read the journal while the integration still wrote to it and crashed
    with "deque mutated during iteration"; every reader now gets a consistent copy."""
    journal = Journal("billing", capacity=5_000)
    stop = threading.Event()
    writer = threading.Thread(target=_writer, args=(journal, stop, 400_000))
    writer.start()
    reads = 0
    try:
        while writer.is_alive() and reads < 2_000:
            seqs = [e.seq for e in journal.entries()]  # a generator: yields between appends
            assert seqs == sorted(seqs)
            kept = journal.snapshot()
            assert len(kept) <= 5_000
            assert journal.last_seq() >= (kept[-1].seq if kept else 0)
            reads += 1
    finally:
        stop.set()
        writer.join()
    assert reads > 0


def test_last_seq_is_the_highest_closed_entry() -> None:
    journal = Journal("erp")
    first = journal.open("a", "GET", "/", "", 0)
    second = journal.open("b", "GET", "/", "", 0)
    journal.close(second)
    journal.close(first)  # closed out of order: the later request answered first
    assert journal.last_seq() == second.seq == 2
    journal.clear()
    assert journal.last_seq() == 0

"""The reference integration's parallel parts: one vendor's Retry-After holds every worker, and
a read repeated within one event is answered from memory until a write."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from examples.reference_integration.retry import Gate, TransientError, with_retries
from tests.examples.vendor import recording_erp


def _in_parallel(gate: Gate, work: Callable[[], None], workers: int) -> None:
    """``workers`` threads each doing ``work`` in a turn of ``gate``, all joined."""

    def worker() -> None:
        with gate.turn():
            work()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)


def _first_sent_after(gate: Gate, started: float) -> list[float]:
    """When each of three other workers got its turn, in seconds after ``started``."""
    sent: list[float] = []
    _in_parallel(gate, lambda: sent.append(time.monotonic() - started), 3)
    return sent


def _most_at_once(gate: Gate, workers: int = 4) -> int:
    inside = 0
    most = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        time.sleep(0.05)
        with lock:
            inside -= 1

    _in_parallel(gate, work, workers)
    return most


def test_a_retry_after_on_one_worker_holds_every_worker() -> None:
    gate = Gate(concurrency=4)
    with gate.turn():
        gate.hold(0.3)  # one worker's answer said Retry-After: 0.3
    sent = _first_sent_after(gate, time.monotonic())
    assert len(sent) == 3 and min(sent) >= 0.29


def test_a_throttled_answer_holds_every_worker_before_the_retry_loop_gets_to_it() -> None:
    # With four turns, the other workers would otherwise send while this one's answer travels
    # up to its retry loop: requests a vendor sees after its own throttle answer.
    gate = Gate(concurrency=4)
    started = time.monotonic()
    with gate.turn():
        gate.answered(0.3)  # the answer said Retry-After: 0.3; no retry decided yet
    sent = _first_sent_after(gate, started)
    assert len(sent) == 3 and min(sent) >= 0.29


def test_a_throttled_vendor_gets_one_request_at_a_time_for_a_while() -> None:
    gate = Gate(concurrency=4)
    assert _most_at_once(gate) == 4
    with gate.turn():
        gate.answered(0.05)
    assert _most_at_once(gate) == 1  # well within SERIAL_AFTER_THROTTLE_S of the wait


def test_a_gate_lets_so_many_requests_at_once() -> None:
    assert _most_at_once(Gate(concurrency=1)) == 1


def test_a_read_repeated_within_an_event_is_answered_from_memory_until_a_write() -> None:
    calls: list[str] = []
    erp = recording_erp(calls)
    first = erp.get("invoice", "in_1")
    assert erp.get("invoice", "in_1") == first  # the same event: not asked again
    erp.upsert("invoice", "in_1", {"memo": "x"})  # a write: what was read may have changed
    assert erp.get("invoice", "in_1") != first
    erp.reads.fresh()  # the next event reads again
    erp.get("invoice", "in_1")
    assert calls == [
        "GET /services/rest/record/v1/invoice/eid:in_1",
        "PUT /services/rest/record/v1/invoice/eid:in_1",
        "GET /services/rest/record/v1/invoice/eid:in_1",
        "GET /services/rest/record/v1/invoice/eid:in_1",
    ]


def test_a_throttled_retry_holds_every_worker_as_long_as_it_waits() -> None:
    gate = Gate(concurrency=4)
    blocked: list[float] = []
    calls = 0

    def call() -> str:
        nonlocal calls
        calls += 1
        with gate.turn():
            if calls == 1:
                gate.answered(0.3)  # the vendor said 429, Retry-After: 0.3
                raise TransientError("429", 0.3)
        return "ok"

    def sleep(wait_s: float) -> None:
        # While this worker waits to retry, another worker's request waits as long.
        started = time.monotonic()
        with gate.turn():
            blocked.append(time.monotonic() - started)

    assert with_retries(call, what="throttled", sleep=sleep) == "ok"
    assert len(blocked) == 1 and blocked[0] >= 0.29

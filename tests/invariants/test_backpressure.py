"""INV-30: Retry-After is honoured, on real throttled requests to the billing simulator."""

from __future__ import annotations

import dataclasses
import time

import httpx

from harness.invariants import check_all
from harness.invariants.backpressure import IN_FLIGHT_S, REACTION_S
from simulators.common.journal import JournalEntry
from tests.invariants.helpers import fires, holds
from tests.invariants.stack import Stack


def _throttle_once(stack: Stack, retry_after_s: int) -> None:
    stack.control(
        "billing",
        "POST",
        "/_sim/faults",
        {"system": "billing", "kind": "throttle", "retry_after_s": retry_after_s, "max_hits": 1},
    )


def _request_ids(stack: Stack) -> list[str]:
    journal = stack.books().journal("billing")
    return [e.request_id for e in journal if e.actor == "integration" and not e.control]


def test_inv30_holds(stack: Stack) -> None:
    _throttle_once(stack, 1)
    stack.billing("POST", "/v1/customers", {"name": "Patient"}, ok=False)  # 429, Retry-After: 1
    time.sleep(1.1)
    stack.billing("POST", "/v1/customers", {"name": "Patient"})
    assert len(_request_ids(stack)) == 2
    holds(stack, "INV-30")


def test_inv30_violated(stack: Stack) -> None:
    _throttle_once(stack, 5)
    stack.billing("POST", "/v1/customers", {"name": "Hasty"}, ok=False)
    stack.billing("POST", "/v1/customers", {"name": "Hasty"})  # at once, not 5 s later
    throttled, hasty = _request_ids(stack)
    fires(stack, "INV-30", f"billing:{throttled}", f"billing:{hasty}")


def entry(seq: int, wall_at: float, **more: object) -> JournalEntry:
    fields: dict[str, object] = {"status": 200, "wall_at": wall_at, **more}
    return JournalEntry(
        seq,
        f"req_{seq}",
        "billing",
        "POST",
        "/v1/customers",
        "",
        None,
        0,
        **fields,  # type: ignore[arg-type]
    )


def test_inv30_a_request_in_flight_when_the_answer_went_out_is_not_early(stack: Stack) -> None:
    # A concurrent client: B was sent while A's 429 was still on its way back (A answered at
    # 100.5 s), so B could not have honoured it; C, sent after the answer, ignored it.
    throttled = entry(1, 100.0, status=429, duration_ms=500.0, retry_after_s=5.0)
    in_flight = entry(2, 100.2)
    books = dataclasses.replace(stack.books(), journals={"billing": (throttled, in_flight)})
    assert check_all(books, only=["INV-30"]) == []
    hasty = entry(3, 100.6)
    books = dataclasses.replace(books, journals={"billing": (throttled, in_flight, hasty)})
    (found,) = check_all(books, only=["INV-30"])
    assert found.records == ("billing:req_1", "billing:req_3")


def test_the_journal_names_the_connection_each_request_came_on(stack: Stack) -> None:
    stack.billing("POST", "/v1/customers", {"name": "Kept alive"})
    stack.billing("POST", "/v1/customers", {"name": "Kept alive"})
    with httpx.Client(trust_env=False) as other:
        other.post(
            f"{stack.urls['billing']}/v1/customers",
            content="name=Elsewhere",
            headers={
                "Authorization": f"Bearer {stack.billing_sim.api_key}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        ).raise_for_status()
    first, again, elsewhere = (
        e.connection for e in stack.books().journal("billing") if not e.control
    )
    assert first.startswith("127.0.0.1:") and first == again
    assert elsewhere.startswith("127.0.0.1:") and elsewhere != first


def test_inv30_after_an_answer_one_request_per_other_connection_may_be_on_its_way(
    stack: Stack,
) -> None:
    # HTTP/1.1: the next request on the throttled one's connection was sent after its answer
    # was read, so it is early at once; another connection may have had one on its way for
    # IN_FLIGHT_S, but not two. The answer went out at 100.5 s and asked for 5 s.
    throttled = entry(1, 100.0, status=429, duration_ms=500.0, retry_after_s=5.0, connection="a")
    soon, sooner = 100.5 + IN_FLIGHT_S / 2, 100.5 + IN_FLIGHT_S / 4
    late = 100.5 + IN_FLIGHT_S * 2

    def found(*later: JournalEntry) -> list[tuple[str, ...]]:
        books = dataclasses.replace(stack.books(), journals={"billing": (throttled, *later)})
        return [v.records for v in check_all(books, only=["INV-30"])]

    assert found(entry(2, soon, connection="b")) == []
    assert found(entry(2, sooner, connection="b"), entry(3, soon, connection="c")) == []
    assert found(entry(2, soon, connection="a")) == [("billing:req_1", "billing:req_2")]
    assert found(entry(2, late, connection="b")) == [("billing:req_1", "billing:req_2")]
    assert found(entry(2, sooner, connection="b"), entry(3, soon, connection="b")) == [
        ("billing:req_1", "billing:req_3")
    ]
    # Until the client can have read the answer, any request on another connection passes;
    # on the answer's own connection, none does.
    react = 100.5 + REACTION_S / 2
    assert found(entry(2, react - 0.01, connection="b"), entry(3, react, connection="b")) == []
    assert found(entry(2, react, connection="a")) == [("billing:req_1", "billing:req_2")]

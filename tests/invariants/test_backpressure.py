"""INV-30: Retry-After is honoured, on real throttled requests to the billing simulator."""

from __future__ import annotations

import time

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

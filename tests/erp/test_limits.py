"""Limits: the account's concurrency cap and throttle faults answer 429 in NetSuite's envelope."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
from starlette.datastructures import Headers

from tests.erp.conftest import RECORD, Erp, error_of


def test_admit_counts_requests_in_flight_against_the_cap(erp: Erp) -> None:
    sim, headers = erp.sim, Headers({"authorization": f"Bearer {erp.sim.token}"})
    sim.concurrency_cap = 3
    sim.journal.in_flight += 3  # three requests being served, this one among them
    try:
        assert sim.admit("listCustomers", headers) is None
        sim.journal.in_flight += 1
        refused = sim.admit("listCustomers", headers)
        assert refused is not None
        assert (refused.status, refused.code) == (429, "CONCURRENCY_LIMIT_EXCEEDED")
    finally:
        sim.journal.in_flight -= 4


def test_requests_beyond_the_cap_get_429_over_http(erp: Erp) -> None:
    erp.sim.concurrency_cap = 2
    # A latency fault holds every request in flight long enough for them to overlap; the
    # barrier sends them together, so the overlap does not hang on thread start-up.
    erp.control(
        "POST",
        "/_sim/faults",
        {"system": "erp", "operation": "listCustomers", "kind": "latency", "latency_ms": 600},
    )
    start = threading.Barrier(6)

    def call(_: int) -> httpx.Response:
        with httpx.Client(base_url=erp.url, timeout=10, trust_env=False) as client:
            start.wait(timeout=10)
            return client.get(
                f"{RECORD}/customer", headers={"Authorization": f"Bearer {erp.sim.token}"}
            )

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(call, range(6)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) == {200, 429}, statuses
    for response in responses:
        if response.status_code == 429:
            _, code, detail = error_of(response)
            assert code == "CONCURRENCY_LIMIT_EXCEEDED" and "2 concurrent requests" in detail
    erp.control("DELETE", "/_sim/faults")
    assert erp.request("GET", f"{RECORD}/customer").status_code == 200


def test_throttle_faults_answer_netsuites_429(erp: Erp) -> None:
    erp.control(
        "POST",
        "/_sim/faults",
        {
            "system": "erp",
            "operation": "createCustomer",
            "kind": "throttle",
            "max_hits": 1,
            "retry_after_s": 2,
        },
    )
    before = erp.state()
    throttled = erp.request(
        "POST", f"{RECORD}/customer", json={"companyName": "T", "subsidiary": {"id": "1"}}
    )
    assert error_of(throttled)[:2] == (429, "CONCURRENCY_LIMIT_EXCEEDED")
    assert throttled.headers["Retry-After"] == "2"
    assert erp.state() == before
    erp.create("customer", {"companyName": "T", "subsidiary": {"id": "1"}})

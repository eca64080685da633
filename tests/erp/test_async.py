"""Asynchronous writes: Prefer: respond-async → 202 and a job; X-NetSuite-Idempotency-Key
makes an async write run at most once, a reused key is IDEMPOTENCY_ERROR."""

from __future__ import annotations

from typing import Any

from tests.erp.conftest import RECORD, Erp, error_of

JOBS = "/services/rest/async/v1/job"


def async_headers(key: str | None = None) -> dict[str, str]:
    headers = {"Prefer": "respond-async"}
    if key is not None:
        headers["X-NetSuite-Idempotency-Key"] = key
    return headers


def customer_body(name: str) -> dict[str, Any]:
    return {"companyName": name, "subsidiary": {"externalId": "US"}}


def test_async_create_answers_202_and_the_job_leads_to_the_record(erp: Erp) -> None:
    response = erp.request(
        "POST", f"{RECORD}/customer", json=customer_body("Async Co"), headers=async_headers("k-1")
    )
    assert response.status_code == 202
    assert response.content == b""
    assert response.headers["Preference-Applied"] == "respond-async"
    job_path = response.headers["Location"]
    assert job_path.startswith(f"{JOBS}/")
    job = erp.request("GET", job_path).json()
    assert (job["completed"], job["progress"]) == (True, "succeeded")
    assert job["task"]["links"] == [{"rel": "self", "href": f"{job_path}/task"}]
    tasks = erp.request("GET", f"{job_path}/task").json()
    assert tasks["totalResults"] == 1
    task_path = tasks["items"][0]["links"][0]["href"]
    task = erp.request("GET", task_path).json()
    assert task["progress"] == "succeeded"
    assert {"rel": "related", "href": f"{task_path}/result"} in task["links"]
    result = erp.request("GET", f"{task_path}/result")
    assert result.status_code == 204
    assert (
        erp.get("customer", result.headers["Location"].rsplit("/", 1)[1])["companyName"]
        == "Async Co"
    )


def test_reused_idempotency_key_is_refused_and_never_duplicates(erp: Erp) -> None:
    first = erp.request(
        "POST", f"{RECORD}/customer", json=customer_body("Once"), headers=async_headers("dup-key")
    )
    assert first.status_code == 202
    before = erp.state()
    for body in (customer_body("Once"), customer_body("Different payload")):
        again = erp.request(
            "POST", f"{RECORD}/customer", json=body, headers=async_headers("dup-key")
        )
        status, code, detail = error_of(again)
        assert (status, code) == (400, "IDEMPOTENCY_ERROR")
        assert again.headers["Location"] == first.headers["Location"]
        assert "same idempotency key" in detail
    assert erp.state() == before
    assert [row["companyname"] for row in erp.suiteql("SELECT companyname FROM customer")] == [
        "Once"
    ]
    # The key guards other writes too (PATCH, DELETE), and other keys run.
    patch = erp.request(
        "PATCH",
        f"{RECORD}/customer/1",
        json={"email": "a@b.test"},
        headers=async_headers("dup-key"),
    )
    assert error_of(patch)[:2] == (400, "IDEMPOTENCY_ERROR")
    other = erp.request(
        "PATCH", f"{RECORD}/customer/1", json={"email": "a@b.test"}, headers=async_headers("other")
    )
    assert other.status_code == 202
    assert erp.get("customer", "1")["email"] == "a@b.test"


def test_synchronous_writes_ignore_the_key(erp: Erp) -> None:
    for name in ("Sync A", "Sync B"):
        response = erp.request(
            "POST",
            f"{RECORD}/customer",
            json=customer_body(name),
            headers={"X-NetSuite-Idempotency-Key": "sync"},
        )
        assert response.status_code == 204
    assert len(erp.suiteql("SELECT id FROM customer")) == 2


def test_a_failed_async_write_is_a_failed_job_with_the_error_as_result(erp: Erp) -> None:
    unbalanced = {
        "subsidiary": {"externalId": "US"},
        "line": {
            "items": [
                {"account": {"externalId": "6000"}, "debit": 1},
                {"account": {"externalId": "1000"}, "credit": 2},
            ]
        },
    }
    before = erp.state()
    response = erp.request(
        "POST", f"{RECORD}/journalEntry", json=unbalanced, headers=async_headers("bad-je")
    )
    assert response.status_code == 202
    job_path = response.headers["Location"]
    assert erp.request("GET", job_path).json()["progress"] == "failed"
    result = erp.request("GET", f"{job_path}/task/1/result")
    status, code, detail = error_of(result)
    assert (status, code) == (400, "USER_ERROR") and "out of balance" in detail
    store, _ = erp.state()
    assert (
        store["transactions"] == before[0]["transactions"]
        and store["gl_lines"] == before[0]["gl_lines"]
    )
    # The key is spent even though the write failed.
    retry = erp.request(
        "POST", f"{RECORD}/journalEntry", json=unbalanced, headers=async_headers("bad-je")
    )
    assert error_of(retry)[:2] == (400, "IDEMPOTENCY_ERROR")


def test_unknown_jobs_and_tasks_are_404(erp: Erp) -> None:
    assert error_of(erp.request("GET", f"{JOBS}/999"))[:2] == (404, "NONEXISTENT_ID")
    job = erp.request(
        "POST", f"{RECORD}/customer", json=customer_body("T"), headers=async_headers()
    ).headers["Location"]
    assert error_of(erp.request("GET", f"{job}/task/2"))[:2] == (404, "NONEXISTENT_ID")


def test_jobs_are_purged_after_30_days_and_their_keys_are_free_again(erp: Erp) -> None:
    first = erp.request(
        "POST", f"{RECORD}/customer", json=customer_body("Old"), headers=async_headers("k-old")
    )
    job_path = first.headers["Location"]
    erp.control("POST", "/_sim/clock/advance", {"duration": "P29D"})
    assert erp.request("GET", job_path).status_code == 200
    erp.control("POST", "/_sim/clock/advance", {"duration": "P1D"})
    again = erp.request(
        "POST", f"{RECORD}/customer", json=customer_body("New"), headers=async_headers("k-old")
    )
    assert again.status_code == 202, again.text  # the key is free: the old job is gone
    assert erp.request("GET", job_path).status_code == 404
    assert len(erp.sim.store.jobs) == 1

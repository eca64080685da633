"""API limits, field lengths and faults: quota, concurrency, STRING_TOO_LONG, throttles, outages."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceGeneralError, SalesforceRefusedRequest
from simple_salesforce.util import Usage

from tests.crm.conftest import Harness, InProcess


def test_daily_quota_refuses_with_request_limit_exceeded(make_crm: Callable[..., Harness]) -> None:
    h = make_crm(daily_quota=3)
    accounts = h.sf.Account  # one SFType keeps the usage its responses reported
    for n in range(3):
        accounts.create({"Name": f"A{n}"})
    assert accounts.api_usage["api-usage"] == Usage(used=3, total=3)
    with pytest.raises(SalesforceRefusedRequest) as caught:
        accounts.create({"Name": "over"})
    assert caught.value.status == 403
    assert caught.value.content == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    assert [r["fields"]["Name"] for r in h.records() if r["sobject"] == "Account"] == [
        "A0",
        "A1",
        "A2",
    ]
    h.control("POST", "/_sim/clock/set", {"to": "2026-01-16T00:00:00Z"})  # the next sim day
    accounts.create({"Name": "tomorrow"})
    assert accounts.api_usage["api-usage"] == Usage(used=1, total=3)
    assert h.sf.limits() == {"DailyApiRequests": {"Max": 3, "Remaining": 1}}


def test_concurrency_cap(make_crm: Callable[..., Harness]) -> None:
    h = make_crm(concurrency_cap=1)
    h.control(
        "POST",
        "/_sim/faults",
        {"system": "crm", "operation": "describeSObject", "kind": "latency", "latency_ms": 600},
    )
    slow: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: slow.update(h.client().Account.describe()))
    worker.start()
    deadline = time.monotonic() + 5
    while h.sim.journal.in_flight < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert h.sim.journal.in_flight == 1, "the slow request never started"
    with pytest.raises(SalesforceRefusedRequest) as caught:
        h.sf.query("SELECT Id FROM Account")
    assert caught.value.content[0] == {
        "message": "ConcurrentRequests Limit exceeded.",
        "errorCode": "REQUEST_LIMIT_EXCEEDED",
    }
    worker.join(10)
    assert slow["name"] == "Account"  # the request in flight was served
    assert h.sf.query("SELECT Id FROM Account")["totalSize"] == 0  # and the cap freed again


def test_throttle_faults_are_salesforce_limit_errors(crm: Harness) -> None:
    crm.control(
        "POST",
        "/_sim/faults",
        {
            "system": "crm",
            "operation": "query",
            "kind": "throttle",
            "max_hits": 1,
            "retry_after_s": 5,
        },
    )
    with pytest.raises(SalesforceRefusedRequest) as caught:
        crm.sf.query("SELECT Id FROM Account")
    assert caught.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert crm.sf.query("SELECT Id FROM Account")["totalSize"] == 0


def test_outages_and_injected_errors_keep_the_error_array(crm: Harness) -> None:
    crm.control("POST", "/_sim/faults", {"system": "crm", "kind": "outage", "max_hits": 1})
    with pytest.raises(SalesforceGeneralError) as caught:
        crm.sf.Account.create({"Name": "A"})
    assert caught.value.status == 503
    assert caught.value.content[0]["errorCode"] == "SERVER_UNAVAILABLE"
    crm.control(
        "POST", "/_sim/faults", {"system": "crm", "kind": "error", "status": 429, "max_hits": 1}
    )
    response = crm.raw("GET", "/services/data/v60.0/limits/")
    assert (
        response.status_code == 429 and response.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    )
    assert [r["sobject"] for r in crm.records()] == ["Pricebook2"]  # nothing was created


# Lengths from Salesforce's Field Reference (developer.salesforce.com/docs/platform/
# field-reference, Account and Opportunity tables) and its Object Reference (AccountNumber:
# "Can have up to 40 characters").
PUBLISHED_LENGTHS = {
    ("Account", "AccountNumber"): 40,
    ("Account", "BillingCity"): 40,
    ("Account", "BillingCountry"): 80,
    ("Account", "BillingPostalCode"): 20,
    ("Account", "BillingState"): 80,
    ("Account", "BillingStreet"): 255,
    ("Account", "Description"): 32000,
    ("Account", "Industry"): 255,
    ("Opportunity", "Description"): 32000,
    ("Opportunity", "CurrencyIsoCode"): 3,
}


async def test_text_fields_have_salesforces_published_lengths(inprocess: InProcess) -> None:
    for (sobject, field), length in PUBLISHED_LENGTHS.items():
        described = (await inprocess.get(f"/sobjects/{sobject}/describe")).json()
        [found] = [f for f in described["fields"] if f["name"] == field]
        assert found["length"] == length, (sobject, field)


async def test_a_value_one_past_the_length_is_string_too_long(inprocess: InProcess) -> None:
    for field in ("AccountNumber", "BillingCity", "BillingPostalCode", "BillingStreet"):
        length = PUBLISHED_LENGTHS[("Account", field)]
        fits = await inprocess.post("/sobjects/Account/", {"Name": "Fits", field: "x" * length})
        assert fits.status_code == 201, (field, fits.text)
        over = await inprocess.post(
            "/sobjects/Account/", {"Name": "Over", field: "x" * (length + 1)}
        )
        assert over.status_code == 400, field
        [error] = over.json()
        assert (error["errorCode"], error["fields"]) == ("STRING_TOO_LONG", [field])

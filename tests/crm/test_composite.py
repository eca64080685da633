"""Composite requests through simple-salesforce: references, allOrNone, partial success."""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from simulators.crm import composite
from tests.crm.conftest import Harness

BASE = "/services/data/v60.0"
HALTED = "The transaction was rolled back since another operation in the same transaction failed."


def run(crm: Harness, subrequests: list[dict[str, Any]], all_or_none: bool) -> list[dict[str, Any]]:
    result = crm.sf.restful(
        "composite",
        method="POST",
        json={"allOrNone": all_or_none, "compositeRequest": subrequests},
    )
    assert result is not None
    responses: list[dict[str, Any]] = result["compositeResponse"]
    assert [r["referenceId"] for r in responses] == [s["referenceId"] for s in subrequests]
    return responses


def account_then_deal(opportunity_body: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "method": "POST",
            "url": f"{BASE}/sobjects/Account",
            "referenceId": "acct",
            "body": {"Name": "Composite Co"},
        },
        {
            "method": "POST",
            "url": f"{BASE}/sobjects/Opportunity",
            "referenceId": "opp",
            "body": {
                "Name": "Composite deal",
                "AccountId": "@{acct.id}",
                "StageName": "Prospecting",
                "CloseDate": "2026-02-01",
                **opportunity_body,
            },
        },
        {
            "method": "GET",
            "url": f"{BASE}/sobjects/Opportunity/@{{opp.id}}?fields=AccountId,Name",
            "referenceId": "read",
        },
    ]


def test_references_carry_ids_between_subrequests(crm: Harness) -> None:
    subrequests = [
        *account_then_deal({}),
        {
            "method": "PATCH",
            "url": f"{BASE}/sobjects/Opportunity/@{{opp.id}}",
            "referenceId": "close",
            "body": {"StageName": "Closed Won", "Description": "won for @{acct.id}"},
        },
        {
            "method": "GET",
            "url": f"{BASE}/query/?q=SELECT+Id,IsWon+FROM+Opportunity"
            "+WHERE+AccountId='@{acct.id}'",
            "referenceId": "q",
        },
        {
            "method": "PATCH",
            "url": f"{BASE}/sobjects/Account/@{{q.records[0].Id}}",
            "referenceId": "wrong_type",
            "body": {"Name": "x"},
        },
    ]
    responses = run(crm, subrequests, all_or_none=False)
    assert [r["httpStatusCode"] for r in responses] == [201, 201, 200, 204, 200, 404]
    acct, opp = responses[0]["body"]["id"], responses[1]["body"]["id"]
    assert responses[0]["httpHeaders"] == {"Location": f"{BASE}/sobjects/Account/{acct}"}
    assert responses[2]["body"]["AccountId"] == acct and responses[2]["body"]["Id"] == opp
    assert responses[3]["body"] is None
    assert responses[4]["body"]["records"][0] == {
        "attributes": {"type": "Opportunity", "url": f"{BASE}/sobjects/Opportunity/{opp}"},
        "Id": opp,
        "IsWon": True,
    }
    # An opportunity id on an Account URL: Salesforce's NOT_FOUND, in the subresponse only.
    assert responses[5]["body"][0]["errorCode"] == "NOT_FOUND"
    assert crm.sf.Opportunity.get(opp)["Description"] == f"won for {acct}"


def test_all_or_none_rolls_everything_back(crm: Harness) -> None:
    before = crm.records()
    responses = run(crm, account_then_deal({"Colour__c": "red"}), all_or_none=True)
    assert [r["httpStatusCode"] for r in responses] == [400, 400, 400]
    assert responses[0]["body"] == [{"errorCode": "PROCESSING_HALTED", "message": HALTED}]
    assert responses[1]["body"][0]["errorCode"] == "INVALID_FIELD"
    assert responses[2]["body"] == [{"errorCode": "PROCESSING_HALTED", "message": HALTED}]
    assert crm.records() == before
    assert crm.sf.query("SELECT Id FROM Account")["totalSize"] == 0


def test_without_all_or_none_what_succeeded_stays(crm: Harness) -> None:
    responses = run(crm, account_then_deal({"CloseDate": "someday"}), all_or_none=False)
    assert [r["httpStatusCode"] for r in responses] == [201, 400, 400]
    assert responses[1]["body"][0]["errorCode"] == "JSON_PARSER_ERROR"
    halted = responses[2]["body"][0]
    assert halted["errorCode"] == "PROCESSING_HALTED"
    assert "No value for opp.id found in opp" in halted["message"]
    kept = crm.sf.query("SELECT Id FROM Account")["records"]
    assert [r["Id"] for r in kept] == [responses[0]["body"]["id"]]
    assert crm.sf.query("SELECT Id FROM Opportunity")["totalSize"] == 0


def test_all_or_none_success_commits_every_subrequest(crm: Harness) -> None:
    responses = run(crm, account_then_deal({}), all_or_none=True)
    assert [r["httpStatusCode"] for r in responses] == [201, 201, 200]
    assert crm.sf.query("SELECT COUNT() FROM Opportunity")["totalSize"] == 1


def test_a_malformed_envelope_is_refused_whole(crm: Harness) -> None:
    duplicate = [
        {"method": "GET", "url": f"{BASE}/limits/", "referenceId": "a"},
        {"method": "GET", "url": f"{BASE}/limits/", "referenceId": "a"},
    ]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        crm.sf.restful("composite", method="POST", json={"compositeRequest": duplicate})
    assert caught.value.content[0]["errorCode"] == "INVALID_INPUT"
    too_many = [
        {"method": "GET", "url": f"{BASE}/limits/", "referenceId": f"r{n}"} for n in range(26)
    ]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        crm.sf.restful("composite", method="POST", json={"compositeRequest": too_many})
    assert caught.value.content[0]["errorCode"] == "JSON_PARSER_ERROR"
    bad_method = [{"method": "PUT", "url": f"{BASE}/sobjects/Account/x", "referenceId": "a"}]
    with pytest.raises(SalesforceMalformedRequest):
        crm.sf.restful("composite", method="POST", json={"compositeRequest": bad_method})


def test_reference_resolution_rules() -> None:
    results = {"a": {"id": "001X", "n": 3, "records": [{"Id": "006Y"}]}}
    assert composite.resolve("@{a.n}", results) == 3  # a whole-string reference keeps its type
    assert composite.resolve("n=@{a.n}/@{a.records[0].Id}", results) == "n=3/006Y"
    assert composite.resolve({"x": ["@{a.id}"]}, results) == {"x": ["001X"]}
    for bad in ("@{b.id}", "@{a.records[1].Id}", "@{a.id.deeper}", "inside @{a.missing} text"):
        with pytest.raises(composite.UnresolvedReference):
            composite.resolve(bad, results)

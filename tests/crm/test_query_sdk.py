"""SOQL through simple-salesforce: results, paging, queryAll, polling on SystemModstamp."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from tests.crm.conftest import Harness
from tests.crm.helpers import deal, line_total, money


def test_query_with_parent_fields_and_line_items(crm: Harness) -> None:
    sf = crm.sf
    d = deal(
        sf,
        crm.standard_pricebook(),
        [{"Quantity": 2, "UnitPrice": 49.5}, {"Quantity": 1, "UnitPrice": 0.99, "Discount": 10}],
    )
    result = sf.query(
        "SELECT Id, Name, Amount, Account.Name, (SELECT Quantity, UnitPrice, TotalPrice, "
        "PricebookEntry.Product2.Name FROM OpportunityLineItems ORDER BY TotalPrice) "
        f"FROM Opportunity WHERE Id = '{d.opportunity}'"
    )
    assert (result["totalSize"], result["done"]) == (1, True)
    opp = result["records"][0]
    assert opp["Account"]["Name"] == "Acme Corp"
    lines = opp["OpportunityLineItems"]["records"]
    assert [money(line["TotalPrice"]) for line in lines] == [
        line_total("1", "0.99", "10"),
        line_total("2", "49.5"),
    ]
    assert lines[0]["PricebookEntry"]["Product2"]["Name"] == "Pro Plan"
    assert money(opp["Amount"]) == line_total("1", "0.99", "10") + line_total("2", "49.5")


def test_malformed_soql_is_refused(crm: Harness) -> None:
    for text, code in [
        ("SELECT Id FRM Account", "MALFORMED_QUERY"),
        (
            "SELECT Id FROM Account WHERE Name = 'a' AND Type = 'b' OR Phone = 'c'",
            "MALFORMED_QUERY",
        ),
        ("SELECT Id FROM Account GROUP BY Name", "MALFORMED_QUERY"),
        ("SELECT Bogus FROM Account", "INVALID_FIELD"),
        ("SELECT Id FROM Lead", "INVALID_TYPE"),
    ]:
        with pytest.raises(SalesforceMalformedRequest) as caught:
            crm.sf.query(text)
        assert caught.value.content[0]["errorCode"] == code, text
    response = crm.raw("GET", "/services/data/v60.0/query/")
    assert response.status_code == 400
    assert response.json() == [
        {"message": "A query string has to be specified", "errorCode": "MALFORMED_QUERY"}
    ]


def test_next_records_url_pages_through_results(make_crm: Callable[..., Harness]) -> None:
    h = make_crm(query_batch_size=2)
    sf = h.sf
    names = [f"Account {n:02d}" for n in range(7)]
    for name in reversed(names):
        sf.Account.create({"Name": name})
    first = sf.query("SELECT Name FROM Account ORDER BY Name")
    assert (first["totalSize"], first["done"], len(first["records"])) == (7, False, 2)
    assert first["nextRecordsUrl"].startswith("/services/data/v60.0/query/01g")
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert [r["Name"] for r in second["records"]] == names[2:4]
    everything = sf.query_all("SELECT Name FROM Account ORDER BY Name")
    assert [r["Name"] for r in everything["records"]] == names
    # A page size asked for by the client (200 at least) overrides the configured one.
    raw = h.raw(
        "GET",
        "/services/data/v60.0/query/",
        params={"q": "SELECT Name FROM Account"},
        headers={"Sforce-Query-Options": "batchSize=200"},
    )
    assert raw.json()["done"] is True and len(raw.json()["records"]) == 7
    bad = h.raw("GET", "/services/data/v60.0/query/01gSm0000000000AAA-2")
    assert (bad.status_code, bad.json()[0]["errorCode"]) == (400, "INVALID_QUERY_LOCATOR")


def test_query_all_includes_deleted_records(crm: Harness) -> None:
    sf = crm.sf
    keep = sf.Account.create({"Name": "Keep"})["id"]
    gone = sf.Account.create({"Name": "Gone"})["id"]
    sf.Account.delete(gone)
    live = sf.query("SELECT Id, IsDeleted FROM Account")["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in live] == [(keep, False)]
    every = sf.query_all("SELECT Id, IsDeleted FROM Account ORDER BY Name", include_deleted=True)
    assert [(r["Id"], r["IsDeleted"]) for r in every["records"]] == [(gone, True), (keep, False)]


def test_polling_on_system_modstamp(crm: Harness) -> None:
    sf = crm.sf
    d = deal(sf, crm.standard_pricebook(), [])
    other = sf.Opportunity.create(
        {"Name": "Quiet", "StageName": "Prospecting", "CloseDate": "2026-03-01"}
    )["id"]
    crm.control("POST", "/_sim/clock/advance", {"seconds": 3600})
    mark = "2026-01-15T00:30:00Z"
    assert sf.query(f"SELECT Id FROM Opportunity WHERE SystemModstamp > {mark}")["records"] == []

    # Adding a product changes Amount: a system change, so SystemModstamp moves and
    # LastModifiedDate (changes by a user) does not.
    sf.OpportunityLineItem.create(
        {"OpportunityId": d.opportunity, "PricebookEntryId": d.entry, "Quantity": 1, "UnitPrice": 5}
    )
    changed = sf.query(
        "SELECT Id, SystemModstamp, LastModifiedDate FROM Opportunity "
        f"WHERE SystemModstamp > {mark}"
    )["records"]
    assert [r["Id"] for r in changed] == [d.opportunity]
    assert changed[0]["SystemModstamp"] == "2026-01-15T01:00:00.000+0000"
    assert changed[0]["LastModifiedDate"] == "2026-01-15T00:00:00.000+0000"

    start = datetime(2026, 1, 15, 0, 30, tzinfo=UTC)
    end = datetime(2026, 1, 15, 2, 0, tzinfo=UTC)
    updated = sf.Opportunity.updated(start, end)
    assert updated["ids"] == [d.opportunity] and other not in updated["ids"]
    assert updated["latestDateCovered"] == "2026-01-15T01:00:00.000+0000"  # not past now

    sf.Opportunity.delete(other)
    deleted = sf.Opportunity.deleted(start, end)
    assert deleted["deletedRecords"] == [
        {"id": other, "deletedDate": "2026-01-15T01:00:00.000+0000"}
    ]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Opportunity.updated(datetime(2025, 11, 1, tzinfo=UTC), end)
    assert caught.value.content[0]["errorCode"] == "INVALID_REPLICATION_DATE"

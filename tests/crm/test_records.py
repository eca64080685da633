"""Records through simple-salesforce over HTTPS: CRUD, upsert, rules, and bad input refused."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceResourceNotFound,
)

from simulators.crm import ids
from simulators.crm.schema import CustomField
from tests.crm.conftest import Harness
from tests.crm.helpers import deal, line_total, money, product_with_price

LIMIT_INFO = re.compile(r"^api-usage=\d+/\d+$")


def first_error(exc: Exception) -> dict[str, Any]:
    content = getattr(exc, "content", None)
    assert isinstance(content, list) and content, content
    error: dict[str, Any] = content[0]
    return error


def test_create_retrieve_update_delete(crm: Harness) -> None:
    sf = crm.sf
    created = sf.Account.create({"Name": "Acme", "NumberOfEmployees": 40, "AnnualRevenue": 1e6})
    assert created["success"] is True and created["errors"] == []
    account_id = created["id"]
    assert account_id.startswith("001") and ids.normalize(account_id) == account_id

    got = sf.Account.get(account_id)
    assert got["attributes"] == {
        "type": "Account",
        "url": f"/services/data/v60.0/sobjects/Account/{account_id}",
    }
    assert (got["Id"], got["Name"], got["NumberOfEmployees"]) == (account_id, "Acme", 40)
    assert got["AnnualRevenue"] == 1_000_000.0 and got["Industry"] is None
    assert got["CreatedDate"] == "2026-01-15T00:00:00.000+0000" == got["SystemModstamp"]

    crm.control("POST", "/_sim/clock/advance", {"seconds": 90})
    assert sf.Account.update(account_id, {"Name": "Acme Inc", "Industry": "Tech"}) == 204
    got = sf.Account.get(account_id, params={"fields": "Name,Industry,LastModifiedDate"})
    assert set(got) == {"attributes", "Id", "Name", "Industry", "LastModifiedDate"}
    assert (got["Name"], got["Industry"]) == ("Acme Inc", "Tech")
    assert got["LastModifiedDate"] == "2026-01-15T00:01:30.000+0000"

    # Ids are case-safe: a 15-character id and a lower-cased 18-character one both work.
    assert sf.Account.get(account_id[:15])["Id"] == account_id
    assert sf.Account.get(account_id.lower())["Id"] == account_id

    assert sf.Account.delete(account_id) == 204
    with pytest.raises(SalesforceResourceNotFound) as gone:
        sf.Account.get(account_id)
    assert first_error(gone.value)["errorCode"] == "ENTITY_IS_DELETED"


def test_unknown_ids_and_objects_are_not_found(crm: Harness) -> None:
    sf = crm.sf
    with pytest.raises(SalesforceResourceNotFound) as caught:
        sf.Account.get(ids.to18("001Sm0000000zzz"))
    assert first_error(caught.value) == {
        "message": "The requested resource does not exist",
        "errorCode": "NOT_FOUND",
    }
    with pytest.raises(SalesforceResourceNotFound) as caught:
        sf.Account.get("not-an-id")  # Salesforce reads it as an external id field name
    assert "external ID field does not exist" in first_error(caught.value)["message"]
    contact = sf.Contact.create({"LastName": "Doe"})["id"]
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get(contact)  # an id of another object
    with pytest.raises(SalesforceResourceNotFound):
        sf.Lead.create({"LastName": "Nope"})


def test_session_is_checked(crm: Harness) -> None:
    with pytest.raises(SalesforceExpiredSession) as caught:
        crm.client(session_id="00D000000000000!bogus").Account.create({"Name": "X"})
    assert first_error(caught.value) == {
        "message": "Session expired or invalid",
        "errorCode": "INVALID_SESSION_ID",
    }
    assert [r["sobject"] for r in crm.records()] == ["Pricebook2"]  # the standard book only


def test_every_response_carries_sforce_limit_info(crm: Harness) -> None:
    responses = [
        crm.raw("POST", "/services/data/v60.0/sobjects/Account/", json={"Name": "A"}),
        crm.raw("GET", "/services/data/v60.0/sobjects/Account/describe"),
        crm.raw("POST", "/services/data/v60.0/sobjects/Account/", json={"Nam": "A"}),
        crm.raw("GET", "/services/data/v60.0/sobjects/Account/001Sm0000000zzzAAA"),
        crm.raw("GET", "/services/data/v99.9x/sobjects/Account/describe"),
        crm.raw("GET", "/services/data/v60.0/query/", params={"q": "SELECT"}),
        crm.raw("GET", "/services/data/v60.0/limits/", headers={"Authorization": "Bearer no"}),
    ]
    assert [r.status_code for r in responses] == [201, 200, 400, 404, 404, 400, 401]
    for response in responses:
        assert LIMIT_INFO.match(response.headers["Sforce-Limit-Info"]), response.headers
        if response.status_code >= 400:
            body = response.json()
            assert isinstance(body, list) and {"message", "errorCode"} <= set(body[0])


@pytest.mark.parametrize(
    "body, code, fields",
    [
        ({"Name": "A", "Colour__c": "red"}, "INVALID_FIELD", None),
        ({"Name": "A", "NumberOfEmployees": "many"}, "JSON_PARSER_ERROR", ["NumberOfEmployees"]),
        ({"Name": "A", "NumberOfEmployees": 12.5}, "JSON_PARSER_ERROR", ["NumberOfEmployees"]),
        ({"Name": ["A"]}, "JSON_PARSER_ERROR", ["Name"]),
        ({"Name": "A" * 256}, "STRING_TOO_LONG", ["Name"]),
        ({"Name": "A", "IsDeleted": True}, "INVALID_FIELD_FOR_INSERT_UPDATE", ["IsDeleted"]),
        ({"Name": "A", "Id": "001Sm0000000zzzAAA"}, "INVALID_FIELD", None),
        (
            {"Name": "A", "CurrencyIsoCode": "XYZ"},
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            ["CurrencyIsoCode"],
        ),
        ({"Name": "A", "AnnualRevenue": 1e30}, "NUMBER_OUTSIDE_VALID_RANGE", ["AnnualRevenue"]),
        ({"Industry": "Tech"}, "REQUIRED_FIELD_MISSING", ["Name"]),
        ({"Name": None}, "REQUIRED_FIELD_MISSING", ["Name"]),
    ],
)
def test_bad_account_bodies_are_refused_and_change_nothing(
    crm: Harness, body: dict[str, Any], code: str, fields: list[str] | None
) -> None:
    existing = crm.sf.Account.create({"Name": "Keep"})["id"]
    before = crm.records()
    with pytest.raises(SalesforceMalformedRequest) as caught:
        crm.sf.Account.create(body)
    error = first_error(caught.value)
    assert error["errorCode"] == code
    assert error.get("fields") == fields
    with pytest.raises(SalesforceMalformedRequest) as caught:
        crm.sf.Account.update(
            existing, {k: v for k, v in body.items() if k != "Industry"} or {"Name": None}
        )
    assert crm.records() == before


def test_bad_references_and_picklists(crm: Harness) -> None:
    sf = crm.sf
    contact = sf.Contact.create({"FirstName": "Ada", "LastName": "Lovelace"})["id"]
    assert sf.Contact.get(contact)["Name"] == "Ada Lovelace"
    before = crm.records()
    cases = [
        ({"AccountId": contact}, "FIELD_INTEGRITY_EXCEPTION"),
        ({"AccountId": ids.to18("001Sm0000000zzz")}, "INVALID_CROSS_REFERENCE_KEY"),
        ({"AccountId": "garbage"}, "MALFORMED_ID"),
        ({"StageName": "Won-ish"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
        ({"CloseDate": "2026-02-30"}, "JSON_PARSER_ERROR"),
        ({"CloseDate": "01/02/2026"}, "JSON_PARSER_ERROR"),
    ]
    for extra, code in cases:
        body = {"Name": "D", "StageName": "Prospecting", "CloseDate": "2026-02-01", **extra}
        with pytest.raises(SalesforceMalformedRequest) as caught:
            sf.Opportunity.create(body)
        assert first_error(caught.value)["errorCode"] == code, extra
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Opportunity.create({"Name": "D"})
    assert first_error(caught.value) == {
        "message": "Required fields are missing: [StageName, CloseDate]",
        "errorCode": "REQUIRED_FIELD_MISSING",
        "fields": ["StageName", "CloseDate"],
    }
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Contact.create({"LastName": "X", "Email": "not an email"})
    assert first_error(caught.value)["errorCode"] == "INVALID_EMAIL_ADDRESS"
    assert crm.records() == before


def test_malformed_json_is_a_parser_error(crm: Harness) -> None:
    response = crm.raw(
        "POST",
        "/services/data/v60.0/sobjects/Account/",
        content=b'{"Name": ',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "JSON_PARSER_ERROR"
    assert len(crm.records()) == 1


# Salesforce's default stages: probability, closed, won, forecast category (independent table).
STAGES = [
    ("Prospecting", 10, False, False, "Pipeline"),
    ("Qualification", 10, False, False, "Pipeline"),
    ("Needs Analysis", 20, False, False, "Pipeline"),
    ("Value Proposition", 50, False, False, "Pipeline"),
    ("Id. Decision Makers", 60, False, False, "Pipeline"),
    ("Perception Analysis", 70, False, False, "Pipeline"),
    ("Proposal/Price Quote", 75, False, False, "Pipeline"),
    ("Negotiation/Review", 90, False, False, "Pipeline"),
    ("Closed Won", 100, True, True, "Closed"),
    ("Closed Lost", 0, True, False, "Omitted"),
]


def test_stage_names_drive_is_closed_is_won_and_probability(crm: Harness) -> None:
    sf = crm.sf
    opp = sf.Opportunity.create(
        {"Name": "D", "StageName": "Prospecting", "CloseDate": "2026-02-01"}
    )["id"]
    for stage, probability, closed, won, forecast in STAGES:
        sf.Opportunity.update(opp, {"StageName": stage})
        got = sf.Opportunity.get(opp)
        assert (got["IsClosed"], got["IsWon"], got["Probability"], got["ForecastCategoryName"]) == (
            closed,
            won,
            probability,
            forecast,
        ), stage
    # A probability given with the stage wins over the stage's default.
    sf.Opportunity.update(opp, {"StageName": "Qualification", "Probability": 33})
    assert sf.Opportunity.get(opp)["Probability"] == 33
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Opportunity.update(opp, {"IsWon": True})
    assert first_error(caught.value)["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_amount_is_the_sum_of_line_totals_and_writes_to_it_are_ignored(crm: Harness) -> None:
    sf = crm.sf
    lines = [
        {"Quantity": 3, "UnitPrice": 19.99},
        {"Quantity": 7.5, "UnitPrice": 12.345},  # the price rounds half-up to 12.35
        {"Quantity": 2, "UnitPrice": 100, "Discount": 12.5},
        {"Quantity": 4, "TotalPrice": 10.01},  # a given total stands; the price is derived
    ]
    d = deal(sf, crm.standard_pricebook(), lines)
    expected_totals = [
        line_total("3", "19.99"),
        line_total("7.5", "12.35"),
        line_total("2", "100", "12.5"),
        Decimal("10.01"),
    ]
    got = [money(sf.OpportunityLineItem.get(i)["TotalPrice"]) for i in d.lines]
    assert (
        got
        == expected_totals
        == [Decimal("59.97"), Decimal("92.63"), Decimal("175.00"), Decimal("10.01")]
    )
    derived = sf.OpportunityLineItem.get(d.lines[3])
    assert money(derived["UnitPrice"]) == Decimal("2.50")  # 10.01 / 4 = 2.5025, half-up
    assert money(derived["ListPrice"]) == Decimal("19.99")
    assert derived["Name"] == "Acme Pro Pro Plan" and derived["CurrencyIsoCode"] == "USD"

    opp = sf.Opportunity.get(d.opportunity)
    assert money(opp["Amount"]) == sum(expected_totals)
    assert opp["HasOpportunityLineItem"] is True
    assert opp["Pricebook2Id"] == crm.standard_pricebook()  # set by the first product

    sf.Opportunity.update(d.opportunity, {"Amount": 1, "Description": "edited"})
    opp = sf.Opportunity.get(d.opportunity)
    assert money(opp["Amount"]) == sum(expected_totals) and opp["Description"] == "edited"

    sf.OpportunityLineItem.update(d.lines[0], {"Quantity": 5})
    expected_totals[0] = line_total("5", "19.99")
    sf.OpportunityLineItem.delete(d.lines[1])
    del expected_totals[1]
    assert money(sf.Opportunity.get(d.opportunity)["Amount"]) == sum(expected_totals)

    for line in (d.lines[0], d.lines[2], d.lines[3]):
        sf.OpportunityLineItem.delete(line)
    opp = sf.Opportunity.get(d.opportunity)
    assert (opp["Amount"], opp["HasOpportunityLineItem"]) == (0.0, False)
    sf.Opportunity.update(d.opportunity, {"Amount": 1234.5})  # writable again without lines
    assert sf.Opportunity.get(d.opportunity)["Amount"] == 1234.5


def test_line_item_prices_are_checked(crm: Harness) -> None:
    sf = crm.sf
    d = deal(sf, crm.standard_pricebook(), [{"Quantity": 1, "UnitPrice": 5}])
    before = crm.records()
    cases = [
        ({"Quantity": 1}, "total price must be specified"),
        ({"Quantity": 1, "UnitPrice": 5, "TotalPrice": 5}, "cannot specify both"),
        ({"Quantity": 0, "UnitPrice": 5}, "quantity must be non-zero"),
    ]
    for body, needle in cases:
        with pytest.raises(SalesforceMalformedRequest) as caught:
            sf.OpportunityLineItem.create(
                {"OpportunityId": d.opportunity, "PricebookEntryId": d.entry, **body}
            )
        error = first_error(caught.value)
        assert error["errorCode"] == "FIELD_INTEGRITY_EXCEPTION" and needle in error["message"]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.OpportunityLineItem.update(d.lines[0], {"OpportunityId": d.opportunity})
    assert first_error(caught.value)["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert crm.records() == before


def test_currency_must_agree_between_opportunity_lines_and_price_book(crm: Harness) -> None:
    sf = crm.sf
    standard = crm.standard_pricebook()
    product, usd_entry = product_with_price(sf, standard, "Seat", 10)
    eur_entry = sf.PricebookEntry.create(
        {
            "Pricebook2Id": standard,
            "Product2Id": product,
            "UnitPrice": 9,
            "CurrencyIsoCode": "EUR",
            "IsActive": True,
        }
    )["id"]
    opp = sf.Opportunity.create(
        {
            "Name": "EU deal",
            "StageName": "Prospecting",
            "CloseDate": "2026-02-01",
            "CurrencyIsoCode": "EUR",
        }
    )["id"]
    before = crm.records()
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.OpportunityLineItem.create(
            {"OpportunityId": opp, "PricebookEntryId": usd_entry, "Quantity": 1, "UnitPrice": 10}
        )
    error = first_error(caught.value)
    assert error["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    assert "currency code does not match" in error["message"] and error["fields"] == [
        "PricebookEntryId"
    ]
    assert crm.records() == before

    line = sf.OpportunityLineItem.create(
        {"OpportunityId": opp, "PricebookEntryId": eur_entry, "Quantity": 2, "UnitPrice": 9}
    )["id"]
    assert sf.OpportunityLineItem.get(line)["CurrencyIsoCode"] == "EUR"
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Opportunity.update(opp, {"CurrencyIsoCode": "USD"})
    assert "cannot change currency" in first_error(caught.value)["message"]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.PricebookEntry.create(
            {
                "Pricebook2Id": standard,
                "Product2Id": product,
                "UnitPrice": 11,
                "CurrencyIsoCode": "EUR",
            }
        )
    assert first_error(caught.value)["errorCode"] == "DUPLICATE_VALUE"


def test_custom_price_books_need_a_standard_price(crm: Harness) -> None:
    sf = crm.sf
    book = sf.Pricebook2.create({"Name": "Partners", "IsActive": True})["id"]
    product = sf.Product2.create({"Name": "Widget", "IsActive": True})["id"]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.PricebookEntry.create({"Pricebook2Id": book, "Product2Id": product, "UnitPrice": 8})
    assert first_error(caught.value) == {
        "message": "No standard price defined for this product",
        "errorCode": "STANDARD_PRICE_NOT_DEFINED",
    }
    sf.PricebookEntry.create(
        {"Pricebook2Id": crm.standard_pricebook(), "Product2Id": product, "UnitPrice": 10}
    )
    custom = sf.PricebookEntry.create({"Pricebook2Id": book, "Product2Id": product, "UnitPrice": 8})
    assert sf.PricebookEntry.get(custom["id"])["Name"] == "Widget"


def test_deletes_cascade_and_refuse_what_is_in_use(crm: Harness) -> None:
    sf = crm.sf
    d = deal(sf, crm.standard_pricebook(), [{"Quantity": 1, "UnitPrice": 5}])
    contact = sf.Contact.create({"LastName": "Doe", "AccountId": d.account})["id"]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Product2.delete(d.product)
    assert first_error(caught.value)["errorCode"] == "DELETE_FAILED"
    with pytest.raises(SalesforceMalformedRequest):
        sf.Pricebook2.delete(crm.standard_pricebook())
    sf.Account.delete(d.account)
    for sobject, record_id in [
        ("Contact", contact),
        ("Opportunity", d.opportunity),
        ("OpportunityLineItem", d.lines[0]),
    ]:
        with pytest.raises(SalesforceResourceNotFound):
            getattr(sf, sobject).get(record_id)
    sf.Product2.delete(d.product)  # no live line uses its price any more
    with pytest.raises(SalesforceResourceNotFound):
        sf.PricebookEntry.get(d.entry)


def test_upsert_by_external_id(crm: Harness) -> None:
    sf = crm.sf
    assert sf.Account.upsert("External_Id__c/EXT-1", {"Name": "Acme"}) == 201
    found = sf.Account.get_by_custom_id("External_Id__c", "EXT-1")
    assert found["Name"] == "Acme" and found["External_Id__c"] == "EXT-1"
    response = sf.Account.upsert("External_Id__c/ext-1", {"Name": "Acme 2"}, raw_response=True)
    assert response.status_code == 200  # API 46.0 and later: 200 with created false
    assert response.json() == {"id": found["Id"], "success": True, "errors": [], "created": False}
    assert sf.Account.get(found["Id"])["Name"] == "Acme 2"
    old = crm.client(version="45.0")
    assert old.Account.upsert("External_Id__c/EXT-1", {"Name": "Acme 3"}) == 204
    assert sf.Account.get(found["Id"])["Name"] == "Acme 3"
    assert len(sf.query("SELECT Id FROM Account")["records"]) == 1

    a = sf.Account.create({"Name": "Twin A", "External_Id__c": "DUP"})["id"]
    b = sf.Account.create({"Name": "Twin B", "External_Id__c": "dup"})["id"]
    before = crm.records()
    with pytest.raises(SalesforceMoreThanOneRecord) as caught:
        sf.Account.upsert("External_Id__c/DUP", {"Name": "Which?"})
    assert sorted(caught.value.content) == sorted(
        f"/services/data/v60.0/sobjects/Account/{i}" for i in (a, b)
    )
    with pytest.raises(SalesforceMoreThanOneRecord):
        sf.Account.get_by_custom_id("External_Id__c", "DUP")
    assert crm.records() == before

    with pytest.raises(SalesforceResourceNotFound) as missing:
        sf.Account.upsert("Name/Acme", {"Industry": "Tech"})  # not an external id field
    assert "external ID field" in first_error(missing.value)["message"]


def test_relationships_can_be_set_by_external_id(crm: Harness) -> None:
    sf = crm.sf
    account = sf.Account.create({"Name": "Acme", "Billing_Customer_Id__c": "cus_9"})["id"]
    opp = sf.Opportunity.create(
        {
            "Name": "By reference",
            "StageName": "Prospecting",
            "CloseDate": "2026-02-01",
            "Account": {"Billing_Customer_Id__c": "cus_9"},
        }
    )["id"]
    assert sf.Opportunity.get(opp)["AccountId"] == account
    before = crm.records()
    for reference, needle in [
        ({"Billing_Customer_Id__c": "cus_404"}, "not found for field Billing_Customer_Id__c"),
        ({"Name": "Acme"}, "exactly one external id field"),
    ]:
        with pytest.raises(SalesforceMalformedRequest) as caught:
            sf.Opportunity.update(opp, {"Account": reference})
        assert first_error(caught.value)["errorCode"] == "INVALID_FIELD"
        assert needle in first_error(caught.value)["message"]
    with pytest.raises(SalesforceMalformedRequest):
        sf.Opportunity.update(
            opp, {"AccountId": account, "Account": {"Billing_Customer_Id__c": "cus_9"}}
        )
    assert crm.records() == before


def test_unique_external_ids_refuse_duplicates(crm: Harness) -> None:
    sf = crm.sf
    first = sf.Account.create({"Name": "A", "Billing_Customer_Id__c": "cus_123"})["id"]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Account.create({"Name": "B", "Billing_Customer_Id__c": "CUS_123"})
    error = first_error(caught.value)
    assert error["errorCode"] == "DUPLICATE_VALUE" and first in error["message"]
    assert sf.Account.upsert("Billing_Customer_Id__c/cus_123", {"Name": "A2"}) == 200


def test_describe_lists_standard_and_configured_fields(
    crm: Harness, make_crm: Callable[..., Harness]
) -> None:
    crm.sf.Account.create({"Name": "Recent"})
    info = crm.sf.Account.metadata()  # GET /sobjects/Account/
    assert info["objectDescribe"]["keyPrefix"] == "001"
    assert [r["Name"] for r in info["recentItems"]] == ["Recent"]
    described = crm.sf.Account.describe()
    assert (described["name"], described["keyPrefix"]) == ("Account", "001")
    fields = {f["name"]: f for f in described["fields"]}
    assert (
        fields["Billing_Customer_Id__c"]["externalId"]
        and fields["Billing_Customer_Id__c"]["unique"]
    )
    assert fields["Billing_Customer_Id__c"]["custom"] and not fields["Name"]["custom"]
    assert fields["Id"]["type"] == "id" and not fields["CreatedDate"]["updateable"]
    assert {c["relationshipName"] for c in described["childRelationships"]} == {
        "Contacts",
        "Opportunities",
    }
    opp_fields = {f["name"]: f for f in crm.sf.Opportunity.describe()["fields"]}
    assert [p["value"] for p in opp_fields["StageName"]["picklistValues"]] == [s[0] for s in STAGES]
    assert "Billing_Subscription_Id__c" in opp_fields and "Contracting_Entity__c" in opp_fields
    assert {o["name"] for o in crm.sf.describe()["sobjects"]} == {
        "Account",
        "Contact",
        "Product2",
        "Pricebook2",
        "PricebookEntry",
        "Opportunity",
        "OpportunityLineItem",
    }

    other = make_crm(
        custom_fields={
            "Account": [
                CustomField("Segment__c", type="picklist", picklist=("SMB", "ENT"), restricted=True)
            ]
        }
    )
    names = {f["name"] for f in other.sf.Account.describe()["fields"]}
    assert "Segment__c" in names and "Billing_Customer_Id__c" not in names
    other.sf.Account.create({"Name": "S", "Segment__c": "smb"})
    with pytest.raises(SalesforceMalformedRequest) as caught:
        other.sf.Account.create({"Name": "S", "Billing_Customer_Id__c": "x"})
    assert first_error(caught.value)["errorCode"] == "INVALID_FIELD"


def test_ids_are_deterministic_per_seed(crm: Harness) -> None:
    def ids_for(seed: int) -> list[str]:
        crm.control("POST", "/_sim/reset", {"seed": seed, "start_at": "2026-01-15T00:00:00Z"})
        return [crm.sf.Account.create({"Name": f"A{n}"})["id"] for n in range(3)]

    first, again, other = ids_for(7), ids_for(7), ids_for(8)
    assert first == again and first != other
    assert all(ids.checksum(i[:15]) == i[15:] and i.startswith("001") for i in first + other)

"""Record service: create → 204 + Location, get, list envelope, patch, upsert by eid, delete,
and NetSuite's errors for bad input, which never change state."""

from __future__ import annotations

from typing import Any

import pytest

from tests.erp.conftest import RECORD, Erp, error_of


def test_create_answers_204_with_location_and_the_record_reads_back(erp: Erp) -> None:
    response = erp.request(
        "POST",
        f"{RECORD}/customer",
        json={
            "companyName": "Acme Ltd",
            "email": "ap@acme.test",
            "externalId": "cus_ACME",
            "subsidiary": {"externalId": "UK"},
        },
    )
    assert response.status_code == 204
    assert response.content == b""
    location = response.headers["Location"]
    assert location.startswith(f"{RECORD}/customer/")
    record = erp.request("GET", location).json()
    assert record["id"] == location.rsplit("/", 1)[1]
    assert record["links"] == [{"rel": "self", "href": location}]
    assert record["companyName"] == "Acme Ltd"
    assert record["externalId"] == "cus_ACME"
    # The customer takes its subsidiary's base currency when none is given.
    assert record["subsidiary"] == {"id": "2", "refName": "Finsim Ltd."}
    assert record["currency"] == {"id": "2", "refName": "British Pound"}
    assert erp.get("customer", "eid:cus_ACME")["id"] == record["id"]


def test_upsert_by_external_id_never_duplicates(erp: Erp) -> None:
    path = f"{RECORD}/customer/eid:cus_UPS"
    body = {"companyName": "Upsert Co", "subsidiary": {"externalId": "DE"}}
    first = erp.request("PUT", path, json=body)
    assert first.status_code == 204
    for n in range(3):
        again = erp.request("PUT", path, json={**body, "email": f"v{n}@upsert.test"})
        assert again.status_code == 204
        assert again.headers["Location"] == first.headers["Location"]
    rows = erp.suiteql("SELECT id, email FROM customer WHERE externalid = 'cus_UPS'")
    assert rows == [{"id": first.headers["Location"].rsplit("/", 1)[1], "email": "v2@upsert.test"}]
    # A create with the same external id is a duplicate, not a second record.
    response = erp.request("POST", f"{RECORD}/customer", json={**body, "externalId": "cus_UPS"})
    assert error_of(response)[:2] == (400, "DUP_RCRD")
    assert len(erp.suiteql("SELECT id FROM customer")) == 1


def test_upsert_needs_an_external_id_in_the_url(erp: Erp) -> None:
    customer = erp.customer("Plain", "US")
    response = erp.request("PUT", f"{RECORD}/customer/{customer}", json={"email": "x@y.test"})
    assert error_of(response)[:2] == (400, "INVALID_PARAMETER")
    mismatch = erp.request(
        "PUT",
        f"{RECORD}/customer/eid:one",
        json={"externalId": "two", "companyName": "X", "subsidiary": {"id": "1"}},
    )
    assert error_of(mismatch)[:2] == (400, "INVALID_CONTENT")


def test_patch_updates_in_place_and_answers_204(erp: Erp) -> None:
    customer = erp.customer("Patchable", "US")
    response = erp.request("PATCH", f"{RECORD}/customer/{customer}", json={"email": "new@p.test"})
    assert response.status_code == 204
    assert "Location" not in response.headers
    assert erp.get("customer", customer)["email"] == "new@p.test"


def test_list_envelope_pages_with_limit_and_offset(erp: Erp) -> None:
    ids = [erp.customer(f"Cust {n}", "US") for n in range(5)]
    page = erp.request("GET", f"{RECORD}/customer", params={"limit": 2, "offset": 2}).json()
    assert set(page) == {"links", "count", "hasMore", "items", "offset", "totalResults"}
    assert (page["count"], page["hasMore"], page["offset"], page["totalResults"]) == (2, True, 2, 5)
    assert [item["id"] for item in page["items"]] == ids[2:4]
    assert page["items"][0]["links"] == [{"rel": "self", "href": f"{RECORD}/customer/{ids[2]}"}]
    rels = {link["rel"]: link["href"] for link in page["links"]}
    assert rels["next"].endswith("limit=2&offset=4")
    assert rels["self"].endswith("limit=2&offset=2")
    last = erp.request("GET", f"{RECORD}/customer", params={"limit": 2, "offset": 4}).json()
    assert (last["count"], last["hasMore"]) == (1, False)
    bad = erp.request("GET", f"{RECORD}/customer", params={"limit": 2, "offset": 3})
    assert error_of(bad)[:2] == (400, "INVALID_PARAMETER")


def test_sublists_are_links_unless_expanded(erp: Erp) -> None:
    customer = erp.customer("Lines", "US")
    invoice = erp.create(
        "invoice",
        {
            "entity": {"id": customer},
            "item": {"items": [{"item": {"externalId": "SERVICES"}, "amount": 5}]},
        },
    )
    collapsed = erp.get("invoice", invoice, expand=False)["item"]
    assert collapsed == {"links": [{"rel": "self", "href": f"{RECORD}/invoice/{invoice}/item"}]}
    expanded = erp.get("invoice", invoice)["item"]
    assert expanded["count"] == 1
    assert expanded["items"][0]["amount"] == 5
    assert expanded["items"][0]["item"]["refName"] == "Professional Services"


@pytest.mark.parametrize(
    ("body", "code", "path"),
    [
        (
            {"companyName": "X", "subsidiary": {"id": "1"}, "colour": "red"},
            "INVALID_CONTENT",
            "colour",
        ),
        ({"companyName": 42, "subsidiary": {"id": "1"}}, "INVALID_CONTENT", "companyName"),
        ({"companyName": "X"}, "INVALID_CONTENT", "subsidiary"),
        ({"companyName": "X", "subsidiary": {"id": "999"}}, "INVALID_CONTENT", "subsidiary"),
        (
            {"companyName": "X", "subsidiary": {"id": "1", "bogus": 1}},
            "INVALID_CONTENT",
            "subsidiary.bogus",
        ),
        (
            {"companyName": "X", "subsidiary": {"externalId": "MOON"}},
            "INVALID_CONTENT",
            "subsidiary",
        ),
    ],
)
def test_bad_input_gets_netsuites_error_and_changes_nothing(
    erp: Erp, body: dict[str, Any], code: str, path: str
) -> None:
    before = erp.state()
    response = erp.request("POST", f"{RECORD}/customer", json=body)
    status, got, _ = error_of(response)
    assert (status, got) == (400, code)
    assert response.json()["o:errorDetails"][0]["o:errorPath"] == path
    assert erp.state() == before


def test_malformed_json_and_unknown_ids(erp: Erp) -> None:
    before = erp.state()
    broken = erp.request(
        "POST",
        f"{RECORD}/customer",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert error_of(broken)[:2] == (400, "INVALID_CONTENT")
    for path in (
        f"{RECORD}/customer/424242",
        f"{RECORD}/customer/eid:nobody",
        f"{RECORD}/customer/abc",
    ):
        missing = erp.request("GET", path)
        assert error_of(missing)[:2] == (404, "NONEXISTENT_ID")
    patch = erp.request("PATCH", f"{RECORD}/invoice/424242", json={"memo": "x"})
    assert error_of(patch)[:2] == (404, "NONEXISTENT_ID")
    unknown = erp.request("GET", f"{RECORD}/salesOrder")
    assert error_of(unknown)[0] == 404
    assert erp.state() == before


def test_bearer_token_is_required(erp: Erp) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {erp.sim.token}"},
    ):
        response = erp.client.get(f"{RECORD}/customer", headers=headers)
        status, code, detail = error_of(response)
        assert (status, code) == (401, "INVALID_LOGIN")
        assert detail.startswith("Invalid login attempt.")
    assert set(erp.sim.credentials()) == {"token", "admin_token"}


def test_a_customers_transactions_use_its_subsidiary_and_currency(erp: Erp) -> None:
    customer = erp.customer("Routed", "UK")
    line = {"items": [{"item": {"externalId": "SERVICES"}, "amount": 10}]}
    before = erp.state()
    wrong_sub = erp.request(
        "POST",
        f"{RECORD}/invoice",
        json={"entity": {"id": customer}, "subsidiary": {"externalId": "US"}, "item": line},
    )
    status, code, detail = error_of(wrong_sub)
    assert (status, code) == (400, "USER_ERROR")
    assert "Finsim Ltd." in detail
    wrong_currency = erp.request(
        "POST",
        f"{RECORD}/invoice",
        json={"entity": {"id": customer}, "currency": {"externalId": "EUR"}, "item": line},
    )
    assert error_of(wrong_currency)[:2] == (400, "USER_ERROR")
    assert erp.state() == before
    invoice = erp.get("invoice", erp.create("invoice", {"entity": {"id": customer}, "item": line}))
    assert (invoice["subsidiary"]["id"], invoice["currency"]["id"]) == ("2", "2")
    # Once it has transactions, the customer cannot move.
    moved = erp.request(
        "PATCH", f"{RECORD}/customer/{customer}", json={"subsidiary": {"externalId": "DE"}}
    )
    assert error_of(moved)[:2] == (400, "USER_ERROR")
    deleted = erp.request("DELETE", f"{RECORD}/customer/{customer}")
    assert error_of(deleted)[:2] == (400, "USER_ERROR")


def test_delete_where_netsuite_allows_it(erp: Erp) -> None:
    customer = erp.customer("Short-lived", "US")
    assert erp.request("DELETE", f"{RECORD}/customer/{customer}").status_code == 204
    assert error_of(erp.request("GET", f"{RECORD}/customer/{customer}"))[0] == 404
    # A seeded account with an account role cannot go; a fresh unused one can.
    ar = erp.request("DELETE", f"{RECORD}/account/eid:1100")
    assert error_of(ar)[:2] == (400, "USER_ERROR")
    account = erp.create(
        "account", {"acctNumber": "6100", "acctName": "Travel", "acctType": "Expense"}
    )
    assert erp.request("DELETE", f"{RECORD}/account/{account}").status_code == 204
    # Subsidiaries have no delete in this subset.
    assert erp.request("DELETE", f"{RECORD}/subsidiary/1").status_code == 405


def test_custom_fields_are_stored_read_back_and_queryable(erp: Erp) -> None:
    """NetSuite custom fields: ``custentity…`` on customers, ``custbody…`` on transactions —
    what a connector uses to keep the source document's id beside its own external id."""
    customer = erp.create(
        "customer",
        {
            "companyName": "Custom Co",
            "subsidiary": {"externalId": "US"},
            "custentity_stripe_customer": "cus_C1",
        },
    )
    assert erp.get("customer", customer)["custentity_stripe_customer"] == "cus_C1"
    invoice = erp.create(
        "invoice",
        {
            "externalId": "STRIPE-in_1",
            "entity": {"id": customer},
            "item": {"items": [{"item": {"externalId": "SUBSCRIPTION"}, "amount": 10}]},
            "custbody_stripe_invoice": "in_1",
            "custbody_sync_attempts": 2,
            "custbody_synced": True,
        },
    )
    record = erp.get("invoice", invoice)
    assert (record["custbody_stripe_invoice"], record["custbody_sync_attempts"]) == ("in_1", 2)
    assert record["custbody_synced"] is True
    rows = erp.suiteql(
        "SELECT id, custbody_sync_attempts, custbody_synced, custbody_missing FROM transaction"
        " WHERE custbody_stripe_invoice = 'in_1'"
    )
    assert rows == [{"id": invoice, "custbody_sync_attempts": "2", "custbody_synced": "T"}]
    patched = erp.request(
        "PATCH", f"{RECORD}/invoice/{invoice}", json={"custbody_stripe_invoice": "in_2"}
    )
    assert patched.status_code == 204
    assert erp.get("invoice", invoice)["custbody_stripe_invoice"] == "in_2"
    assert erp.suiteql("SELECT id FROM customer WHERE custentity_stripe_customer = 'cus_C1'") == [
        {"id": customer}
    ]


@pytest.mark.parametrize(
    ("kind", "field"),
    [("invoice", "custentity_x"), ("customer", "custbody_x"), ("invoice", "custbody_UPPER")],
)
def test_a_field_that_is_not_a_custom_field_of_the_record_is_refused(
    erp: Erp, kind: str, field: str
) -> None:
    customer = erp.customer("Strict Co", "US")
    body: dict[str, Any] = (
        {"entity": {"id": customer}, "item": {"items": [{"item": {"id": "1"}, "amount": 1}]}}
        if kind == "invoice"
        else {"companyName": "X", "subsidiary": {"externalId": "US"}}
    )
    before = erp.state()
    response = erp.request("POST", f"{RECORD}/{kind}", json={**body, field: "v"})
    assert error_of(response)[0] == 400
    assert erp.state() == before

"""Master data made inactive: service sale items, subsidiaries, customers and accounts refuse
postings that name them (NetSuite's reference-key USER_ERROR), change nothing, and take them
again once active."""

from __future__ import annotations

from typing import Any

from tests.erp.conftest import RECORD, Erp, error_of
from tests.erp.test_periods import journal


def _lines(*items: str) -> dict[str, Any]:
    return {"items": [{"item": {"externalId": i}, "amount": 10} for i in items]}


def _item_id(erp: Erp, external_id: str) -> str:
    return str(erp.get("serviceSaleItem", f"eid:{external_id}")["id"])


def test_service_sale_items_read_list_and_patch(erp: Erp) -> None:
    record = erp.get("serviceSaleItem", "eid:SUBSCRIPTION")
    assert record["itemId"] == "SUBSCRIPTION" and record["isInactive"] is False
    assert record["itemType"] == "Service" and "incomeAccount" in record
    listed = erp.request("GET", f"{RECORD}/serviceSaleItem").json()
    seeded = erp.suiteql("SELECT id FROM item")
    assert listed["totalResults"] == len(seeded) >= 2
    patched = erp.request(
        "PATCH", f"{RECORD}/serviceSaleItem/{record['id']}", json={"isInactive": True}
    )
    assert patched.status_code == 204, patched.text
    assert erp.get("serviceSaleItem", record["id"])["isInactive"] is True
    rows = erp.suiteql("SELECT isinactive FROM item WHERE externalid = 'SUBSCRIPTION'")
    assert rows == [{"isinactive": "T"}]
    # Items are seeded: no create, and a field the contract does not offer is refused.
    refused = erp.request(
        "PATCH", f"{RECORD}/serviceSaleItem/{record['id']}", json={"incomeAccount": {"id": "1"}}
    )
    assert refused.status_code == 400
    assert erp.request("GET", f"{RECORD}/serviceSaleItem/eid:NOPE").status_code == 404


def test_an_inactive_item_refuses_invoice_and_credit_memo_lines(erp: Erp) -> None:
    customer = erp.customer("Item Buyer", "US")
    item = _item_id(erp, "SUBSCRIPTION")
    # Holding: while active, a line on it posts.
    erp.create("invoice", {"entity": {"id": customer}, "item": _lines("SUBSCRIPTION")})
    erp.request("PATCH", f"{RECORD}/serviceSaleItem/{item}", json={"isInactive": True})
    before = erp.state()
    for kind in ("invoice", "creditMemo"):
        body = {"entity": {"id": customer}, "item": _lines("SERVICES", "SUBSCRIPTION")}
        response = erp.request("POST", f"{RECORD}/{kind}", json=body)
        status, code, detail = error_of(response)
        assert (status, code) == (400, "USER_ERROR")
        assert detail == f"Error while accessing a resource. Invalid item reference key {item}."
        path = response.json()["o:errorDetails"][0]["o:errorPath"]
        assert path == "item.items[1].item"  # the second line: the first item is active
    assert erp.state() == before  # nothing posted in part
    # Other items still post.
    erp.create("invoice", {"entity": {"id": customer}, "item": _lines("SERVICES")})
    erp.request("PATCH", f"{RECORD}/serviceSaleItem/{item}", json={"isInactive": False})
    erp.create("creditMemo", {"entity": {"id": customer}, "item": _lines("SUBSCRIPTION")})


def test_an_inactive_subsidiary_takes_no_postings_and_no_new_customers(erp: Erp) -> None:
    customer = erp.customer("UK Buyer", "UK")
    uk = str(erp.get("subsidiary", "eid:UK")["id"])
    erp.create("invoice", {"entity": {"id": customer}, "item": _lines("SERVICES")})
    made = erp.request("PATCH", f"{RECORD}/subsidiary/{uk}", json={"isInactive": True})
    assert made.status_code == 204, made.text
    before = erp.state()
    expected = f"Error while accessing a resource. Invalid subsidiary reference key {uk}."
    refused = [
        erp.request(
            "POST",
            f"{RECORD}/invoice",
            json={"entity": {"id": customer}, "item": _lines("SERVICES")},
        ),
        erp.request(
            "POST", f"{RECORD}/customerPayment", json={"customer": {"id": customer}, "payment": 5}
        ),
        erp.request(
            "POST",
            f"{RECORD}/customer",
            json={"companyName": "New UK", "subsidiary": {"externalId": "UK"}},
        ),
        erp.request("POST", f"{RECORD}/journalEntry", json=journal("2026-01-20")),
    ]
    for response in refused:
        assert error_of(response) == (400, "USER_ERROR", expected)
    assert erp.state() == before
    # Another subsidiary is untouched; reactivated, the UK takes postings again.
    erp.create(
        "invoice", {"entity": {"id": erp.customer("US Buyer", "US")}, "item": _lines("SERVICES")}
    )
    erp.request("PATCH", f"{RECORD}/subsidiary/{uk}", json={"isInactive": False})
    erp.create("invoice", {"entity": {"id": customer}, "item": _lines("SERVICES")})
    erp.create("journalEntry", journal("2026-01-20"))


def test_an_inactive_customer_or_account_is_an_invalid_reference_key(erp: Erp) -> None:
    customer = erp.customer("Gone Quiet", "US")
    us = str(erp.get("subsidiary", "eid:US")["id"])
    erp.request("PATCH", f"{RECORD}/customer/{customer}", json={"isInactive": True})
    invoice = erp.request(
        "POST", f"{RECORD}/invoice", json={"entity": {"id": customer}, "item": _lines("SERVICES")}
    )
    assert error_of(invoice) == (
        400,
        "USER_ERROR",
        "Error while accessing a resource. Invalid entity reference key "
        f"{customer} for subsidiary {us}.",
    )
    erp.request("PATCH", f"{RECORD}/customer/{customer}", json={"isInactive": False})
    bank = erp.suiteql("SELECT id FROM account WHERE accttype = 'Bank'")[0]["id"]
    erp.request("PATCH", f"{RECORD}/account/{bank}", json={"isInactive": True})
    payment = erp.request(
        "POST",
        f"{RECORD}/customerPayment",
        json={"customer": {"id": customer}, "payment": 5, "account": {"id": bank}},
    )
    assert error_of(payment) == (
        400,
        "USER_ERROR",
        f"Error while accessing a resource. Invalid account reference key {bank}.",
    )


def test_an_inactive_currency_takes_no_postings_and_no_new_customers(erp: Erp) -> None:
    customer = erp.customer("Euro Buyer", "US", "EUR")
    eur = str(erp.get("currency", "eid:EUR")["id"])
    invoice = {"entity": {"id": customer}, "item": _lines("SERVICES")}
    erp.create("invoice", invoice)  # holding: while EUR is active, it posts
    made = erp.request("PATCH", f"{RECORD}/currency/{eur}", json={"isInactive": True}, admin=True)
    assert made.status_code == 204, made.text
    assert erp.get("currency", eur)["isInactive"] is True
    before = erp.state()
    expected = f"Error while accessing a resource. Invalid currency reference key {eur}."
    refused = [
        erp.request("POST", f"{RECORD}/invoice", json=invoice),
        erp.request(
            "POST",
            f"{RECORD}/customer",
            json={
                "companyName": "New Euro",
                "subsidiary": {"externalId": "US"},
                "currency": {"externalId": "EUR"},
            },
        ),
    ]
    for response in refused:
        assert error_of(response) == (400, "USER_ERROR", expected)
    assert erp.state() == before
    # A customer in another currency is untouched; reactivated, EUR takes postings again.
    erp.create(
        "invoice",
        {"entity": {"id": erp.customer("Dollar Buyer", "US")}, "item": _lines("SERVICES")},
    )
    erp.request("PATCH", f"{RECORD}/currency/{eur}", json={"isInactive": False}, admin=True)
    erp.create("invoice", invoice)

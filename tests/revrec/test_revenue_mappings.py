"""Revenue mappings: a product whose mapping is withdrawn is refused in contracts and
modifications with the subledger's own business error, and nothing is booked in part."""

from __future__ import annotations

from tests.revrec.conftest import Harness
from tests.revrec.test_api import entity, ratable

START, END = "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"


def test_every_product_is_mapped_until_its_mapping_is_withdrawn(revrec: Harness) -> None:
    assert revrec.ok("GET", "/v1/revenue_mappings/prod_a")["mapped"] is True
    withdrawn = revrec.ok("PUT", "/v1/revenue_mappings/prod_a", {"mapped": False})
    assert (withdrawn["object"], withdrawn["product"], withdrawn["mapped"]) == (
        "revenue_mapping",
        "prod_a",
        False,
    )
    assert revrec.ok("GET", "/v1/revenue_mappings/prod_a")["mapped"] is False
    assert revrec.ok("GET", "/v1/revenue_mappings/prod_b")["mapped"] is True


def test_a_contract_line_for_an_unmapped_product_is_refused_and_nothing_is_booked(
    revrec: Harness,
) -> None:
    entity(revrec)
    revrec.ok("PUT", "/v1/revenue_mappings/prod_new", {"mapped": False})
    body = {
        "external_id": "sub_1",
        "customer": "cus_1",
        "entity": "us",
        "currency": "usd",
        "lines": [
            ratable("si_1", 12000, START, END, product="prod_old"),
            ratable("si_2", 6000, START, END, product="prod_new"),
        ],
    }
    refused = revrec.api("POST", "/v1/contracts", body)
    problem = refused.json()
    assert (refused.status_code, problem["code"], problem["param"]) == (
        422,
        "product_unmapped",
        "lines[1].product",
    )
    assert "prod_new" in problem["detail"]
    assert revrec.ok("GET", "/v1/contracts")["data"] == []  # not half a contract
    revrec.ok("PUT", "/v1/revenue_mappings/prod_new", {"mapped": True})
    assert revrec.api("POST", "/v1/contracts", body).status_code == 201


def test_a_modification_adding_an_unmapped_product_is_refused(revrec: Harness) -> None:
    entity(revrec)
    body = {
        "external_id": "sub_1",
        "customer": "cus_1",
        "entity": "us",
        "currency": "usd",
        "lines": [ratable("si_1", 12000, START, END, product="prod_old")],
    }
    contract = revrec.ok("POST", "/v1/contracts", body)
    revrec.ok("PUT", "/v1/revenue_mappings/prod_new", {"mapped": False})
    refused = revrec.api(
        "POST",
        f"/v1/contracts/{contract['id']}/modifications",
        {
            "external_id": "mod_1",
            "effective_at": contract["booked_at"],
            "add_lines": [ratable("si_2", 6000, START, END, product="prod_new")],
        },
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "product_unmapped")
    assert revrec.ok("GET", f"/v1/contracts/{contract['id']}")["lines"][-1]["external_id"] == "si_1"


def test_a_bad_mapping_body_is_refused_in_the_subledgers_envelope(revrec: Harness) -> None:
    for body in ({}, {"mapped": "yes"}, {"mapped": True, "extra": 1}):
        response = revrec.api("PUT", "/v1/revenue_mappings/prod_a", body)
        assert response.status_code == 400, body
        assert {"code", "detail"} <= set(response.json())

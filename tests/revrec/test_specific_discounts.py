"""Discounts a contract gives on specific obligations (ASC 606-10-32-37) through the HTTP API:
the published Example 34, the split between several lines, and the 422s for what cannot be."""

from __future__ import annotations

from typing import Any

import pytest

from tests.revrec.conftest import Harness
from tests.revrec.test_api import book, entity, ratable


def _abc() -> list[dict[str, Any]]:
    # ASC 606-10-55-259..264 (Example 34, Case A): products A, B and C with standalone selling
    # prices $40, $55 and $45, sold together for $100; B and C are regularly sold together
    # for $60, so the $40 discount belongs to B and C. Each line at its undiscounted price.
    return [
        {"external_id": x, "product": x, "pattern": "point_in_time", "unit_price_minor": ssp}
        for x, ssp in [("A", 40), ("B", 55), ("C", 45)]
    ]


def test_example_34_the_discount_goes_to_b_and_c_only(revrec: Harness) -> None:
    entity(revrec, "jp", "jpy")
    discounts = [{"amount_minor": 40, "lines": ["B", "C"]}]
    contract = book(revrec, "ex34", _abc(), entity="jp", currency="jpy", discounts=discounts)
    # Published: A $40, B $33, C $27 (B's and C's $60 by their SSPs, 55 : 45).
    assert [ln["allocated_minor"] for ln in contract["lines"]] == [40, 33, 27]
    assert [ln["discount_minor"] for ln in contract["lines"]] == [0, 22, 18]
    assert [ln["amount_minor"] for ln in contract["lines"]] == [40, 33, 27]
    assert contract["transaction_price_minor"] == 100
    again = book(revrec, "ex34", _abc(), entity="jp", currency="jpy", discounts=discounts)
    assert again["id"] == contract["id"]  # the upsert: same terms, same contract


def test_the_undiscounted_price_goes_by_ssp_and_the_discount_comes_off_its_line(
    revrec: Harness,
) -> None:
    entity(revrec)
    # 3 Pro seats at 1,200.00 for the year (SSP the same) and support at 600.00 (SSP 1,200.00):
    # 50 % off support. Undiscounted 4,200.00 over SSPs 3,600.00 : 1,200.00 → 3,150.00 and
    # 1,050.00; support's 300.00 off comes off support alone.
    lines = [
        ratable("pro", 120_000, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", quantity=3),
        ratable(
            "support",
            60_000,
            "2026-01-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
            unit_ssp_minor=120_000,
        ),
    ]
    contract = book(
        revrec, "half-support", lines, discounts=[{"amount_minor": 30_000, "lines": ["support"]}]
    )
    got = {
        ln["external_id"]: (ln["allocated_minor"], ln["discount_minor"]) for ln in contract["lines"]
    }
    assert got == {"pro": (315_000, 0), "support": (105_000 - 30_000, 30_000)}
    assert contract["transaction_price_minor"] == 420_000 - 30_000


@pytest.mark.parametrize(
    "discounts, code, param",
    [
        ([{"amount_minor": 5, "lines": ["Z"]}], "discount_line_unknown", "discounts[0][lines][0]"),
        (
            [{"amount_minor": 5, "lines": ["A", "A"]}],
            "duplicate_discount_line",
            "discounts[0][lines][1]",
        ),
        ([{"amount_minor": 5, "lines": ["api"]}], "discount_on_usage", "discounts[0][lines][0]"),
        ([{"amount_minor": 41, "lines": ["A"]}], "discount_exceeds_line", "discounts"),
        (
            [{"amount_minor": 30, "lines": ["A"]}, {"amount_minor": 11, "lines": ["A"]}],
            "discount_exceeds_line",
            "discounts",
        ),
        ([{"amount_minor": 5, "lines": ["free"]}], "ssp_required", "discounts[0][lines]"),
    ],
)
def test_a_discount_that_cannot_be_given_is_refused_whole(
    revrec: Harness, discounts: list[dict[str, Any]], code: str, param: str
) -> None:
    entity(revrec)
    lines = [
        *_abc(),
        {"external_id": "api", "product": "api", "pattern": "usage", "unit_price_minor": 2},
        {
            "external_id": "free",
            "product": "free",
            "pattern": "point_in_time",
            "unit_price_minor": 0,
        },
    ]
    body = {
        "external_id": "bad",
        "customer": "cus_1",
        "entity": "us",
        "currency": "usd",
        "lines": lines,
        "discounts": discounts,
    }
    response = revrec.api("POST", "/v1/contracts", body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert (problem["code"], problem["param"]) == (code, param)
    assert revrec.ok("GET", "/v1/contracts", params={"external_id": "bad"})["data"] == []


@pytest.mark.parametrize(
    "discount",
    [{"amount_minor": 0, "lines": ["A"]}, {"amount_minor": 5, "lines": []}, {"lines": ["A"]}],
)
def test_a_malformed_discount_is_a_400(revrec: Harness, discount: dict[str, Any]) -> None:
    entity(revrec)
    body = {
        "external_id": "bad",
        "customer": "cus_1",
        "entity": "us",
        "currency": "usd",
        "lines": _abc(),
        "discounts": [discount],
    }
    response = revrec.api("POST", "/v1/contracts", body)
    assert response.status_code == 400, response.text
    assert response.json()["param"].startswith("discounts")

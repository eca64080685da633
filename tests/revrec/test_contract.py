"""The revrec contract: valid OpenAPI 3.0.3, the agreed operations, and handler parity.

The expected operations are written out here independently of the document, so a renamed,
missing or extra operation fails loudly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from connexion.spec import Specification

from simulators.common.app import operation_ids, snake
from simulators.common.world import World
from simulators.revrec.simulator import RevrecSimulator

CONTRACT = Path(__file__).resolve().parents[2] / "contracts" / "openapi" / "revrec.yaml"
PROBLEM = "application/problem+json"
ERRORS = ("400", "401", "404", "409", "422", "429", "503", "default")

EXPECTED: dict[str, tuple[str, str]] = {
    "listEntities": ("get", "/v1/entities"),
    "upsertEntity": ("put", "/v1/entities/{entity}"),
    "retrieveEntity": ("get", "/v1/entities/{entity}"),
    "retrieveRevenueMapping": ("get", "/v1/revenue_mappings/{product}"),
    "upsertRevenueMapping": ("put", "/v1/revenue_mappings/{product}"),
    "createContract": ("post", "/v1/contracts"),
    "listContracts": ("get", "/v1/contracts"),
    "retrieveContract": ("get", "/v1/contracts/{contract}"),
    "retrieveContractSchedule": ("get", "/v1/contracts/{contract}/schedule"),
    "retrieveContractBalances": ("get", "/v1/contracts/{contract}/balances"),
    "createModification": ("post", "/v1/contracts/{contract}/modifications"),
    "listModifications": ("get", "/v1/contracts/{contract}/modifications"),
    "createDelivery": ("post", "/v1/contracts/{contract}/lines/{line}/deliveries"),
    "createUsageRecord": ("post", "/v1/contracts/{contract}/lines/{line}/usage_records"),
    "createBillingEvent": ("post", "/v1/billing_events"),
    "listBillingEvents": ("get", "/v1/billing_events"),
    "retrieveBillingEvent": ("get", "/v1/billing_events/{billing_event}"),
    "retrievePeriod": ("get", "/v1/periods/{entity}/{period}"),
    "closePeriod": ("post", "/v1/periods/{entity}/{period}/close"),
    "retrieveBalancesReport": ("get", "/v1/reports/balances"),
    "retrieveWaterfallReport": ("get", "/v1/reports/waterfall"),
    "listEvents": ("get", "/v1/events"),
}


@pytest.fixture(scope="module")
def text() -> str:
    return CONTRACT.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def raw(text: str) -> dict[str, Any]:
    doc = yaml.safe_load(text)
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    doc = Specification.load(str(CONTRACT)).spec  # validates as OpenAPI 3.0 or raises
    assert isinstance(doc, dict)
    return doc


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in ("get", "put", "post", "patch", "delete"):
                yield path, method, op


def test_every_operation_has_a_handler_and_every_handler_an_operation(raw: dict[str, Any]) -> None:
    sim = RevrecSimulator(World())
    ops = {snake(op) for op in operation_ids(raw)}
    methods = {
        name
        for name in dir(sim.handlers)
        if not name.startswith("_") and callable(getattr(sim.handlers, name))
    }
    assert ops - methods == set(), "operations without a handler"
    assert methods - ops == set(), "handlers without an operation"


def test_the_agreed_operations_on_their_paths(raw: dict[str, Any]) -> None:
    located = {op["operationId"]: (method, path) for path, method, op in operations(raw)}
    assert located == EXPECTED


def test_valid_openapi_and_unchanged_by_jinja(
    text: str, raw: dict[str, Any], resolved: dict[str, Any]
) -> None:
    assert raw["openapi"] == "3.0.3"
    # connexion renders the file through Jinja2 before parsing it
    assert yaml.safe_load(jinja2.Template(text).render()) == raw
    assert raw["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert raw["security"] == [{"bearerAuth": []}]


def test_every_operation_declares_its_errors_as_problem_json(resolved: dict[str, Any]) -> None:
    for path, method, op in operations(resolved):
        responses = op["responses"]
        for status in ERRORS:
            assert status in responses, (method, path, status)
            schema = responses[status]["content"][PROBLEM]["schema"]
            assert {"type", "title", "status", "code", "detail"} <= set(schema["required"])
        ok = [s for s in responses if s.startswith("2")]
        assert ok, (method, path)
        for status in ok:
            assert "schema" in responses[status]["content"]["application/json"], (path, status)


def test_writes_take_an_idempotency_key_and_closed_json_bodies(resolved: dict[str, Any]) -> None:
    for path, method, op in operations(resolved):
        if method not in ("post", "put"):
            continue
        if method == "post":
            names = {p["name"] for p in op.get("parameters", [])}
            assert "Idempotency-Key" in names, path
        body = op.get("requestBody")
        if body is None:
            assert path.endswith("/close"), path
            continue
        assert list(body["content"]) == ["application/json"], path
        assert body["content"]["application/json"]["schema"]["additionalProperties"] is False, path


def test_the_conventions_are_documented(raw: dict[str, Any]) -> None:
    text = " ".join(raw["info"]["description"].lower().split())
    for phrase in (
        "largest remainder",
        "last month takes the rounding remainder",
        "cumulative_catch_up",
        "first open period",
        "booking rate",
        "minor unit",
        "rfc 9457",
        "idempotency-key",
        "external_id_conflict",
    ):
        assert phrase in text, phrase

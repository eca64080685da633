"""The ERP contract is well-formed OpenAPI 3.0.3 in NetSuite's shapes, and matches the handlers.

The expected operations are written out here independently of the document, so a renamed,
missing, duplicated or extra operation fails loudly; the parity tests compare the document with
the handler class in both directions.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from connexion.spec import Specification

from simulators.common.app import handler_table, operation_ids, snake
from simulators.erp.handlers import ErpHandlers

CONTRACT = Path(__file__).resolve().parents[2] / "contracts" / "openapi" / "erp.yaml"
METHODS = ("get", "post", "put", "patch", "delete")
RECORD = "/services/rest/record/v1"
VND = "application/vnd.oracle.resource+json"


def _record_ops(
    kind: str, plural: str, *, delete: bool, void: bool = False
) -> dict[str, tuple[str, str]]:
    cap = kind[0].upper() + kind[1:]
    ops = {
        f"list{plural}": ("get", f"{RECORD}/{kind}"),
        f"create{cap}": ("post", f"{RECORD}/{kind}"),
        f"get{cap}": ("get", f"{RECORD}/{kind}/{{id}}"),
        f"update{cap}": ("patch", f"{RECORD}/{kind}/{{id}}"),
        f"upsert{cap}": ("put", f"{RECORD}/{kind}/{{id}}"),
    }
    if delete:
        ops[f"delete{cap}"] = ("delete", f"{RECORD}/{kind}/{{id}}")
    if void:
        ops[f"void{cap}"] = ("post", f"{RECORD}/{kind}/{{id}}/@void")
    return ops


EXPECTED: dict[str, tuple[str, str]] = {
    **_record_ops("subsidiary", "Subsidiaries", delete=False),
    **_record_ops("currency", "Currencies", delete=False),
    **_record_ops("currencyRate", "CurrencyRates", delete=True),
    **_record_ops("account", "Accounts", delete=True),
    "listServiceSaleItems": ("get", f"{RECORD}/serviceSaleItem"),
    "getServiceSaleItem": ("get", f"{RECORD}/serviceSaleItem/{{id}}"),
    "updateServiceSaleItem": ("patch", f"{RECORD}/serviceSaleItem/{{id}}"),
    "listAccountingPeriods": ("get", f"{RECORD}/accountingPeriod"),
    "getAccountingPeriod": ("get", f"{RECORD}/accountingPeriod/{{id}}"),
    "updateAccountingPeriod": ("patch", f"{RECORD}/accountingPeriod/{{id}}"),
    **_record_ops("customer", "Customers", delete=True),
    **_record_ops("invoice", "Invoices", delete=True, void=True),
    **_record_ops("creditMemo", "CreditMemos", delete=True, void=True),
    **_record_ops("customerPayment", "CustomerPayments", delete=True, void=True),
    **_record_ops("journalEntry", "JournalEntries", delete=True, void=True),
    "getAsyncJob": ("get", "/services/rest/async/v1/job/{id}"),
    "listAsyncJobTasks": ("get", "/services/rest/async/v1/job/{id}/task"),
    "getAsyncJobTask": ("get", "/services/rest/async/v1/job/{id}/task/{taskId}"),
    "getAsyncJobTaskResult": ("get", "/services/rest/async/v1/job/{id}/task/{taskId}/result"),
    "runSuiteql": ("post", "/services/rest/query/v1/suiteql"),
}
WRITES = {
    op for op, (method, _) in EXPECTED.items() if method in ("post", "put", "patch", "delete")
} - {"runSuiteql"}


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
    doc = Specification.load(str(CONTRACT)).spec  # validates against the OpenAPI 3.0 schema
    assert isinstance(doc, dict)
    return doc


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def test_document_is_openapi_3_0_3_and_survives_jinja(text: str, raw: dict[str, Any]) -> None:
    assert raw["openapi"] == "3.0.3"
    assert Specification.load(str(CONTRACT)).version == (3, 0, 3)
    assert yaml.safe_load(jinja2.Template(text).render()) == raw


def test_operations_are_exactly_the_expected_ones_on_netsuite_paths(raw: dict[str, Any]) -> None:
    found = [op["operationId"] for _, _, op in operations(raw)]
    assert not {name for name, n in Counter(found).items() if n > 1}
    located = {op["operationId"]: (method, path) for path, method, op in operations(raw)}
    assert located == EXPECTED


def test_every_operation_id_has_a_handler_and_every_handler_an_operation(
    raw: dict[str, Any],
) -> None:
    ops = operation_ids(raw)
    handlers = {
        name
        for name in vars(ErpHandlers)
        if not name.startswith("_") and callable(getattr(ErpHandlers, name))
    }
    assert {snake(op) for op in ops} == handlers
    # And the kernel's own routing table accepts the pair (it raises on a missing handler).
    table = handler_table(ErpHandlers.__new__(ErpHandlers), specs=[raw])
    assert set(table) == set(ops)


def test_every_operation_declares_its_statuses(raw: dict[str, Any]) -> None:
    for _, _, op in operations(raw):
        name, statuses = op["operationId"], set(op["responses"])
        assert {"400", "401", "404", "429", "503", "default"} <= statuses, name
        if name in WRITES:
            assert {"202", "403"} <= statuses, name
            assert ("204" in statuses) or name.startswith("void"), name


def test_writes_answer_204_with_location_and_202_with_a_job(resolved: dict[str, Any]) -> None:
    for _, _, op in operations(resolved):
        name = op["operationId"]
        if name.startswith(("create", "upsert")):
            headers = op["responses"]["204"]["headers"]
            assert headers["Location"]["required"] is True, name
        if name in WRITES:
            accepted = op["responses"]["202"]["headers"]
            assert accepted["Location"]["required"] is True, name
            assert accepted["Preference-Applied"]["schema"]["enum"] == ["respond-async"], name
            params = {p["name"] for p in op.get("parameters", [])}
            assert {"Prefer", "X-NetSuite-Idempotency-Key"} <= params, name


def test_errors_use_netsuites_envelope_and_media_type(resolved: dict[str, Any]) -> None:
    for _, _, op in operations(resolved):
        for status, response in op["responses"].items():
            if status.startswith("2"):
                continue
            schema = response["content"][VND]["schema"]
            assert set(schema["required"]) == {"type", "title", "status", "o:errorDetails"}
            detail = schema["properties"]["o:errorDetails"]["items"]
            assert set(detail["required"]) == {"detail", "o:errorCode"}


def test_request_bodies_are_closed_objects(resolved: dict[str, Any]) -> None:
    def closed(schema: dict[str, Any], where: str) -> None:
        if schema.get("type") == "object" and "properties" in schema:
            assert schema.get("additionalProperties") is False, where
            for name, sub in schema["properties"].items():
                closed(sub, f"{where}.{name}")
        if isinstance(schema.get("items"), dict):
            closed(schema["items"], f"{where}[]")

    bodies = 0
    for _, _, op in operations(resolved):
        body = op.get("requestBody")
        if body is not None:
            bodies += 1
            closed(body["content"]["application/json"]["schema"], op["operationId"])
    assert bodies > 30


def test_list_envelope_is_netsuites(resolved: dict[str, Any]) -> None:
    listing = [op for _, _, op in operations(resolved) if op["operationId"].startswith("list")]
    assert len(listing) == 12
    for op in listing:
        schema = op["responses"]["200"]["content"][VND]["schema"]
        assert set(schema["required"]) == {
            "links",
            "count",
            "hasMore",
            "items",
            "offset",
            "totalResults",
        }
        names = {p["name"]: p["schema"] for p in op["parameters"]}
        assert (names["limit"]["minimum"], names["limit"]["maximum"]) == (1, 1000)


def test_choices_are_documented(raw: dict[str, Any]) -> None:
    description = raw["info"]["description"]
    for phrase in (
        "(choice)",
        "rounding account",
        "Override Period Restrictions",
        "CONCURRENCY_LIMIT_EXCEEDED",
        "IDEMPOTENCY_ERROR",
        "eid:",
        "@void",
        "Prefer: transient",
    ):
        assert phrase in description, phrase
    assert not re.search(r"\{[{%#]", CONTRACT.read_text())

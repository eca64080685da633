"""The compiled (jsonschema-rs) validators judge as connexion's do, cycles and nulls included."""

from __future__ import annotations

from typing import Any

import pytest
from connexion.json_schema import Draft4ResponseValidator
from connexion.spec import Specification

from simulators.common.compiled import compilable, compiled_validator
from simulators.common.simulator import CONTRACTS
from simulators.common.validation import json_schema
from tests.conftest import InProcess

pytest.importorskip("jsonschema_rs")


def interpreted(schema: dict[str, Any]) -> Any:
    return Draft4ResponseValidator(schema)


def verdicts(schema: dict[str, Any], values: list[Any]) -> list[bool]:
    """The compiled validator's verdicts on ``values``, checked equal to the interpreted's."""
    fast = compiled_validator(schema)
    assert fast is not None
    found = [fast.is_valid(v) for v in values]
    assert found == [interpreted(schema).is_valid(v) for v in values]
    return found


def test_a_schema_that_loops_compiles_and_judges_as_the_interpreted_one() -> None:
    # An invoice whose expandable subscription lists invoices again: a loop in the object graph.
    invoice: dict[str, Any] = {"type": "object", "required": ["id"], "properties": {}}
    subscription = {
        "type": "object",
        "properties": {"id": {"type": "string"}, "latest": {"anyOf": [{"type": "string"}]}},
    }
    subscription["properties"]["latest"]["anyOf"].append(invoice)  # type: ignore[index]
    invoice["properties"] = {
        "id": {"type": "string"},
        "subscription": {"anyOf": [{"type": "string"}, subscription]},
        "lines": {"type": "array", "items": {"type": "integer"}},
    }
    values: list[Any] = [
        {"id": "in_1"},
        {"id": "in_1", "subscription": "sub_1"},
        {"id": "in_1", "subscription": {"id": "sub_1", "latest": {"id": "in_0"}}},
        {"id": "in_1", "subscription": {"id": "sub_1", "latest": {"lines": [1]}}},  # no id
        {"id": "in_1", "subscription": {"id": "sub_1", "latest": {"id": 7}}},
        {"id": "in_1", "lines": [1, "x"]},
        {"subscription": "sub_1"},
    ]
    assert verdicts(invoice, values) == [True, True, True, False, False, False, False]


def test_a_loop_through_a_shared_properties_map_is_cut_at_a_schema() -> None:
    # Two schemas sharing one properties map (as a YAML anchor makes them), and a loop back
    # through it: the loop must be cut at a schema, never at the map of named schemas.
    shared: dict[str, Any] = {"id": {"type": "string"}}
    node = {"type": "object", "required": ["id"], "properties": shared}
    shared["child"] = {"anyOf": [{"type": "string"}, {"type": "object", "properties": shared}]}
    values: list[Any] = [
        {"id": "a"},
        {"id": "a", "child": "b"},
        {"id": "a", "child": {"id": "b", "child": {"id": "c"}}},
        {"id": "a", "child": {"id": 7}},
        {"id": "a", "child": {"child": {"id": []}}},
        {"child": "b"},
    ]
    assert verdicts(node, values) == [True, True, True, False, False, False]


@pytest.mark.parametrize(
    ("schema", "value", "valid"),
    [
        ({"type": "string", "nullable": True}, None, True),
        ({"type": "string"}, None, False),
        ({"type": "string", "nullable": True}, 3, False),
        ({"type": ["string", "integer"], "nullable": True}, None, True),
        ({"type": "string", "enum": ["a", "b"], "nullable": True}, None, True),
        ({"type": "string", "enum": ["a", "b"], "nullable": True}, "c", False),
        ({"type": "string", "enum": ["a", "b"]}, None, False),
        # nullable lifts only type and enum: a null still fails what else the schema asks
        ({"nullable": True, "allOf": [{"type": "object"}]}, None, False),
        ({"type": "object", "nullable": True, "required": ["id"]}, None, True),
    ],
)
def test_nullable_is_judged_as_connexion_judges_it(
    schema: dict[str, Any], value: Any, valid: bool
) -> None:
    fast = compiled_validator(schema)
    assert fast is not None
    assert fast.is_valid(value) is valid
    assert interpreted(schema).is_valid(value) is valid


def test_the_schema_given_is_left_as_it_was() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string", "nullable": True}}}
    compilable(schema)
    assert schema["properties"]["a"] == {"type": "string", "nullable": True}


def _schemas(spec: dict[str, Any]) -> list[tuple[str, Any]]:
    found = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if not isinstance(op, dict):
                continue
            bodies = [((op.get("requestBody") or {}).get("content") or {}, "request")]
            bodies += [(r.get("content") or {}, code) for code, r in op["responses"].items()]
            for content, what in bodies:
                for media in content.values():
                    if "schema" in media:
                        found.append((f"{method.upper()} {path} {what}", media["schema"]))
    return found


@pytest.mark.parametrize("contract", ["billing", "crm", "erp", "revrec", "control"])
def test_every_body_schema_of_every_contract_compiles(contract: str) -> None:
    spec = Specification.load(CONTRACTS / f"{contract}.yaml")
    schemas = _schemas(spec.spec)
    assert schemas
    refused = [name for name, s in schemas if compiled_validator(json_schema(s)) is None]
    assert refused == []


async def test_real_billing_objects_with_nulls_pass_on_the_compiled_path(
    billing: InProcess,
) -> None:
    customer = await billing.client.post(
        "/v1/customers", data={"name": "Ada"}, headers=billing.auth
    )
    assert customer.status_code == 200
    body = customer.json()
    assert None in body.values()  # a customer has null fields (email, description, …)
    spec = Specification.load(CONTRACTS / "billing.yaml").spec
    schema = spec["paths"]["/v1/customers/{customer}"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]
    fast = compiled_validator(json_schema(schema))
    assert fast is not None
    assert fast.is_valid(body)
    assert interpreted(json_schema(schema)).is_valid(body)


async def _answer(body: bytes) -> list[Any]:
    """What the simulators' response validator lets through for ``body`` (or raises)."""
    from simulators.common.validation import validator_map

    schema = {
        "type": "object",
        "required": ["id", "amount"],
        "properties": {"id": {"type": "string"}, "amount": {"type": "integer"}},
    }
    validator = validator_map(strict_parameters=True, max_body_bytes=1 << 20)["response"][
        "application/json"
    ](scope={"type": "http"}, schema=schema, encoding="utf-8")
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    wrapped = validator.wrap_send(send)
    await wrapped({"type": "http.response.start", "status": 200, "headers": []})
    await wrapped({"type": "http.response.body", "body": body})
    return sent


async def test_responses_are_read_and_judged_before_they_leave() -> None:
    from connexion.exceptions import NonConformingResponseBody

    sent = await _answer(b'{"id": "in_1", "amount": 1200}')
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    with pytest.raises(NonConformingResponseBody, match="amount"):
        await _answer(b'{"id": "in_1", "amount": "1200"}')
    # An integer past 64 bits is still read (by connexion's own parse), and judged.
    big = b'"note": 123456789012345678901234567890'
    sent = await _answer(b'{"id": "in_1", "amount": 1, ' + big + b"}")
    assert len(sent) == 2
    with pytest.raises(NonConformingResponseBody, match="id"):
        await _answer(b'{"id": 7, "amount": 1, ' + big + b"}")

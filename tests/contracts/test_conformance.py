"""`harness contracts test`: the simulators conform, and a broken API is caught and named."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft4Validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harness.cli import main
from harness.contracts.conformance import (
    CONTROL,
    KNOWN_FAILURES,
    LONG_MAX_EXAMPLES,
    Budget,
    Report,
    Target,
    auth_headers,
    encode_form_body,
    fault_profile,
    registered_systems,
    run_spec,
    run_systems,
    run_target,
    served,
)
from simulators.common.formcodec import FormDecodeError, coerce, decode_form
from simulators.common.server import Site, ThreadedServer

# The make-test budget: a fixed seed keeps CI reproducible; `-m slow` runs the long one.
SMALL = Budget(max_examples=10, seed=0, max_time_s=600)
SLOW_TIMEOUT_S = 900


def explain(report: Report) -> str:
    lines = [f"{report.name}: {report.failure_count} failure(s), errors: {report.errors}"]
    for record in report.failures.values():
        lines += [
            f"{record.check} on {record.operation} [{record.status}]: {record.title}",
            record.message,
            f"response: {record.response}",
            record.curl[-2000:],
        ]
    return "\n".join(lines)


def untested(report: Report) -> list[str]:
    return sorted(op for op in report.operations if not report.requests[op])


# ---------------------------------------------------------------------------------------------
# our simulators and the control plane


@pytest.mark.timeout(SLOW_TIMEOUT_S)
@pytest.mark.parametrize("system", registered_systems())
def test_every_registered_simulator_conforms_to_its_contract(system: str) -> None:
    [report] = run_systems([system], SMALL)
    assert report.conforms, explain(report)
    assert not untested(report), f"operations never called: {untested(report)}"
    assert sum(report.requests.values()) > 10 * len(report.operations)


@pytest.mark.timeout(SLOW_TIMEOUT_S)
def test_the_control_plane_conforms_to_its_contract() -> None:
    [report] = run_systems([CONTROL], SMALL)
    assert report.conforms, explain(report)
    assert not untested(report), f"operations never called: {untested(report)}"


def billing_target(
    sim: Any, url: str, spec: dict[str, Any], *ops: str, stateful: bool = True
) -> Target:
    headers = auth_headers(spec, sim.credentials())
    return Target(
        "billing",
        spec,
        url,
        headers,
        frozenset(ops),
        stateful=stateful,
        sim=sim,
        known=KNOWN_FAILURES,
    )


@pytest.mark.timeout(SLOW_TIMEOUT_S)
def test_with_faults_injected_responses_are_judged_by_shape_and_still_conform() -> None:
    budget = Budget(max_examples=10, seed=3, faults=True, max_time_s=300)
    with served("billing", seed=3) as (sim, url):
        for rule in fault_profile("billing"):
            sim.world.faults.add(rule)
        spec = yaml.safe_load(sim.contract.read_text())
        ops = ("createCustomer", "retrieveCustomer", "listCustomers", "updateCustomer")
        report = run_target(billing_target(sim, url, spec, *ops), budget)
        kinds = {hit.kind for hit in sim.world.faults.hits()}
    assert report.conforms, explain(report)
    # The faults really happened; their 429/503 answers passed every shape check, and what
    # only the API's own handling could answer (a 503 is a server error) was set aside.
    assert kinds == {"throttle", "outage"}
    assert any(reason.startswith("not_a_server_error") for reason in report.injected.counts)


@pytest.mark.timeout(SLOW_TIMEOUT_S)
def test_a_contract_that_allows_what_the_simulator_refuses_fails_positive_data() -> None:
    # The harness reads a copy that allows limit=1000; the simulator keeps its own contract
    # (at most 100) and refuses 1000 as a contract violation, which no vendor rule excuses.
    with served("billing", seed=0) as (sim, url):
        loose = yaml.safe_load(sim.contract.read_text())
        loose["components"]["parameters"]["limit"]["schema"]["maximum"] = 1000
        target = billing_target(sim, url, loose, "listCustomers", stateful=False)
        report = run_target(target, SMALL)
    assert not report.errors, report.errors
    assert {record.check for record in report.failures.values()} == {"positive_data_acceptance"}, (
        explain(report)
    )
    [record] = report.failures.values()
    assert record.status == 400 and "limit" in record.response
    # Refusals for vendor rules (a cursor naming no customer) were set aside and counted.
    assert report.refusals.counts["GET /v1/customers"] > 0


# ---------------------------------------------------------------------------------------------
# any API: a tiny receiver served on loopback, once conforming and once broken

RECEIVER_SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Tiny receiver", "version": "1"},
    "paths": {
        "/items/{item_id}": {
            "get": {
                "operationId": "getItem",
                "parameters": [
                    {
                        "name": "item_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "the item",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["id", "name"],
                                    "properties": {
                                        "id": {"type": "integer"},
                                        "name": {"type": "string"},
                                    },
                                }
                            }
                        },
                    },
                    "400": {
                        "description": "not an item id",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                },
            }
        }
    },
}


def receiver_app(broken: bool) -> Starlette:
    async def get_item(request: Request) -> Response:
        raw = request.path_params["item_id"]
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= 1000:
            return JSONResponse({"error": f"not an item id: {raw!r}"}, status_code=400)
        # The bug under test: the id goes out as a string where the contract says integer.
        item_id: int | str = raw if broken else int(raw)
        return JSONResponse({"id": item_id, "name": f"item {raw}"})

    return Starlette(routes=[Route("/items/{item_id}", get_item, methods=["GET"])])


@pytest.fixture
def receiver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    spec = tmp_path / "receiver.yaml"
    spec.write_text(yaml.safe_dump(RECEIVER_SPEC))
    with ThreadedServer([Site("receiver", receiver_app(broken=request.param))]) as server:
        yield spec, server.urls["receiver"]


def contracts_test(*args: str | Path) -> int:
    return main(["contracts", "test", *map(str, args)])


@pytest.mark.parametrize("receiver", [False], indirect=True)
def test_a_conforming_api_exits_0(receiver: tuple[Path, str], capsys: Any) -> None:
    spec, url = receiver
    assert contracts_test("--spec", spec, "--url", url, "--max-examples", "10") == 0
    assert "Tiny receiver: 1/1 operations" in capsys.readouterr().out


@pytest.mark.parametrize("receiver", [True], indirect=True)
def test_a_broken_api_exits_1_and_names_the_check_in_text_and_junit(
    receiver: tuple[Path, str], tmp_path: Path, capsys: Any
) -> None:
    spec, url = receiver
    junit = tmp_path / "out" / "conformance.xml"
    code = contracts_test("--spec", spec, "--url", url, "--max-examples", "10", "--junit", junit)
    out = capsys.readouterr().out
    assert code == 1, out
    assert "response_schema_conformance" in out
    assert "GET /items/{item_id} [200]" in out
    assert "curl -X GET" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("name") == "Tiny receiver"
    assert suite.get("failures") == "1"
    [failure] = suite.iter("failure")
    assert failure.get("type") == "response_schema_conformance"
    assert "curl -X GET" in (failure.text or "")
    # Only the broken field failed: every other check held on the same responses.
    assert [f.get("type") for f in suite.iter("failure")] == ["response_schema_conformance"]


NOTE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["title"],
    "properties": {
        "title": {"type": "string", "maxLength": 20},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 10}},
        "meta": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 10}},
    },
}
DEEP = {"style": "deepObject", "explode": True}
NOTES_SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Notes", "version": "1"},
    "paths": {
        "/notes": {
            "post": {
                "operationId": "createNote",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": NOTE,
                            "encoding": {"tags": DEEP, "meta": DEEP},
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "created",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["id"],
                                    "properties": {"id": {"type": "integer"}},
                                }
                            }
                        },
                    },
                    "400": {
                        "description": "refused",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                },
            }
        }
    },
}


def notes_app() -> Starlette:
    """A form API that validates exactly what its contract says, reading Stripe's brackets."""

    async def create(request: Request) -> Response:
        try:
            body = coerce(decode_form(await request.body()), NOTE)
        except FormDecodeError as exc:
            return JSONResponse({"error": exc.message}, status_code=400)
        error = next(iter(Draft4Validator(NOTE).iter_errors(body)), None)
        if error is not None:
            return JSONResponse({"error": error.message[:200]}, status_code=400)
        return JSONResponse({"id": 1})

    return Starlette(routes=[Route("/notes", create, methods=["POST"])])


def test_a_form_api_reading_bracket_notation_conforms(tmp_path: Path) -> None:
    # Hashes and arrays go out as meta[k]=v and tags[0]=a; nothing about the encoding fails.
    spec = tmp_path / "notes.yaml"
    spec.write_text(yaml.safe_dump(NOTES_SPEC))
    with ThreadedServer([Site("notes", notes_app())]) as server:
        report = run_spec(spec, server.urls["notes"], {}, Budget(max_examples=25, seed=0))
    assert report.conforms, explain(report)
    assert report.requests["POST /notes"] > 25


@pytest.mark.parametrize(
    "args",
    [
        ["--spec", "x.yaml"],  # no --url
        ["--system", "nonesuch"],
        ["--url", "http://127.0.0.1:1"],  # --url without --spec
        ["--spec", "x.yaml", "--url", "http://127.0.0.1:1", "--faults"],
        ["--spec", "/nonexistent/contract.yaml", "--url", "http://127.0.0.1:1"],
        ["--max-examples", "0"],
    ],
)
def test_usage_errors_exit_2(args: list[str], capsys: Any) -> None:
    assert contracts_test(*args) == 2
    assert "harness contracts test:" in capsys.readouterr().err


def test_usage_error_from_argparse_exits_2() -> None:
    with pytest.raises(SystemExit) as exit_:
        contracts_test("--system", "billing", "--spec", "x.yaml")
    assert exit_.value.code == 2


# ---------------------------------------------------------------------------------------------
# pieces


def test_form_bodies_use_brackets_for_deep_objects_and_repeat_plain_arrays() -> None:
    body = {
        "customer": "cus_1",
        "items": [{"price": "price_1", "quantity": 2}],
        "expand": ["customer"],
        "tags": ["a", "b"],
        "cancel_at_period_end": False,
        "description": None,
    }
    encoding = {"items": {"style": "deepObject"}, "expand": {"style": "deepObject"}}
    assert encode_form_body(body, encoding) == (
        "customer=cus_1&items%5B0%5D%5Bprice%5D=price_1&items%5B0%5D%5Bquantity%5D=2"
        "&expand%5B0%5D=customer&tags=a&tags=b&cancel_at_period_end=false&description="
    )


def test_auth_headers_follow_the_contracts_security_scheme() -> None:
    bearer = {
        "security": [{"bearerAuth": []}],
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
    }
    key = {
        "security": [{"token": []}],
        "components": {
            "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "X-Token"}}
        },
    }
    session = {
        "security": [{"sessionId": []}],
        "components": {"securitySchemes": {"sessionId": {"type": "http", "scheme": "bearer"}}},
    }
    assert auth_headers(bearer, {"api_key": "sk_1"}) == {"Authorization": "Bearer sk_1"}
    assert auth_headers(key, {"token": "t"}) == {"X-Token": "t"}
    # Named like the scheme, among other credentials (the CRM's session id).
    assert auth_headers(session, {"session_id": "00D!x", "organization_id": "00D"}) == {
        "Authorization": "Bearer 00D!x"
    }
    # Nothing to authenticate with: no headers, so the caller refuses to run.
    assert auth_headers(bearer, {}) == {}
    assert auth_headers(bearer, {"a": "1", "b": "2"}) == {}


# ---------------------------------------------------------------------------------------------
# the long run


@pytest.mark.slow
@pytest.mark.timeout(4 * 3600)
def test_long_run_every_system_with_faults(request: pytest.FixtureRequest) -> None:
    if "slow" not in (request.config.option.markexpr or "") and not os.environ.get(
        "HARNESS_CONFORMANCE_LONG"
    ):
        pytest.skip("the long run: pytest -m slow tests/contracts/test_conformance.py")
    seed = int(os.environ.get("HARNESS_CONFORMANCE_SEED", "1"))
    for faults in (False, True):
        budget = Budget(LONG_MAX_EXAMPLES, seed, faults=faults, max_time_s=1800)
        for report in run_systems([*registered_systems(), CONTROL], budget):
            assert report.conforms, explain(report)

"""The contract and the simulator agree: operations, handlers, statuses, state round-trips."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from simulators.common.app import operation_ids, snake
from simulators.common.simulator import CONTRACTS
from simulators.common.world import World
from simulators.crm.simulator import CrmSimulator
from tests.crm.conftest import Harness, InProcess

SPEC: dict[str, Any] = yaml.safe_load((CONTRACTS / "crm.yaml").read_text())


def test_every_operation_has_a_handler_and_every_handler_an_operation() -> None:
    ops = {snake(op) for op in operation_ids(SPEC)}
    handlers = CrmSimulator(World()).handlers
    methods = {
        name
        for name in dir(handlers)
        if not name.startswith("_") and callable(getattr(handlers, name))
    }
    assert ops - methods == set(), "operations without a handler"
    assert methods - ops == set(), "handlers without an operation"


def test_every_operation_declares_the_error_statuses() -> None:
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            declared = set(operation["responses"])
            assert {"400", "401", "403", "404", "429", "503", "default"} <= declared, (path, method)


def test_describe_comes_before_the_id_route() -> None:
    paths = list(SPEC["paths"])
    by_id = paths.index("/services/data/{version}/sobjects/{sobject}/{id}")
    for fixed in ("describe", "updated/", "deleted/"):
        assert paths.index(f"/services/data/{{version}}/sobjects/{{sobject}}/{fixed}") < by_id


@pytest.mark.parametrize("version", ["v60", "60.0", "v6.0", "vXX.X"])
async def test_bad_versions_are_not_found(inprocess: InProcess, version: str) -> None:
    response = await inprocess.client.get(
        f"/services/data/{version}/sobjects/Account/describe", headers=inprocess.auth
    )
    assert response.status_code == 404
    assert response.json() == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
    ]


async def test_unknown_paths_and_methods_answer_in_salesforce_shape(inprocess: InProcess) -> None:
    response = await inprocess.client.get("/services/data/v60.0/nowhere", headers=inprocess.auth)
    assert (response.status_code, response.json()[0]["errorCode"]) == (404, "NOT_FOUND")
    response = await inprocess.client.put(
        "/services/data/v60.0/sobjects/Account/001Sm0000000zzzAAA", headers=inprocess.auth, json={}
    )
    assert response.status_code == 405
    assert response.json() == [
        {"message": "HTTP Method 'PUT' not allowed.", "errorCode": "METHOD_NOT_ALLOWED"}
    ]


async def test_record_bodies_must_be_objects(inprocess: InProcess) -> None:
    response = await inprocess.post("/sobjects/Account/", ["Name", "A"])
    assert (response.status_code, response.json()[0]["errorCode"]) == (400, "JSON_PARSER_ERROR")


def test_snapshot_restore_and_reset(crm: Harness) -> None:
    sf = crm.sf
    account = sf.Account.create({"Name": "Before"})["id"]
    deleted = sf.Account.create({"Name": "Deleted"})["id"]
    sf.Account.delete(deleted)
    snapshot = crm.control("GET", "/_sim/snapshot")
    crm.control("POST", "/_sim/reset", {})
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 0
    assert sf.query("SELECT Id FROM Pricebook2 WHERE IsStandard = true")["totalSize"] == 1
    crm.control("POST", "/_sim/snapshot", snapshot)
    assert [r["Id"] for r in sf.query("SELECT Id FROM Account")["records"]] == [account]
    everything = sf.query_all("SELECT Name FROM Account ORDER BY Name", include_deleted=True)
    assert [r["Name"] for r in everything["records"]] == ["Before", "Deleted"]
    # Ids continue after the restored ones rather than repeating them.
    assert sf.Account.create({"Name": "After"})["id"] not in {account, deleted}
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 2

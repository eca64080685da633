"""Every query and path parameter of crm, erp, revrec and the control plane, given edge
values (empty, negative, past int64, past year 9999, huge, not a number): never a 5xx, and
every answer in the system's own JSON envelope."""

from __future__ import annotations

import itertools
import re
from typing import Any
from urllib.parse import quote

import pytest

from simulators.common.app import load_spec
from simulators.common.clock import LATEST
from simulators.common.simulator import CONTRACTS
from tests.conftest import SessionApps

EDGES = [
    "",
    " ",
    "-1",
    "0",
    "1.5",
    "x",
    "eid:",
    str(LATEST),
    str(LATEST + 1),
    str(2**63 - 1),
    str(2**63),
    "9" * 400,
    "0000-00",
    "9999-12",
    "10000-01",
    "ü" * 50,
]
# A value for path parameters that are not the one being probed.
PLAIN = {"version": "v60.0", "sobject": "Account", "entity": "UK", "period": "2026-01"}
MEDIA = {
    "crm": "application/json",
    "erp": "application/vnd.oracle.resource+json",
    "revrec": "application/problem+json",
}


def _probes(system: str) -> list[tuple[str, str, str]]:
    """(method, path with query, what) for every parameter and edge value of the contract."""
    spec = load_spec(CONTRACTS / ("control.yaml" if system == "control" else f"{system}.yaml"))
    found = []
    for template, item in spec["paths"].items():
        for method, op in item.items():
            if method not in ("get", "delete") or not isinstance(op, dict):
                continue
            params = [*item.get("parameters", []), *op.get("parameters", [])]
            params = [p for p in params if "$ref" not in p] + [
                _resolve(spec, p["$ref"]) for p in params if "$ref" in p
            ]
            for param, edge in itertools.product(params, EDGES):
                if param["in"] not in ("query", "path"):
                    continue
                path = template
                for other in re.findall(r"\{(\w+)\}", template):
                    value = edge if other == param["name"] else PLAIN.get(other, "x")
                    path = path.replace(f"{{{other}}}", quote(value, safe="") or "%20")
                query = {
                    p["name"]: PLAIN.get(p["name"], "x")
                    for p in params
                    if p["in"] == "query" and p.get("required") and p is not param
                }
                if param["in"] == "query":
                    query[param["name"]] = edge
                if query:
                    path += "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())
                found.append((method.upper(), path, f"{param['name']}={edge[:20]!r}"))
    return found


def _resolve(spec: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = spec
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    resolved: dict[str, Any] = node
    return resolved


@pytest.mark.parametrize("system", ["crm", "erp", "revrec", "control"])
async def test_edge_values_get_a_4xx_in_the_vendors_envelope_or_an_answer(
    session_apps: SessionApps, system: str
) -> None:
    served = session_apps.fresh(
        "revrec" if system == "control" else system, 1, "2026-01-15T00:00:00Z"
    )
    sim = served.sim
    token = sim.credentials().get("token") or sim.credentials().get("session_id")
    headers = {
        "Authorization": f"Bearer {token}",
        "X-Sim-Control-Token": served.world.control_token,
    }
    media = MEDIA["revrec" if system == "control" else system]
    broken = []
    async with served.client() as client:
        if system in ("revrec", "control"):
            # Something to report on, so report parameters reach the arithmetic.
            await client.put(
                "/v1/entities/UK", json={"functional_currency": "gbp"}, headers=headers
            )
            line = {
                "external_id": "l1",
                "product": "p",
                "pattern": "ratable",
                "unit_price_minor": 1200,
                "service_start_at": 1767225600,
                "service_end_at": 1798761600,
            }
            contract = {"external_id": "c1", "customer": "cus_1", "entity": "UK", "currency": "gbp"}
            created = await client.post(
                "/v1/contracts", json={**contract, "lines": [line]}, headers=headers
            )
            assert created.status_code == 201, created.text
        for method, path, what in _probes(system):
            if path.startswith("/_sim/") != (system == "control"):
                continue
            response = await client.request(method, path, headers=headers)
            kind = response.headers.get("content-type", "")
            if response.status_code >= 500:
                broken.append(f"{method} {path[:80]} ({what}): {response.status_code}")
            elif response.status_code >= 400 and not kind.startswith(media):
                broken.append(f"{method} {path[:80]} ({what}): {kind} {response.text[:80]}")
    assert broken == []

"""The practical ceiling: each simulator's own handlers on bare Starlette routes.

Same contract paths, same handlers, backends and stores, same rendering; no connexion, no
request validation, no journal, no fault layer, no credentials, no idempotency. Bodies and
query strings are only decoded (and Stripe's form strings coerced to the contract's types, which
the handlers need). What our stack costs on top is the ratio ``make bench`` prints.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import orjson
from connexion.json_schema import resolve_refs
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulators.common.app import Call, handler_table, load_spec
from simulators.common.formcodec import coerce, decode_form
from simulators.common.simulator import Simulator

_METHODS = ("get", "post", "put", "patch", "delete")


def make_app(sim: Simulator) -> Starlette:
    """Every operation of the simulator's contract, routed straight to its handler."""
    spec = resolve_refs(load_spec(sim.contract))
    table = handler_table(sim.handlers, specs=[spec])
    routes = []
    for template, item in spec["paths"].items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None or "operationId" not in operation:
                continue
            params = [*item.get("parameters", []), *operation.get("parameters", [])]
            query = {p["name"]: p.get("schema", {}) for p in params if p["in"] == "query"}
            content = (operation.get("requestBody") or {}).get("content", {})
            form = content.get("application/x-www-form-urlencoded", {}).get("schema")
            endpoint = _endpoint(
                sim, operation["operationId"], table[operation["operationId"]], query, form
            )
            routes.append(Route(template, endpoint, methods=[method.upper()]))
    # Literal segments before parameters, as the contracts route (create_preview before {id}).
    routes.sort(key=lambda r: r.path.count("{"))
    return Starlette(routes=routes)


def _endpoint(
    sim: Simulator,
    op: str,
    handler: Callable[[Call], Any],
    query_schemas: dict[str, Any],
    form_schema: dict[str, Any] | None,
) -> Callable[[Request], Any]:
    counter = itertools.count(1)

    async def endpoint(request: Request) -> Response:
        raw_query = request.scope.get("query_string", b"")
        decoded = decode_form(raw_query) if raw_query else {}
        query = {
            name: coerce(value, query_schemas[name]) if name in query_schemas else value
            for name, value in decoded.items()
        }
        raw = await request.body()
        body: Any = {}
        if raw.strip():
            body = coerce(decode_form(raw), form_schema) if form_schema else orjson.loads(raw)
        call = Call(
            op,
            dict(request.path_params),
            query,
            body if isinstance(body, dict) else {},
            request.headers,
            f"req_bare{next(counter)}",
            request.method,
            f"{request.url.scheme}://{request.headers.get('host', 'localhost')}",
        )
        with sim.world.lock:
            reply = handler(call)
        payload, status = reply[0], reply[1]
        headers = dict(reply[2]) if len(reply) == 3 else {}
        if payload is None:
            return Response(b"", status_code=status, headers=headers)
        if not isinstance(payload, bytes):
            payload = orjson.dumps(payload)
            headers.setdefault("content-type", "application/json")
        return Response(payload, status_code=status, headers=headers)

    return endpoint

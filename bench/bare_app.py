"""The practical ceiling: a bare Starlette app over the same billing backend, no validation."""

from __future__ import annotations

import sys
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulators.billing import render
from simulators.billing.simulator import BillingSimulator
from simulators.common.world import World


def make_app() -> Starlette:
    sim = BillingSimulator(World(seed=1))
    store, backend = sim.store, sim.backend

    def reply(body: Any) -> Response:
        return Response(orjson.dumps(body), media_type="application/json")

    async def create_customer(request: Request) -> Response:
        form = await request.form()
        return reply(render.customer(store, backend.create_customer(dict(form))))

    async def retrieve_customer(request: Request) -> Response:
        return reply(render.customer(store, backend.customer(request.path_params["id"])))

    return Starlette(
        routes=[
            Route("/v1/customers", create_customer, methods=["POST"]),
            Route("/v1/customers/{id}", retrieve_customer, methods=["GET"]),
        ]
    )


if __name__ == "__main__":
    uvicorn.run(
        make_app(),
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        access_log=False,
        http="httptools",
        loop="uvloop",
    )

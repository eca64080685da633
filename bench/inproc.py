"""In-process ASGI calls: per-request CPU cost of each hot operation, without sockets or wrk."""

from __future__ import annotations

import asyncio
import cProfile
import gc
import pstats
import sys
import time
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Message

from bench.ops import Operation, World4, build_world, operations, seed_world
from simulators.common.server import freeze_and_defer_full_collections

SORT = ["cumulative"]
Caller = Callable[[str, str, bytes, dict[str, str]], Awaitable[tuple[int, bytes]]]


def caller(app: ASGIApp) -> Caller:
    """A minimal ASGI client: one request, the status and body back."""

    async def call(
        method: str, target: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        path, _, query = target.partition("?")
        raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        raw.append((b"host", b"bench.local"))
        if body:
            raw.append((b"content-length", str(len(body)).encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": raw,
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 80),
            "extensions": {},
        }
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        status = 0
        chunks: list[bytes] = []

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            else:
                chunks.append(message.get("body", b""))

        await app(scope, receive, send)
        return status, b"".join(chunks)

    return call


async def cost(op: Operation, call: Caller, n: int) -> dict[str, float]:
    """CPU microseconds per request over n requests (after a short warm-up)."""
    for i in range(20):
        await call(op.method, op.path, op.payload(i + 10_000_000), op.headers)
    errors = 0
    took: list[float] = []
    clock = time.perf_counter
    cpu0, wall0 = time.process_time(), clock()
    for i in range(n):
        started = clock()
        status, _ = await call(op.method, op.path, op.payload(i), op.headers)
        took.append(clock() - started)
        errors += status >= 400
    cpu, wall = time.process_time() - cpu0, clock() - wall0
    took.sort()
    return {
        "cpu_us": cpu / n * 1e6,
        "wall_us": wall / n * 1e6,
        "p99_us": took[int(n * 0.99) - 1] * 1e6 if n >= 100 else float("nan"),
        "max_us": took[-1] * 1e6,
        "errors": float(errors),
    }


async def measure(
    world: World4, n: int, only: str | None = None, profile: bool = False
) -> dict[str, dict[str, float]]:
    callers = {name: caller(app) for name, app in world.apps.items()}
    ids = await seed_world(world.clients(), world.credentials, world.world.control_token)
    # The collector as a serving process has it (simulators.common.server): no full
    # collections in the middle of the figures.
    thresholds = gc.get_threshold()
    freeze_and_defer_full_collections()
    try:
        return await _measure(world, ids, callers, n, only, profile)
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


async def _measure(
    world: World4,
    ids: dict[str, str],
    callers: dict[str, Caller],
    n: int,
    only: str | None,
    profile: bool,
) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    for op in operations(world.credentials, ids):
        if only and only not in op.name:
            continue
        call = callers[op.system]
        if profile:
            prof = cProfile.Profile()
            prof.enable()
            results[op.name] = await cost(op, call, n)
            prof.disable()
            print(f"=== {op.name}: {results[op.name]}")
            pstats.Stats(prof).sort_stats(*SORT).print_stats(45)
        else:
            results[op.name] = await cost(op, call, n)
    return results


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    only = sys.argv[2] if len(sys.argv) > 2 else None
    profile = "--profile" in sys.argv
    if "--tottime" in sys.argv:
        SORT[0] = "tottime"
    gc.collect()
    world = build_world(validate_responses=False)
    results = asyncio.run(measure(world, n, only, profile))
    for name, r in results.items():
        print(
            f"{name:40} {r['cpu_us']:7.0f} us cpu {r['wall_us']:7.0f} us wall "
            f"p99 {r['p99_us']:7.0f} max {r['max_us']:8.0f} us {r['errors']:4.0f} err"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

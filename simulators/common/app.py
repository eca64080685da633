"""The app factory: a contract-driven ASGI app per simulator, with faults, journal and errors."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from connexion.exceptions import ProblemException
from connexion.middleware.main import ConnexionMiddleware
from connexion.middleware.response_validation import ResponseValidationMiddleware
from connexion.resolver import Resolver
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from simulators.common.errors import Rendered, SimError
from simulators.common.idempotency import Outcome, StoredResponse
from simulators.common.journal import JournalEntry
from simulators.common.jsonbytes import trimmed
from simulators.common.routing import IndexedRoutingMiddleware
from simulators.common.server import abort_connection
from simulators.common.simulator import CONTRACTS, RequestViolation, Simulator
from simulators.common.validation import (
    CachedRequestValidationMiddleware,
    ClientGone,
    validator_map,
)

log = logging.getLogger("simulators")

CONTROL_TOKEN_HEADER = "x-sim-control-token"
CONTROL_PREFIX = "/_sim"
ACTOR_HEADER = "x-sim-actor"


class DroppedConnection(Exception):
    """A fault dropped the connection where no socket exists to abort (in-process clients)."""


@dataclass
class RequestContext:
    """What the kernel learns about one request, shared down the middleware stack."""

    sim: Simulator
    request_id: str
    entry: JournalEntry
    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None


@dataclass
class Call:
    """A validated request as a handler sees it."""

    operation_id: str
    path: dict[str, str]
    query: dict[str, Any]
    body: dict[str, Any]
    headers: Headers
    request_id: str
    method: str = "GET"
    base_url: str = ""  # scheme://host:port the client used, for absolute links


Reply = tuple[Any, int] | tuple[Any, int, dict[str, str]]


def snake(operation_id: str) -> str:
    """The handler name for an operationId: ``createCustomer`` → ``create_customer``."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", operation_id).lower()


def context(scope: Scope) -> RequestContext:
    ctx: RequestContext = scope["extensions"]["sim"]
    return ctx


def operation_id(scope: Scope) -> str | None:
    routing = scope["extensions"].get("connexion_routing") or {}
    op: str | None = routing.get("operation_id")
    return op


async def _send_rendered(send: Send, rendered: Rendered) -> None:
    await _send(send, rendered.status, rendered.headers, rendered.body)


async def _send(send: Send, status: int, headers: dict[str, str], body: bytes) -> None:
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class _SimMiddleware:
    def __init__(self, app: ASGIApp, *, sim: Simulator) -> None:
        self.app = app
        self.sim = sim


class EdgeMiddleware(_SimMiddleware):
    """Outermost: request id, journal, and every error rendered in the vendor's envelope."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        sim: Simulator,
        methods: list[tuple[re.Pattern[str], list[str]]] | None = None,
    ) -> None:
        super().__init__(app, sim=sim)
        self._methods = methods or []

    def allowed(self, path: str) -> list[str]:
        for pattern, methods in self._methods:
            if pattern.fullmatch(path):
                return methods
        return []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sim = self.sim
        scope["extensions"] = dict(scope.get("extensions") or {})
        request_id = f"req_{sim.request_ids.token('request')}"
        query = scope.get("query_string", b"").decode("latin-1")
        entry = sim.journal.open(
            request_id,
            scope["method"],
            scope["path"],
            query,
            sim.world.clock.now(),
            control=scope["path"].startswith(CONTROL_PREFIX),
        )
        client = scope.get("client")
        if client:
            entry.connection = f"{client[0]}:{client[1]}"
        scope["extensions"]["sim"] = RequestContext(sim, request_id, entry)
        started = time.perf_counter()
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                entry.status = message["status"]
                # Asked as the response leaves, so limits count this request too.
                extra = {"Request-Id": request_id, **sim.response_headers()}
                entry.retry_after_s = _retry_after(message.get("headers", []))
                message["headers"] = [
                    *message.get("headers", []),
                    *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()),
                ]
            await send(message)

        error: SimError | None = None
        try:
            await self.app(scope, receive, send_with_headers)
        except (_Aborted, ClientGone):
            entry.status = 0
        except DroppedConnection:
            entry.status = 0
            sim.journal.close(entry)
            raise
        except SimError as exc:
            error = exc
        except RequestViolation as exc:
            entry.violations.append(f"{exc.problem}: {exc.message}")
            error = sim.violation_error(exc)
        except ProblemException as exc:
            entry.violations.append(f"{exc.title}: {exc.detail}")
            error = SimError(exc.status or 400, "invalid_request", str(exc.detail or exc.title))
        except HTTPException as exc:
            if exc.status_code == 404:
                error = sim.not_found_error(scope["method"], scope["path"])
            else:
                error = sim.method_not_allowed_error(scope["method"], scope["path"])
                # RFC 9110: a 405 names the methods the resource does allow (all of them:
                # the router only knows the one route it matched).
                allowed = self.allowed(scope["path"])
                if allowed:
                    error.headers = {**error.headers, "Allow": ", ".join(allowed)}
        except Exception:
            log.exception("%s simulator failed on %s %s", sim.name, scope["method"], scope["path"])
            error = sim.internal_error()
        finally:
            entry.operation_id = operation_id(scope)
            entry.duration_ms = round((time.perf_counter() - started) * 1000, 3)
        try:
            if error is not None:
                if response_started:
                    # Half a response cannot be mended; the client sees a dropped connection.
                    abort_connection(scope)
                else:
                    await _send_rendered(send_with_headers, sim.render(error))
        finally:
            sim.journal.close(entry)


def _retry_after(headers: Any) -> float | None:
    """The delay-seconds of a Retry-After header (the only form the simulators send)."""
    for key, value in headers:
        if key.lower() == b"retry-after":
            try:
                return float(value)
            except ValueError:
                return None
    return None


class FaultMiddleware(_SimMiddleware):
    """After routing: control-plane auth, vendor auth, the world's inbound fault rules, then
    the vendor's own limits."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sim = self.sim
        op = operation_id(scope)
        headers = Headers(scope=scope)
        if scope["path"].startswith(CONTROL_PREFIX):
            if headers.get(CONTROL_TOKEN_HEADER) != sim.world.control_token:
                raise SimError(401, "control_token", "Missing or wrong X-Sim-Control-Token.")
            await self.app(scope, receive, send)
            return
        _check_size(scope, headers, sim)
        harness = (
            headers.get(ACTOR_HEADER) == "harness"
            and headers.get(CONTROL_TOKEN_HEADER) == sim.world.control_token
        )
        if (
            headers.get(ACTOR_HEADER) == "standin"
            and headers.get(CONTROL_TOKEN_HEADER) == sim.world.control_token
        ):
            # The harness's stand-in integration (the hand-offs the integration under test
            # does not own): faults and quotas apply, its traffic is not judged as the
            # integration's.
            context(scope).entry.actor = "standin"
        if harness:
            # The harness plays the vendor's own users (a salesperson, billing ops): no faults,
            # no quotas, and its requests are not the integration's traffic.
            context(scope).entry.actor = "harness"
            denied = sim.authenticate(headers)
            if denied is not None:
                raise denied
            await self.app(scope, receive, send)
            return
        # Credentials first: a request the vendor would turn away at the door consumes no
        # fault budget (max_hits, after_calls) and draws nothing from the seeded stream.
        denied = sim.authenticate(headers)
        if denied is not None:
            raise denied
        if op is not None and sim.world.faults:
            rules = sim.world.faults.decide(
                sim.name,
                op,
                sim.world.clock.now(),
                inbound=True,
                detail=f"{scope['method']} {scope['path']}",
            )
            if rules:
                context(scope).entry.faults.extend(r.id for r in rules)
                send = await self._apply(rules, scope, send)
        if op is not None and (denied := sim.admit(op, headers)) is not None:
            raise denied
        await self.app(scope, receive, send)
        if getattr(send, "ambiguous", False):
            _drop(scope)

    async def _apply(self, rules: list[Any], scope: Scope, send: Send) -> Send:
        sim = self.sim
        for rule in rules:
            kind = rule.kind
            if kind == "latency":
                high = rule.latency_max_ms if rule.latency_max_ms is not None else rule.latency_ms
                delay_ms = (
                    sim.world.faults.uniform(rule.latency_ms, high)
                    if high > rule.latency_ms
                    else rule.latency_ms
                )
                await asyncio.sleep(delay_ms / 1000)
            elif kind == "hang":
                await asyncio.sleep(rule.hang_s)
                _drop(scope)
            elif kind == "reset":
                _drop(scope)
            elif kind == "throttle":
                raise sim.throttle_error(rule)
            elif kind == "outage":
                raise sim.outage_error(rule)
            elif kind == "error":
                raise sim.fault_error(rule)
            elif kind == "ambiguous_commit":
                send = _swallow(send)
            elif kind in ("malformed", "truncated"):
                send = _corrupt(send, scope, truncate=kind == "truncated")
        return send


def _check_size(scope: Scope, headers: Headers, sim: Simulator) -> None:
    length = headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > sim.max_body_bytes:
        raise RequestViolation(
            "too_large",
            f"request body is larger than {sim.max_body_bytes} bytes",
            location="body",
        )


def _drop(scope: Scope) -> None:
    if not abort_connection(scope):
        raise DroppedConnection("connection dropped by an injected fault")
    raise _Aborted


class _Aborted(DroppedConnection):
    """The socket was aborted; nothing more can be sent."""


def _swallow(send: Send) -> Send:
    """Let the write happen, lose the response: the ambiguous commit."""

    async def swallow(message: Message) -> None:
        return None

    swallow.ambiguous = True  # type: ignore[attr-defined]
    return swallow


def _corrupt(send: Send, scope: Scope, *, truncate: bool) -> Send:
    start: Message | None = None

    async def corrupt(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
            return
        body = message.get("body", b"")
        assert start is not None
        headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
        if truncate:
            # Promise the whole body, send half, then close: a truncated read on the client.
            start["headers"] = [*headers, (b"content-length", str(len(body)).encode())]
            await send(start)
            await send(
                {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
            )
            _drop(scope)
        else:
            broken = body[: max(1, len(body) // 2)] + b"\x00<html>upstream error"
            start["headers"] = [*headers, (b"content-length", str(len(broken)).encode())]
            await send(start)
            await send({"type": "http.response.body", "body": broken})

    return corrupt


class Dispatch:
    """The innermost app: idempotency, then the handler named by the operationId."""

    def __init__(self, sim: Simulator, handlers: dict[str, Callable[[Call], Reply]]) -> None:
        self.sim = sim
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sim = self.sim
        op = operation_id(scope)
        if op is None:
            raise sim.not_found_error(scope["method"], scope["path"])
        ctx = context(scope)
        headers = Headers(scope=scope)
        call = Call(
            op,
            dict(scope.get("path_params", {})),
            ctx.query,
            ctx.body if isinstance(ctx.body, dict) else {},
            headers,
            ctx.request_id,
            scope["method"],
            _base_url(scope, headers),
        )
        handler = self.handlers[op]
        key = None
        if sim.idempotency_header and scope["method"] == "POST":
            key = headers.get(sim.idempotency_header)
        if not key:
            await _send(send, *await self._run(handler, call))
            return
        now = sim.world.clock.now()
        fingerprint = hashlib.sha256(
            orjson.dumps([op, scope["path"], call.body], option=orjson.OPT_SORT_KEYS)
        ).hexdigest()
        with sim.world.lock:
            outcome, stored = sim.idempotency.begin(key, fingerprint, now)
        if outcome is Outcome.MISMATCH:
            raise sim.idempotency_mismatch_error(key)
        if outcome is Outcome.IN_FLIGHT:
            raise sim.idempotency_in_flight_error(key)
        if outcome is Outcome.REPLAY:
            assert stored is not None
            ctx.entry.replayed = True
            await _send(
                send,
                stored.status,
                {**dict(stored.headers), "Idempotent-Replayed": "true"},
                stored.body,
            )
            return
        ctx.entry.idempotency_key = key
        try:
            status, response_headers, body = await self._run(handler, call)
        except BaseException:
            sim.idempotency.abandon(key)
            raise
        with sim.world.lock:
            sim.idempotency.finish(
                key,
                StoredResponse(
                    fingerprint, status, tuple(response_headers.items()), trimmed(body), now
                ),
            )
        await _send(send, status, response_headers, body)

    async def _run(
        self, handler: Callable[[Call], Any], call: Call
    ) -> tuple[int, dict[str, str], bytes]:
        try:
            with self.sim.world.lock:
                reply = handler(call)
            if inspect.isawaitable(reply):
                # Only waits (the control plane's drain) are async; they run outside the lock.
                reply = await reply
        except SimError as exc:
            rendered = self.sim.render(exc)
            return rendered.status, rendered.headers, rendered.body
        payload, status = reply[0], reply[1]
        headers = dict(reply[2]) if len(reply) == 3 else {}
        if payload is None:
            return status, headers, b""
        if isinstance(payload, bytes):
            return status, headers, payload
        headers.setdefault("content-type", "application/json")
        return status, headers, orjson.dumps(payload)


def _base_url(scope: Scope, headers: Headers) -> str:
    host = headers.get("host")
    if host is None and scope.get("server"):
        server_host, port = scope["server"]
        host = f"{server_host}:{port}"
    return f"{scope.get('scheme', 'http')}://{host or 'localhost'}"


def handler_table(
    *providers: Any, specs: list[dict[str, Any]]
) -> dict[str, Callable[[Call], Reply]]:
    """Map every operationId in the specs to the provider method of the same name in snake_case."""
    table: dict[str, Callable[[Call], Reply]] = {}
    missing = []
    for spec in specs:
        for op in operation_ids(spec):
            for provider in providers:
                method = getattr(provider, snake(op), None)
                if method is not None:
                    table[op] = method
                    break
            else:
                missing.append(op)
    if missing:
        raise LookupError(f"operations without a handler: {', '.join(sorted(missing))}")
    return table


def path_methods(spec: dict[str, Any]) -> list[tuple[re.Pattern[str], list[str]]]:
    """Each path template as a pattern, with the methods the contract declares on it."""
    found = []
    for template, item in spec.get("paths", {}).items():
        verbs = sorted(m.upper() for m in item if m in _METHODS)
        pattern = re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)))
        found.append((pattern, verbs))
    # Literal segments before parameters: /v1/invoices/create_preview wins over {invoice}.
    found.sort(key=lambda p: p[0].pattern.count("[^/]+"))
    return found


_METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}


def operation_ids(spec: dict[str, Any]) -> list[str]:
    ops = []
    for item in spec.get("paths", {}).values():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"} and "operationId" in operation:
                ops.append(operation["operationId"])
    return ops


def load_spec(path: Any) -> dict[str, Any]:
    import yaml

    with open(path, encoding="utf-8") as handle:
        loaded = yaml.safe_load(handle)
    # YAML aliases share objects, and connexion merges path-level parameters into operations
    # in place: a round trip through JSON gives every operation lists of its own.
    spec: dict[str, Any] = orjson.loads(orjson.dumps(loaded, option=orjson.OPT_NON_STR_KEYS))
    return spec


def build_app(sim: Simulator, *, validate_responses: bool = True) -> ASGIApp:
    """The ASGI app serving a simulator's contract and the shared control plane."""
    from simulators.common.control import ControlHandlers

    vendor_spec = load_spec(sim.contract)
    control_spec = load_spec(CONTRACTS / "control.yaml")
    table = handler_table(sim.handlers, specs=[vendor_spec])
    table.update(handler_table(ControlHandlers(sim), specs=[control_spec]))
    methods = path_methods(vendor_spec) + path_methods(control_spec)
    middlewares: list[Any] = [
        functools.partial(EdgeMiddleware, sim=sim, methods=methods),
        IndexedRoutingMiddleware,
        functools.partial(FaultMiddleware, sim=sim),
        CachedRequestValidationMiddleware,
    ]
    if validate_responses:
        middlewares.append(ResponseValidationMiddleware)
    app = ConnexionMiddleware(
        Dispatch(sim, table),
        import_name=__name__,
        middlewares=middlewares,
        resolver=Resolver(lambda _op: _unused),
        validate_responses=validate_responses,
        validator_map=validator_map(
            strict_parameters=sim.strict_parameters, max_body_bytes=sim.max_body_bytes
        ),
    )
    app.add_api(vendor_spec, base_path="")
    app.add_api(control_spec, base_path="")

    def render_bad_request(message: str) -> tuple[int, dict[str, str], bytes]:
        # Not HTTP at all (uvicorn refused to parse it): still the vendor's envelope.
        violation = RequestViolation("malformed", f"The request is not valid HTTP: {message}")
        rendered = sim.render(sim.violation_error(violation))
        return rendered.status, rendered.headers, rendered.body

    app.render_bad_request = render_bad_request
    asgi: ASGIApp = app
    return asgi


def _unused() -> None:  # pragma: no cover - connexion wants a callable per operation
    raise AssertionError("dispatch calls handlers, never connexion")

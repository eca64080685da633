"""The HTTP side: Stripe's webhook receiver (verify, record, acknowledge), two probes, and the
set-aside list with its replay (docs/exceptions.md)."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import stripe
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .workqueue import QueueFull, Work, WorkQueue

log = logging.getLogger("connector.web")
MAX_BODY_BYTES = 1 << 20  # Stripe events are a few kB; refuse anything far larger
MAX_REPLAY_IDS = 1000  # per replay request; an operator replays more with {} (every item)
TOLERANCE_S = 300  # Stripe's default: a signature older than five minutes is a replay

# The events that can change what the ERP owes, by the object they name.
ROUTES = {
    "invoice.finalized": "invoice",
    "invoice.paid": "invoice",
    "invoice.payment_succeeded": "invoice",
    "invoice.voided": "invoice",
    "invoice.marked_uncollectible": "invoice",
    "credit_note.created": "credit_note",
    "credit_note.voided": "credit_note",
    "customer.subscription.created": "subscription",
}


def route(event: dict[str, Any]) -> Work | None:
    """The job an event asks for, if any: the object it names, in its customer's lane."""
    kind = ROUTES.get(str(event.get("type")))
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if kind is None or not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        return None
    customer = obj.get("customer")
    return Work(kind, obj["id"], customer if isinstance(customer, str) and customer else obj["id"])


async def _body(request: Request) -> bytes | None:
    """The request body, or None when it is over MAX_BODY_BYTES (read no further then)."""
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY_BYTES:
            return None
    return bytes(body)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message}}, status_code=status, headers=headers)


def create_app(
    queue: WorkQueue, signing_secret: str, caught_up: threading.Event | None = None
) -> Starlette:
    async def stripe_webhook(request: Request) -> JSONResponse:
        body = await _body(request)
        if body is None:
            return _error(413, f"body over {MAX_BODY_BYTES} bytes")
        signature = request.headers.get("stripe-signature")
        if not signature:
            return _error(400, "missing Stripe-Signature header")
        try:
            stripe.WebhookSignature.verify_header(
                body.decode("utf-8"), signature, signing_secret, TOLERANCE_S
            )
        except (stripe.SignatureVerificationError, UnicodeDecodeError):
            log.warning("refused a webhook with a bad signature")
            return _error(400, "signature verification failed")
        try:
            data = json.loads(body)
        except ValueError:
            return _error(400, "body is not JSON")
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            return _error(400, "body is not a Stripe event")
        created = data.get("created")
        try:
            outcome = await run_in_threadpool(
                queue.accept,
                data["id"],
                route(data),
                created if type(created) is int else None,
            )
        except QueueFull as exc:
            return _error(503, f"queue full ({exc}); retry later", {"Retry-After": "30"})
        log.info("event %s %s: %s", data["id"], data.get("type"), outcome)
        return JSONResponse({"received": True, "outcome": outcome})

    async def exceptions(_: Request) -> JSONResponse:
        items = await run_in_threadpool(queue.set_aside)
        return JSONResponse({"items": items})

    async def replay(request: Request) -> JSONResponse:
        """``{}`` replays every open item, ``{"ids": ["exc_3", …]}`` those."""
        body = await _body(request)
        if body is None:
            return _error(413, f"body over {MAX_BODY_BYTES} bytes")
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return _error(400, "body is not JSON")
        ids = data.get("ids") if isinstance(data, dict) else None
        if not isinstance(data, dict) or set(data) - {"ids"}:
            return _error(400, 'body must be {} or {"ids": ["exc_…", …]}')
        if ids is not None and (
            not isinstance(ids, list)
            or not all(isinstance(i, str) for i in ids)
            or len(ids) > MAX_REPLAY_IDS
        ):
            return _error(400, f"ids must be a list of at most {MAX_REPLAY_IDS} item ids")
        replayed, unknown = await run_in_threadpool(queue.replay, ids)
        if unknown:
            return _error(404, f"no such exception: {', '.join(unknown[:20])}")
        log.info("replayed %d set-aside job(s): %s", len(replayed), ", ".join(replayed))
        return JSONResponse({"replayed": replayed})

    async def health(_: Request) -> JSONResponse:
        counts = await run_in_threadpool(queue.counts)
        return JSONResponse({"status": "ok", "jobs": counts})

    async def idle(_: Request) -> JSONResponse:
        open_jobs = await run_in_threadpool(queue.open_jobs)
        catching_up = caught_up is not None and not caught_up.is_set()
        quiet = open_jobs == 0 and not catching_up
        return JSONResponse(
            {"open_jobs": open_jobs, "catching_up": catching_up}, status_code=200 if quiet else 503
        )

    return Starlette(
        routes=[
            Route("/stripe/webhook", stripe_webhook, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/idle", idle, methods=["GET"]),
            Route("/exceptions", exceptions, methods=["GET"]),
            Route("/exceptions/replay", replay, methods=["POST"]),
        ]
    )

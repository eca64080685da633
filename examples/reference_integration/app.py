"""The HTTP face (webhook receivers into the inbox, health and idle probes) and start-up.

Two processes share the inbox: this one receives and acknowledges, and starts the worker
process (`workers.py`) that does the work, so acknowledging never waits for a worker thread
to let go of the interpreter lock — a webhook vendor waits for each acknowledgement before it
sends that lane's next event, so the time to acknowledge bounds what it can deliver.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import stripe
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from examples.reference_integration.conventions import Conventions
from examples.reference_integration.inbox import Inbox
from examples.reference_integration.launch import Workers

log = logging.getLogger("reference_integration")


@dataclass(frozen=True)
class Settings:
    port: int
    stripe_api_base: str
    stripe_api_key: str
    stripe_webhook_secret: str
    netsuite_url: str
    netsuite_token: str
    inbox_path: Path
    ca_bundle: str
    revrec_url: str
    revrec_token: str
    revrec_webhook_secret: str
    sf_instance_url: str
    sf_session_id: str
    crm_webhook_secret: str
    conventions: Conventions
    # Extra headers on every vendor call: a stand-in tells the simulators who it is.
    headers: dict[str, str]
    workers: int = 8  # worker threads: lanes worked on at once
    # Requests in flight to one vendor at once, from all workers together. Each is a round
    # trip through a vendor serving many others; one at a time, they were the month-end
    # load's backlog. A throttle holds every worker at once, then one request at a time for
    # a while (retry.Gate); one already on its way is not a hasty retry (INV-30).
    vendor_concurrency: int = 4
    inbox_sync: str = "normal"  # "full": also sync each event to the disk before the ack

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        port = int(env.get("PORT", "8000"))
        default_inbox = Path(tempfile.gettempdir()) / f"reference-integration-{port}.sqlite"
        return cls(
            port=port,
            stripe_api_base=env["STRIPE_API_BASE"],
            stripe_api_key=env["STRIPE_API_KEY"],
            stripe_webhook_secret=env["STRIPE_WEBHOOK_SECRET"],
            netsuite_url=env["NETSUITE_URL"],
            netsuite_token=env["NETSUITE_TOKEN"],
            inbox_path=Path(env.get("INBOX_PATH") or default_inbox),
            ca_bundle=env.get("REQUESTS_CA_BUNDLE", ""),
            # The subledger and the CRM are optional: without them the Stripe → ERP slice runs.
            revrec_url=env.get("REVREC_URL", ""),
            revrec_token=env.get("REVREC_TOKEN", ""),
            revrec_webhook_secret=env.get("REVREC_WEBHOOK_SECRET", ""),
            sf_instance_url=env.get("SF_INSTANCE_URL", ""),
            sf_session_id=env.get("SF_SESSION_ID", ""),
            crm_webhook_secret=env.get("CRM_WEBHOOK_SECRET", ""),
            conventions=Conventions.from_env(env),
            headers=(
                {"X-Sim-Actor": "standin", "X-Sim-Control-Token": env["FINSIM_CONTROL_TOKEN"]}
                if env.get("FINSIM_ACTOR") == "standin"
                else {}
            ),
            workers=int(env.get("INBOX_WORKERS") or 8),
            vendor_concurrency=int(env.get("VENDOR_CONCURRENCY") or 4),
            inbox_sync=env.get("INBOX_SYNC") or "normal",
        )


# Stripe's tolerance for a signature's age, applied to the simulators' own signatures too.
SIGNATURE_TOLERANCE_S = 300
# Pushes worth keeping; the rest are acknowledged and dropped (the subledger sends many).
HANDLED = {"crm": {"opportunity.closed"}, "revrec": {"period.closed"}}


def verify_sim_signature(secret: str, header: str, body: bytes, now_s: float) -> bool:
    """`X-Sim-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>`, fresh and matching."""
    if not secret:
        return False
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        stamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now_s - stamp) > SIGNATURE_TOLERANCE_S:
        return False
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


class StripeEvent(NamedTuple):
    """What the inbox keeps of a Stripe event besides its body."""

    id: str
    type: str


def lane_of(source: str, payload: dict[str, Any]) -> str:
    """What an event must stay in order with: a Stripe event with the rest of its customer's,
    a CRM deal with its account's other deals, a subledger close with its entity's closes.
    Different lanes run in parallel; the flow re-reads every record, so they may interleave."""
    if source == "stripe":
        obj = (payload.get("data") or {}).get("object") or {}
        customer = obj.get("id") if obj.get("object") == "customer" else obj.get("customer")
        if isinstance(customer, str) and customer:
            return f"stripe:{customer}"
    elif source == "crm":
        record = payload.get("sObject") or {}
        account = record.get("AccountId") or record.get("Id")
        if account:
            return f"crm:{account}"
    elif source == "revrec":
        entity = ((payload.get("data") or {}).get("object") or {}).get("entity")
        if entity:
            return f"revrec:{entity}"
    return ""  # its own lane


def build_app(settings: Settings, inbox: Inbox) -> Starlette:
    async def stripe_webhook(request: Request) -> Response:
        payload = await request.body()
        signature = request.headers.get("Stripe-Signature", "")
        try:
            # The SDK's own check (what construct_event does before building an Event object,
            # which costs fifty times the check: the acknowledgement is on the critical path).
            stripe.WebhookSignature.verify_header(
                payload.decode(), signature, settings.stripe_webhook_secret, SIGNATURE_TOLERANCE_S
            )
            data = json.loads(payload)  # the raw body: plain JSON types only
            event = StripeEvent(str(data["id"]), str(data["type"]))
        except (ValueError, KeyError, TypeError, stripe.SignatureVerificationError) as exc:
            log.warning("rejected webhook: %s", exc)
            return PlainTextResponse("bad signature", status_code=400)
        lane = lane_of("stripe", data)
        subject = str(((data.get("data") or {}).get("object") or {}).get("id") or "")
        fresh = await run_in_threadpool(
            inbox.put, "stripe", event.id, event.type, data, lane, subject
        )
        log.info("received %s %s%s", event.id, event.type, "" if fresh else " (duplicate)")
        return JSONResponse({"received": True, "duplicate": not fresh})

    async def sim_webhook(request: Request, source: str, secret: str) -> Response:
        body = await request.body()
        signature = request.headers.get("X-Sim-Signature", "")
        if not verify_sim_signature(secret, signature, body, time.time()):
            log.warning("rejected %s webhook: bad signature", source)
            return PlainTextResponse("bad signature", status_code=400)
        try:
            data = json.loads(body)
        except ValueError:
            return PlainTextResponse("not JSON", status_code=400)
        # The CRM's event id is the notification id; the subledger's is the event id.
        event_id = str(data.get("notificationId") or data.get("id") or "")
        kind = str(data.get("eventType") or data.get("type") or "")
        if not event_id or not kind:
            return PlainTextResponse("no event id or type", status_code=400)
        if kind not in HANDLED[source]:
            return JSONResponse({"received": True, "ignored": True})
        lane = lane_of(source, data)
        fresh = await run_in_threadpool(inbox.put, source, event_id, kind, data, lane)
        log.info("received %s %s%s", event_id, kind, "" if fresh else " (duplicate)")
        return JSONResponse({"received": True, "duplicate": not fresh})

    async def crm_webhook(request: Request) -> Response:
        return await sim_webhook(request, "crm", settings.crm_webhook_secret)

    async def revrec_webhook(request: Request) -> Response:
        return await sim_webhook(request, "revrec", settings.revrec_webhook_secret)

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def idle(_: Request) -> Response:
        # Idle only when nothing waits, runs or waits for a retry: all are pending rows (an
        # event is done only once its work is).
        pending = await run_in_threadpool(inbox.pending)
        if pending == 0:
            return PlainTextResponse("idle")
        return PlainTextResponse(f"busy: {pending} pending", status_code=503)

    async def exceptions(_: Request) -> Response:
        items = await run_in_threadpool(inbox.exceptions)
        return JSONResponse({"items": items})

    async def replay(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        ids = body.get("ids") if isinstance(body, dict) else None
        if ids is not None and not (
            isinstance(ids, list) and all(isinstance(i, str) for i in ids) and len(ids) <= 1000
        ):
            return JSONResponse({"error": "ids: a list of exception ids"}, status_code=400)
        queued = await run_in_threadpool(inbox.replay, ids)
        log.info("replay: %d item(s) queued again", len(queued))
        return JSONResponse({"replayed": queued})

    return Starlette(
        routes=[
            Route("/exceptions", exceptions, methods=["GET"]),
            Route("/exceptions/replay", replay, methods=["POST"]),
            Route("/webhooks/stripe", stripe_webhook, methods=["POST"]),
            Route("/webhooks/crm", crm_webhook, methods=["POST"]),
            Route("/webhooks/revrec", revrec_webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/idle", idle, methods=["GET"]),
        ]
    )


def main(workers: Workers) -> None:
    """Serve the receivers once ``workers`` (started before our imports) are working."""
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    settings = Settings.from_env()
    inbox = Inbox(settings.inbox_path, sync=settings.inbox_sync)
    workers.ready()
    config = uvicorn.Config(
        build_app(settings, inbox),
        host="127.0.0.1",
        port=settings.port,
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    original_startup = server.startup

    async def startup(sockets: list[socket.socket] | None = None) -> None:
        await original_startup(sockets=sockets)
        print(f"listening on {settings.port}", flush=True)

    server.startup = startup  # type: ignore[method-assign]
    try:
        server.run()
    finally:
        workers.stop()
        inbox.close()

"""The HTTP face: webhook receivers into the inbox, health and idle probes; and start-up."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import stripe
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from examples.reference_integration.crm import Crm
from examples.reference_integration.erp import NetSuite
from examples.reference_integration.inbox import Inbox
from examples.reference_integration.revrec import Revrec
from examples.reference_integration.sync import Syncer
from examples.reference_integration.workers import DEFAULT_WORKERS, Workers, lane_of

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
    workers: int = DEFAULT_WORKERS

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
            workers=int(env.get("INBOX_WORKERS") or DEFAULT_WORKERS),
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


def build_app(settings: Settings, inbox: Inbox, workers: Workers) -> Starlette:
    async def stripe_webhook(request: Request) -> Response:
        payload = await request.body()
        signature = request.headers.get("Stripe-Signature", "")
        try:
            event = stripe.Webhook.construct_event(
                payload, signature, settings.stripe_webhook_secret
            )
        except (ValueError, stripe.SignatureVerificationError) as exc:
            log.warning("rejected webhook: %s", exc)
            return PlainTextResponse("bad signature", status_code=400)
        data = json.loads(payload)  # the raw body: plain JSON types only
        lane = lane_of("stripe", data)
        fresh = await run_in_threadpool(inbox.put, "stripe", event.id, event.type, data, lane)
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
        # Idle only when nothing waits, runs or waits for a retry (all are pending rows).
        pending = await run_in_threadpool(inbox.pending)
        if pending == 0 and not workers.busy:
            return PlainTextResponse("idle")
        return PlainTextResponse(f"busy: {pending} pending", status_code=503)

    return Starlette(
        routes=[
            Route("/webhooks/stripe", stripe_webhook, methods=["POST"]),
            Route("/webhooks/crm", crm_webhook, methods=["POST"]),
            Route("/webhooks/revrec", revrec_webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/idle", idle, methods=["GET"]),
        ]
    )


def main() -> None:
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    logging.getLogger("stripe").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = Settings.from_env()
    settings.inbox_path.parent.mkdir(parents=True, exist_ok=True)
    inbox = Inbox(settings.inbox_path)
    workers = Workers(inbox, lambda: connect(settings), settings.workers)
    workers.start()
    config = uvicorn.Config(
        build_app(settings, inbox, workers),
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


@contextlib.contextmanager
def connect(settings: Settings) -> Iterator[Syncer]:
    """One worker's clients: each keeps its connections alive between calls."""
    client = stripe.StripeClient(
        settings.stripe_api_key,
        base_addresses={"api": settings.stripe_api_base},
        max_network_retries=0,  # our own retry loop decides, honouring Retry-After
    )
    erp = NetSuite(
        settings.netsuite_url, settings.netsuite_token, verify=settings.ca_bundle or True
    )
    revrec = Revrec(settings.revrec_url, settings.revrec_token) if settings.revrec_url else None
    crm = (
        Crm(settings.sf_instance_url, settings.sf_session_id, ca_bundle=settings.ca_bundle)
        if settings.sf_instance_url
        else None
    )
    try:
        yield Syncer(client, erp, revrec, crm)
    finally:
        erp.close()
        if revrec is not None:
            revrec.close()
        if crm is not None:
            crm.close()

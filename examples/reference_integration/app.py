"""The HTTP face (webhook receiver, health and idle probes) and the inbox worker thread."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import stripe
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from examples.reference_integration.conventions import Conventions
from examples.reference_integration.crm import Crm
from examples.reference_integration.erp import NetSuite
from examples.reference_integration.inbox import Inbox
from examples.reference_integration.retry import PermanentError, TransientError
from examples.reference_integration.revrec import Revrec
from examples.reference_integration.sync import Syncer

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


# The runner settles within 30 s of a fault ending: a retry must come well inside that.
RETRY_CAP_S = 5.0


def backoff_s(attempts: int) -> float:
    """The pause before retrying an event that failed ``attempts`` times: doubling, capped."""
    return min(RETRY_CAP_S, 0.5 * (1 << min(attempts, 6)))


class Worker(threading.Thread):
    """Takes inbox events in order; transient failures retry, permanent ones are set aside."""

    def __init__(self, inbox: Inbox, syncer: Syncer) -> None:
        super().__init__(name="inbox-worker", daemon=True)
        self.inbox = inbox
        self.syncer = syncer
        self.busy = False
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        while not self._halt.is_set():
            message = self.inbox.next(timeout_s=0.5)
            if message is None:
                continue
            self.busy = True
            try:
                self.syncer.handle(message.source, message.kind, message.payload)
                self.inbox.done(message.seq)
                self.inbox.resolved(message.seq)
                log.info("processed %s %s", message.event_id, message.kind)
            except PermanentError as exc:
                # Set aside, never silently: listed with a reason a finance user can act on,
                # until it is replayed (POST /exceptions/replay).
                system, document = source_of(message.source, message.payload)
                reason = business_reason(message.kind, system, document, exc)
                log.error("event %s (%s) set aside: %s", message.event_id, message.kind, reason)
                self.inbox.set_aside(message, system, document, reason)
            except (TransientError, Exception) as exc:  # anything else: keep the worker alive
                # Not done: the same event is tried again after a pause (the queue waits).
                log.warning(
                    "event %s (%s) will be retried: %r", message.event_id, message.kind, exc
                )
                self.inbox.failed(message.seq, repr(exc))
                self._halt.wait(backoff_s(message.attempts))
            finally:
                self.busy = False


def source_of(source: str, payload: dict[str, Any]) -> tuple[str, str]:
    """The system and document an event is about (what an operator looks up)."""
    if source == "crm":
        return "crm", str((payload.get("sObject") or {}).get("Id") or payload.get("id") or "")
    obj = (payload.get("data") or {}).get("object") or {}
    if source == "revrec":
        return "revrec", str(obj.get("close_id") or obj.get("id") or payload.get("id") or "")
    return "billing", str(obj.get("id") or payload.get("id") or "")


_WHAT = {"in": "invoice", "cn": "credit note", "sub": "subscription", "cus": "customer"}


def business_reason(kind: str, system: str, document: str, exc: Exception) -> str:
    """`<document> (<event>) not posted: <cause>` — one line, the vendor's words, no trace."""
    what = _WHAT.get(document.split("_", 1)[0], "opportunity" if system == "crm" else "document")
    if system == "revrec":
        what = "subledger period close"
    cause = " ".join(str(exc).split()) or type(exc).__name__
    return f"{what} {document} ({kind}) not posted: {cause}"[:1000]


def build_app(settings: Settings, inbox: Inbox, worker: Worker) -> Starlette:
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
        fresh = await run_in_threadpool(inbox.put, "stripe", event.id, event.type, data)
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
        fresh = await run_in_threadpool(inbox.put, source, event_id, kind, data)
        log.info("received %s %s%s", event_id, kind, "" if fresh else " (duplicate)")
        return JSONResponse({"received": True, "duplicate": not fresh})

    async def crm_webhook(request: Request) -> Response:
        return await sim_webhook(request, "crm", settings.crm_webhook_secret)

    async def revrec_webhook(request: Request) -> Response:
        return await sim_webhook(request, "revrec", settings.revrec_webhook_secret)

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def idle(_: Request) -> Response:
        pending = await run_in_threadpool(inbox.pending)
        if pending == 0 and not worker.busy:
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


def main() -> None:
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    logging.getLogger("stripe").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = Settings.from_env()
    settings.inbox_path.parent.mkdir(parents=True, exist_ok=True)
    inbox = Inbox(settings.inbox_path)
    session = requests.Session()
    session.headers.update(settings.headers)
    client = stripe.StripeClient(
        settings.stripe_api_key,
        base_addresses={"api": settings.stripe_api_base},
        max_network_retries=0,  # our own retry loop decides, honouring Retry-After
        http_client=stripe.RequestsClient(session=session),
    )
    erp = NetSuite(
        settings.netsuite_url,
        settings.netsuite_token,
        verify=settings.ca_bundle or True,
        headers=settings.headers,
    )
    revrec = (
        Revrec(settings.revrec_url, settings.revrec_token, headers=settings.headers)
        if settings.revrec_url
        else None
    )
    conventions = settings.conventions
    crm = (
        Crm(
            settings.sf_instance_url,
            settings.sf_session_id,
            ca_bundle=settings.ca_bundle,
            writeback=conventions.writeback,
            headers=settings.headers,
        )
        if settings.sf_instance_url
        else None
    )
    worker = Worker(inbox, Syncer(client, erp, revrec, crm, conventions))
    worker.start()
    config = uvicorn.Config(
        build_app(settings, inbox, worker),
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
        worker.stop()
        worker.join(timeout=5)
        erp.close()
        if revrec is not None:
            revrec.close()
        inbox.close()

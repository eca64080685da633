"""The HTTP face (webhook receiver, health and idle probes) and the inbox worker thread."""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import stripe
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from examples.reference_integration.erp import NetSuite
from examples.reference_integration.inbox import Inbox
from examples.reference_integration.retry import PermanentError, TransientError
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
        )


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
                self.syncer.handle(message.kind, message.payload)
                self.inbox.done(message.seq)
                log.info("processed %s %s", message.event_id, message.kind)
            except PermanentError as exc:
                log.error(
                    "event %s (%s) failed permanently: %s", message.event_id, message.kind, exc
                )
                self.inbox.failed(message.seq, str(exc))
                self.inbox.done(message.seq)
            except (TransientError, Exception) as exc:  # anything else: keep the worker alive
                # Not done: the same event is tried again after a pause (the queue waits).
                log.warning(
                    "event %s (%s) will be retried: %r", message.event_id, message.kind, exc
                )
                self.inbox.failed(message.seq, repr(exc))
                self._halt.wait(min(30.0, 0.5 * 2 ** min(message.attempts, 6)))
            finally:
                self.busy = False


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

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def idle(_: Request) -> Response:
        pending = await run_in_threadpool(inbox.pending)
        if pending == 0 and not worker.busy:
            return PlainTextResponse("idle")
        return PlainTextResponse(f"busy: {pending} pending", status_code=503)

    return Starlette(
        routes=[
            Route("/webhooks/stripe", stripe_webhook, methods=["POST"]),
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
    client = stripe.StripeClient(
        settings.stripe_api_key,
        base_addresses={"api": settings.stripe_api_base},
        max_network_retries=0,  # our own retry loop decides, honouring Retry-After
    )
    erp = NetSuite(
        settings.netsuite_url, settings.netsuite_token, verify=settings.ca_bundle or True
    )
    worker = Worker(inbox, Syncer(client, erp))
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
        inbox.close()

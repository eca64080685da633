"""Mutant integrations: the reference one behind a proxy that mistreats invoice webhooks.

The proxy listens on ``PORT`` (what the harness gives) and runs the reference integration on a
port of its own, forwarding every request to it unchanged, except the Stripe invoice webhooks
(``invoice.*``) of every Nth invoice, counted by first appearance. ``MUTANT_MODE=drop`` answers
them 200 and throws them away: the documents are lost while the vendor believes they were
delivered. ``MUTANT_MODE=refuse`` answers them 503, so the vendor keeps retrying: the documents
are late, never lost, as long as the vendor retries. It wraps the integration at the HTTP
level only, so it keeps working as the integration changes.

Environment: everything the reference integration takes, plus ``MUTANT_MODE`` (default
``drop``), ``MUTANT_DROP_EVERY`` (N, default 5) and ``MUTANT_COMMAND`` (default
``python -m examples.reference_integration``).
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import threading
import time

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

HOP_BY_HOP = {"connection", "content-length", "host", "transfer-encoding", "keep-alive"}
READY_TIMEOUT_S = 30.0


class Dropper:
    """Decides, per invoice id, whether its webhooks are dropped: every Nth new invoice."""

    def __init__(self, every: int, *, refuse: bool = False) -> None:
        self.every = every
        self.refuse = refuse
        self.seen: set[str] = set()
        self.doomed: set[str] = set()
        self.dropped = 0
        self._lock = threading.Lock()

    def drops(self, body: bytes) -> bool:
        try:
            event = json.loads(body)
            kind = str(event.get("type", ""))
            invoice_id = str(event["data"]["object"]["id"])
        except (ValueError, KeyError, TypeError, AttributeError):
            return False
        if not kind.startswith("invoice."):
            return False
        with self._lock:
            if invoice_id not in self.seen:
                self.seen.add(invoice_id)
                if len(self.seen) % self.every == 0:
                    self.doomed.add(invoice_id)
            if invoice_id in self.doomed:
                self.dropped += 1
                return True
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_app(inner: str, dropper: Dropper) -> Starlette:
    client = httpx.AsyncClient(base_url=inner, timeout=60, trust_env=False)

    async def forward(request: Request) -> Response:
        body = await request.body()
        if request.url.path == "/webhooks/stripe" and dropper.drops(body):
            if dropper.refuse:
                return JSONResponse({"error": "try again later"}, status_code=503)
            return JSONResponse({"received": True})
        upstream = await client.request(
            request.method,
            request.url.path,
            params=request.query_params,
            content=body,
            headers={k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP},
        )
        headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
        return Response(upstream.content, upstream.status_code, headers)

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return Starlette(routes=[Route("/{path:path}", forward, methods=methods)])


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the wrapped integration exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1, trust_env=False).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise SystemExit("the wrapped integration did not become ready")


def main() -> None:
    port = int(os.environ["PORT"])
    inner_port = _free_port()
    command = shlex.split(
        os.environ.get("MUTANT_COMMAND", f"{sys.executable} -m examples.reference_integration")
    )
    # The wrapped integration inherits our output, so the harness keeps its log lines.
    proc = subprocess.Popen(command, env={**os.environ, "PORT": str(inner_port)})
    try:
        _wait_ready(f"http://127.0.0.1:{inner_port}/healthz", proc)
        dropper = Dropper(
            int(os.environ.get("MUTANT_DROP_EVERY", "5")),
            refuse=os.environ.get("MUTANT_MODE", "drop") == "refuse",
        )
        app = build_app(f"http://127.0.0.1:{inner_port}", dropper)
        print(f"mutant proxy listening on {port}", flush=True)
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
        print(f"mutant dropped {dropper.dropped} webhook(s) of {len(dropper.doomed)} invoices")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()

"""A served world with a real integration process: receivers registered, settling waits."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from harness.config import HarnessConfig, IntegrationConfig, Probe, Receiver, SimulatorsConfig
from harness.session import open_session

# A stand-in integration: on each Stripe event it waits a little (slow processing, after the
# webhook was already acknowledged), then tags the customer in billing through the API.
SLOW_SYNC = r"""
import json, os, threading, time, urllib.request, http.server
port, base, key = int(os.environ["PORT"]), os.environ["BILLING"], os.environ["KEY"]
delay = float(os.environ["DELAY"])
busy = [0]
lock = threading.Lock()

def tag(customer_id):
    time.sleep(delay)
    req = urllib.request.Request(f"{base}/v1/customers/{customer_id}",
        data=b"metadata[synced]=yes", headers={"Authorization": f"Bearer {key}"})
    urllib.request.urlopen(req).read()
    with lock:
        busy[0] -= 1

class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if event["type"] == "customer.created":
            with lock:
                busy[0] += 1
            threading.Thread(target=tag, args=(event["data"]["object"]["id"],)).start()
        self.send_response(200); self.end_headers()
    def do_GET(self):
        idle = busy[0] == 0
        self.send_response(200 if self.path == "/ready" or (self.path == "/idle" and idle)
                           else 503)
        self.end_headers()
    def log_message(self, *a): pass
print("listening", flush=True)
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
"""


def _config(tmp_path: Path, delay: float, idle_probe: bool) -> HarnessConfig:
    (tmp_path / "integration.py").write_text(SLOW_SYNC)
    return HarnessConfig(
        simulators=SimulatorsConfig(systems=["billing"], tls=[], webhook_time_scale=1e-5),
        integration=IntegrationConfig(
            command=[sys.executable, "integration.py"],
            env={
                "PORT": "{port}",
                "BILLING": "{billing.url}",
                "KEY": "{billing.api_key}",
                "DELAY": str(delay),
            },
            ready=Probe(http="http://127.0.0.1:{port}/ready", timeout_s=15),
            idle=Probe(http="http://127.0.0.1:{port}/idle") if idle_probe else None,
            webhooks={
                "billing": Receiver(
                    url="http://127.0.0.1:{port}/hooks/stripe", events=["customer.created"]
                )
            },
        ),
    )


def _create_customer(session: object) -> str:
    billing = session.context["billing"]  # type: ignore[attr-defined]
    r = httpx.post(
        f"{billing['url']}/v1/customers",
        data={"name": "Acme"},
        trust_env=False,
        headers={"Authorization": f"Bearer {billing['api_key']}"},
    )
    return str(r.json()["id"])


def test_settle_waits_for_delivery_and_the_integrations_follow_up_call(tmp_path: Path) -> None:
    with open_session(_config(tmp_path, delay=0.3, idle_probe=False), cwd=tmp_path) as session:
        sim = session.stack.sims["billing"]
        assert sim.webhook_endpoints()[0].url.startswith("http://127.0.0.1:")
        customer = _create_customer(session)
        # Right after the call, the integration has not acted yet: there is something to wait on.
        assert sim.store.customers[customer].metadata == {}
        result = session.settle(window_s=0.6, timeout_s=20)
        assert result.settled, result
        assert sim.store.customers[customer].metadata == {"synced": "yes"}


def test_the_idle_probe_covers_work_longer_than_the_window(tmp_path: Path) -> None:
    with open_session(_config(tmp_path, delay=1.0, idle_probe=True), cwd=tmp_path) as session:
        sim = session.stack.sims["billing"]
        customer = _create_customer(session)
        result = session.settle(window_s=0.1, timeout_s=20)
        assert result.settled and result.idle, result
        assert sim.store.customers[customer].metadata == {"synced": "yes"}


def test_settle_reports_failure_when_a_receiver_never_answers(tmp_path: Path) -> None:
    config = _config(tmp_path, delay=0.0, idle_probe=False)
    with open_session(config, cwd=tmp_path) as session:
        session.stack.sims["billing"].register_webhook("http://127.0.0.1:9/nothing")
        _create_customer(session)
        result = session.settle(window_s=0.05, timeout_s=0.5)
        assert not result.settled and result.pending_webhooks >= 1, result

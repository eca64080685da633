"""Default `harness up` side by side with localstripe: the same billing workload, the same client.

`python -m bench.peer_bench` serves our simulators as default `harness up` does (response
validation on) and localstripe (a peer Stripe fake from PyPI, `pip install localstripe`) one
after the other on core 0, seeds each with the same customers, and drives each operation with
the same wrk command from core 1. Each line is our requests/s beside localstripe's; the goal
(issue #13: ahead of the peer on every operation) is set as the peer's rate over ours, ≤ 1 met.
localstripe is served by its own aiohttp app as its CLI serves it (its store pickled to
/tmp/localstripe.pickle after every write, as always), bound to 127.0.0.1 and without its
access log. When localstripe is not installed or does not start, the goal says so.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time

import httpx

from bench.goals import NOT_MEASURED, Goal, record
from bench.http_bench import (
    DURATION_S,
    ROOT,
    Server,
    _fake_credentials,
    _fake_ids,
    _pin,
    _seed,
    _wrk,
)
from bench.ops import Operation, operations

PEER = "localstripe"
PEER_KEY = "sk_test_finsim_bench"
FORM = "application/x-www-form-urlencoded"
WORKLOAD = (
    "billing: create customer",
    "billing: retrieve customer",
    "billing: list customers, page 2",
)
# localstripe serves its app as its CLI would (store reloaded from disk unless from scratch).
_PEER_MAIN = """
import sys
from aiohttp import web
from localstripe.server import app
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def workload(api_key: str, customer: str) -> list[Operation]:
    """The billing operations both serve alike, as `make bench` drives them."""
    credentials = _fake_credentials() | {"billing": {"api_key": api_key}}
    ids = _fake_ids() | {"customer": customer}
    return [op for op in operations(credentials, ids) if op.name in WORKLOAD]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _ours() -> dict[str, dict[str, float]]:
    server = Server("--validate-responses")
    try:
        info = server.wait(60)
        ids = _seed(info)
        time.sleep(2.5)  # the idle full collection after seeding, not during the first run
        key = info["credentials"]["billing"]["api_key"]
        url = info["urls"]["billing"]
        return {op.name: _wrk(url, op, DURATION_S) for op in workload(key, ids["customer"])}
    finally:
        server.stop()


def _peer() -> dict[str, dict[str, float]]:
    port = _free_port()
    proc = subprocess.Popen(
        [*_pin(0), sys.executable, "-c", _PEER_MAIN, str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        headers = {"Authorization": f"Bearer {PEER_KEY}", "Content-Type": FORM}
        customer = _seed_peer(proc, url, headers)
        return {op.name: _wrk(url, op, DURATION_S) for op in workload(PEER_KEY, customer)}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _seed_peer(proc: subprocess.Popen[bytes], url: str, headers: dict[str, str]) -> str:
    """Wait for the peer to serve; the customers our seeding makes (30 fillers, then one)."""
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=url, headers=headers, trust_env=False, timeout=10) as client:
        while True:
            try:
                client.delete("/_config/data")  # start from an empty store, as ours does
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise RuntimeError(f"{PEER} did not start: {err[-1000:]}") from None
                time.sleep(0.2)
        for n in range(30):
            client.post("/v1/customers", data={"name": f"Filler {n}"}).raise_for_status()
        made = client.post("/v1/customers", data={"name": "Seed", "email": "s@x.io"})
        made.raise_for_status()
        customer: str = made.json()["id"]
        return customer


def main() -> int:
    if importlib.util.find_spec(PEER) is None:
        goal = Goal(
            f"harness up ahead of {PEER}",
            1.0,
            "×",
            note=f"{PEER} is not installed (`.venv/bin/pip install -e '.[peer]'`)",
            how=NOT_MEASURED,
        )
        record("peer", [goal])
        return 0
    load = os.getloadavg()[0]
    print(f"-- default harness up (response validation on) vs {PEER}, wrk from core 1", flush=True)
    ours = _ours()
    try:
        peer = _peer()
    except RuntimeError as exc:
        record(
            "peer", [Goal(f"harness up ahead of {PEER}", 1.0, "×", how=NOT_MEASURED, note=str(exc))]
        )
        return 0
    goals: list[Goal] = []
    for name, mine in ours.items():
        theirs = peer[name]
        errors = mine["errors"] + theirs["errors"]
        print(
            f"   {name:34} ours {mine['rps']:7.0f} req/s (p99 {mine['p99_ms']:6.1f} ms)  "
            f"{PEER} {theirs['rps']:7.0f} req/s (p99 {theirs['p99_ms']:6.1f} ms)  "
            f"ours/{PEER} {mine['rps'] / max(theirs['rps'], 1e-9):5.2f}×"
            + (f"  ({errors:.0f} error responses)" if errors else ""),
            flush=True,
        )
        goals.append(
            Goal(
                f"harness up ahead of {PEER}: {name.removeprefix('billing: ')}",
                1.0,
                "×",
                figure=theirs["rps"] / max(mine["rps"], 1e-9),
                note=f"{PEER}'s req/s over ours; load {load:.1f}",
            )
        )
    record("peer", goals)
    return 0


if __name__ == "__main__":
    sys.exit(main())

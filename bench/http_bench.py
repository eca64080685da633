"""`make bench`: throughput and latency of every simulator's hot operations, against targets.

One run, one machine, printed as figures and ratios and saved as JSON under out/bench/:

1. our stack (request validation, journal, fault layer with an idle rule, idempotency) on an
   empty world — requests/s, p50/p99 at 32 connections, errors;
   then the same as default `harness up` serves it (response validation on too), whose
   throughput against the README's targets and worst p99 go in `make bench`'s goals table;
2. the same operations on the bare Starlette app (the same handlers and stores, nothing else):
   the practical ceiling, and our ratio to it;
3. our stack again on a world preloaded with BENCH_OBJECTS objects (1,000,000 by default):
   latency as the store grows, and resident memory per stored object;
4. per-request CPU cost of each operation in-process (no sockets), which holds still when the
   machine is busy and the wall-clock figures do not;
5. memory per stored object of each kind (tracemalloc).

The server runs on core 0 and wrk on core 1 (taskset) where there are two cores. Every missed
target is printed with the amount it is missed by.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx

from bench import inproc
from bench.goals import Goal, record
from bench.ops import Operation, build_world, operations, seed_world
from bench.preload import MIX, preload

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "out" / "bench"
DURATION_S = int(os.environ.get("BENCH_SECONDS", "5"))
OBJECTS = int(os.environ.get("BENCH_OBJECTS", "1000000"))
CONNECTIONS = 32
TARGET_P99_MS = 20.0
INPROC_REQUESTS = int(os.environ.get("BENCH_INPROC_REQUESTS", "2000"))


def _pin(core: int) -> list[str]:
    # Server and load generator on separate cores where there are two.
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(core)]
    return []


class Server:
    """``bench.serve`` in a child process on core 0; its ready document once it serves."""

    def __init__(self, *args: str) -> None:
        self.ready = Path(tempfile.mkdtemp(prefix="finsim-bench-")) / "ready.json"
        self.proc = subprocess.Popen(
            [*_pin(0), sys.executable, "-m", "bench.serve", str(self.ready), *args],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def wait(self, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while not self.ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise SystemExit(f"bench server did not come up:\n{err[-3000:]}")
            time.sleep(0.2)
        info: dict[str, Any] = json.loads(self.ready.read_text())
        return info

    def rss(self) -> int:
        with open(f"/proc/{self.proc.pid}/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _wrk(url: str, op: Operation, duration_s: int) -> dict[str, float]:
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)  # noqa: SIM115
    lines = [f'wrk.method = "{op.method}"']
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in op.headers.items()]
    if "{n}" in op.body:
        # A counter per request: creates that need unique keys never collide.
        lines += [
            f"template = {json.dumps(op.body)}",
            "counter = 0",
            "request = function()",
            "  counter = counter + 1",
            '  local body = template:gsub("{n}", tostring(counter))',
            "  return wrk.format(nil, nil, nil, body)",
            "end",
        ]
    elif op.body:
        lines.append(f"wrk.body = {json.dumps(op.body)}")
    script.write("\n".join(lines))
    script.close()
    command = [*_pin(1), "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{duration_s}s", "--latency"]
    out = subprocess.run(
        [*command, "-s", script.name, url + op.path],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script.name)

    def ms(label: str) -> float:
        match = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)\b", out)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50_ms": ms("50"),
        "p99_ms": ms("99"),
        "errors": float(non2xx.group(1)) if non2xx else 0.0,
        "socket_errors": float(sum(int(g) for g in errors.groups())) if errors else 0.0,
    }


def _seed(info: dict[str, Any]) -> dict[str, str]:
    async def run() -> dict[str, str]:
        clients = {
            name: httpx.AsyncClient(base_url=url, verify=False, trust_env=False, timeout=30)
            for name, url in info["urls"].items()
        }
        return await seed_world(clients, info["credentials"], info["control_token"])

    return asyncio.run(run())


def _phase(label: str, args: list[str], *, timeout_s: float = 60) -> dict[str, Any]:
    """Serve, seed, drive every operation with wrk; the figures and the server's memory."""
    print(f"-- {label}", flush=True)
    server = Server(*args)
    try:
        info = server.wait(timeout_s)
        ids = _seed(info)
        time.sleep(2.5)  # the idle full collection after seeding, not during the first run
        results: dict[str, Any] = {"operations": {}}
        for op in operations(info["credentials"], ids):
            r = _wrk(info["urls"][op.system], op, DURATION_S)
            results["operations"][op.name] = r
            print(
                f"   {op.name:34} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:7.2f}  "
                f"p99 {r['p99_ms']:8.2f} ms  errors {r['errors']:.0f}",
                flush=True,
            )
        results["server"] = {
            k: info.get(k) for k in ("preloaded", "preload_s", "rss_before_preload")
        }
        results["server"]["rss_after_preload"] = info.get("rss_after_preload")
        results["server"]["rss_end"] = server.rss()
        return results
    finally:
        server.stop()


def _memory_by_kind(per_kind: int) -> dict[str, float]:
    """Bytes per stored object of each kind: tracemalloc over a preload of one kind at a time."""
    sizes: dict[str, float] = {}
    for kind in MIX:
        w = build_world(validate_responses=False)
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        import bench.preload as pl

        saved = dict(pl.MIX)
        pl.MIX.clear()
        pl.MIX.update({k: (1.0 if k == kind else 0.0) for k in saved})
        try:
            counts = preload(w, per_kind)
        finally:
            pl.MIX.clear()
            pl.MIX.update(saved)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        # The templates themselves (one of each kind, made over in-process HTTP) are in
        # ``after`` too; spread over thousands of copies they are noise.
        sizes[kind] = (after - before) / max(counts[kind], 1)
        del w
    return sizes


def _verdict(name: str, rps: float, p99: float, target: int) -> list[str]:
    misses = []
    if rps < target:
        misses.append(f"{rps:,.0f} req/s is {target - rps:,.0f} ({1 - rps / target:.0%}) short")
    if p99 > TARGET_P99_MS:
        misses.append(f"p99 {p99:.1f} ms is {p99 / TARGET_P99_MS:.1f}x the {TARGET_P99_MS:.0f} ms")
    return misses


def _report(results: dict[str, Any]) -> None:
    ours, bare, big = (results[k]["operations"] for k in ("empty", "bare", "preloaded"))
    cpu = results["cpu_per_request_us"]
    print()
    print(
        f"simulators on core 0, wrk on core 1, {CONNECTIONS} connections, {DURATION_S} s per "
        "operation; request validation + journal + fault layer on, response validation off"
    )
    print(f"load average at start {results['loadavg_start']}, at end {results['loadavg_end']}")
    print(
        f"{'operation':34} {'req/s':>7} {'p50':>6} {'p99':>7} {'err':>4} {'target':>6} "
        f"{'vs tgt':>6} {'bare':>7} {'vs bare':>7} {'cpu us':>7} "
        f"{'@' + _short(OBJECTS) + ' r/s':>9} {'p99':>7}"
    )
    missed: list[str] = []
    for name, r in ours.items():
        target = _target(results, name)
        b = bare.get(name, {}).get("rps", float("nan"))
        g = big.get(name, {})
        print(
            f"{name:34} {r['rps']:7.0f} {r['p50_ms']:6.1f} {r['p99_ms']:7.1f} "
            f"{r['errors']:4.0f} {target:6d} {r['rps'] / target:6.2f} {b:7.0f} "
            f"{r['rps'] / b:7.2f} {cpu.get(name, {}).get('cpu_us', float('nan')):7.0f} "
            f"{g.get('rps', float('nan')):9.0f} {g.get('p99_ms', float('nan')):7.1f}"
        )
        for label, figures in (("empty", r), (f"at {_short(OBJECTS)}", g)):
            if not figures:
                continue
            for miss in _verdict(name, figures["rps"], figures["p99_ms"], target):
                missed.append(f"{name} ({label}): {miss}")
            if figures["errors"] or figures.get("socket_errors"):
                missed.append(f"{name} ({label}): {figures['errors']:.0f} error responses")
    mem = results["memory"]
    print()
    print(
        f"memory at {mem['objects']:,} stored objects: {mem['rss_bytes_per_object']:.0f} B RSS "
        f"per object ({mem['rss_delta_bytes'] / 2**20:,.0f} MiB over the empty world); "
        f"preload took {mem['preload_s']} s"
    )
    for kind, size in mem["bytes_per_object_by_kind"].items():
        print(f"   {kind:50} {size:7.0f} B per object (tracemalloc)")
    print()
    if missed:
        print("targets missed (≥ 2,000 POST / ≥ 2,500 GET req/s, p99 ≤ 20 ms):")
        for line in missed:
            print(f"   {line}")
    else:
        print("every target met")


def _target(results: dict[str, Any], name: str) -> int:
    return 2000 if name in results["posts"] else 2500


def _record_goals(results: dict[str, Any]) -> None:
    """Issue #13's point 5 in the goals table: default `harness up` (response validation on)
    against the README's targets, each operation's throughput, and the worst p99."""
    default = results["default"]["operations"]
    load = results["loadavg_start"][0]
    goals = [
        Goal(
            f"default harness up meets its target: {name}",
            1.0,
            "×",
            figure=_target(results, name) / max(r["rps"], 1e-9),
            note=f"{r['rps']:,.0f} req/s, target {_target(results, name):,}; load {load:.1f}",
        )
        for name, r in default.items()
    ]
    worst = max(default, key=lambda name: default[name]["p99_ms"])
    goals.append(
        Goal(
            f"default harness up p99 at {CONNECTIONS} connections, worst operation",
            TARGET_P99_MS,
            " ms",
            figure=default[worst]["p99_ms"],
            note=worst,
        )
    )
    record("http", goals)


def _short(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k"


def main() -> int:
    if not shutil.which("wrk"):
        print("make bench needs wrk (Debian package 'wrk'): apt-get install -y wrk")
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "duration_s": DURATION_S,
        "connections": CONNECTIONS,
        "cpus": os.cpu_count(),
        "pinned": bool(_pin(0)),
        "objects": OBJECTS,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    print("-- per-request CPU in-process", flush=True)
    world = build_world(validate_responses=False)
    results["cpu_per_request_us"] = asyncio.run(inproc.measure(world, INPROC_REQUESTS))
    del world
    gc.collect()
    results["posts"] = [
        op.name for op in operations(_fake_credentials(), _fake_ids()) if op.method == "POST"
    ]
    results["empty"] = _phase("our stack, empty world", [])
    # What a user starts: `harness up` checks every answer against its contract by default.
    results["default"] = _phase(
        "default harness up (response validation on), empty world", ["--validate-responses"]
    )
    results["bare"] = _phase("bare Starlette, same handlers and stores", ["--bare"])
    results["preloaded"] = _phase(
        f"our stack, {OBJECTS:,} objects preloaded",
        ["--preload", str(OBJECTS)],
        timeout_s=900,
    )
    server = results["preloaded"]["server"]
    objects = sum((server.get("preloaded") or {}).values())
    delta = server["rss_after_preload"] - server["rss_before_preload"]
    print("-- memory per object by kind", flush=True)
    results["memory"] = {
        "objects": objects,
        "rss_delta_bytes": delta,
        "rss_bytes_per_object": delta / max(objects, 1),
        "preload_s": server.get("preload_s"),
        "bytes_per_object_by_kind": _memory_by_kind(20_000),
    }
    results["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    _report(results)
    _record_goals(results)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for path in (OUT / f"bench-{stamp}.json", OUT / "latest.json"):
        path.write_text(json.dumps(results, indent=2))
    print(f"saved {OUT / f'bench-{stamp}.json'} (and latest.json)")
    return 0


def _fake_credentials() -> dict[str, dict[str, str]]:
    return {
        "billing": {"api_key": ""},
        "crm": {"session_id": ""},
        "erp": {"token": ""},
        "revrec": {"token": ""},
    }


def _fake_ids() -> dict[str, str]:
    return dict.fromkeys(("customer", "price", "invoice", "erp_customer", "contract"), "x")


if __name__ == "__main__":
    sys.exit(main())

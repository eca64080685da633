"""Locust as child processes: one headless run (or a master and workers), watched and read."""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from harness.load.fixtures import TARGET_ENV
from harness.load.profiles import LOADTESTS

# Past the run time: Locust's own stop timeout, start-up and report writing.
LOCUST_GRACE_S = 60.0
LOCUST_STOP_TIMEOUT_S = 5
EXPECT_WORKERS_MAX_WAIT_S = 60


@dataclass
class LocustPlan:
    """What to run: the locustfile, the load, and where the master listens for workers."""

    locustfile: Path
    target: Path
    out: Path
    users: int
    spawn_rate: float
    duration_s: int
    workers: int = 0  # local worker processes
    expect_workers: int | None = None  # local plus remote workers the master waits for
    master_bind_host: str = "127.0.0.1"
    master_bind_port: int = 0
    extra_args: list[str] = field(default_factory=list)


class Locust:
    """A started Locust run: ``running`` while it lasts, ``progress`` from its stats history,
    ``close`` stops whatever is left (workers leave when the master quits)."""

    def __init__(self, plan: LocustPlan) -> None:
        self.plan = plan
        self.env = {
            **os.environ,
            TARGET_ENV: str(plan.target),
            # The locustfiles import `loadtests`, which lives at the repository root.
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(LOADTESTS.parent), os.environ.get("PYTHONPATH")])
            ),
        }
        self.base = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(plan.locustfile),
            "--loglevel",
            "WARNING",
        ]
        expect = plan.expect_workers if plan.expect_workers is not None else plan.workers
        self.port = plan.master_bind_port or _free_port()
        self.command = [*self.base, *self._headless(expect)]
        self.deadline_s = plan.duration_s + LOCUST_GRACE_S + (60 if expect else 0)
        self.log_path = plan.out / "locust.log"
        self.started = 0.0
        self.ended: float | None = None
        self.timed_out = False
        self._log: IO[bytes] | None = None
        self._master: subprocess.Popen[bytes] | None = None
        self._workers: list[subprocess.Popen[bytes]] = []

    def _headless(self, expect: int) -> list[str]:
        p = self.plan
        args = [
            "--headless",
            "--users",
            str(p.users),
            "--spawn-rate",
            str(p.spawn_rate),
            "--run-time",
            f"{p.duration_s}s",
            "--stop-timeout",
            str(LOCUST_STOP_TIMEOUT_S),
            "--csv",
            str(p.out / "locust"),
            "--html",
            str(p.out / "locust.html"),
            "--exit-code-on-error",
            "0",  # request failures are judged by the harness, with everything else
            "--only-summary",
        ]
        if expect > 0:
            args += [
                "--master",
                "--expect-workers",
                str(expect),
                "--expect-workers-max-wait",
                str(EXPECT_WORKERS_MAX_WAIT_S),
                "--master-bind-host",
                p.master_bind_host,
                "--master-bind-port",
                str(self.port),
            ]
        return args + p.extra_args

    def __enter__(self) -> Locust:
        self._log = self.log_path.open("wb")
        self.started = time.monotonic()
        self._master = self._spawn(self.command)
        worker = [*self.base, "--worker", "--master-host", "127.0.0.1", "--master-port"]
        self._workers = [self._spawn([*worker, str(self.port)]) for _ in range(self.plan.workers)]
        return self

    def _spawn(self, command: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            command,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def running(self) -> bool:
        """True until the master exits or overruns its deadline (then it is stopped)."""
        if self._master is None or self.ended is not None:
            return False
        if self._master.poll() is None:
            if time.monotonic() - self.started < self.deadline_s:
                return True
            self.timed_out = True
        self.ended = time.monotonic()
        return False

    @property
    def exit_code(self) -> int | None:
        return None if self._master is None else self._master.poll()

    @property
    def wall_s(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    def progress(self) -> tuple[int, float] | None:
        """(users, requests/s) from the last row of Locust's stats history (written each
        second), or None before the first row."""
        path = self.plan.out / "locust_stats_history.csv"
        with contextlib.suppress(OSError, ValueError, IndexError):
            with path.open("rb") as f:
                f.seek(max(0, path.stat().st_size - 4096))
                last = f.read().decode(errors="replace").strip().splitlines()[-1].split(",")
            if last[3] == "Aggregated":
                return int(last[1]), float(last[4])
        return None

    def __exit__(self, *_: object) -> None:
        if self.ended is None:
            self.ended = time.monotonic()
        for proc in [p for p in (self._master, *self._workers) if p is not None]:
            _stop(proc)
        if self._log is not None:
            self._log.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Give it 10 s to leave by itself, then SIGTERM, then SIGKILL, to its whole group."""
    if proc.poll() is not None:
        return
    try:
        proc.wait(timeout=10)
        return
    except subprocess.TimeoutExpired:
        pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=5)
            return
        except subprocess.TimeoutExpired:
            continue


def locust_stats(out: Path) -> dict[str, Any]:
    """Throughput and latency percentiles per operation, from Locust's own CSV."""
    stats_path = out / "locust_stats.csv"
    if not stats_path.exists():
        return {"available": False}
    operations = []
    aggregated: dict[str, Any] = {}
    with stats_path.open(newline="") as f:
        for row in csv.DictReader(f):
            record = {
                "method": row["Type"],
                "name": row["Name"],
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "rps": float(row["Requests/s"]),
                "p50_ms": _ms(row.get("50%")),
                "p90_ms": _ms(row.get("90%")),
                "p95_ms": _ms(row.get("95%")),
                "p99_ms": _ms(row.get("99%")),
                "max_ms": _ms(row.get("Max Response Time")),
            }
            if row["Name"] == "Aggregated":
                aggregated = record
            else:
                operations.append(record)
    failures: list[dict[str, Any]] = []
    failures_path = out / "locust_failures.csv"
    if failures_path.exists():
        with failures_path.open(newline="") as f:
            failures = [
                {"name": r["Name"], "error": r["Error"][:300], "occurrences": int(r["Occurrences"])}
                for r in csv.DictReader(f)
            ]
    return {
        "available": True,
        "requests": aggregated.get("requests", 0),
        "failures": aggregated.get("failures", 0),
        "throughput_rps": aggregated.get("rps", 0.0),
        "operations": operations,
        "failure_kinds": failures,
    }


def _ms(value: str | None) -> float | None:
    if value in (None, "", "N/A"):
        return None
    return float(value)

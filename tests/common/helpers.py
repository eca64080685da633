"""Running `harness up` as a real process in tests: every port 0, the ready JSON read back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.up import SYSTEMS

ROOT = Path(__file__).resolve().parents[2]


def harness_up_command(ready: Path, *extra: str) -> list[str]:
    """``harness up`` with every system on a free port (a fixed port may be taken)."""
    ports = [arg for name in SYSTEMS for arg in ("--port", f"{name}=0")]
    return [sys.executable, "-m", "harness.cli", "up", *ports, "--ready-json", str(ready), *extra]


@contextmanager
def harness_up(
    tmp_path: Path, *extra: str, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    """Start ``harness up``, wait for its ready JSON, kill it on the way out if still alive."""
    ready = tmp_path / f"ready-{time.monotonic_ns()}.json"
    proc = subprocess.Popen(
        harness_up_command(ready, *extra),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )
    try:
        yield proc, wait_ready(proc, ready)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def wait_ready(proc: subprocess.Popen[str], ready: Path, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while not ready.exists():
        if proc.poll() is not None:
            output = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"harness up exited with {proc.returncode}:\n{output}")
        assert time.monotonic() < deadline, "harness up did not get ready"
        time.sleep(0.1)
    # Written in one go, but a reader may still catch the file half-written: read until whole.
    while True:
        try:
            doc: dict[str, Any] = json.loads(ready.read_text())
            return doc
        except json.JSONDecodeError:
            assert time.monotonic() < deadline, "the ready JSON never became whole"
            time.sleep(0.05)

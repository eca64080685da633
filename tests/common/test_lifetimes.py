"""What outlives the harness: nothing. The integration dies with it, however it dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.common.helpers import ROOT

# A harness process: starts an integration through IntegrationProcess, says so, then waits.
HARNESS = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from harness.config import IntegrationConfig, Probe
    from harness.integration import IntegrationProcess

    child = "import os, time; print(os.getpid(), flush=True); time.sleep(600)"
    config = IntegrationConfig(
        command=[sys.executable, "-c", child],
        ready=Probe(log=r"^\\d+$", timeout_s=30),
    )
    process = IntegrationProcess(config, {}, Path("."))
    process.start()
    print("integration", process.output()[-1], flush=True)
    time.sleep(600)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (dead, not yet reaped by its new parent) still answers kill(0).
    try:
        state = next(
            line
            for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if line.startswith("State:")
        )
    except (FileNotFoundError, StopIteration):
        return False
    return state.split()[1] != "Z"


def test_kill_9_of_the_harness_takes_the_integration_with_it(tmp_path: Path) -> None:
    harness = subprocess.Popen(
        [sys.executable, "-c", HARNESS],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert harness.stdout is not None
    line = harness.stdout.readline()
    assert line.startswith("integration "), line + harness.stdout.read()
    integration = int(line.split()[1])
    try:
        assert _alive(integration)
        harness.send_signal(signal.SIGKILL)
        harness.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(integration) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(integration), "the integration outlived a kill -9 of the harness"
    finally:
        if _alive(integration):
            os.kill(integration, signal.SIGKILL)

"""Starting the worker process before anything heavy is imported, so both processes load at once."""

from __future__ import annotations

import os
import select
import subprocess
import sys

# How long the worker process may take to start (imports on a busy machine).
WORKERS_START_S = 120.0


class Workers:
    """The worker process, started at once; ``ready`` waits until it says it is working."""

    def __init__(self) -> None:
        # It inherits our environment, output and working directory (so this copy of the
        # package), and tells us through a pipe once its threads are taking events.
        self._ready, tell = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "examples.reference_integration.workers"],
            env={**os.environ, "WORKERS_READY_FD": str(tell)},
            pass_fds=(tell,),
        )
        os.close(tell)

    def ready(self) -> None:
        """Before we answer /healthz: whoever waits for us (the harness) then knows events
        will be worked on."""
        with os.fdopen(self._ready, "rb") as pipe:
            readable, _, _ = select.select([pipe], [], [], WORKERS_START_S)
            if not readable or not pipe.read(1):  # timed out, or it exited before saying so
                self.process.kill()
                raise SystemExit("the inbox workers did not start")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()

"""The integration under test as a child process: start, readiness, output, stop, kill -9."""

from __future__ import annotations

import codecs
import collections
import contextlib
import ctypes
import fcntl
import functools
import os
import re
import signal
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from harness.config import IntegrationConfig, Probe
from harness.exceptions import ExceptionsProbe

# How often the output is read, and the pipe it waits in meanwhile (F_SETPIPE_SZ's default
# ceiling, /proc/sys/fs/pipe-max-size, is 1 MiB).
READ_BEAT_S = 0.02
PIPE_BYTES = 1 << 20


class IntegrationError(RuntimeError):
    """The integration could not start or died; carries its last lines of output."""

    def __init__(self, message: str, output: list[str]) -> None:
        tail = "\n".join(f"  | {line}" for line in output[-30:]) or "  | (no output)"
        super().__init__(f"{message}\nlast output of the integration:\n{tail}")
        self.output = output


class IntegrationProcess:
    """One integration process at a time; its output is kept across restarts for the report."""

    def __init__(
        self,
        config: IntegrationConfig,
        env: dict[str, str],
        cwd: Path,
        context: dict[str, str] | None = None,
    ) -> None:
        self.config = config
        self.env = env
        self.cwd = cwd
        self.context = context or {}
        self.lines: collections.deque[str] = collections.deque(maxlen=5000)
        self._new_line = threading.Condition()
        self._total = 0  # lines ever read, so a probe only looks at this run's output
        self._reads = 0  # reads of the pipe so far (output() waits for the next one)
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self.starts = 0
        self._started_at_line = 0
        # One client for every probe: building one per call (a TLS context each time) made
        # the idle probe cost ~60 ms, paid after every scenario step.
        self._probe = httpx.Client(timeout=1.0, trust_env=False)

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        if self.running:
            raise IntegrationError("the integration is already running", self.output())
        try:
            self._proc = subprocess.Popen(
                command_line(self.config.command),
                cwd=self.cwd,
                env={**os.environ, **self.env},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                bufsize=0,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        except OSError as exc:
            raise IntegrationError(
                f"cannot start {self.config.command!r} in {self.cwd}: {exc.strerror}", self.output()
            ) from None
        self.starts += 1
        self._started_at_line = self._total
        self._reader = threading.Thread(target=self._read, args=(self._proc,), daemon=True)
        self._reader.start()
        self.wait(self.config.ready, "ready")

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after the stop timeout; the exit code."""
        return self._end(signal.SIGTERM, self.config.stop_timeout_s)

    def kill(self) -> int | None:
        """kill -9: no chance to flush or clean up, as a crashed host."""
        return self._end(signal.SIGKILL, 5.0)

    def close(self) -> None:
        """Stop it for good and let go of the probe clients."""
        try:
            self.stop()
        finally:
            self._probe.close()
            probe = self.__dict__.get("exceptions")  # only when it was made
            if probe is not None:
                probe.close()

    @functools.cached_property
    def exceptions(self) -> ExceptionsProbe | None:
        """The declared exception list and replay action, None when it declares none."""
        spec = self.config.exceptions
        return None if spec is None else ExceptionsProbe(spec.list, spec.replay)

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def output(self) -> list[str]:
        """Every line kept, up to what the integration had written when asked."""
        self._catch_up()
        with self._new_line:
            return list(self.lines)

    def _catch_up(self, timeout_s: float = 1.0) -> None:
        """When the pipe holds output the reader has not taken yet, wait (bounded) for its
        next read: a caller that saw the integration ready may look for a line it wrote first,
        and the reader reads in beats, or may not have been scheduled yet on a busy machine."""
        proc, reader = self._proc, self._reader
        if proc is None or proc.stdout is None or reader is None or not reader.is_alive():
            return
        try:
            waiting = fcntl.ioctl(proc.stdout.fileno(), termios.FIONREAD, b"\0\0\0\0")
        except (OSError, ValueError):  # closed, or not a pipe
            return
        if int.from_bytes(waiting, sys.byteorder) == 0:
            return
        with self._new_line:
            reads = self._reads
            self._new_line.wait_for(lambda: self._reads != reads, timeout_s)

    # probes ----------------------------------------------------------------------------------
    def wait(self, probe: Probe, what: str) -> None:
        """Wait until the probe passes; a dead process or the timeout is an IntegrationError."""
        deadline = time.monotonic() + probe.timeout_s
        seen = self._started_at_line
        pattern = re.compile(probe.log) if probe.log else None
        while True:
            if pattern is not None:
                fresh, seen = self._lines_since(seen)
                if any(pattern.search(line) for line in fresh):
                    return
            elif probe.http is not None and self._http_ok(probe.http):
                return
            if not self.running:
                if self._reader is not None:
                    self._reader.join(timeout=2.0)  # its last words, before they are reported
                code = self._proc.returncode if self._proc else None
                raise IntegrationError(
                    f"the integration exited (code {code}) before it was {what}", self.output()
                )
            if time.monotonic() >= deadline:
                raise IntegrationError(
                    f"the integration was not {what} within {probe.timeout_s:g} s", self.output()
                )
            with self._new_line:
                # A new line of output or a short beat, whichever comes first.
                self._new_line.wait(timeout=0.05)

    def idle(self) -> bool:
        """The declared idle probe answers now (True when none is declared)."""
        probe = self.config.idle
        if probe is None or probe.http is None:
            return True
        return self._http_ok(probe.http)

    def _lines_since(self, index: int) -> tuple[list[str], int]:
        with self._new_line:
            kept_from = self._total - len(self.lines)
            fresh = list(self.lines)[max(0, index - kept_from) :]
            return fresh, self._total

    def _http_ok(self, url: str) -> bool:
        try:
            return self._probe.get(url).is_success
        except httpx.HTTPError:
            return False

    # internals -------------------------------------------------------------------------------
    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        """Keep the output's lines, reading what has come every READ_BEAT_S rather than each
        line as it is written: a chatty integration under load writes a line per event, and a
        thread woken for each took the interpreter from the simulators' loop in this process
        (the pipe holds PIPE_BYTES meanwhile, so the writer is not held up)."""
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        with contextlib.suppress(OSError, AttributeError):  # Linux only; the default is 64 KiB
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        # Any bytes at all: an integration's output is not ours to reject.
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        partial = ""
        while True:
            chunk = os.read(fd, PIPE_BYTES)
            *complete, partial = (partial + decoder.decode(chunk, final=not chunk)).split("\n")
            if not chunk and partial:
                complete.append(partial)
            with self._new_line:
                for line in complete:
                    self.lines.append(line.removesuffix("\r"))
                self._total += len(complete)
                self._reads += 1
                self._new_line.notify_all()
            if not chunk:
                return
            time.sleep(READ_BEAT_S)

    def _end(self, sig: signal.Signals, timeout_s: float) -> int | None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return None if proc is None else proc.returncode
        with contextlib.suppress(ProcessLookupError):
            # The whole process group: an integration may run workers of its own.
            os.killpg(proc.pid, sig)
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            code = proc.wait(timeout=5.0)
        if self._reader is not None:
            self._reader.join(timeout=2.0)
        return code


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has Linux kill the child when the harness dies, however it dies
    (kill -9 included): its own session keeps it out of the harness's signals, so nothing else
    would. None elsewhere. The kernel watches the thread that starts the child, so start
    integrations from a thread that lives as long as the harness (the main thread does)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent, kill = os.getpid(), int(signal.SIGKILL)

    def arm() -> None:
        # Between fork and exec: no imports, no locks, only the two calls.
        prctl(_PR_SET_PDEATHSIG, kill, 0, 0, 0)
        if os.getppid() != parent:  # the harness died before the signal was armed
            os.kill(os.getpid(), kill)

    return arm


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def command_line(command: list[str]) -> list[str]:
    """``python`` (or ``python3``) means the harness's own interpreter, so an integration in
    the same virtualenv starts without activating it."""
    if command and command[0] in ("python", "python3"):
        return [sys.executable, *command[1:]]
    return command

"""A served world plus the integration under test, and waiting for the two to settle."""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness import pool
from harness.config import (
    ConfigError,
    HarnessConfig,
    IntegrationConfig,
    base_context,
    render_template,
)
from harness.integration import IntegrationProcess
from harness.standin import standin_config
from harness.up import SYSTEMS, Stack, UpOptions, build_stack
from simulators.common.server import ThreadedServer

# The quiet window when every process declares an idle probe (see Session.quiet_window).
PROBED_WINDOW_S = 0.05


@dataclass
class SettleResult:
    settled: bool
    waited_s: float
    pending_webhooks: int
    in_flight: int
    idle: bool

    def __str__(self) -> str:
        if self.settled:
            return f"settled after {self.waited_s:.2f} s"
        waiting = [
            f"{self.pending_webhooks} webhook(s) pending" if self.pending_webhooks else "",
            f"{self.in_flight} request(s) in flight" if self.in_flight else "",
            "" if self.idle else "the integration not idle",
        ]
        return f"did not settle after {self.waited_s:.2f} s: " + (
            ", ".join(filter(None, waiting)) or "activity kept restarting the quiet window"
        )


@dataclass
class Session:
    """Everything one scenario runs against; a context manager that always cleans up."""

    stack: Stack
    server: ThreadedServer
    integration: IntegrationProcess | None
    context: dict[str, Any] = field(default_factory=dict)
    # The reference flow playing the hand-offs the integration does not own (None: it owns all).
    standin: IntegrationProcess | None = None
    standin_context: dict[str, Any] = field(default_factory=dict)
    standin_endpoints: frozenset[str] = frozenset()
    pooled: pool.Served | None = None  # a served world to give back, not to stop

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            for process in (self.integration, self.standin):
                if process is not None:
                    process.close()
            if self.pooled is not None:
                self.pooled.release()
            else:
                self.server.stop()
        finally:
            if self.pooled is None:
                self.stack.close()
            for context in (self.context, self.standin_context):
                run_dir = context.get("run_dir")
                if run_dir:
                    shutil.rmtree(run_dir, ignore_errors=True)

    def quiet_window(self, unprobed_s: float) -> float:
        """How long nothing may happen before the world counts as quiet: ``unprobed_s`` when a
        process declares no idle probe (its work can only be guessed from silence), else
        PROBED_WINDOW_S — its probe says whether work is queued, and the window only has to
        cover a delivery it just acknowledged reaching its queue."""
        processes = [p for p in (self.integration, self.standin) if p is not None]
        probed = all(p.config.idle is not None and p.config.idle.http for p in processes)
        return min(unprobed_s, PROBED_WINDOW_S) if probed else unprobed_s

    def settle(
        self, window_s: float = 0.2, timeout_s: float = 30.0, *, wait_for_integration: bool = True
    ) -> SettleResult:
        """Wait until outboxes are drained, no request was in flight for ``window_s`` and the
        idle probe (if declared) agrees — all at once — or until ``timeout_s``. With the
        integration down (``wait_for_integration=False``) its webhooks cannot drain: only the
        requests in flight are waited for."""
        world = self.stack.world
        started = time.monotonic()
        deadline = started + timeout_s
        idle = False
        if not wait_for_integration:
            quiet = world.activity.wait_quiet(window_s, timeout_s)
            return self._result(quiet, started, False)
        processes = [p for p in (self.integration, self.standin) if p is not None]
        while True:
            if any(not p.running for p in processes):
                # One died: nothing will drain or turn idle; the caller reports the death.
                return self._result(False, started, False)
            # In slices, so a death while webhooks are being retried is noticed at once.
            remaining = min(1.0, max(0.0, deadline - time.monotonic()))
            drained = world.dispatcher.wait_drained_threadsafe(remaining)
            remaining = max(0.0, deadline - time.monotonic())
            quiet = drained and world.activity.wait_quiet(window_s, remaining)
            idle = quiet and all(p.idle() for p in processes)
            # Delivering or serving anything since the checks means look again.
            if idle and world.dispatcher.pending() == 0 and world.activity.in_flight == 0:
                return self._result(True, started, idle)
            if time.monotonic() >= deadline:
                return self._result(False, started, idle)
            if quiet and not idle:
                # Only the integration's own probe says busy: it has no event to wait on.
                time.sleep(min(window_s, max(0.0, deadline - time.monotonic())))

    def _result(self, settled: bool, started: float, idle: bool) -> SettleResult:
        world = self.stack.world
        return SettleResult(
            settled,
            time.monotonic() - started,
            world.dispatcher.pending(),
            world.activity.in_flight,
            idle,
        )


def open_session(
    config: HarnessConfig,
    *,
    cwd: Path,
    seed: int | None = None,
    start_at: str | None = None,
    ca_dir: Path | None = None,
    crm_custom_fields: dict[str, list[str]] | None = None,
    pooled: bool = False,
    validate_responses: bool = True,
) -> Session:
    """Serve the configured simulators, register the integration's receivers, start it, and
    start the stand-in for the hand-offs it does not own. ``validate_responses=False`` skips
    checking the simulators' own answers against their contracts (load runs)."""
    sims = config.simulators
    systems = [name for name in sims.systems if name in SYSTEMS]
    options = UpOptions(
        seed=sims.seed if seed is None else seed,
        start_at=start_at or sims.start_at,
        ports={name: sims.ports.get(name, 0) for name in systems},
        tls={name for name in sims.tls if name in systems},
        systems=systems,
        webhook_time_scale=sims.webhook_time_scale,
        ca_dir=ca_dir,
        crm_custom_fields=crm_custom_fields or {},
        validate_responses=validate_responses,
    )
    if pooled and ca_dir is None:
        # Scenarios one after another: reuse a served world reset, not rebuild its apps.
        served = pool.acquire(options)
        stack, server = served.stack, served.server
    else:
        served = None
        stack = build_stack(options)
        server = ThreadedServer(
            stack.server.sites, ca=stack.ca, background=[stack.world.dispatcher.run]
        )
        server.start()
    session = Session(stack, server, None, pooled=served)
    try:
        spec = config.integration
        port = spec.port if spec is not None else 0
        session.context = _context(stack, server, port or _free_port())
        if spec is not None:
            session.integration, _ = _launch(spec, stack, session.context, cwd)
        standin = standin_config(config)
        if standin is not None:
            session.standin_context = _context(stack, server, _free_port())
            session.standin, endpoints = _launch(
                standin, stack, session.standin_context, cwd, lenient=True
            )
            session.standin_endpoints = frozenset(endpoints)
    except BaseException:
        session.close()
        raise
    return session


def _launch(
    spec: IntegrationConfig,
    stack: Stack,
    context: dict[str, Any],
    base: Path,
    *,
    lenient: bool = False,
) -> tuple[IntegrationProcess, list[str]]:
    """Register ``spec``'s receivers (their secrets join ``context``), render its command, cwd
    (relative to ``base``) and environment, and start it. ``lenient``: env values naming a
    system not served are left out."""
    endpoints = []
    for system, receiver in spec.webhooks.items():
        if system not in stack.sims:
            continue
        url = render_template(receiver.url, context)
        # A receiver the harness config declares is a host the user has listed.
        host = urlsplit(url).hostname
        if host:
            stack.world.webhook_hosts |= {host}
        endpoint = stack.sims[system].register_webhook(url, receiver.events)
        context[system]["webhook_secret"] = endpoint.secret
        endpoints.append(endpoint.id)
    env = {}
    for key, value in spec.env.items():
        try:
            env[key] = render_template(value, context)
        except ConfigError:
            if not lenient:
                raise
    rendered = spec.model_copy(
        update={
            "command": [render_template(part, context) for part in spec.command],
            "cwd": render_template(spec.cwd, context),
            "ready": spec.ready.model_copy(update={"http": _render(spec.ready.http, context)}),
            "idle": None
            if spec.idle is None
            else spec.idle.model_copy(update={"http": _render(spec.idle.http, context)}),
            "exceptions": None
            if spec.exceptions is None
            else spec.exceptions.model_copy(
                update={
                    "list": render_template(spec.exceptions.list, context),
                    "replay": _render(spec.exceptions.replay, context),
                }
            ),
        }
    )
    process = IntegrationProcess(rendered, env, base / rendered.cwd)
    process.start()
    return process, endpoints


def _render(template: str | None, context: dict[str, Any]) -> str | None:
    return None if template is None else render_template(template, context)


def _context(stack: Stack, server: ThreadedServer, port: int) -> dict[str, Any]:
    context: dict[str, Any] = {
        **base_context(),
        "port": port,
        # A fresh directory per session for the integration's durable state: ids repeat from
        # run to run (one seed, one set of event ids), so an inbox left by an earlier run
        # would swallow this run's events as duplicates. A restart keeps it, as a host would.
        "run_dir": tempfile.mkdtemp(prefix="finsim-run-"),
        "ca_bundle": str(stack.ca_bundle or ""),
        "control_token": stack.world.control_token,
    }
    for name, sim in stack.sims.items():
        context[name] = {"url": server.urls[name], **sim.credentials()}
    return context


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

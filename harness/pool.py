"""Served worlds built once per process and reset between scenarios.

Building the four apps from their contracts costs seconds; a scenario takes a served world
from here, reset to its own seed and start, and gives it back when it ends. A world in use is
never handed out twice; worlds differ by everything that shapes the apps (systems, TLS, ports,
CRM custom fields, webhook time scale, response validation).
"""

from __future__ import annotations

import atexit
import json
import threading
from dataclasses import dataclass

from harness.up import Stack, UpOptions, build_stack
from simulators.common.server import ThreadedServer


@dataclass
class Served:
    """A stack and the server serving it; ``busy`` while a scenario holds it."""

    stack: Stack
    server: ThreadedServer
    busy: bool = False

    def release(self) -> None:
        # Empty it now (deliveries to the ended integration stop being retried), keep serving.
        self.stack.world.reset()
        self.busy = False


_FREE: dict[str, list[Served]] = {}
_LOCK = threading.Lock()


def _key(options: UpOptions) -> str:
    return json.dumps(
        {
            "systems": sorted(options.systems),
            "tls": sorted(options.tls),
            "ports": sorted(options.ports.items()),
            "crm": {k: sorted(v) for k, v in sorted(options.crm_custom_fields.items())},
            "scale": options.webhook_time_scale,
            "validate": options.validate_responses,
            "host": options.host,
            "hooks": sorted(options.webhook_hosts),
            "fixed": options.fixed_credentials,
        },
        sort_keys=True,
    )


def acquire(options: UpOptions) -> Served:
    """A served world for ``options``, reset to its seed and start: a free one of the same
    shape, else a new one (kept for the next scenario once released)."""
    key = _key(options)
    with _LOCK:
        for served in _FREE.get(key, []):
            if not served.busy:
                served.busy = True
                break
        else:
            served = None
    if served is not None:
        served.stack.world.reset(seed=options.seed, start_at=options.start_at)
        return served
    stack = build_stack(options)
    server = ThreadedServer(
        stack.server.sites, ca=stack.ca, background=[stack.world.dispatcher.run]
    )
    server.start()
    served = Served(stack, server, busy=True)
    with _LOCK:
        _FREE.setdefault(key, []).append(served)
    return served


def _shutdown() -> None:
    with _LOCK:
        everything = [s for kept in _FREE.values() for s in kept]
        _FREE.clear()
    for served in everything:
        try:
            served.server.stop()
        finally:
            served.stack.close()


atexit.register(_shutdown)

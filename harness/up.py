"""Build a world with its simulators and serve them on loopback: what `harness up` runs."""

from __future__ import annotations

import asyncio
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulators.billing.simulator import BillingSimulator
from simulators.common.app import build_app
from simulators.common.server import MultiServer, Site, new_event_loop
from simulators.common.simulator import Simulator
from simulators.common.tls import LocalCA
from simulators.common.world import DEFAULT_START, World
from simulators.crm.schema import DEFAULT_CUSTOM_FIELDS, CustomField
from simulators.crm.simulator import CrmSimulator
from simulators.erp.simulator import ErpSimulator
from simulators.revrec.simulator import RevrecSimulator

SYSTEMS: dict[str, type[Simulator]] = {
    "billing": BillingSimulator,
    "crm": CrmSimulator,
    "erp": ErpSimulator,
    "revrec": RevrecSimulator,
}
DEFAULT_PORTS = {"billing": 12111, "crm": 12112, "erp": 12113, "revrec": 12114}


@dataclass
class UpOptions:
    seed: int = 0
    start_at: str = DEFAULT_START
    host: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    # simple-salesforce builds https URLs only, so the CRM is served over TLS by default.
    tls: set[str] = field(default_factory=lambda: {"crm"})
    systems: list[str] = field(default_factory=lambda: list(SYSTEMS))
    webhook_time_scale: float = 1.0
    validate_responses: bool = True
    ca_dir: Path | None = None
    # Custom fields beyond the defaults, per sObject (a scenario's crm_custom_fields).
    crm_custom_fields: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Stack:
    """A world, its simulators and the server that will serve them."""

    world: World
    sims: dict[str, Simulator]
    server: MultiServer
    ca: LocalCA | None

    def ready(self) -> dict[str, Any]:
        """The document `--ready-json` writes: URLs, credentials, CA and control token."""
        urls = self.server.urls
        return {
            "systems": {
                name: {
                    "url": urls[name],
                    "credentials": sim.credentials(),
                    "webhook_endpoints": [e.as_json() for e in sim.webhook_endpoints()],
                }
                for name, sim in self.sims.items()
            },
            "ca_bundle": str(self.ca.ca_path) if self.ca else None,
            "control_token": self.world.control_token,
            "seed": self.world.seed,
        }


def crm_fields(extra: dict[str, list[str]]) -> dict[str, tuple[CustomField, ...]]:
    """The default custom fields plus text fields named by a scenario."""
    fields = {sobject: tuple(defs) for sobject, defs in DEFAULT_CUSTOM_FIELDS.items()}
    for sobject, names in extra.items():
        known = {f.name for f in fields.get(sobject, ())}
        fields[sobject] = (
            *fields.get(sobject, ()),
            *(CustomField(n) for n in names if n not in known),
        )
    return fields


def build_stack(options: UpOptions) -> Stack:
    unknown = set(options.systems) - set(SYSTEMS)
    if unknown:
        raise SystemExit(
            f"unknown system(s): {', '.join(sorted(unknown))}; available: {', '.join(SYSTEMS)}"
        )
    world = World(options.seed, options.start_at, webhook_time_scale=options.webhook_time_scale)
    sims = {
        name: CrmSimulator(world, custom_fields=crm_fields(options.crm_custom_fields))
        if name == "crm"
        else SYSTEMS[name](world)
        for name in options.systems
    }
    ca = None
    if options.tls & set(sims):
        directory = options.ca_dir or Path(tempfile.mkdtemp(prefix="finsim-ca-"))
        ca = LocalCA.create(directory)
    sites = [
        Site(
            name,
            build_app(sim, validate_responses=options.validate_responses),
            options.ports.get(name, 0),
            name in options.tls,
        )
        for name, sim in sims.items()
    ]
    server = MultiServer(sites, host=options.host, ca=ca, background=[world.dispatcher.run])
    return Stack(world, sims, server, ca)


def serve(options: UpOptions, ready_json: Path | None, announce: Any) -> None:
    """Serve until Ctrl-C or SIGTERM; announce(stack) prints once every simulator answers."""
    stack = build_stack(options)

    async def main() -> None:
        await stack.server.start()
        if ready_json is not None:
            ready_json.write_text(json.dumps(stack.ready(), indent=2))
        announce(stack)
        await stack.server.serve_forever()

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(main())

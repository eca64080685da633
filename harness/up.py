"""Build a world with its simulators and serve them on loopback: what `harness up` runs."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulators.billing.simulator import BillingSimulator
from simulators.common.app import build_app
from simulators.common.receivers import ANY_HOST, is_loopback
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
    # Hosts webhooks may go to besides loopback; "*" opens them to any host.
    webhook_hosts: list[str] = field(default_factory=list)
    # Credentials derived from the seed (reproducible) instead of random per start.
    fixed_credentials: bool = False
    # Serving on an address other than loopback needs saying so.
    allow_remote: bool = False


class UpError(SystemExit):
    """A setting `harness up` refuses; the message says why and what to do (no traceback)."""


def warnings_for(options: UpOptions) -> list[str]:
    """Refuse a non-loopback --host without --allow-remote; the warnings to print otherwise."""
    warnings = []
    if not is_loopback(options.host):
        if not options.allow_remote:
            raise UpError(
                f"--host {options.host} is not a loopback address: the simulators would be "
                "reachable from other machines, control plane included. Add --allow-remote "
                "if that is what you want."
            )
        warnings.append(
            f"serving on {options.host}: anyone who can reach it and holds a credential from "
            "the ready JSON can drive the simulators"
        )
    if ANY_HOST in options.webhook_hosts:
        warnings.append("--webhook-host '*': signed webhooks may be sent to any host")
    return warnings


@dataclass
class Stack:
    """A world, its simulators and the server that will serve them."""

    world: World
    sims: dict[str, Simulator]
    server: MultiServer
    ca: LocalCA | None
    # A temporary directory of ours (the CA's when no --ca-dir was given), removed by close().
    _cleanup: Callable[[], None] | None = None

    @property
    def ca_bundle(self) -> Path | None:
        """Public roots plus the local CA, for ``REQUESTS_CA_BUNDLE`` (None without TLS)."""
        return self.ca.bundle_path if self.ca else None

    def close(self) -> None:
        """Remove the temporary key material; idempotent, also run at interpreter exit."""
        if self._cleanup is not None:
            self._cleanup()

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
            "ca_bundle": str(self.ca_bundle) if self.ca_bundle else None,
            "ca_cert": str(self.ca.ca_path) if self.ca else None,
            "control_token": self.world.control_token,
            "credentials": "fixed" if self.world.fixed_credentials else "random",
            "webhook_hosts": sorted(self.world.webhook_hosts),
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


def build_stack(options: UpOptions, *, credential_salt: str | None = None) -> Stack:
    unknown = set(options.systems) - set(SYSTEMS)
    if unknown:
        raise UpError(
            f"unknown system(s): {', '.join(sorted(unknown))}; available: {', '.join(SYSTEMS)}"
        )
    world = World(
        options.seed,
        options.start_at,
        webhook_time_scale=options.webhook_time_scale,
        fixed_credentials=options.fixed_credentials,
        credential_salt=credential_salt,
        webhook_hosts=options.webhook_hosts,
    )
    sims = {
        name: CrmSimulator(world, custom_fields=crm_fields(options.crm_custom_fields))
        if name == "crm"
        else SYSTEMS[name](world)
        for name in options.systems
    }
    ca = None
    cleanup = None
    if options.tls & set(sims):
        directory = options.ca_dir
        if directory is None:
            directory = Path(tempfile.mkdtemp(prefix="finsim-ca-"))
            cleanup = weakref.finalize(world, shutil.rmtree, directory, ignore_errors=True)
        ca = LocalCA.create(directory)
        ca.write_bundle()
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
    return Stack(world, sims, server, ca, cleanup)


# --state FILE: the control plane's snapshot, plus the salt the credentials were drawn with so
# the integration's keys and webhook secrets stay valid from one start to the next.
STATE_FORMAT = "finsim-state/1"


def load_state(path: Path) -> dict[str, Any] | None:
    """The saved state, None when the file does not exist yet; UpError if it is not one."""
    if not path.exists():
        return None
    try:
        state: dict[str, Any] = json.loads(path.read_text())
        if state.get("format") != STATE_FORMAT or not isinstance(state.get("world"), dict):
            raise ValueError(f"not a {STATE_FORMAT} file")
    except (OSError, ValueError) as exc:
        raise UpError(
            f"--state {path}: cannot read it ({exc}); move it away to start afresh"
        ) from None
    return state


def save_state(stack: Stack, path: Path) -> None:
    """Write the world atomically, readable by its owner only (it holds credentials)."""
    state = {
        "format": STATE_FORMAT,
        "credential_salt": stack.world.credential_salt,
        "world": stack.world.snapshot(),
    }
    partial = path.with_name(f".{path.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(state, handle)
    os.replace(partial, path)


def serve(
    options: UpOptions,
    ready_json: Path | None,
    announce: Any,
    *,
    state_path: Path | None = None,
) -> None:
    """Serve until Ctrl-C or SIGTERM; announce(stack) prints once every simulator answers.

    With ``state_path`` the world is restored from it on start (when it exists) and saved to
    it on the way out. Temporary key material is removed on every exit but kill -9, and the
    server's private key as soon as the servers have loaded it."""
    state = load_state(state_path) if state_path is not None else None
    salt = None
    if state is not None:
        # The saved world's seed, so ids minted after the restore continue its sequences.
        options.seed = int(state["world"].get("seed", options.seed))
        salt = state.get("credential_salt")
        options.fixed_credentials = salt is None  # the credentials the saved world had
    stack = build_stack(options, credential_salt=salt)
    try:
        if state is not None:
            try:
                stack.world.restore(state["world"])
            except ValueError as exc:
                raise UpError(f"--state {state_path}: {exc}") from None

        async def main() -> None:
            await stack.server.start()
            if stack.ca is not None:
                stack.ca.forget_key()
            if ready_json is not None:
                _write_json(ready_json, stack.ready())
            announce(stack)
            await stack.server.serve_forever()

        try:
            with asyncio.Runner(loop_factory=new_event_loop) as runner:
                runner.run(main())
        finally:
            if state_path is not None:
                save_state(stack, state_path)
    finally:
        stack.close()


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    """Whole or not at all: a reader polling for the file never sees half of it."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(doc, indent=2))
    os.replace(partial, path)

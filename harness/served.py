"""Simulators in one line, like moto: serve some or all of them on free loopback ports for a
block, with no harness.toml and no integration (`finsim.serve("billing", "erp")`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config import DEFAULT_START, ConfigError, HarnessConfig, SimulatorsConfig
from harness.session import Session, open_session

ALL_SYSTEMS = ("billing", "crm", "erp", "revrec")


@dataclass
class ServedSystem:
    """One served simulator: its base URL, its credentials (also as attributes:
    ``sims.billing.api_key``, ``sims.crm.session_id``, ``sims.erp.token``) and the simulator."""

    name: str
    url: str
    credentials: dict[str, str]
    simulator: Any

    def __getattr__(self, key: str) -> str:
        try:
            return self.__dict__["credentials"][key]  # type: ignore[no-any-return]
        except KeyError:
            raise AttributeError(
                f"{self.__dict__.get('name')} has no {key!r}; it has url, simulator and "
                f"the credentials {', '.join(self.__dict__.get('credentials', {}))}"
            ) from None


class Simulators:
    """The served simulators of one world: ``sims.billing.url``, ``.world``, ``.settle()``."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.systems = {
            name: ServedSystem(name, session.context[name]["url"], sim.credentials(), sim)
            for name, sim in session.stack.sims.items()
        }

    def __getattr__(self, name: str) -> ServedSystem:
        systems = self.__dict__.get("systems", {})
        if name in systems:
            return systems[name]  # type: ignore[no-any-return]
        raise AttributeError(f"{name!r} is not served here; served: {', '.join(systems)}")

    @property
    def world(self) -> Any:
        """The world: its clock, seed, fault plan and dispatcher."""
        return self.session.stack.world

    @property
    def context(self) -> dict[str, Any]:
        """What harness.toml templates see: ``context["billing"]["url"]``, ``["api_key"]``…"""
        return self.session.context

    @property
    def control_token(self) -> str:
        """The X-Sim-Control-Token header value for /_sim/* (clock, faults, reset…)."""
        return str(self.world.control_token)

    @property
    def ca_bundle(self) -> str | None:
        """The local CA that signs the TLS systems' certificates (crm by default), or None."""
        return self.session.context.get("ca_bundle") or None

    def url(self, system: str) -> str:
        return self.systems[system].url

    def settle(self, timeout_s: float = 30.0) -> bool:
        """Wait until webhooks are delivered and no request is in flight; True if it settled."""
        return self.session.settle(timeout_s=timeout_s).settled


class ServedWorld(Simulators):
    """The pytest plugin's ``served_world``: the served simulators plus the harness's own
    users of each vendor (``actors``), exempt from faults."""

    def __init__(self, session: Session, actors: Any) -> None:
        super().__init__(session)
        self.actors = actors


@contextmanager
def serve(
    *systems: str,
    seed: int = 0,
    start_at: str = DEFAULT_START,
    tls: tuple[str, ...] | None = None,
    webhook_time_scale: float = 1e-5,
) -> Iterator[Simulators]:
    """Serve ``systems`` (all four when none are named) in a fresh world on free loopback
    ports for the block. TLS by default for the CRM only (simple-salesforce speaks https only).
    """
    chosen = list(systems) or list(ALL_SYSTEMS)
    unknown = [name for name in chosen if name not in ALL_SYSTEMS]
    if unknown:
        raise ConfigError(
            f"unknown system(s) {', '.join(unknown)}; known: {', '.join(ALL_SYSTEMS)}"
        )
    config = HarnessConfig(
        simulators=SimulatorsConfig(
            seed=seed,
            start_at=start_at,
            systems=chosen,
            tls=[name for name in (("crm",) if tls is None else tls) if name in chosen],
            webhook_time_scale=webhook_time_scale,
        )
    )
    with open_session(config, cwd=Path.cwd()) as session:
        yield Simulators(session)

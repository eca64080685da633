"""The world of one run: clock, seed, seeded randomness, ids, faults and the simulators in it."""

from __future__ import annotations

import random
import secrets
import threading
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from simulators.common.activity import Activity
from simulators.common.clock import SimClock, parse_instant
from simulators.common.faults import FaultPlan
from simulators.common.ids import IdFactory

if TYPE_CHECKING:
    from simulators.common.simulator import Simulator
    from simulators.common.webhooks import Dispatcher

DEFAULT_START = "2026-01-01T00:00:00Z"


class World:
    """Everything one run shares; never module-global, so two worlds never see each other."""

    def __init__(
        self,
        seed: int = 0,
        start_at: int | str = DEFAULT_START,
        *,
        control_token: str | None = None,
        webhook_time_scale: float = 1.0,
        fixed_credentials: bool = False,
        credential_salt: str | None = None,
        webhook_hosts: Collection[str] = (),
    ) -> None:
        self.seed = seed
        self.start_at = parse_instant(start_at)
        self.clock = SimClock(self.start_at)
        # Credentials (control token, API keys, webhook secrets) are random per world unless
        # fixed ones are asked for (then they follow the seed, for reproducible tests). The
        # salt they are drawn with gives the same ones again (a world saved and restored).
        self.fixed_credentials = fixed_credentials
        self.credential_salt: str | None = (
            None if fixed_credentials else credential_salt or secrets.token_hex(16)
        )
        self.ids = IdFactory(seed, self.credential_salt)
        # Hosts webhooks may go to besides loopback ("*" is any); see receivers.py.
        self.webhook_hosts: frozenset[str] = frozenset(webhook_hosts)
        self.faults = FaultPlan(self.random("faults"))
        # One lock for all state: the event loop and a test thread may both touch a world.
        self.lock = threading.RLock()
        self.activity = Activity()
        self.systems: dict[str, Simulator] = {}
        self.control_token = control_token or f"simctl_{self.ids.token('control', 24)}"
        from simulators.common.webhooks import Dispatcher

        self.dispatcher: Dispatcher = Dispatcher(self, time_scale=webhook_time_scale)

    def reset(self, seed: int | None = None, start_at: int | str | None = None) -> None:
        """Empty every simulator; the clock may go back only here, to a new start."""
        with self.lock:
            if seed is not None:
                self.seed = seed
            if start_at is not None:
                self.start_at = parse_instant(start_at)
            self.clock.restore(self.start_at)
            self.ids = IdFactory(self.seed, self.credential_salt)
            self.faults = FaultPlan(self.random("faults"))
            self.dispatcher.reset()
            for sim in self.systems.values():
                sim.reset()

    def random(self, stream: str) -> random.Random:
        """An independent seeded stream, so one consumer's draws never shift another's."""
        return random.Random(f"{self.seed}:{stream}")

    def register(self, simulator: Simulator) -> None:
        if simulator.name in self.systems:
            raise ValueError(f"world already has a {simulator.name} simulator")
        self.systems[simulator.name] = simulator

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "seed": self.seed,
                "now": self.clock.now(),
                "ids": self.ids.snapshot(),
                "faults": self.faults.snapshot(),
                "webhooks": self.dispatcher.snapshot(),
                "systems": {name: sim.snapshot() for name, sim in self.systems.items()},
            }

    def restore(self, data: dict[str, Any]) -> None:
        """All or nothing: a snapshot that fails part-way leaves the world as it was."""
        with self.lock:
            before = self.snapshot()
            try:
                self._restore(data)
            except Exception as exc:
                self._restore(before)
                raise ValueError(f"not a snapshot of this world: {exc!r}") from exc

    def _restore(self, data: dict[str, Any]) -> None:
        self.clock.restore(int(data["now"]))
        self.ids.restore(data["ids"])
        self.faults.restore(data["faults"])
        if "webhooks" in data:
            self.dispatcher.restore(data["webhooks"])
        for name, state in data["systems"].items():
            if name in self.systems:
                self.systems[name].restore(state)

"""The system under load, as the JSON file `harness load` writes and every Locust process reads."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TARGET_ENV = "FINSIM_LOAD_TARGET"


@dataclass(frozen=True)
class Catalog:
    """Ids of the fixtures, as created in each system: what a user needs to build a request."""

    price_id: str
    product_id: str
    usage_price_id: str
    meter_event_name: str
    pricebook_entry_id: str
    price_minor: int
    currency: str


@dataclass(frozen=True)
class Calendar:
    """How the clock user moves sim time: ``step`` every ``every_s`` wall seconds."""

    step: str = "P7D"
    every_s: float = 2.0
    close_periods: bool = False  # close each ended month in the subledger, as finance does


@dataclass(frozen=True)
class Target:
    urls: dict[str, str]
    credentials: dict[str, dict[str, str]]
    control_token: str
    ca_bundle: str
    catalog: Catalog
    entities: list[str]
    start_at: int  # sim epoch seconds when the run began
    seed: int
    calendar: Calendar = field(default_factory=Calendar)

    def headers(self, system: str) -> dict[str, str]:
        """Auth plus the harness-actor headers: load users are the vendors' own people."""
        creds = self.credentials[system]
        token = {
            "billing": creds.get("api_key", ""),
            "crm": creds.get("session_id", ""),
            "erp": creds.get("token", ""),
            "revrec": creds.get("token", ""),
        }[system]
        return {
            "Authorization": f"Bearer {token}",
            "X-Sim-Actor": "harness",
            "X-Sim-Control-Token": self.control_token,
        }

    def control_headers(self) -> dict[str, str]:
        return {"X-Sim-Control-Token": self.control_token}

    def verify(self) -> str | bool:
        return self.ca_bundle or True

    @property
    def entity(self) -> str:
        """The entity new customers and deals are routed to."""
        return self.entities[0]

    @classmethod
    def read(cls, path: Path) -> Target:
        data: dict[str, Any] = json.loads(path.read_text())
        return cls(
            **{
                **data,
                "catalog": Catalog(**data["catalog"]),
                "calendar": Calendar(**data["calendar"]),
            }
        )


def from_environment() -> Target:
    """The target named by ``FINSIM_LOAD_TARGET``; a locustfile cannot run without one."""
    path = os.environ.get(TARGET_ENV)
    if not path:
        raise SystemExit(
            f"{TARGET_ENV} is not set: run a profile through `harness load`, or point it at the "
            "target.json a `harness load` run wrote"
        )
    return Target.read(Path(path))

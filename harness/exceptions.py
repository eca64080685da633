"""The integration's exception list as the harness reads it: the declared probe's JSON shape,
validated, and what the books keep of it (docs/exceptions.md)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

# What the harness reads of one response: a list this long is itself a finding, not a crash.
MAX_ITEMS = 10_000


class Source(BaseModel):
    model_config = ConfigDict(extra="allow")

    system: Literal["billing", "crm", "erp", "revrec"]
    document: str = Field(min_length=1, max_length=200)


class Item(BaseModel):
    """One thing the integration set aside (extra keys are the integration's own)."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, max_length=200)
    source: Source
    event_id: str | None = Field(None, max_length=200)
    reason: str = Field(max_length=4000)
    first_seen: str = Field(description="ISO 8601, the integration's own clock")
    attempts: int = Field(ge=0)
    status: Literal["open", "resolved"]
    resolved_at: str | None = None


class Listing(BaseModel):
    model_config = ConfigDict(extra="allow")

    items: list[Item] = Field(max_length=MAX_ITEMS)


@dataclass(frozen=True)
class Exceptions:
    """The exception list at one instant; ``error`` when it could not be read (then ``items``
    is empty and no rule judges it)."""

    items: tuple[Item, ...] = ()
    error: str | None = None
    # Sim instants of the integration.replay steps played so far (the rules read "after").
    replays: tuple[int, ...] = ()
    down: bool = False  # not read: the integration was not running

    def open(self) -> Iterator[Item]:
        return (i for i in self.items if i.status == "open")

    def to_json(self) -> dict[str, Any]:
        return {
            "items": [i.model_dump(mode="json") for i in self.items],
            "error": self.error,
            "replays": list(self.replays),
            "down": self.down,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Exceptions:
        return cls(
            tuple(Item.model_validate(i) for i in data.get("items", [])),
            data.get("error"),
            tuple(int(r) for r in data.get("replays", [])),
            bool(data.get("down", False)),
        )


def parse(body: Any) -> Exceptions:
    """The probe's answer, or an Exceptions naming what is wrong with it."""
    try:
        listing = Listing.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        return Exceptions(
            error=f"the exception list is not the documented shape: {where}: "
            f"{first['msg']} ({exc.error_count()} problem(s))"
        )
    return Exceptions(tuple(listing.items))


@dataclass
class ExceptionsProbe:
    """The declared list and replay URLs (rendered), read with one client."""

    list_url: str
    replay_url: str | None
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=5.0, trust_env=False))

    def read(self) -> Exceptions:
        try:
            response = self.client.get(self.list_url)
        except httpx.HTTPError as exc:
            return Exceptions(error=f"GET {self.list_url}: {type(exc).__name__}: {exc}")
        if not response.is_success:
            return Exceptions(error=f"GET {self.list_url} answered {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            return Exceptions(error=f"GET {self.list_url} answered no JSON")
        return parse(body)

    def replay(self, ids: list[str] | None) -> str:
        """POST the replay: every open item (``ids`` None) or those; what it answered."""
        if self.replay_url is None:
            raise LookupError("the integration declares no replay action")
        body: dict[str, Any] = {} if ids is None else {"ids": ids}
        response = self.client.post(self.replay_url, json=body)
        if not response.is_success:
            raise RuntimeError(
                f"POST {self.replay_url} answered {response.status_code}: {response.text[:300]}"
            )
        return response.text[:300]

    def close(self) -> None:
        self.client.close()


@dataclass
class Sighting:
    """One item as the harness saw it over a scenario: when it first appeared and when it
    was first seen resolved (or gone), in sim time."""

    item: Item
    seen_at: int
    resolved_seen_at: int | None = None

    def as_json(self, replays: tuple[int, ...]) -> dict[str, Any]:
        from simulators.common.clock import iso  # the simulators' formatting, only here

        end = self.resolved_seen_at
        replayed = [r for r in replays if r >= self.seen_at and (end is None or r <= end)]
        return {
            "id": self.item.id,
            "system": self.item.source.system,
            "document": self.item.source.document,
            "event_id": self.item.event_id,
            "reason": self.item.reason,
            "attempts": self.item.attempts,
            "status": self.item.status,
            "first_seen": self.item.first_seen,
            "resolved_at": self.item.resolved_at,
            "seen_at": iso(self.seen_at),
            "resolved_seen_at": None if end is None else iso(end),
            "replayed_at": [iso(r) for r in replayed],
            # The SLA from refusal to resolution, in sim time (None: still open at the end).
            "sat_s": None if end is None else end - self.seen_at,
        }


@dataclass
class SetAsideLog:
    """Every item the exception list showed during a scenario, for the report."""

    sightings: dict[str, Sighting] = field(default_factory=dict)
    declared: bool = False
    errors: list[str] = field(default_factory=list)

    def observe(self, listed: Exceptions, now: int) -> None:
        self.declared = True
        if listed.error is not None:
            if listed.error not in self.errors:
                self.errors.append(listed.error)
            return
        present = set()
        for item in listed.items:
            present.add(item.id)
            seen = self.sightings.get(item.id)
            if seen is None:
                seen = self.sightings[item.id] = Sighting(item, now)
            seen.item = item
            if item.status == "resolved" and seen.resolved_seen_at is None:
                seen.resolved_seen_at = now
            elif item.status == "open":
                seen.resolved_seen_at = None
        for item_id, seen in self.sightings.items():
            if item_id not in present and seen.resolved_seen_at is None:
                seen.resolved_seen_at = now  # dropped from the list: resolved

    def as_json(self, replays: tuple[int, ...]) -> dict[str, Any]:
        rows = [s.as_json(replays) for s in self.sightings.values()]
        sat = [r["sat_s"] for r in rows if r["sat_s"] is not None]
        return {
            "declared": self.declared,
            "items": rows,
            "errors": self.errors,
            "open": sum(1 for r in rows if r["sat_s"] is None),
            "max_sat_s": max(sat) if sat else None,
        }

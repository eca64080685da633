"""Webhook endpoints and delivery records: where events go, how they are signed, each attempt."""

from __future__ import annotations

import base64
import dataclasses
import fnmatch
import functools
import hashlib
import hmac
from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass
class Endpoint:
    """Where a system pushes its events; ``events`` are globs over event types (``*`` is all)."""

    id: str
    system: str
    url: str
    secret: str
    events: list[str] = field(default_factory=lambda: ["*"])
    enabled: bool = True

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def copy(self) -> Endpoint:
        """A copy of its own (``events`` too); ``asdict`` took a third of a month's renewals."""
        return Endpoint(
            self.id, self.system, self.url, self.secret, list(self.events), self.enabled
        )


@functools.lru_cache(maxsize=4096)
def subscribed(events: tuple[str, ...], event_type: str) -> bool:
    """Whether an endpoint listening to ``events`` (globs) takes ``event_type``: asked of every
    endpoint for every event published, from a handful of distinct answers."""
    return any(fnmatch.fnmatchcase(event_type, glob) for glob in events)


def hmac_signature(secret: str, payload: bytes, timestamp: int) -> str:
    """HMAC-SHA256 over ``"<timestamp>.<payload>"``, hex: Stripe's v1 scheme, reused by all."""
    signed = f"{timestamp}.".encode() + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


# refused: the URL is not one webhooks may go to (receivers.py), never attempted;
# cancelled: its endpoint was deleted while it waited.
DeliveryStatus = Literal["pending", "delivered", "dropped", "gave_up", "refused", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"delivered", "dropped", "gave_up", "refused", "cancelled"})


@dataclass(frozen=True)
class Attempt:
    """One try at a delivery; ``fault`` names the rule whose injected failure this was."""

    at_wall: float
    sim_at: int
    status_code: int | None
    error: str | None
    duration_ms: float
    fault: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Delivery:
    """One event on its way to one endpoint (a duplicated event has several)."""

    id: str
    system: str
    endpoint_id: str
    url: str
    event_id: str
    event_type: str
    created_sim_at: int
    status: DeliveryStatus = "pending"
    attempts: list[Attempt] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    lane: int = 0  # which of the endpoint's lanes it waits in (its order key's)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Delivery:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values["attempts"] = [Attempt(**a) for a in data.get("attempts", [])]
        values["faults"] = list(data.get("faults", []))
        return cls(**values)

    def copy(self) -> Delivery:
        # Attempts are frozen, so copying the lists is enough to detach from the runner.
        return dataclasses.replace(self, attempts=list(self.attempts), faults=list(self.faults))


Lane = tuple[str, str, int]  # (system, endpoint id, lane of the endpoint)


@dataclass
class Job:
    """Runner state of a pending delivery; the payload lives only as long as the job."""

    delivery: Delivery
    seq: int
    endpoint: Endpoint
    payload: bytes
    due: float
    injected_left: int = 0
    inject_rule: str | None = None
    # Reorder: held until a later delivery to the same endpoint is attempted, the world has
    # gone quiet (REORDER_QUIET_S) or this deadline.
    held_until: float | None = None
    in_flight: bool = False

    @property
    def lane(self) -> Lane:
        return (self.delivery.system, self.delivery.endpoint_id, self.delivery.lane)

    def ready_at(self) -> float:
        return self.due if self.held_until is None else max(self.due, self.held_until)

    def as_json(self, now: float) -> dict[str, Any]:
        """JSON-ready, waits given as what is left of them at ``now`` (monotonic)."""
        try:
            payload, encoding = self.payload.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            payload, encoding = base64.b64encode(self.payload).decode("ascii"), "base64"
        return {
            "seq": self.seq,
            "endpoint": self.endpoint.as_json(),
            "payload": payload,
            "payload_encoding": encoding,
            "due_in_s": max(0.0, self.due - now),
            "held_for_s": None if self.held_until is None else max(0.0, self.held_until - now),
            "injected_left": self.injected_left,
            "inject_rule": self.inject_rule,
        }

    @classmethod
    def from_json(cls, delivery: Delivery, data: dict[str, Any], now: float) -> Job:
        """``as_json``'s output back, its waits counted from ``now``."""
        text: str = data["payload"]
        if data.get("payload_encoding", "utf-8") == "base64":
            payload = base64.b64decode(text)
        else:
            payload = text.encode("utf-8")
        held = data.get("held_for_s")
        return cls(
            delivery,
            int(data["seq"]),
            Endpoint(**data["endpoint"]),
            payload,
            due=now + float(data.get("due_in_s", 0.0)),
            injected_left=int(data.get("injected_left", 0)),
            inject_rule=data.get("inject_rule"),
            held_until=None if held is None else now + float(held),
        )

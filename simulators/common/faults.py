"""The fault plan: rules as data, decided by the world's seeded random stream, hits recorded."""

from __future__ import annotations

import difflib
import fnmatch
import random
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

InboundKind = Literal[
    "throttle",
    "error",
    "outage",
    "latency",
    "hang",
    "reset",
    "malformed",
    "truncated",
    "ambiguous_commit",
]
OutboundKind = Literal["duplicate", "reorder", "delay", "drop", "fail_first"]
INBOUND_KINDS: frozenset[str] = frozenset(InboundKind.__args__)  # type: ignore[attr-defined]
OUTBOUND_KINDS: frozenset[str] = frozenset(OutboundKind.__args__)  # type: ignore[attr-defined]


class FaultRule(BaseModel):
    """One rule: where (system, operation glob), what (kind and its parameters), when and how often.

    Inbound rules match operationIds; outbound rules match event types (``invoice.*``).
    """

    model_config = ConfigDict(extra="forbid")

    id: str = ""
    system: str = "*"
    operation: str = "*"
    kind: InboundKind | OutboundKind
    start_at: int | None = Field(None, description="sim time (unix s) from which the rule is live")
    end_at: int | None = Field(None, description="sim time (unix s) at which it stops")
    after_calls: int = Field(0, ge=0, description="let this many matching calls pass first")
    max_hits: int | None = Field(None, ge=1)
    probability: float = Field(1.0, ge=0.0, le=1.0)
    # kind parameters
    status: int = Field(500, ge=400, le=599, description="error: status to answer")
    retry_after_s: int | None = Field(None, ge=0)
    should_retry: bool | None = Field(None, description="billing throttle: Stripe-Should-Retry")
    rate_per_s: float | None = Field(None, gt=0, description="throttle: token-bucket refill")
    burst: int | None = Field(None, ge=1, description="throttle: bucket size")
    latency_ms: int = Field(0, ge=0, le=60_000)
    latency_max_ms: int | None = Field(None, ge=0, le=60_000)
    hang_s: float = Field(30.0, gt=0, le=600)
    delay_s: float = Field(1.0, ge=0, le=3600, description="delay: wall seconds to hold")
    copies: int = Field(2, ge=2, le=20, description="duplicate: deliveries per event")
    attempts: int = Field(1, ge=1, le=50, description="fail_first: failed attempts")

    @model_validator(mode="after")
    def _check(self) -> FaultRule:
        if self.start_at is not None and self.end_at is not None and self.end_at <= self.start_at:
            raise ValueError("end_at must be after start_at")
        if self.latency_max_ms is not None and self.latency_max_ms < self.latency_ms:
            raise ValueError("latency_max_ms must be at least latency_ms")
        if (self.rate_per_s is None) != (self.burst is None) and self.kind == "throttle":
            raise ValueError("throttle takes rate_per_s and burst together")
        return self

    @property
    def inbound(self) -> bool:
        return self.kind in INBOUND_KINDS


class FaultTargetError(ValueError):
    """A rule aimed at a system, operation or event type that does not exist; ``param`` names
    the field at fault."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Targets:
    """What one system's rules may aim at: its operationIds and the event types it sends."""

    operations: frozenset[str]
    events: frozenset[str]


def check_targets(rule: FaultRule, systems: Mapping[str, Targets]) -> None:
    """Refuse a rule that could never fire: an unknown system, or an operation glob that
    matches none of the system's operationIds (inbound) or event types (outbound). The
    message names the close matches, so a typo is a clear 400, not a test passing vacuously."""
    if rule.system != "*" and rule.system not in systems:
        raise FaultTargetError(
            f"no {rule.system!r} system in this world{_close(rule.system, systems)}", "system"
        )
    chosen = systems.values() if rule.system == "*" else [systems[rule.system]]
    known: set[str] = set()
    for targets in chosen:
        known |= targets.operations if rule.inbound else targets.events
    what = "operationId" if rule.inbound else "event type"
    where = "any system" if rule.system == "*" else f"the {rule.system} system"
    if not known:
        raise FaultTargetError(
            f"{where} has no {what}s, so a {rule.kind} rule would never fire", "operation"
        )
    if rule.operation == "*" or any(fnmatch.fnmatchcase(n, rule.operation) for n in known):
        return
    raise FaultTargetError(
        f"{rule.operation!r} matches no {what} of {where}{_close(rule.operation, known)}",
        "operation",
    )


def _close(word: str, known: Collection[str]) -> str:
    matches = difflib.get_close_matches(word, sorted(known), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(map(repr, matches))}?" if matches else ""


@dataclass(frozen=True)
class FaultHit:
    """A fault the plan decided to inject."""

    seq: int
    rule_id: str
    kind: str
    system: str
    operation: str
    sim_at: int
    detail: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _RuleState:
    rule: FaultRule
    seen: int = 0
    hits: int = 0
    tokens: float = 0.0
    refilled_at: float = 0.0


class FaultPlan:
    """Ordered rules plus their counters; decisions come from one seeded random stream.

    Token-bucket throttling is the one decision that depends on wall time (it models a
    per-second rate limit); every other decision depends only on the seed and the order of
    calls, so the same seed and the same requests give the same faults.
    """

    def __init__(self, rng: random.Random, wall: Callable[[], float] = time.monotonic) -> None:
        self._rng = rng
        self._wall = wall
        self._rules: list[_RuleState] = []
        self._hits: list[FaultHit] = []
        self._next_id = 0
        self._lock = threading.Lock()

    # rules -------------------------------------------------------------------------------
    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            if not rule.id:
                self._next_id += 1
                rule = rule.model_copy(update={"id": f"rule-{self._next_id}"})
            if any(s.rule.id == rule.id for s in self._rules):
                raise ValueError(f"a fault rule with id {rule.id!r} exists already")
            state = _RuleState(rule, tokens=float(rule.burst or 0), refilled_at=self._wall())
            self._rules.append(state)
            return rule

    def remove(self, rule_id: str) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [s for s in self._rules if s.rule.id != rule_id]
            return len(self._rules) != before

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[FaultRule]:
        return [s.rule for s in self._rules]

    def hits(self) -> list[FaultHit]:
        return list(self._hits)

    def __bool__(self) -> bool:
        return bool(self._rules)

    # decisions ---------------------------------------------------------------------------
    def decide(
        self, system: str, operation: str, sim_at: int, *, inbound: bool, detail: str = ""
    ) -> list[FaultRule]:
        """The rules that fire for this call, in rule order; each is recorded as a hit."""
        if not self._rules:
            return []
        fired: list[FaultRule] = []
        with self._lock:
            for state in self._rules:
                rule = state.rule
                if rule.inbound != inbound or not self._matches(rule, system, operation, sim_at):
                    continue
                state.seen += 1
                if state.seen <= rule.after_calls:
                    continue
                if rule.max_hits is not None and state.hits >= rule.max_hits:
                    continue
                if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                    continue
                if (
                    rule.kind == "throttle"
                    and rule.rate_per_s is not None
                    and self._take_token(state)
                ):
                    continue
                state.hits += 1
                fired.append(rule)
                self._hits.append(
                    FaultHit(
                        len(self._hits) + 1, rule.id, rule.kind, system, operation, sim_at, detail
                    )
                )
        return fired

    def uniform(self, low: float, high: float) -> float:
        """A draw from the plan's seeded stream (latency ranges, reorder choices)."""
        with self._lock:
            return self._rng.uniform(low, high)

    @staticmethod
    def _matches(rule: FaultRule, system: str, operation: str, sim_at: int) -> bool:
        if rule.system not in ("*", system):
            return False
        if rule.operation != "*" and not fnmatch.fnmatchcase(operation, rule.operation):
            return False
        if rule.start_at is not None and sim_at < rule.start_at:
            return False
        return rule.end_at is None or sim_at < rule.end_at

    def _take_token(self, state: _RuleState) -> bool:
        """True when the bucket had a token (the call passes), False when it is throttled."""
        assert state.rule.rate_per_s is not None and state.rule.burst is not None
        now = self._wall()
        state.tokens = min(
            float(state.rule.burst),
            state.tokens + (now - state.refilled_at) * state.rule.rate_per_s,
        )
        state.refilled_at = now
        if state.tokens >= 1.0:
            state.tokens -= 1.0
            return True
        return False

    # persistence -------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "rules": [
                {"rule": s.rule.model_dump(), "seen": s.seen, "hits": s.hits} for s in self._rules
            ],
            "hits": [h.as_json() for h in self._hits],
            "next_id": self._next_id,
        }

    def restore(self, data: dict[str, Any]) -> None:
        with self._lock:
            self._rules = []
            for item in data.get("rules", []):
                rule = FaultRule.model_validate(item["rule"])
                self._rules.append(
                    _RuleState(
                        rule,
                        seen=item["seen"],
                        hits=item["hits"],
                        tokens=float(rule.burst or 0),
                        refilled_at=self._wall(),
                    )
                )
            self._hits = [FaultHit(**h) for h in data.get("hits", [])]
            self._next_id = data.get("next_id", 0)

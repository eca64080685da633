"""Steps on the world itself: the clock, period closes, fault windows, the integration process."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from harness.actors import StepFailed
from harness.oracle.arithmetic import after, instant
from harness.steps.expect import did_you_mean
from harness.steps.fixtures import entity_id
from harness.steps.registry import (
    Chooser,
    Context,
    EntityName,
    FaultsName,
    Lifecycle,
    NewFaults,
    Problem,
    StepKind,
    register,
)
from simulators.common.clock import ClockError, after_duration, iso, parse_instant
from simulators.common.faults import (
    INBOUND_KINDS,
    OUTBOUND_KINDS,
    FaultRule,
    FaultTargetError,
    Targets,
    check_targets,
)

if TYPE_CHECKING:
    from harness.oracle.billing import BillingReplay
    from harness.play import Run


@register("clock.advance")
class ClockAdvance(StepKind):
    """Lifecycles due in between run in order."""

    moves_money: ClassVar[bool] = True  # renewals, finalisations and cancellations fall due
    scalar_field: ClassVar[str | None] = "duration"
    duration: str | None = Field(None, description="ISO 8601; `P1M` is a calendar month")
    to: str | None = Field(None, description="an instant")

    @field_validator("to", mode="before")
    @classmethod
    def _datetime(cls, value: Any) -> Any:
        return value.isoformat() if isinstance(value, datetime) else value

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                after_duration(0, value)
            except ClockError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("to")
    @classmethod
    def _instant(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_instant(value)
            except ClockError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _one(self) -> ClockAdvance:
        if (self.duration is None) == (self.to is None):
            raise ValueError("give a duration or `to`, not both")
        return self

    def execute(self, run: Run) -> str:
        if self.to is not None:
            run.actors.control("POST", "/clock/set", {"to": self.to})
        else:
            run.actors.control("POST", "/clock/advance", {"duration": self.duration})
        return f"clock at {run.now_iso()}"

    def replay(self, oracle: BillingReplay, index: int) -> None:
        # The oracle's own calendar arithmetic, not the simulators' clock.
        oracle.advance(
            instant(self.to) if self.to is not None else after(oracle.now, str(self.duration))
        )

    def track(self, ctx: Context) -> None:
        if self.to is not None:
            ctx.now = max(ctx.now, parse_instant(self.to))
        else:
            ctx.now = after_duration(ctx.now, str(self.duration))

    @classmethod
    def generate(cls, c: Chooser, life: Lifecycle) -> dict[str, Any] | None:
        # Hours (a renewal draft finalising), days, and whole periods.
        return {"duration": c.pick(["PT2H", "P1D", "P6D", "P15D", "P1M"])}

    def check(self, ctx: Context) -> Iterator[Problem]:
        if self.to is not None and parse_instant(self.to) < ctx.now:
            yield Problem(
                ("to",), f"{self.to} is before the clock ({iso(ctx.now)}): it only moves on"
            )


class ClosePeriod(StepKind):
    entity: EntityName
    period: str = Field(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")
    action: Literal["close", "lock"] = "close"

    def set_period(self, run: Run, system: str) -> str:
        eid = entity_id(self.entity)
        state = {"close": "closed", "lock": "locked"}[self.action]
        run.actors.control("POST", f"/periods/{eid}/{self.period}", {"state": state}, system=system)
        return f"{system} {eid} {self.period} {state}"


@register("erp.close_period")
class ErpClosePeriod(ClosePeriod):
    """The ERP's accounting period closed (or locked) for the entity."""

    def execute(self, run: Run) -> str:
        return self.set_period(run, "erp")

    @classmethod
    def generate(cls, c: Chooser, life: Lifecycle) -> dict[str, Any] | None:
        found = life.closable(c, "erp")
        return None if found is None else {"entity": found[0], "period": found[1]}


@register("revrec.close_period")
class RevrecClosePeriod(ClosePeriod):
    """The subledger month closed: it publishes `period.closed` with the close journal."""

    def execute(self, run: Run) -> str:
        if self.action == "close":
            # The finance team closes the subledger month in its own API: the close journal
            # is published as `period.closed` for the integration to post.
            eid = entity_id(self.entity)
            run.actors.call("revrec", "POST", f"/v1/periods/{eid}/{self.period}/close", json={})
            return f"revrec {eid} {self.period} closed"
        return self.set_period(run, "revrec")

    @classmethod
    def generate(cls, c: Chooser, life: Lifecycle) -> dict[str, Any] | None:
        found = life.closable(c, "revrec")
        return None if found is None else {"entity": found[0], "period": found[1]}


@functools.cache
def fault_targets() -> dict[str, Targets]:
    """What fault rules may aim at in every system, as its simulator tells the control plane:
    the operationIds of its contract and the event types it sends."""
    from harness.up import SYSTEMS  # the simulators: only needed once rules are checked
    from simulators.common.simulator import CONTRACTS, contract_targets
    from simulators.crm.triggers import DEFAULT_TRIGGERS

    targets = {
        name: contract_targets(CONTRACTS / cls.contract_file) for name, cls in SYSTEMS.items()
    }
    # The CRM names its pushes by its triggers (a scenario cannot change them), not its contract.
    crm = targets["crm"]
    targets["crm"] = Targets(crm.operations, frozenset(t.event_type for t in DEFAULT_TRIGGERS))
    return targets


@register("faults.on")
class FaultsOn(StepKind):
    """Inbound and outbound faults, by the control plane's fault rules."""

    name: NewFaults
    rules: list[dict[str, Any]] = Field(min_length=1, description="the control plane's FaultRule")

    def execute(self, run: Run) -> str:
        ids = []
        for rule in self.rules:
            stored = run.actors.control("POST", "/faults", rule)
            ids.append(stored["id"])
        run.faults[self.name] = ids
        return f"faults {self.name}: {len(ids)} rule(s)"

    def track(self, ctx: Context) -> None:
        ctx.faults.add(self.name)

    @classmethod
    def generate(cls, c: Chooser, life: Lifecycle) -> dict[str, Any] | None:
        if life.ctx.faults:
            return None  # one window at a time
        return {"name": life.fresh("faults"), "rules": life.fault_rules(c)}

    def check(self, ctx: Context) -> Iterator[Problem]:
        if self.name in ctx.faults:
            yield Problem(("name",), f"faults {self.name!r} are on already")
        for n, raw in enumerate(self.rules):
            # Each rule on its own, as the control plane will take it: every bad one is named.
            yield from (Problem(("rules", n, *at), message) for at, message in rule_problems(raw))


def rule_problems(raw: dict[str, Any]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """What the control plane would refuse in a fault rule, each with where it is."""
    kind = raw.get("kind")
    kinds = sorted(INBOUND_KINDS | OUTBOUND_KINDS)
    if kind is not None and kind not in kinds:
        yield ("kind",), f"unknown fault kind {kind!r}{did_you_mean(str(kind), kinds)}"
    try:
        rule = FaultRule.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors():
            if error["loc"][:1] == ("kind",) and kind is not None:
                continue  # named above, once
            where = ".".join(str(part) for part in error["loc"])
            message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
            yield tuple(error["loc"]), f"{where or 'rule'}: {message}"
        return
    try:
        check_targets(rule, fault_targets())
    except FaultTargetError as exc:
        yield (exc.param,), str(exc)


@register("faults.off")
class FaultsOff(StepKind):
    """The named fault rules removed (all of them without a name)."""

    name: FaultsName | None = None

    def track(self, ctx: Context) -> None:
        if self.name is None:
            ctx.faults.clear()
        else:
            ctx.faults.discard(self.name)

    @classmethod
    def generate(cls, c: Chooser, life: Lifecycle) -> dict[str, Any] | None:
        return {"name": sorted(life.ctx.faults)[0]} if life.ctx.faults else None

    def check(self, ctx: Context) -> Iterator[Problem]:
        if self.name is not None and self.name not in ctx.faults and self.name in ctx.names:
            yield Problem(("name",), f"faults {self.name!r} are not on here")

    def execute(self, run: Run) -> str:
        names = [self.name] if self.name is not None else list(run.faults)
        for name in names:
            for rule_id in run.faults.pop(name, []):
                run.actors.control("DELETE", f"/faults/{rule_id}")
        return f"faults off: {', '.join(names) or 'none were on'}"


@register("integration")
class IntegrationControl(StepKind):
    """The integration process stopped, killed (SIGKILL), restarted or started."""

    scalar_field: ClassVar[str | None] = "action"
    action: Literal["stop", "kill", "restart", "start"]

    def track(self, ctx: Context) -> None:
        ctx.stopped = self.action in ("stop", "kill")
        if not ctx.stopped:
            ctx.unseen.clear()  # back up: it acts on every win it missed

    @classmethod
    def generate(cls, c: Chooser, life: Lifecycle) -> dict[str, Any] | None:
        return {"action": "start" if life.ctx.stopped else c.pick(["restart", "kill"])}

    def execute(self, run: Run) -> str:
        process = run.session.integration
        if process is None:
            raise StepFailed("no integration is configured in this run")
        run.expect_running = self.action in ("restart", "start")
        code = None
        if self.action == "kill":
            code = process.kill()
        elif self.action == "stop":
            code = process.stop()
        elif self.action == "restart":
            process.restart()
        else:
            process.start()
        return f"integration {self.action}" + (f" (exit {code})" if code is not None else "")

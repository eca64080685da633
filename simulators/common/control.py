"""Handlers of the control plane every simulator serves under /_sim."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from simulators.common.clock import (
    ClockConflict,
    ClockError,
    OutOfRange,
    after_duration,
    iso,
    parse_instant,
)
from simulators.common.errors import SimError
from simulators.common.faults import FaultRule, FaultTargetError, check_targets
from simulators.common.receivers import ReceiverRefused, check_receiver_url

if TYPE_CHECKING:
    from simulators.common.app import Call, Reply
    from simulators.common.simulator import Simulator


def _bad(message: str, param: str | None = None) -> SimError:
    return SimError(400, "invalid_request", message, param)


def _conflict(message: str, param: str) -> SimError:
    """Well formed, but not from where the clock stands now."""
    return SimError(409, "clock_conflict", message, param)


class ControlHandlers:
    """One method per control-plane operation; all act on the simulator's shared world."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.world = sim.world

    def _health(self) -> dict[str, Any]:
        now = self.world.clock.now()
        return {
            "system": self.sim.name,
            "status": "ok",
            "seed": self.world.seed,
            "now": now,
            "now_iso": iso(now),
            "in_flight": self.sim.journal.in_flight,
            "outbox_pending": self.world.dispatcher.pending(),
            "systems": sorted(self.world.systems),
        }

    def sim_health(self, call: Call) -> Reply:
        return self._health(), 200

    def sim_reset(self, call: Call) -> Reply:
        try:
            self.world.reset(call.body.get("seed"), call.body.get("start_at"))
        except ClockError as exc:
            raise _bad(str(exc), "start_at") from None
        return self._health(), 200

    def sim_get_seed(self, call: Call) -> Reply:
        return {"seed": self.world.seed}, 200

    def sim_set_seed(self, call: Call) -> Reply:
        self.world.reset(call.body["seed"])
        return self._health(), 200

    def _clock(self) -> dict[str, Any]:
        now = self.world.clock.now()
        return {"now": now, "iso": iso(now)}

    def sim_get_clock(self, call: Call) -> Reply:
        return self._clock(), 200

    def sim_advance_clock(self, call: Call) -> Reply:
        seconds, duration = call.body.get("seconds"), call.body.get("duration")
        if (seconds is None) == (duration is None):
            raise _bad("give exactly one of seconds or duration")
        try:
            now = self.world.clock.now()
            target = now + seconds if seconds is not None else after_duration(now, str(duration))
            self.world.clock.set(target)
        except ClockConflict as exc:
            raise _conflict(str(exc), "seconds" if seconds is not None else "duration") from None
        except ClockError as exc:
            raise _bad(str(exc), "duration") from None
        return self._clock(), 200

    def sim_set_clock(self, call: Call) -> Reply:
        try:
            target = parse_instant(call.body["to"])
        except OutOfRange as exc:
            # Before 1970 is before now; after 9999 is past the clock's end: both conflicts.
            raise _conflict(str(exc), "to") from None
        except (ClockError, OverflowError, OSError) as exc:
            raise _bad(str(exc), "to") from None
        try:
            self.world.clock.set(target)
        except ClockConflict as exc:
            raise _conflict(str(exc), "to") from None
        return self._clock(), 200

    def sim_list_faults(self, call: Call) -> Reply:
        plan = self.world.faults
        return {
            "rules": [r.model_dump() for r in plan.rules()],
            "hits": [h.as_json() for h in plan.hits()],
        }, 200

    def sim_add_fault(self, call: Call) -> Reply:
        try:
            rule = FaultRule.model_validate(call.body)
            targets = {name: sim.fault_targets() for name, sim in self.world.systems.items()}
            check_targets(rule, targets)
            rule = self.world.faults.add(rule)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise _bad(f"{first['msg']}", ".".join(map(str, first["loc"])) or None) from None
        except FaultTargetError as exc:
            raise _bad(str(exc), exc.param) from None
        except ValueError as exc:
            raise _bad(str(exc), "id") from None
        return rule.model_dump(), 201

    def sim_clear_faults(self, call: Call) -> Reply:
        removed = len(self.world.faults.rules())
        self.world.faults.clear()
        return {"removed": removed}, 200

    def sim_remove_fault(self, call: Call) -> Reply:
        if not self.world.faults.remove(call.path["rule_id"]):
            raise SimError(404, "not_found", f"no fault rule {call.path['rule_id']!r}")
        return {"removed": 1}, 200

    def sim_list_webhook_endpoints(self, call: Call) -> Reply:
        return {"data": [e.as_json() for e in self.sim.webhook_endpoints()]}, 200

    def sim_add_webhook_endpoint(self, call: Call) -> Reply:
        url = call.body["url"]
        try:
            # Here as well as in register_webhook: a simulator may register its own way.
            check_receiver_url(url, self.world.webhook_hosts)
            endpoint = self.sim.register_webhook(
                url, call.body.get("events"), call.body.get("secret")
            )
        except ReceiverRefused as exc:
            raise _bad(str(exc), "url") from None
        return endpoint.as_json(), 201

    def sim_remove_webhook_endpoint(self, call: Call) -> Reply:
        if not self.sim.unregister_webhook(call.path["endpoint_id"]):
            raise SimError(404, "not_found", f"no endpoint {call.path['endpoint_id']!r}")
        return {"removed": 1}, 200

    def sim_list_deliveries(self, call: Call) -> Reply:
        q = call.query
        found = self.world.dispatcher.deliveries(
            system=self.sim.name,
            event_id=q.get("event_id"),
            status=q.get("status"),
            limit=q.get("limit"),
        )
        return {
            "pending": self.world.dispatcher.pending(self.sim.name),
            "data": [d.as_json() for d in found],
        }, 200

    async def sim_drain_webhooks(self, call: Call) -> Reply:
        timeout = float(call.body.get("timeout_s", 10.0))
        drained = await self.world.dispatcher.wait_drained(timeout)
        return {"drained": drained, "pending": self.world.dispatcher.pending()}, 200

    def sim_set_period(self, call: Call) -> Reply:
        entity, period = call.path["entity"], call.path["period"]
        state = self.sim.set_period(entity, period, call.body["state"])
        return {"system": self.sim.name, "entity": entity, "period": period, "state": state}, 200

    def sim_journal(self, call: Call) -> Reply:
        q = call.query
        entries = self.sim.journal.entries(
            since_seq=q.get("since_seq", 0),
            operation_id=q.get("operation_id"),
            violations_only=q.get("violations_only", False),
            limit=q.get("limit", 1000),
        )
        return {
            "total": self.sim.journal.total,
            "in_flight": self.sim.journal.in_flight,
            "data": [e.as_json() for e in entries],
        }, 200

    def sim_snapshot(self, call: Call) -> Reply:
        return self.world.snapshot(), 200

    def sim_restore(self, call: Call) -> Reply:
        try:
            self.world.restore(call.body)
        except (KeyError, TypeError, ValueError) as exc:
            raise _bad(f"not a snapshot of this world: {exc}") from None
        return self._health(), 200

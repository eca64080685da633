"""The revenue-recognition simulator: our own JSON API around the revrec backend."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.datastructures import Headers

from simulators.common.errors import SimError
from simulators.common.simulator import RequestViolation, Simulator
from simulators.common.world import World
from simulators.revrec import render
from simulators.revrec.backend import RevrecBackend
from simulators.revrec.handlers import RevrecHandlers
from simulators.revrec.models import CONVENTIONS, Event
from simulators.revrec.store import RevrecStore

# Request-violation problems (the kernel's words) to our stable error codes.
_VIOLATION_CODES = {
    "missing": "parameter_missing",
    "unknown": "parameter_unknown",
    "invalid": "parameter_invalid",
    "malformed": "malformed_body",
}


class RevrecSimulator(Simulator):
    """A revenue subledger: contracts, schedules, billing events, periods and reports.

    ``convention`` is the recognition convention for contracts that do not name one
    (``day``, ``second`` or ``even_months``); ``token`` the bearer token clients present.
    """

    name = "revrec"
    contract_file = "revrec.yaml"
    idempotency_header = "Idempotency-Key"
    strict_parameters = True

    def __init__(self, world: World, *, token: str | None = None, convention: str = "day") -> None:
        if convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {', '.join(CONVENTIONS)}")
        super().__init__(world)
        self.token = token or f"rr_test_{world.ids.token('revrec_token', 24)}"
        self.store = RevrecStore()
        self.backend = RevrecBackend(world, self.store, self._publish, convention)
        self.handlers = RevrecHandlers(self.backend, self.store)

    def _publish(self, event: Event) -> None:
        payload = orjson.dumps(render.event(event))
        self.world.dispatcher.publish(self.name, event.id, event.type, payload)

    # identity ----------------------------------------------------------------------------
    def set_period(self, entity: str, period: str, state: str) -> str:
        """Revenue periods only close (closed periods are never restated)."""
        if state != "closed":
            raise SimError(
                409,
                "period_state_unsupported",
                "revenue periods close and never reopen; locking is not a revrec state",
                "state",
            )
        self.backend.close_period(
            self.backend.entity(entity).id, self.backend.checked_period(period)
        )
        return "closed"

    def credentials(self) -> dict[str, str]:
        return {"token": self.token}

    def authenticate(self, headers: Headers) -> SimError | None:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value.strip() == self.token:
            return None
        return self.unauthorized_error()

    def unauthorized_error(self) -> SimError:
        return SimError(
            401,
            "unauthorized",
            "Missing or invalid bearer token: send Authorization: Bearer <token>.",
            headers={"WWW-Authenticate": 'Bearer realm="revrec"'},
        )

    # errors ------------------------------------------------------------------------------
    def violation_error(self, violation: RequestViolation) -> SimError:
        if violation.problem == "too_large":
            return SimError(413, "request_too_large", violation.message)
        code = _VIOLATION_CODES.get(violation.problem, "invalid_request")
        message = violation.message[:1].upper() + violation.message[1:] + "."
        return SimError(400, code, message, violation.param)

    def not_found_error(self, method: str, path: str) -> SimError:
        return SimError(404, "not_found", f"No operation at {method} {path}.")

    # state -------------------------------------------------------------------------------
    def reset(self) -> None:
        super().reset()
        self.store.reset()

    def snapshot(self) -> dict[str, Any]:
        # "reports" are derived from "store" and ignored by restore.
        return {
            **super().snapshot(),
            "store": self.store.snapshot(),
            "reports": self.backend.reports(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        super().restore(state)
        self.store.restore(state.get("store", {}))

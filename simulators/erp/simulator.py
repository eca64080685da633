"""The ERP simulator: NetSuite's wire conventions, roles and limits around the ERP backend."""

from __future__ import annotations

import re
from typing import Any

from starlette.datastructures import Headers

from simulators.common.errors import Rendered, SimError, render_netsuite
from simulators.common.faults import FaultRule
from simulators.common.simulator import RequestViolation, Simulator
from simulators.common.world import World
from simulators.erp import errors
from simulators.erp.backend import ADMINISTRATOR, INTEGRATION, ErpBackend, Role
from simulators.erp.handlers import ErpHandlers
from simulators.erp.models import ledger_summary
from simulators.erp.seed import SeedData, default_seed
from simulators.erp.store import ErpStore

# Query parameters and headers: a violation there is INVALID_PARAMETER, in the body INVALID_CONTENT.
_NON_BODY = frozenset(
    {
        "limit",
        "offset",
        "expandSubResources",
        "prefer",
        "x-netsuite-idempotency-key",
        "id",
        "taskId",
    }
)
_BRACKET = re.compile(r"\[([^\]]*)\]")


def error_path(param: str) -> str:
    """The kernel's bracket path (``item[items][0][amount]``) as NetSuite's o:errorPath
    (``item.items[0].amount``)."""
    head, _, rest = param.partition("[")
    out = head
    for part in _BRACKET.findall("[" + rest) if rest else []:
        out += f"[{part}]" if part.isdigit() else f".{part}"
    return out


class ErpSimulator(Simulator):
    name = "erp"
    contract_file = "erp.yaml"
    # NetSuite's idempotency is not Stripe's replay: a reused key on an async request is an
    # error (IDEMPOTENCY_ERROR), implemented by the backend; sync requests ignore the key.
    idempotency_header = None
    strict_parameters = True

    def __init__(
        self,
        world: World,
        *,
        seed_data: SeedData | dict[str, Any] | None = None,
        concurrency_cap: int = 15,
        token: str | None = None,
        admin_token: str | None = None,
    ) -> None:
        super().__init__(world)
        if concurrency_cap < 1:
            raise ValueError("concurrency_cap must be at least 1")
        if isinstance(seed_data, dict):
            seed_data = SeedData.from_json(seed_data)
        self.seed_data = seed_data or default_seed()
        self.concurrency_cap = concurrency_cap
        self.token = token or f"nstkn_{world.ids.token('erp.token', 32)}"
        self.admin_token = admin_token or f"nsadm_{world.ids.token('erp.admin_token', 32)}"
        self.store = ErpStore()
        self.backend = ErpBackend(world, self.store, self.seed_data)
        self.backend.load_seed()
        self.handlers = ErpHandlers(self.backend, self.store, self.role)

    def set_period(self, entity: str, period: str, state: str) -> str:
        """Period control for the harness, with the administrator's rights (no token needed)."""
        record = self.backend.find("accountingPeriod", f"eid:{entity}-{period}")
        change = {
            "open": {"closed": False, "allLocked": False, "arLocked": False},
            "locked": {"allLocked": True},
            "closed": {"closed": True},
        }[state]
        self.backend.update_period(record, change, ADMINISTRATOR)
        return "closed" if record.closed else "locked" if record.all_locked else "open"

    def render(self, error: SimError) -> Rendered:
        if error.code == "method_not_allowed":
            error = SimError(
                405, "INVALID_METHOD", error.message, error.param, headers=error.headers
            )
        return render_netsuite(error)

    # identity ----------------------------------------------------------------------------
    def credentials(self) -> dict[str, str]:
        return {"token": self.token, "admin_token": self.admin_token}

    def _bearer(self, headers: Headers) -> str | None:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        return value.strip() if scheme.lower() == "bearer" else None

    def role(self, headers: Headers) -> Role:
        """The token's role: the admin token may override period restrictions (our choice)."""
        return ADMINISTRATOR if self._bearer(headers) == self.admin_token else INTEGRATION

    def authenticate(self, headers: Headers) -> SimError | None:
        if self._bearer(headers) in (self.token, self.admin_token):
            return None
        return self.unauthorized_error()

    def unauthorized_error(self) -> SimError:
        return SimError(
            401,
            errors.INVALID_LOGIN,
            "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite "
            "UI at Setup > Users/Roles > User Management > View Login Audit Trail.",
        )

    def admit(self, operation_id: str, headers: Headers) -> SimError | None:
        # in_flight counts this request too, so the cap-th concurrent request still passes.
        if self.journal.in_flight > self.concurrency_cap:
            return self._too_many()
        return None

    def _too_many(self, retry_after_s: int | None = None) -> SimError:
        return SimError(
            429,
            errors.CONCURRENCY_LIMIT_EXCEEDED,
            "Request limit exceeded: the account allows "
            f"{self.concurrency_cap} concurrent requests. Retry the request later.",
            headers={} if retry_after_s is None else {"Retry-After": str(retry_after_s)},
        )

    # errors in NetSuite's words ----------------------------------------------------------
    def violation_error(self, violation: RequestViolation) -> SimError:
        param = violation.param
        if violation.problem == "too_large":
            return SimError(413, errors.INVALID_CONTENT, violation.message)
        if violation.problem == "malformed" and param is None:
            return SimError(400, errors.INVALID_CONTENT, f"Invalid JSON: {violation.message}")
        code = errors.INVALID_CONTENT
        if param is not None and param.split("[")[0] in _NON_BODY:
            code = errors.INVALID_PARAMETER
        path = error_path(param) if param else None
        if violation.problem == "unknown" and path:
            detail = f"Invalid field name: '{path}' is not a field of this request."
            if code == errors.INVALID_PARAMETER:
                detail = f"Invalid query parameter name: {path}."
            return SimError(400, code, detail, path)
        if violation.problem == "missing" and path:
            return (
                errors.missing_field(path)
                if code == errors.INVALID_CONTENT
                else SimError(400, code, f"Missing required parameter: {path}.", path)
            )
        return SimError(400, code, f"Invalid value: {violation.message}", path)

    def not_found_error(self, method: str, path: str) -> SimError:
        return SimError(
            404, errors.NONEXISTENT_ID, f"The requested URL does not exist: {method} {path}."
        )

    def throttle_error(self, rule: FaultRule) -> SimError:
        return self._too_many(rule.retry_after_s)

    def outage_error(self, rule: FaultRule) -> SimError:
        return SimError(
            503,
            errors.UNEXPECTED_ERROR,
            "The service is temporarily unavailable. Try again later.",
            headers={"Retry-After": str(rule.retry_after_s or 30)},
        )

    def fault_error(self, rule: FaultRule) -> SimError:
        headers = {"Retry-After": str(rule.retry_after_s)} if rule.retry_after_s else {}
        return SimError(
            rule.status, errors.UNEXPECTED_ERROR, "An unexpected error occurred.", headers=headers
        )

    def internal_error(self) -> SimError:
        return SimError(500, errors.UNEXPECTED_ERROR, "An unexpected error occurred.")

    # state -------------------------------------------------------------------------------
    def reset(self) -> None:
        super().reset()
        self.backend.load_seed()

    def snapshot(self) -> dict[str, Any]:
        """The store, plus the general-ledger view the harness checks (derived, not restored)."""
        return {
            **super().snapshot(),
            "store": self.store.snapshot(),
            "ledger": ledger_summary(self.store.gl_lines()),
        }

    def restore(self, state: dict[str, Any]) -> None:
        super().restore(state)
        self.store.restore(state.get("store", {}))

"""The CRM simulator: Salesforce's wire conventions, limits and session around the CRM backend."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from starlette.datastructures import Headers

from simulators.common.errors import Rendered, SimError, render_salesforce
from simulators.common.faults import FaultRule, Targets
from simulators.common.simulator import RequestViolation, Simulator, contract_targets
from simulators.common.world import World
from simulators.crm import errors
from simulators.crm.backend import CrmBackend, compile_triggers
from simulators.crm.handlers import CrmHandlers
from simulators.crm.limits import ApiLimits, limit_info
from simulators.crm.schema import (
    DEFAULT_CURRENCIES,
    DEFAULT_STAGES,
    CustomField,
    Schema,
    Stage,
)
from simulators.crm.store import CrmStore
from simulators.crm.triggers import DEFAULT_TRIGGERS, Trigger

# Codes the kernel uses for errors it raises itself, in Salesforce's words.
_KERNEL_CODES = {
    "method_not_allowed": "METHOD_NOT_ALLOWED",
    "control_token": "INVALID_SESSION_ID",
    "not_found": "NOT_FOUND",
}


class CrmSimulator(Simulator):
    """A Salesforce REST subset: sObjects, SOQL, composite, limits and change notifications.

    ``custom_fields`` replaces :data:`~simulators.crm.schema.DEFAULT_CUSTOM_FIELDS` (extend it
    with ``{**DEFAULT_CUSTOM_FIELDS, "Account": (...)}``); ``triggers`` the default push on an
    Opportunity entering a closed stage. ``query_batch_size`` is the page size of query results
    (Salesforce's 2000) unless a request asks for another with ``Sforce-Query-Options``.
    """

    name = "crm"
    contract_file = "crm.yaml"
    idempotency_header = None
    # Salesforce ignores query parameters it does not know.
    strict_parameters = False

    def __init__(
        self,
        world: World,
        *,
        session_id: str | None = None,
        custom_fields: Mapping[str, Sequence[CustomField]] | None = None,
        stages: Sequence[Stage] = DEFAULT_STAGES,
        currencies: Sequence[str] = DEFAULT_CURRENCIES,
        corporate_currency: str | None = None,
        triggers: Sequence[Trigger] = DEFAULT_TRIGGERS,
        daily_quota: int = 100_000,
        concurrency_cap: int = 25,
        query_batch_size: int = 2000,
        api_version: str = "60.0",
    ) -> None:
        # Configuration is checked before the simulator joins the world.
        schema = Schema(
            custom_fields=custom_fields,
            stages=stages,
            currencies=currencies,
            corporate_currency=corporate_currency,
        )
        limits = ApiLimits(daily_quota, concurrency_cap)
        compiled = compile_triggers(triggers, schema, world.seed)
        if query_batch_size < 1:
            raise ValueError("query_batch_size must be positive")
        if not re.fullmatch(r"[0-9]{2}\.[0-9]", api_version):
            raise ValueError(f"api_version looks like 60.0, not {api_version!r}")
        super().__init__(world)
        self.schema = schema
        self.limits = limits
        self.store = CrmStore()
        self.backend = CrmBackend(
            world,
            self.store,
            schema,
            triggers=compiled,
            api_version=f"v{api_version}",
            emit=self._publish,
        )
        self.organization_id = self.backend.organization_id
        # Salesforce session ids read "<org id>!<opaque>"; two tokens give it a realistic length.
        self.session_id = session_id or (
            f"{self.organization_id[:15]}!AQ{world.ids.token('crm_session', 22)}"
            f"{world.ids.token('crm_session', 22)}"
        )
        self.handlers = CrmHandlers(
            self.backend,
            usage=self._usage,
            error_body=self.error_body,
            batch_size=query_batch_size,
        )

    def _publish(self, event_id: str, event_type: str, payload: bytes) -> None:
        self.world.dispatcher.publish(self.name, event_id, event_type, payload)

    def fault_targets(self) -> Targets:
        """Notifications are named by the configured triggers, not by the contract."""
        events = frozenset(t.trigger.event_type for t in self.backend.triggers)
        return Targets(contract_targets(self.contract).operations, events)

    def _usage(self) -> tuple[int, int]:
        return self.limits.usage(self.world.clock.now())

    # errors in Salesforce's envelope -------------------------------------------------------
    def render(self, error: SimError) -> Rendered:
        code = error.code if error.code.isupper() else _KERNEL_CODES.get(error.code, "")
        if not code:
            code = "UNKNOWN_EXCEPTION" if error.status >= 500 else "INVALID_REQUEST"
        rendered = render_salesforce(dataclasses.replace(error, code=code))
        body = rendered.body
        if error.extra.get("fields"):
            # render_salesforce carries one field; put back every field the error names.
            items = orjson.loads(body)
            items[0]["fields"] = list(error.extra["fields"])
            body = orjson.dumps(items)
        headers = {**rendered.headers, "Sforce-Limit-Info": limit_info(*self._usage())}
        return Rendered(rendered.status, headers, body)

    def error_body(self, error: SimError) -> Any:
        """The error array as JSON data (a composite subrequest's body)."""
        return orjson.loads(self.render(error).body)

    # identity and limits -------------------------------------------------------------------
    def credentials(self) -> dict[str, str]:
        return {
            "session_id": self.session_id,
            "instance_url_hint": "https",
            "organization_id": self.organization_id,
        }

    def authenticate(self, headers: Headers) -> SimError | None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() in ("bearer", "oauth") and token.strip() == self.session_id:
            return None
        return errors.invalid_session()

    def admit(self, operation_id: str, headers: Headers) -> SimError | None:
        with self.world.lock:
            return self.limits.admit(self.world.clock.now(), self.journal.in_flight)

    def violation_error(self, violation: RequestViolation) -> SimError:
        param = violation.param
        if param in ("version", "sobject"):
            return errors.not_found()
        if param == "q":
            text = "A query string has to be specified"
            return errors.malformed_query(
                text if violation.problem == "missing" else violation.message
            )
        if param == "locator":
            return errors.invalid_locator()
        if violation.problem == "too_large":
            return SimError(413, "REQUEST_ENTITY_TOO_LARGE", violation.message)
        if violation.problem == "missing" and param in ("start", "end"):
            return SimError(400, "MISSING_ARGUMENT", f"{param} parameter not specified")
        error = errors.json_parser(violation.message[:1].upper() + violation.message[1:])
        if violation.location == "body" and param and "." not in param and "[" not in param:
            error.param = param  # a record field: Salesforce names it in `fields`
        return error

    def not_found_error(self, method: str, path: str) -> SimError:
        return errors.not_found()

    def method_not_allowed_error(self, method: str, path: str) -> SimError:
        return errors.method_not_allowed(method)

    def unauthorized_error(self) -> SimError:
        return errors.invalid_session()

    def throttle_error(self, rule: FaultRule) -> SimError:
        headers = {"Retry-After": str(rule.retry_after_s)} if rule.retry_after_s else {}
        return SimError(
            403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", headers=headers
        )

    def outage_error(self, rule: FaultRule) -> SimError:
        return SimError(
            503,
            "SERVER_UNAVAILABLE",
            "The server is unavailable to handle the request. Typically this issue occurs if "
            "the server is down for maintenance or is currently overloaded.",
            headers={"Retry-After": str(rule.retry_after_s or 30)},
        )

    def fault_error(self, rule: FaultRule) -> SimError:
        headers = {"Retry-After": str(rule.retry_after_s)} if rule.retry_after_s else {}
        if rule.status >= 500:
            code, message = "UNKNOWN_EXCEPTION", "An unexpected error occurred."
        elif rule.status in (403, 429):
            code, message = "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."
        else:
            code, message = "INVALID_REQUEST", f"Injected error {rule.status}."
        return SimError(rule.status, code, message, headers=headers)

    def internal_error(self) -> SimError:
        return SimError(
            500,
            "UNKNOWN_EXCEPTION",
            "An unexpected error occurred. Please include this ErrorId if you contact support.",
        )

    # state ---------------------------------------------------------------------------------
    def reset(self) -> None:
        super().reset()
        self.store.reset()
        self.limits.reset()
        self.backend.discard()
        self.backend.ensure_standard_pricebook()

    def snapshot(self) -> dict[str, Any]:
        return {
            **super().snapshot(),
            "store": self.store.snapshot(),
            "limits": self.limits.snapshot(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        super().restore(state)
        self.store.restore(state.get("store", {}))
        self.limits.restore(state.get("limits", {}))
        self.backend.discard()
        self.backend.ensure_standard_pricebook()

"""The base every simulator extends: its contract, handlers, credentials, errors and state."""

from __future__ import annotations

import functools
from importlib.resources import files
from pathlib import Path
from typing import Any, ClassVar

import yaml
from starlette.datastructures import Headers

from simulators.common.deliveries import Endpoint, hmac_signature
from simulators.common.errors import Rendered, SimError, render_problem
from simulators.common.faults import FaultRule, Targets
from simulators.common.idempotency import IdempotencyCache
from simulators.common.ids import IdFactory
from simulators.common.journal import Journal
from simulators.common.receivers import check_receiver_url
from simulators.common.world import World

# Package data: simulators/_data/contracts links to the repository's contracts/ and the wheel
# carries a copy, so an installed harness finds them too.
CONTRACTS = Path(str(files("simulators") / "_data" / "contracts" / "openapi"))


class RequestViolation(Exception):
    """A request that breaks the contract; ``problem`` is unknown, missing, invalid or malformed."""

    def __init__(
        self, problem: str, message: str, param: str | None = None, location: str | None = None
    ) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message
        self.param = param
        # query, path, header or body: an unknown query parameter is not an unknown field.
        self.location = location


class Simulator:
    """One vendor system in a world. Subclasses set the class attributes and the hooks."""

    name: ClassVar[str]
    contract_file: ClassVar[str]
    # Header carrying idempotency keys on POST; None when the vendor has none on sync writes.
    idempotency_header: ClassVar[str | None] = None
    # Reject query parameters the contract does not declare (Stripe does).
    strict_parameters: ClassVar[bool] = False
    max_body_bytes: ClassVar[int] = 1 << 20

    def __init__(self, world: World) -> None:
        self.world = world
        self.journal = Journal(self.name, activity=world.activity)
        # Request ids are deterministic but not world state: serving a GET changes no snapshot.
        self.request_ids = IdFactory(world.seed)
        self.idempotency = IdempotencyCache()
        self.handlers: Any = None
        # Endpoints registered through the control plane (billing uses its own Stripe objects).
        self.endpoints: dict[str, Endpoint] = {}
        world.register(self)

    @property
    def contract(self) -> Path:
        return CONTRACTS / self.contract_file

    def render(self, error: SimError) -> Rendered:
        """The error in this vendor's envelope."""
        return render_problem(error)

    def fault_targets(self) -> Targets:
        """The operationIds and event types fault rules may aim at (see ``contract_targets``)."""
        return contract_targets(self.contract)

    # identity ----------------------------------------------------------------------------
    def credentials(self) -> dict[str, str]:
        return {}

    def authenticate(self, headers: Headers) -> SimError | None:
        """None when the request carries valid credentials, else the vendor's auth error."""
        return None

    def admit(self, operation_id: str, headers: Headers) -> SimError | None:
        """After authentication: the vendor's own limits (API quotas, concurrency caps).

        ``self.journal.in_flight`` counts this request and every other one being served."""
        return None

    def response_headers(self) -> dict[str, str]:
        """Headers the vendor adds to every response (limits, versions)."""
        return {}

    # webhooks ----------------------------------------------------------------------------
    def webhook_endpoints(self) -> list[Endpoint]:
        return list(self.endpoints.values())

    def register_webhook(
        self, url: str, events: list[str] | None = None, secret: str | None = None
    ) -> Endpoint:
        """A receiver for this system's events, with the secret that signs its deliveries.

        ReceiverRefused for a URL that is not loopback or one of the world's webhook hosts."""
        check_receiver_url(url, self.world.webhook_hosts)
        ids = self.world.ids
        endpoint = Endpoint(
            id=ids.next("sim_we"),
            system=self.name,
            url=url,
            secret=secret or f"whsec_{ids.token('whsec', 32)}",
            events=list(events or ["*"]),
        )
        self.endpoints[endpoint.id] = endpoint
        return endpoint

    def unregister_webhook(self, endpoint_id: str) -> bool:
        """Remove an endpoint and cancel what is still queued for it."""
        if self.endpoints.pop(endpoint_id, None) is None:
            return False
        self.world.dispatcher.cancel_endpoint(self.name, endpoint_id)
        return True

    def sign_webhook(self, endpoint: Endpoint, payload: bytes, timestamp: int) -> dict[str, str]:
        """Headers that let the receiver verify a delivery (``timestamp`` is wall-clock unix s)."""
        signature = hmac_signature(endpoint.secret, payload, timestamp)
        return {"X-Sim-Signature": f"t={timestamp},v1={signature}"}

    # periods ---------------------------------------------------------------------------
    def set_period(self, entity: str, period: str, state: str) -> str:
        """Open, lock or close a period (``YYYY-MM``) of an entity; the state it ends in."""
        raise SimError(404, "not_supported", f"the {self.name} simulator has no periods")

    # errors in the vendor's words --------------------------------------------------------
    def violation_error(self, violation: RequestViolation) -> SimError:
        if violation.problem == "too_large":
            return SimError(413, "request_too_large", violation.message)
        code = {
            "unknown": "parameter_unknown",
            "missing": "parameter_missing",
            "malformed": "malformed_body"
            if violation.location == "body"
            else "malformed_parameter",
        }.get(violation.problem, "parameter_invalid")
        return SimError(400, code, violation.message, violation.param)

    def method_not_allowed_error(self, method: str, path: str) -> SimError:
        return SimError(405, "method_not_allowed", f"{method} is not allowed on {path}.")

    def not_found_error(self, method: str, path: str) -> SimError:
        return SimError(404, "not_found", f"Unrecognized request URL ({method}: {path}).")

    def unauthorized_error(self) -> SimError:
        return SimError(401, "unauthorized", "Missing or invalid credentials.")

    def throttle_error(self, rule: FaultRule) -> SimError:
        return SimError(429, "rate_limited", "Too many requests.", headers=_retry_after(rule, 1))

    def outage_error(self, rule: FaultRule) -> SimError:
        return SimError(
            503, "unavailable", "The service is unavailable.", headers=_retry_after(rule, 30)
        )

    def fault_error(self, rule: FaultRule) -> SimError:
        return SimError(
            rule.status,
            "injected_error",
            f"Injected error {rule.status}.",
            headers=_retry_after(rule, None),
        )

    def internal_error(self) -> SimError:
        return SimError(500, "internal_error", "The simulator failed on this request.")

    def idempotency_mismatch_error(self, key: str) -> SimError:
        return SimError(
            400,
            "idempotency_error",
            f"Idempotency key {key!r} was used with different parameters.",
            kind="idempotency_error",
        )

    def idempotency_in_flight_error(self, key: str) -> SimError:
        return SimError(
            409,
            "idempotency_key_in_use",
            f"A request with idempotency key {key!r} is still in progress.",
        )

    # state -------------------------------------------------------------------------------
    def reset(self) -> None:
        self.journal.clear()
        self.idempotency = IdempotencyCache()
        self.endpoints.clear()

    def snapshot(self) -> dict[str, Any]:
        return {
            "idempotency": self.idempotency.snapshot(),
            "endpoints": [e.as_json() for e in self.endpoints.values()],
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.idempotency.restore(state.get("idempotency", []))
        self.endpoints = {e["id"]: Endpoint(**e) for e in state.get("endpoints", [])}


@functools.cache
def contract_targets(contract: Path) -> Targets:
    """A contract's operationIds, and the event types it names: the enum of its ``Event``
    schema's ``type`` or of the event types a webhook endpoint may subscribe to (Stripe's
    ``webhook_enabled_event``), ``*`` aside."""
    with open(contract, encoding="utf-8") as handle:
        spec = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    operations = {
        op["operationId"]
        for item in spec.get("paths", {}).values()
        for method, op in item.items()
        if method in ("get", "put", "post", "patch", "delete") and "operationId" in op
    }
    schemas = spec.get("components", {}).get("schemas", {})
    named = [
        schemas.get("Event", {}).get("properties", {}).get("type", {}).get("enum", []),
        schemas.get("webhook_enabled_event", {}).get("enum", []),
    ]
    events = {name for names in named for name in names if name != "*"}
    return Targets(frozenset(operations), frozenset(events))


def _retry_after(rule: FaultRule, default: int | None) -> dict[str, str]:
    value = rule.retry_after_s if rule.retry_after_s is not None else default
    return {} if value is None else {"Retry-After": str(value)}

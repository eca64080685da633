"""The billing simulator: Stripe's wire conventions around the billing backend."""

from __future__ import annotations

import base64
import functools
from typing import Any

from starlette.datastructures import Headers

from simulators.billing import errors, render
from simulators.billing.backend import BillingBackend
from simulators.billing.handlers import BillingHandlers
from simulators.billing.models import Event
from simulators.billing.store import BillingStore
from simulators.common.deliveries import Endpoint, hmac_signature
from simulators.common.errors import Rendered, SimError
from simulators.common.faults import FaultRule
from simulators.common.simulator import RequestViolation, Simulator
from simulators.common.world import World


class BillingSimulator(Simulator):
    name = "billing"
    contract_file = "billing.yaml"
    idempotency_header = "Idempotency-Key"
    strict_parameters = True

    def __init__(self, world: World, api_key: str | None = None) -> None:
        super().__init__(world)
        self.api_key = api_key or f"sk_test_{world.ids.token('api_key', 24)}"
        self.store = BillingStore()
        self.backend = BillingBackend(world, self.store, self._publish)
        self.handlers = BillingHandlers(self.backend, self.store)

    def render(self, error: SimError) -> Rendered:
        return errors.render(error)

    def _publish(self, event: Event, obj: dict[str, Any]) -> None:
        self.world.dispatcher.publish(
            self.name,
            event.id,
            event.type,
            functools.partial(render.event_payload, event),
            _customer_of(obj),
        )

    # identity ----------------------------------------------------------------------------
    def credentials(self) -> dict[str, str]:
        return {"api_key": self.api_key}

    def authenticate(self, headers: Headers) -> SimError | None:
        auth = headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        key = None
        if scheme.lower() == "bearer":
            key = value.strip()
        elif scheme.lower() == "basic":
            try:
                key = base64.b64decode(value).decode().split(":", 1)[0]
            except (ValueError, UnicodeDecodeError):
                key = None
        if key == self.api_key:
            return None
        if not auth:
            return SimError(
                401,
                "",
                "You did not provide an API key. You need to provide your "
                "API key in the Authorization header, using Bearer auth.",
            )
        shown = (key or "")[:8] + "*" * max(0, len(key or "") - 12) + (key or "")[-4:]
        return SimError(401, "api_key_invalid", f"Invalid API Key provided: {shown}")

    def response_headers(self) -> dict[str, str]:
        return {"Stripe-Version": render.API_VERSION}

    # errors in Stripe's words ------------------------------------------------------------
    def violation_error(self, violation: RequestViolation) -> SimError:
        param = violation.param
        if violation.problem == "unknown" and param:
            return SimError(400, "parameter_unknown", f"Received unknown parameter: {param}", param)
        if violation.problem == "missing" and param:
            return SimError(400, "parameter_missing", f"Missing required param: {param}.", param)
        if violation.problem == "invalid" and "64-bit" in violation.message:
            return SimError(
                400,
                "parameter_invalid_integer",
                f"Invalid integer: {violation.param} is out of range.",
                param,
            )
        if violation.problem == "too_large":
            return SimError(413, "request_too_large", violation.message)
        code = "parameter_invalid" if param else "invalid_request"
        return SimError(400, code, violation.message[:1].upper() + violation.message[1:], param)

    def not_found_error(self, method: str, path: str) -> SimError:
        return SimError(
            404,
            "",
            f"Unrecognized request URL ({method}: {path}). Please see "
            "https://docs.stripe.com or we can help at https://support.stripe.com/.",
        )

    def throttle_error(self, rule: FaultRule) -> SimError:
        headers = {}
        if rule.should_retry is not None:
            headers["Stripe-Should-Retry"] = "true" if rule.should_retry else "false"
        if rule.retry_after_s is not None:
            headers["Retry-After"] = str(rule.retry_after_s)
        return SimError(
            429,
            "rate_limit",
            "Request rate limit exceeded. Learn more about rate "
            "limits here https://stripe.com/docs/rate-limits.",
            headers=headers,
        )

    def outage_error(self, rule: FaultRule) -> SimError:
        return SimError(
            503,
            "",
            "Stripe is temporarily unavailable.",
            kind="api_error",
            headers={"Retry-After": str(rule.retry_after_s or 1)},
        )

    def fault_error(self, rule: FaultRule) -> SimError:
        headers = {"Retry-After": str(rule.retry_after_s)} if rule.retry_after_s else {}
        kind = "api_error" if rule.status >= 500 else "invalid_request_error"
        return SimError(
            rule.status,
            "",
            "An error occurred with our connection to Stripe.",
            kind=kind,
            headers=headers,
        )

    def internal_error(self) -> SimError:
        return SimError(
            500,
            "",
            "An unknown error occurred.",
            kind="api_error",
            headers={"Stripe-Should-Retry": "false"},
        )

    def idempotency_mismatch_error(self, key: str) -> SimError:
        return SimError(
            400,
            "idempotency_key_in_use",
            "Keys for idempotent requests can only be used with the same parameters "
            f"they were first used with. Try using a key other than '{key}' if you "
            "meant to execute a different request.",
            kind="idempotency_error",
        )

    def idempotency_in_flight_error(self, key: str) -> SimError:
        return SimError(
            409,
            "idempotency_key_in_use",
            "There is currently another in-progress request using this Stripe API "
            f"key and idempotency key '{key}'. Please try again later.",
            kind="invalid_request_error",
        )

    # webhooks ----------------------------------------------------------------------------
    def webhook_endpoints(self) -> list[Endpoint]:
        stripe_endpoints = [
            Endpoint(
                w.id,
                self.name,
                w.url,
                w.secret,
                list(w.enabled_events),
                enabled=w.status == "enabled",
            )
            for w in self.store.webhook_endpoints.values()
            if not w.deleted
        ]
        return stripe_endpoints + super().webhook_endpoints()

    def register_webhook(
        self, url: str, events: list[str] | None = None, secret: str | None = None
    ) -> Endpoint:
        """Billing receivers are Stripe webhook endpoints, listable through the Stripe API."""
        with self.world.lock:
            record = self.backend.create_webhook_endpoint(
                url=url, enabled_events=list(events or ["*"])
            )
            if secret:
                record.secret = secret
        return next(e for e in self.webhook_endpoints() if e.id == record.id)

    def unregister_webhook(self, endpoint_id: str) -> bool:
        record = self.store.webhook_endpoints.get(endpoint_id)
        if record is not None and not record.deleted:
            with self.world.lock:
                self.backend.delete_webhook_endpoint(endpoint_id)
            return True
        return super().unregister_webhook(endpoint_id)

    def sign_webhook(self, endpoint: Endpoint, payload: bytes, timestamp: int) -> dict[str, str]:
        signature = hmac_signature(endpoint.secret, payload, timestamp)
        return {
            "Stripe-Signature": f"t={timestamp},v1={signature}",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }

    # state -------------------------------------------------------------------------------
    def reset(self) -> None:
        super().reset()
        self.store.reset()

    def snapshot(self) -> dict[str, Any]:
        return {**super().snapshot(), "store": self.store.snapshot()}

    def restore(self, state: dict[str, Any]) -> None:
        super().restore(state)
        self.store.restore(state.get("store", {}))


def _customer_of(obj: dict[str, Any]) -> str:
    """The customer an event's object is about (its order key: one customer's events arrive
    in order), "" when it is about none (a price, a product)."""
    customer = obj.get("id") if obj.get("object") == "customer" else obj.get("customer")
    if isinstance(customer, dict):  # expanded
        customer = customer.get("id")
    return customer if isinstance(customer, str) else ""

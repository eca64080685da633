"""Stripe's errors as typed values: status, type, code, message and the parameter at fault."""

from __future__ import annotations

import orjson

from simulators.common.errors import Rendered, SimError


def invalid(message: str, param: str | None = None, code: str = "parameter_invalid") -> SimError:
    return SimError(400, code, message, param, kind="invalid_request_error")


def missing_param(param: str) -> SimError:
    return SimError(400, "parameter_missing", f"Missing required param: {param}.", param)


def unknown_param(param: str) -> SimError:
    return SimError(400, "parameter_unknown", f"Received unknown parameter: {param}", param)


def no_such(kind: str, object_id: str, param: str = "id") -> SimError:
    return SimError(404, "resource_missing", f"No such {kind}: '{object_id}'", param)


def state(message: str, param: str | None = None) -> SimError:
    """A request that is valid in form but not in the object's current state."""
    return SimError(400, "invalid_request", message, param)


def card_declined(decline_code: str) -> SimError:
    messages = {
        "insufficient_funds": "Your card has insufficient funds.",
        "expired_card": "Your card has expired.",
    }
    return SimError(
        402,
        "card_declined",
        messages.get(decline_code, "Your card was declined."),
        None,
        kind="card_error",
        extra={"decline_code": decline_code},
    )


def render(err: SimError) -> Rendered:
    """Stripe's envelope ``{"error": {...}}``: ``type`` and ``message`` always; ``code``,
    ``doc_url`` and ``param`` only when they have a value, as Stripe leaves them out."""
    error: dict[str, object] = {"type": err.kind, "message": err.message}
    if err.code:
        error["code"] = err.code
        error["doc_url"] = f"https://docs.stripe.com/error-codes/{err.code.replace('_', '-')}"
    if err.param:
        error["param"] = err.param
    error.update(err.extra)
    body = orjson.dumps({"error": error})
    return Rendered(err.status, {"content-type": "application/json", **err.headers}, body)

"""Stripe's errors as typed values: status, type, code, message and the parameter at fault."""

from __future__ import annotations

from simulators.common.errors import SimError


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

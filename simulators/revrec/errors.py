"""Revrec's errors as typed values: status, stable code, message and the parameter at fault."""

from __future__ import annotations

from simulators.common.errors import SimError


def no_such(kind: str, object_id: str, param: str) -> SimError:
    """404: an id (or external id) that names nothing."""
    return SimError(404, "resource_missing", f"No such {kind}: {object_id!r}.", param)


def unprocessable(code: str, message: str, param: str | None = None) -> SimError:
    """422: well-formed input that breaks a revenue rule (periods, currencies, quantities)."""
    return SimError(422, code, message, param)


def conflict(code: str, message: str, param: str | None = None) -> SimError:
    """409: valid input the current state refuses (closed periods, reused external ids)."""
    return SimError(409, code, message, param)

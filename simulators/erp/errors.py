"""NetSuite's errors as typed values: status, o:errorCode, detail and the o:errorPath at fault."""

from __future__ import annotations

from simulators.common.errors import SimError

# Codes NetSuite documents for REST web services; CONCURRENCY_LIMIT_EXCEEDED and DUP_RCRD are
# our choices (NetSuite documents the 429 but not its code; DUP_RCRD is SOAP's duplicate code).
INVALID_LOGIN = "INVALID_LOGIN"
INVALID_CONTENT = "INVALID_CONTENT"
INVALID_PARAMETER = "INVALID_PARAMETER"
NONEXISTENT_ID = "NONEXISTENT_ID"
USER_ERROR = "USER_ERROR"
INSUFFICIENT_PERMISSION = "INSUFFICIENT_PERMISSION"
IDEMPOTENCY_ERROR = "IDEMPOTENCY_ERROR"
CONCURRENCY_LIMIT_EXCEEDED = "CONCURRENCY_LIMIT_EXCEEDED"
DUP_RCRD = "DUP_RCRD"
UNEXPECTED_ERROR = "UNEXPECTED_ERROR"


def invalid_value(path: str, value: object, why: str = "") -> SimError:
    """A field whose value NetSuite cannot use: a bad reference, date or amount."""
    detail = (
        "Error while accessing a resource. You have entered an Invalid Field Value "
        f"{value} for the following field: {path}"
    )
    return SimError(400, INVALID_CONTENT, f"{detail}. {why}" if why else detail, path or None)


def missing_field(path: str) -> SimError:
    return SimError(
        400,
        INVALID_CONTENT,
        f"Error while accessing a resource. Please enter value(s) for: {path}",
        path,
    )


def user_error(message: str, path: str | None = None) -> SimError:
    """A request that is well formed but breaks a rule of the ledger or the record's state."""
    return SimError(400, USER_ERROR, f"Error while accessing a resource. {message}", path)


def inactive_reference(
    field: str, record_id: str, path: str, subsidiary: str | None = None
) -> SimError:
    """A reference to a record made inactive (an item, a customer, a subsidiary, an account).

    NetSuite's words name the reference key, not the cause: "Invalid item reference key 12."
    and, for a customer, "Invalid entity reference key 5 for subsidiary 1." (what imports and
    integrations report; see docs/erp.md). A client finds out why by reading the record."""
    where = f" for subsidiary {subsidiary}" if subsidiary is not None else ""
    return user_error(f"Invalid {field} reference key {record_id}{where}.", path)


def nonexistent(kind: str, key: str) -> SimError:
    return SimError(
        404,
        NONEXISTENT_ID,
        f"The record instance does not exist. Provide a valid record instance ID. ({kind} {key})",
    )


def duplicate(kind: str, external_id: str) -> SimError:
    return SimError(
        400,
        DUP_RCRD,
        f"Error while accessing a resource. A {kind} record with the external ID "
        f"'{external_id}' already exists. Use PUT …/{kind}/eid:{external_id} to upsert it.",
        "externalId",
    )


def bad_parameter(message: str, param: str | None = None) -> SimError:
    return SimError(400, INVALID_PARAMETER, message, param)


def forbidden(message: str) -> SimError:
    return SimError(403, INSUFFICIENT_PERMISSION, message)


def idempotency(job_location: str) -> SimError:
    return SimError(
        400,
        IDEMPOTENCY_ERROR,
        "A request with the same idempotency key is already submitted. See the "
        '"Location" header for a link to the previously submitted job',
        headers={"Location": job_location},
    )

"""Salesforce's errors as typed values: status, errorCode, message and the fields at fault."""

from __future__ import annotations

from collections.abc import Sequence

from simulators.common.errors import SimError


def error(code: str, message: str, fields: Sequence[str] = (), status: int = 400) -> SimError:
    """An error for the ``[{"message", "errorCode", "fields"}]`` array.

    ``fields`` of more than one name ride in ``extra`` because the kernel's SimError carries a
    single ``param``; the simulator's ``render`` puts them all back in the array.
    """
    extra = {"fields": list(fields)} if len(fields) > 1 else {}
    return SimError(status, code, message, fields[0] if fields else None, extra=extra)


def not_found() -> SimError:
    return SimError(404, "NOT_FOUND", "The requested resource does not exist")


def no_external_id_field(name: str) -> SimError:
    # Salesforce reads /sobjects/Type/<x> with an x that is no id as an external id field name.
    return SimError(
        404,
        "NOT_FOUND",
        f"Provided external ID field does not exist or is not accessible: {name}",
    )


def entity_deleted() -> SimError:
    return SimError(404, "ENTITY_IS_DELETED", "entity is deleted")


def invalid_session() -> SimError:
    return SimError(401, "INVALID_SESSION_ID", "Session expired or invalid")


def malformed_query(message: str) -> SimError:
    return SimError(400, "MALFORMED_QUERY", message)


def json_parser(message: str) -> SimError:
    return SimError(400, "JSON_PARSER_ERROR", message)


def no_such_column(sobject: str, name: str) -> SimError:
    return SimError(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}")


def integrity(message: str, field: str) -> SimError:
    return error("FIELD_INTEGRITY_EXCEPTION", f"field integrity exception: {message}", [field])


def delete_failed(message: str) -> SimError:
    return SimError(400, "DELETE_FAILED", message)


def invalid_locator() -> SimError:
    return SimError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")


def method_not_allowed(method: str) -> SimError:
    return SimError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed.")

"""Typed simulator errors and one renderer per vendor error envelope."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass
class SimError(Exception):
    """An error a simulator answers with: status, vendor code, message and the field at fault.

    ``kind`` is the vendor's error family (Stripe's ``type``); ``headers`` are added to the
    response (``Retry-After``, ``Stripe-Should-Retry``).
    """

    status: int
    code: str
    message: str
    param: str | None = None
    kind: str = "invalid_request_error"
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


@dataclass(frozen=True)
class Rendered:
    status: int
    headers: dict[str, str]
    body: bytes


Renderer = Callable[[SimError], Rendered]


def _json(status: int, payload: Any, headers: dict[str, str], media: str) -> Rendered:
    return Rendered(status, {"content-type": media, **headers}, orjson.dumps(payload))


def render_stripe(err: SimError) -> Rendered:
    """Stripe: ``{"error": {"type", "code", "message", "param", "doc_url"}}``."""
    error: dict[str, Any] = {
        "type": err.kind,
        "code": err.code or None,
        "message": err.message,
        "param": err.param,
        "doc_url": f"https://docs.stripe.com/error-codes/{err.code.replace('_', '-')}"
        if err.code
        else None,
        "request_log_url": None,
    }
    error.update(err.extra)
    return _json(err.status, {"error": error}, err.headers, "application/json")


def render_salesforce(err: SimError) -> Rendered:
    """Salesforce: a JSON array ``[{"message", "errorCode", "fields"}]``."""
    item: dict[str, Any] = {"message": err.message, "errorCode": err.code}
    fields = err.extra.get("fields") or ([err.param] if err.param else [])
    if fields:
        item["fields"] = list(fields)
    return _json(err.status, [item], err.headers, "application/json")


def render_netsuite(err: SimError) -> Rendered:
    """NetSuite: problem JSON with ``o:errorDetails``."""
    detail: dict[str, Any] = {"detail": err.message, "o:errorCode": err.code}
    if err.param:
        detail["o:errorPath"] = err.param
    payload = {
        "type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15",
        "title": _REASONS.get(err.status, "Error"),
        "status": err.status,
        "o:errorDetails": [detail],
    }
    return _json(err.status, payload, err.headers, "application/vnd.oracle.resource+json")


def render_problem(err: SimError) -> Rendered:
    """Our own APIs: RFC 9457 problem JSON with a stable ``code`` and the ``param`` at fault."""
    payload = {
        "type": f"about:blank#{err.code}",
        "title": _REASONS.get(err.status, "Error"),
        "status": err.status,
        "code": err.code,
        "detail": err.message,
        "param": err.param,
    }
    return _json(err.status, payload, err.headers, "application/problem+json")


_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

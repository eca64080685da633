"""Composite subrequests: URLs routed to operations, ``@{ref.path}`` references resolved."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

_VERSION = r"^/services/data/(?P<version>v[0-9]{2}\.[0-9])"
_SOBJECT = r"/sobjects/(?P<sobject>[A-Za-z][A-Za-z0-9_]*)"
_SEGMENT = r"[^/]+"
# First match wins, as in the contract: fixed segments before path parameters.
_ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", r"/sobjects/?", "describe_global"),
    ("GET", _SOBJECT + r"/?", "get_sobject_info"),
    ("POST", _SOBJECT + r"/?", "create_record"),
    ("GET", _SOBJECT + r"/describe/?", "describe_sobject"),
    ("GET", _SOBJECT + r"/updated/?", "get_updated_records"),
    ("GET", _SOBJECT + r"/deleted/?", "get_deleted_records"),
    ("GET", _SOBJECT + rf"/(?P<id>{_SEGMENT})/?", "retrieve_record"),
    ("PATCH", _SOBJECT + rf"/(?P<id>{_SEGMENT})/?", "update_record"),
    ("DELETE", _SOBJECT + rf"/(?P<id>{_SEGMENT})/?", "delete_record"),
    (
        "GET",
        _SOBJECT + rf"/(?P<field>{_SEGMENT})/(?P<value>{_SEGMENT})/?",
        "retrieve_record_by_external_id",
    ),
    (
        "PATCH",
        _SOBJECT + rf"/(?P<field>{_SEGMENT})/(?P<value>{_SEGMENT})/?",
        "upsert_record_by_external_id",
    ),
    ("GET", r"/query/?", "query"),
    ("GET", rf"/query/(?P<locator>{_SEGMENT})/?", "query_more"),
    ("GET", r"/queryAll/?", "query_all"),
    ("GET", rf"/queryAll/(?P<locator>{_SEGMENT})/?", "query_all_more"),
    ("GET", r"/limits/?", "get_limits"),
)
_COMPILED = [(m, re.compile(_VERSION + p + "$"), h) for m, p, h in _ROUTES]
REFERENCE = re.compile(r"@\{(?P<ref>[A-Za-z0-9_]+)(?P<path>(?:\.[A-Za-z0-9_]+|\[[0-9]+\])*)\}")
_STEP = re.compile(r"\.([A-Za-z0-9_]+)|\[([0-9]+)\]")


@dataclass(frozen=True)
class Route:
    handler: str
    path: dict[str, str]
    query: dict[str, str]


class RouteError(Exception):
    """No operation at that URL (404), or not with that method (405)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class UnresolvedReference(Exception):
    def __init__(self, expression: str, ref: str) -> None:
        super().__init__(expression)
        self.expression = expression
        self.ref = ref


def route(method: str, url: str) -> Route:
    parts = urlsplit(url)
    path_matched = False
    for route_method, pattern, handler in _COMPILED:
        match = pattern.match(parts.path)
        if match is None:
            continue
        path_matched = True
        if route_method == method:
            params = {k: unquote(v) for k, v in match.groupdict().items()}
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            return Route(handler, params, query)
    raise RouteError(405 if path_matched else 404)


def resolve(value: Any, results: dict[str, Any]) -> Any:
    """``value`` with every ``@{ref.path}`` replaced from earlier subrequests' bodies.

    A string that is one whole reference takes the referenced value as it is (a number stays a
    number); references inside longer strings are replaced by their text.
    """
    if isinstance(value, dict):
        return {k: resolve(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, results) for v in value]
    if not isinstance(value, str) or "@{" not in value:
        return value
    whole = REFERENCE.fullmatch(value)
    if whole is not None:
        return _lookup(whole, results)
    return REFERENCE.sub(lambda m: _text(_lookup(m, results)), value)


def _lookup(match: re.Match[str], results: dict[str, Any]) -> Any:
    ref, path = match.group("ref"), match.group("path")
    expression = match.group(0)[2:-1]
    if ref not in results:
        raise UnresolvedReference(expression, ref)
    node = results[ref]
    for key, index in _STEP.findall(path):
        if key and isinstance(node, dict) and key in node:
            node = node[key]
        elif index and isinstance(node, list) and int(index) < len(node):
            node = node[int(index)]
        else:
            raise UnresolvedReference(expression, ref)
    return node


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)

"""Contract validation compiled once per operation: parameters, bodies and responses."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import Any, ClassVar

import orjson
from connexion import utils as connexion_utils
from connexion.datastructures import MediaTypeDict
from connexion.json_schema import Draft4RequestValidator, Draft4ResponseValidator
from connexion.middleware.request_validation import (
    RequestValidationAPI,
    RequestValidationMiddleware,
    RequestValidationOperation,
)
from connexion.validators import AbstractRequestBodyValidator, JSONResponseBodyValidator
from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError, best_match
from starlette.types import Receive, Scope, Send

from simulators.common.compiled import compiled_validator
from simulators.common.formcodec import FormDecodeError, coerce, decode_form
from simulators.common.simulator import RequestViolation

logger = logging.getLogger("connexion.middleware.validation")
_FORMATS = Draft4Validator.FORMAT_CHECKER
_QUOTED = re.compile(r"'([^']+)'")


def param_name(path: Iterable[Any]) -> str:
    """A JSON path in the bracket notation vendors use: ``items[0][price]``."""
    parts = [str(p) for p in path]
    if not parts:
        return ""
    return parts[0] + "".join(f"[{p}]" for p in parts[1:])


def violation_from(error: ValidationError, prefix: Iterable[Any] = ()) -> RequestViolation:
    """Turn the most relevant jsonschema error into a violation naming the parameter."""
    path = [*prefix, *error.absolute_path]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in allowed)
        if extra:
            return RequestViolation(
                "unknown",
                f"unknown parameter {param_name([*path, extra[0]])}",
                param_name([*path, extra[0]]),
            )
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [k for k in error.validator_value if k not in error.instance]
        if missing:
            name = param_name([*path, missing[0]])
            return RequestViolation("missing", f"missing required parameter {name}", name)
    name = param_name(path)
    message = error.message if len(error.message) <= 300 else error.message[:300] + "…"
    return RequestViolation(
        "invalid", f"invalid value for {name or 'body'}: {message}", name or None
    )


class _Compiled:
    """A cache of compiled validators keyed by the identity of the schema object."""

    def __init__(self, cls: Any) -> None:
        self._cls = cls
        self._cache: dict[int, tuple[Any, Any]] = {}
        self._checkers: dict[int, tuple[Any, _Checker]] = {}

    def get(self, schema: Mapping[str, Any]) -> Any:
        hit = self._cache.get(id(schema))
        if hit is None:
            # Keep the schema alive so its id is never reused by another object.
            hit = (schema, self._cls(json_schema(schema), format_checker=_FORMATS))
            self._cache[id(schema)] = hit
        return hit[1]

    def checker(self, schema: Mapping[str, Any]) -> _Checker:
        """The validator for requests: a compiled fast path in front of ``get(schema)``."""
        hit = self._checkers.get(id(schema))
        if hit is None:
            hit = (schema, _Checker(self.get(schema), compiled_validator(json_schema(schema))))
            self._checkers[id(schema)] = hit
        return hit[1]


def json_schema(schema: Any) -> Any:
    """An OpenAPI 3.0 schema as the JSON Schema we validate with: ``x-patternProperties``
    (3.0 has no ``patternProperties``; the ERP's custom fields need it) becomes the keyword.
    Resolved schemas may be cyclic: each node is translated once, and only when it must be."""
    return _translated(schema, {}) if _mentions_pattern(schema, set()) else schema


def _mentions_pattern(node: Any, seen: set[int]) -> bool:
    if id(node) in seen or not isinstance(node, Mapping | list):
        return False
    seen.add(id(node))
    if isinstance(node, Mapping):
        return "x-patternProperties" in node or any(
            _mentions_pattern(v, seen) for v in node.values()
        )
    return any(_mentions_pattern(v, seen) for v in node)


def _translated(node: Any, done: dict[int, Any]) -> Any:
    if id(node) in done:
        return done[id(node)]
    if isinstance(node, Mapping):
        out: dict[str, Any] = {}
        done[id(node)] = out
        for k, v in node.items():
            out["patternProperties" if k == "x-patternProperties" else k] = _translated(v, done)
        return out
    if isinstance(node, list):
        items: list[Any] = []
        done[id(node)] = items
        items.extend(_translated(v, done) for v in node)
        return items
    return node


class _Checker:
    """jsonschema's validator, asked only when the compiled one (jsonschema-rs) refuses a value.

    The compiled validator is Draft 4 without formats, with nullable spelled as Draft 4 types
    (`compiled.py`): never laxer than connexion's validators (whose format checker knows none
    of the formats our contracts use), so accepting on its word is exact; everything it refuses
    is decided, and explained, by jsonschema itself."""

    __slots__ = ("_fast", "_slow")

    def __init__(self, slow: Any, fast: Any) -> None:
        self._slow = slow
        self._fast = fast

    def is_valid(self, value: Any) -> bool:
        if self._fast is not None:
            try:
                if self._fast.is_valid(value):
                    return True
            except Exception:  # a value it cannot read: jsonschema decides
                pass
        return bool(self._slow.is_valid(value))

    def iter_errors(self, value: Any) -> Iterator[ValidationError]:
        errors: Iterator[ValidationError] = self._slow.iter_errors(value)
        return errors

    def validate(self, value: Any) -> None:
        """Raise jsonschema's ValidationError for a value the schema refuses."""
        if not self.is_valid(value):
            self._slow.validate(value)


_INT64 = (-(2**63), 2**63 - 1)


def _int64_only(value: Any, path: list[Any]) -> None:
    """Vendors store 64-bit integers; a larger one is invalid input, never a crash later."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not _INT64[0] <= value <= _INT64[1]:
            name = param_name(path)
            raise RequestViolation(
                "invalid",
                f"invalid integer for {name or 'body'}: out of the 64-bit range",
                name or None,
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            _int64_only(item, [*path, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _int64_only(item, [*path, index])


def field_paths(value: Any, schema: Any, prefix: str = "") -> set[str]:
    """Dotted paths of every field in ``value``, named as the contract names them: ``[]`` for
    array items, ``*`` for the values of a free-form map (``items[].price``, ``metadata.*``)."""
    schema = _branch_for(value, schema)
    found: set[str] = set()
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                name, sub = key, properties[key]
            elif isinstance(extra, dict):
                name, sub = "*", extra
            else:
                name, sub = key, {}
            path = f"{prefix}.{name}" if prefix else name
            found.add(path)
            found |= field_paths(item, sub, path)
    elif isinstance(value, list):
        for item in value:
            found |= field_paths(item, schema.get("items", {}), f"{prefix}[]")
    return found


def _branch_for(value: Any, schema: Any) -> dict[str, Any]:
    if not isinstance(schema, dict):
        return {}
    for keyword in ("anyOf", "oneOf"):
        for branch in schema.get(keyword) or []:
            kind = branch.get("type") if isinstance(branch, dict) else None
            if (kind == "object" and isinstance(value, dict)) or (
                kind == "array" and isinstance(value, list)
            ):
                return dict(branch)
    return schema


@contextlib.contextmanager
def _located(location: str) -> Iterator[None]:
    """Say where in the request a violation was found (query, path, header, body)."""
    try:
        yield
    except RequestViolation as violation:
        violation.location = violation.location or location
        raise


def check(validator: Any, value: Any, prefix: Iterable[Any] = ()) -> None:
    _int64_only(value, list(prefix))
    if not validator.is_valid(value):
        raise violation_from(best_match(validator.iter_errors(value)), prefix)


class _ParameterPlan:
    def __init__(self, parameters: list[dict[str, Any]], compiled: _Compiled) -> None:
        self.parameters = parameters  # pinned: the cache is keyed by its id
        self.query = [
            (
                p["name"],
                p.get("required", False),
                p.get("schema", {}),
                compiled.checker(p.get("schema", {})),
            )
            for p in parameters
            if p["in"] == "query"
        ]
        self.path = [
            (p["name"], p.get("schema", {}), compiled.checker(p.get("schema", {})))
            for p in parameters
            if p["in"] == "path"
        ]
        self.header = [
            (
                p["name"].lower(),
                p.get("required", False),
                p.get("schema", {}),
                compiled.checker(p.get("schema", {})),
            )
            for p in parameters
            if p["in"] == "header"
        ]
        self.names = {name for name, *_ in self.query}


class ParameterValidator:
    """Decodes the query string (bracket nesting as Stripe sends it) and checks every parameter."""

    compiled: ClassVar[_Compiled]
    plans: ClassVar[dict[int, _ParameterPlan]]
    strict: ClassVar[bool]
    ignored: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, parameters: list[dict[str, Any]], *_: Any, **__: Any) -> None:
        plan = self.plans.get(id(parameters))
        if plan is None:
            plan = self.plans[id(parameters)] = _ParameterPlan(parameters, self.compiled)
        self.plan = plan

    def validate(self, scope: Scope) -> None:
        with _located("query"):
            values = self._query(scope)
        with _located("path"):
            path_params = scope.get("path_params", {})
            for name, schema, validator in self.plan.path:
                check(validator, coerce(path_params.get(name, ""), schema, param=name), [name])
        with _located("header"):
            self._headers(scope)
        scope["extensions"]["sim"].query = values

    def _query(self, scope: Scope) -> dict[str, Any]:
        plan = self.plan
        sent: list[str] = scope["extensions"]["sim"].entry.parameters
        raw = scope.get("query_string", b"")
        try:
            query = decode_form(raw) if raw else {}
        except FormDecodeError as exc:
            raise RequestViolation("malformed", exc.message, exc.param) from None
        values: dict[str, Any] = {}
        for name, required, schema, validator in plan.query:
            if name not in query:
                if required:
                    raise RequestViolation("missing", f"missing required parameter {name}", name)
                if "default" in schema:
                    values[name] = schema["default"]
                continue
            raw_value = query[name]
            if schema.get("type") == "array" and not isinstance(raw_value, list):
                raw_value = [raw_value]
            value = coerce(raw_value, schema, param=name)
            check(validator, value, [name])
            values[name] = value
            sent.append(name)
        if self.strict:
            for name in query:
                if name not in plan.names and name not in self.ignored:
                    raise RequestViolation("unknown", f"unknown parameter {name}", name)
        return values

    def _headers(self, scope: Scope) -> None:
        plan = self.plan
        if plan.header:
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1")
                for k, v in scope.get("headers", [])
            }
            for name, required, schema, validator in plan.header:
                if name not in headers:
                    if required:
                        raise RequestViolation("missing", f"missing required header {name}", name)
                    continue
                check(validator, coerce(headers[name], schema, param=name), [name])


class ClientGone(Exception):
    """The client went away before its request body arrived (it was killed, say): nothing it
    sent breaks the contract, and nobody is left to answer."""


class BodyValidator(AbstractRequestBodyValidator):  # type: ignore[misc]
    """Reads, decodes (JSON or bracketed form), coerces and validates a request body once."""

    compiled: ClassVar[_Compiled]
    form: ClassVar[bool] = False
    max_bytes: ClassVar[int] = 1 << 20

    def __init__(
        self,
        *,
        schema: dict[str, Any],
        required: bool = False,
        nullable: bool = False,
        encoding: str = "utf-8",
        **_: Any,
    ) -> None:
        self._schema = schema
        self._required = required
        self._nullable = nullable

    async def wrap_receive(self, receive: Receive, *, scope: Scope) -> tuple[Receive, Scope]:
        messages: list[Any] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone("the client disconnected before its request body arrived")
            messages.append(message)
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                raise RequestViolation(
                    "too_large",
                    f"request body is larger than {self.max_bytes} bytes",
                    location="body",
                )
            more = message.get("more_body", False)
        raw = b"".join(m.get("body", b"") for m in messages)
        with _located("body"):
            body = self._decode(raw)
        ctx = scope["extensions"]["sim"]
        ctx.body = body
        # What the client sent, by contract field: the consumer view of `contracts usage`.
        ctx.entry.fields = sorted(field_paths(body, self._schema))
        return self._insert_messages(receive, messages=messages), scope

    def _decode(self, raw: bytes) -> Any:
        # No bytes is no body; whitespace alone is a JSON body that does not parse (400).
        if not raw or (self.form and not raw.strip()):
            if self._required and not self.form:
                raise RequestViolation("missing", "a request body is required")
            body: Any = {}
        elif self.form:
            try:
                body = coerce(decode_form(raw), self._schema)
            except FormDecodeError as exc:
                raise RequestViolation("malformed", exc.message, exc.param) from None
        else:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise RequestViolation(
                    "malformed", f"request body is not valid JSON: {exc}"
                ) from None
        if body is None and self._nullable:
            return None
        check(self.compiled.checker(self._schema), body)
        return body

    async def _parse(self, stream: AsyncIterator[bytes], scope: Scope) -> Any:  # pragma: no cover
        raise NotImplementedError  # wrap_receive does the work


class ResponseValidator(JSONResponseBodyValidator):  # type: ignore[misc]
    """connexion's JSON response validator with the schema compiled once, on the compiled
    path (jsonschema-rs) like requests: connexion builds an interpreted validator per response."""

    compiled: ClassVar[_Compiled]

    @property
    def validator(self) -> Any:
        return self.compiled.checker(self._schema)

    def _parse(self, stream: Iterator[bytes]) -> Any:
        # orjson reads the body the handlers wrote with orjson, in a third of json's time;
        # what it refuses (an integer past 64 bits, say) goes to connexion's own parse.
        body = b"".join(stream)
        if not body:
            return None
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            return super()._parse(iter((body,)))


def validator_map(
    *, strict_parameters: bool, max_body_bytes: int, ignored_parameters: Iterable[str] = ()
) -> dict[str, Any]:
    """Per-app validator classes, each with its own caches (no state shared between apps)."""
    request = _Compiled(Draft4RequestValidator)
    response = _Compiled(Draft4ResponseValidator)
    params = type(
        "AppParameterValidator",
        (ParameterValidator,),
        {
            "compiled": request,
            "plans": {},
            "strict": strict_parameters,
            "ignored": frozenset(ignored_parameters),
        },
    )
    json_body = type(
        "AppJSONBodyValidator",
        (BodyValidator,),
        {"compiled": request, "form": False, "max_bytes": max_body_bytes},
    )
    form_body = type(
        "AppFormBodyValidator",
        (BodyValidator,),
        {"compiled": request, "form": True, "max_bytes": max_body_bytes},
    )
    responses = type("AppResponseValidator", (ResponseValidator,), {"compiled": response})
    return {
        "parameter": params,
        "body": MediaTypeDict(
            {"*/*json": json_body, "application/x-www-form-urlencoded": form_body}
        ),
        "response": MediaTypeDict({"*/*json": responses}),
    }


class _CachedValidationOperation(RequestValidationOperation):  # type: ignore[misc]
    """connexion's request validation with what depends only on the operation — the parameter
    validator, and per media type the body validator — built once instead of per request.

    Our validators keep no per-request state, so one instance serves every request; other
    validator classes are built per request as connexion does. Errors are never cached."""

    _MAX_MEDIA_TYPES = 16  # the media type is the client's to choose: keep the cache bounded

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._parameters: Any = None
        self._bodies: dict[tuple[str, str], Any] = {}

    def _parameter_validator(self) -> Any:
        if self._parameters is not None:
            return self._parameters
        operation = self._operation
        validator = self._validator_map["parameter"](
            operation.parameters,
            uri_parser=operation._uri_parser_class(
                operation.parameters, operation.body_definition()
            ),
            strict_validation=self.strict_validation,
            security_query_params=self.security_query_params,
        )
        if isinstance(validator, ParameterValidator):
            self._parameters = validator
        return validator

    def _body_validator(self, mime_type: str, encoding: str) -> Any:
        key = (mime_type, encoding)
        if key in self._bodies:
            return self._bodies[key]
        self.validate_mime_type(mime_type)
        operation = self._operation
        validator = None
        schema = operation.body_schema(mime_type)
        if schema:
            try:
                body_validator = self._validator_map["body"][mime_type]
            except KeyError:
                logger.info(
                    "Skipping validation. No validator registered for content type: %s.",
                    mime_type,
                )
            else:
                validator = body_validator(
                    schema=schema,
                    required=operation.request_body.get("required", False),
                    nullable=connexion_utils.is_nullable(operation.body_definition(mime_type)),
                    encoding=encoding,
                    strict_validation=self.strict_validation,
                    uri_parser=operation.uri_parser_class(
                        operation.parameters, operation.body_definition()
                    ),
                )
        reusable = validator is None or isinstance(validator, BodyValidator)
        if reusable and len(self._bodies) < self._MAX_MEDIA_TYPES:
            self._bodies[key] = validator
        return validator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._parameter_validator().validate(scope)
        mime_type, encoding = self.extract_content_type(scope["headers"])
        validator = self._body_validator(mime_type, encoding)
        if validator is not None:
            receive, scope = await validator.wrap_receive(receive, scope=scope)
        await self.next_app(scope, receive, send)


class _CachedValidationAPI(RequestValidationAPI):  # type: ignore[misc]
    def make_operation(self, operation: Any) -> _CachedValidationOperation:
        return _CachedValidationOperation(
            self.next_app,
            operation=operation,
            strict_validation=self.strict_validation,
            validator_map=self.validator_map,
        )


class CachedRequestValidationMiddleware(RequestValidationMiddleware):  # type: ignore[misc]
    """connexion's RequestValidationMiddleware, its per-operation set-up done once."""

    api_cls = _CachedValidationAPI

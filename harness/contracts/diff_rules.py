"""The registry of contract-diff rules: id, level, one-line description and an example pair."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import yaml


class Level(StrEnum):
    BREAKING = "breaking"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Sort key: breaking first."""
        return {"breaking": 0, "warning": 1, "info": 2}[self.value]


BREAKING, WARNING, INFO = Level.BREAKING, Level.WARNING, Level.INFO

# Where a schema change sits decides its direction: requests may only widen, responses only narrow.
REQUEST_PARAMETER = "request.parameter"
REQUEST_PROPERTY = "request.property"
RESPONSE_PROPERTY = "response.property"
RESPONSE_HEADER = "response.header"
SCHEMA_CONTEXTS = (REQUEST_PARAMETER, REQUEST_PROPERTY, RESPONSE_PROPERTY, RESPONSE_HEADER)
CONTEXT_NOUN = {
    REQUEST_PARAMETER: "a request parameter",
    REQUEST_PROPERTY: "a request body property (or the body itself)",
    RESPONSE_PROPERTY: "a response body property (or the body itself)",
    RESPONSE_HEADER: "a response header",
}

# Example scopes: where an example snippet is placed in a minimal document (see example_documents).
DOCUMENT, PATHS, OPERATION = "document", "paths", "operation"


@dataclass(frozen=True)
class Example:
    """Two YAML snippets (flow style, one line each) and where they go in a minimal document."""

    scope: str
    old: str
    new: str


@dataclass(frozen=True)
class Rule:
    id: str
    level: Level
    description: str
    example: Example
    # A new demand on the client (a required field or parameter it may not send yet); the usage
    # check treats these as touching the consumer even when the field is absent from its usage.
    requirement: bool = False

    @property
    def section(self) -> str:
        """The docs section: the first two id segments for schema rules, else the first."""
        head = self.id.split(".")[0]
        context = ".".join(self.id.split(".")[:2])
        return context if context in SCHEMA_CONTEXTS else head


def _rule(
    rule_id: str,
    level: Level,
    description: str,
    scope: str,
    old: str,
    new: str,
    *,
    requirement: bool = False,
) -> Rule:
    return Rule(rule_id, level, description, Example(scope, old, new), requirement)


_P = "{name: q, in: query, schema: {type: string}}"
_PR = "{name: q, in: query, required: true, schema: {type: string}}"
_BODY = "{content: {application/json: {schema: {type: object}}}}"
_BODY_REQ = "{required: true, content: {application/json: {schema: {type: object}}}}"
_OK = "'200': {description: ok}"
_KEY = "{type: apiKey, in: header, name: X-Key}"
_OAUTH = "{type: oauth2, flows: {clientCredentials: {tokenUrl: /token, scopes: {read: r}}}}"

STRUCTURAL: tuple[Rule, ...] = (
    # document ------------------------------------------------------------------------------
    _rule(
        "document.openapi-version-changed",
        INFO,
        "The `openapi` version of the document changed.",
        DOCUMENT,
        "{openapi: 3.0.3}",
        "{openapi: 3.1.0}",
    ),
    _rule(
        "document.server-added",
        INFO,
        "A server URL was added.",
        DOCUMENT,
        "{servers: [{url: 'https://a.example'}]}",
        "{servers: [{url: 'https://a.example'}, {url: 'https://b.example'}]}",
    ),
    _rule(
        "document.server-removed",
        WARNING,
        "A server URL was removed; clients configured with it lose their base URL.",
        DOCUMENT,
        "{servers: [{url: 'https://a.example'}, {url: 'https://b.example'}]}",
        "{servers: [{url: 'https://a.example'}]}",
    ),
    # paths and operations --------------------------------------------------------------------
    _rule(
        "path.added",
        INFO,
        "A path was added.",
        PATHS,
        "{/things: {get: {}}}",
        "{/things: {get: {}}, /widgets: {get: {}}}",
    ),
    _rule(
        "path.removed",
        BREAKING,
        "A path was removed, with every operation on it (one change per operation).",
        PATHS,
        "{/things: {get: {}}, /widgets: {get: {}}}",
        "{/things: {get: {}}}",
    ),
    _rule(
        "path.parameter-renamed",
        INFO,
        "A path template parameter was renamed; the URL on the wire is the same.",
        PATHS,
        "{'/things/{id}': {get: {}}}",
        "{'/things/{thing_id}': {get: {}}}",
    ),
    _rule(
        "operation.added",
        INFO,
        "An operation (method) was added to an existing path.",
        PATHS,
        "{/things: {get: {}}}",
        "{/things: {get: {}, post: {}}}",
    ),
    _rule(
        "operation.removed",
        BREAKING,
        "An operation (method) was removed from a path that remains.",
        PATHS,
        "{/things: {get: {}, post: {}}}",
        "{/things: {get: {}}}",
    ),
    _rule(
        "operation.id-changed",
        WARNING,
        "The operationId changed; generated clients rename the method.",
        OPERATION,
        "{operationId: listThings}",
        "{operationId: getThings}",
    ),
    _rule(
        "operation.deprecated",
        INFO,
        "The operation was marked deprecated.",
        OPERATION,
        "{}",
        "{deprecated: true}",
    ),
    # parameters --------------------------------------------------------------------------------
    _rule(
        "request.parameter.required-added",
        BREAKING,
        "A required parameter was added.",
        OPERATION,
        "{parameters: []}",
        f"{{parameters: [{_PR}]}}",
        requirement=True,
    ),
    _rule(
        "request.parameter.optional-added",
        INFO,
        "An optional parameter was added.",
        OPERATION,
        "{parameters: []}",
        f"{{parameters: [{_P}]}}",
    ),
    _rule(
        "request.parameter.removed",
        BREAKING,
        "A parameter was removed; strict servers reject it, lenient ones ignore what was asked.",
        OPERATION,
        f"{{parameters: [{_P}]}}",
        "{parameters: []}",
    ),
    _rule(
        "request.parameter.became-required",
        BREAKING,
        "An optional parameter became required.",
        OPERATION,
        f"{{parameters: [{_P}]}}",
        f"{{parameters: [{_PR}]}}",
        requirement=True,
    ),
    _rule(
        "request.parameter.became-optional",
        INFO,
        "A required parameter became optional.",
        OPERATION,
        f"{{parameters: [{_PR}]}}",
        f"{{parameters: [{_P}]}}",
    ),
    _rule(
        "request.parameter.location-changed",
        BREAKING,
        "A parameter moved (`in` changed, e.g. query to header).",
        OPERATION,
        f"{{parameters: [{_P}]}}",
        "{parameters: [{name: q, in: header, schema: {type: string}}]}",
    ),
    _rule(
        "request.parameter.style-changed",
        BREAKING,
        "A parameter's serialization (`style` or `explode`) changed.",
        OPERATION,
        "{parameters: [{name: q, in: query, style: form, schema: {type: array}}]}",
        "{parameters: [{name: q, in: query, style: pipeDelimited, schema: {type: array}}]}",
    ),
    _rule(
        "request.parameter.deprecated",
        INFO,
        "A parameter was marked deprecated.",
        OPERATION,
        f"{{parameters: [{_P}]}}",
        "{parameters: [{name: q, in: query, deprecated: true, schema: {type: string}}]}",
    ),
    # request body --------------------------------------------------------------------------------
    _rule(
        "request.body.required-added",
        BREAKING,
        "A required request body was added to an operation that had none.",
        OPERATION,
        "{}",
        f"{{requestBody: {_BODY_REQ}}}",
        requirement=True,
    ),
    _rule(
        "request.body.optional-added",
        INFO,
        "An optional request body was added to an operation that had none.",
        OPERATION,
        "{}",
        f"{{requestBody: {_BODY}}}",
    ),
    _rule(
        "request.body.removed",
        BREAKING,
        "The request body was removed; clients still send one.",
        OPERATION,
        f"{{requestBody: {_BODY}}}",
        "{}",
    ),
    _rule(
        "request.body.became-required",
        BREAKING,
        "An optional request body became required.",
        OPERATION,
        f"{{requestBody: {_BODY}}}",
        f"{{requestBody: {_BODY_REQ}}}",
        requirement=True,
    ),
    _rule(
        "request.body.became-optional",
        INFO,
        "A required request body became optional.",
        OPERATION,
        f"{{requestBody: {_BODY_REQ}}}",
        f"{{requestBody: {_BODY}}}",
    ),
    _rule(
        "request.body.media-type-added",
        INFO,
        "The request body accepts a new media type.",
        OPERATION,
        f"{{requestBody: {_BODY}}}",
        "{requestBody: {content: {application/json: {}, application/xml: {}}}}",
    ),
    _rule(
        "request.body.media-type-removed",
        BREAKING,
        "The request body no longer accepts a media type.",
        OPERATION,
        "{requestBody: {content: {application/json: {}, application/xml: {}}}}",
        f"{{requestBody: {_BODY}}}",
    ),
    # responses -----------------------------------------------------------------------------------
    _rule(
        "response.status.success-added",
        WARNING,
        "A success (1xx-3xx) status was added; clients may not expect it or its body.",
        OPERATION,
        f"{{responses: {{{_OK}}}}}",
        f"{{responses: {{{_OK}, '202': {{description: later}}}}}}",
    ),
    _rule(
        "response.status.success-removed",
        BREAKING,
        "A success (1xx-3xx) status was removed.",
        OPERATION,
        f"{{responses: {{{_OK}, '201': {{description: made}}}}}}",
        f"{{responses: {{{_OK}}}}}",
    ),
    _rule(
        "response.status.error-added",
        INFO,
        "An error status (4xx, 5xx or default) was documented; clients handle errors generically.",
        OPERATION,
        f"{{responses: {{{_OK}}}}}",
        f"{{responses: {{{_OK}, '409': {{description: conflict}}}}}}",
    ),
    _rule(
        "response.status.error-removed",
        INFO,
        "An error status (4xx, 5xx or default) was removed.",
        OPERATION,
        f"{{responses: {{{_OK}, '409': {{description: conflict}}}}}}",
        f"{{responses: {{{_OK}}}}}",
    ),
    _rule(
        "response.body.media-type-added",
        INFO,
        "A response can come in a new media type (only when asked for).",
        OPERATION,
        "{responses: {'200': {description: ok, content: {application/json: {}}}}}",
        "{responses: {'200': {description: ok, content: {application/json: {}, text/csv: {}}}}}",
    ),
    _rule(
        "response.body.media-type-removed",
        BREAKING,
        "A response media type (or the whole body) was removed.",
        OPERATION,
        "{responses: {'200': {description: ok, content: {application/json: {}, text/csv: {}}}}}",
        "{responses: {'200': {description: ok, content: {application/json: {}}}}}",
    ),
    _rule(
        "response.header.added",
        INFO,
        "A response header was added.",
        OPERATION,
        f"{{responses: {{{_OK}}}}}",
        "{responses: {'200': {description: ok, headers: {X-Rate: {schema: {type: integer}}}}}}",
    ),
    _rule(
        "response.header.removed",
        BREAKING,
        "A required response header was removed.",
        OPERATION,
        "{responses: {'200': {description: ok, headers: {X-Rate: {required: true}}}}}",
        f"{{responses: {{{_OK}}}}}",
    ),
    _rule(
        "response.header.optional-removed",
        WARNING,
        "An optional response header was removed; clients cope without it but lose the value.",
        OPERATION,
        "{responses: {'200': {description: ok, headers: {X-Rate: {}}}}}",
        f"{{responses: {{{_OK}}}}}",
    ),
    _rule(
        "response.header.became-optional",
        BREAKING,
        "A required response header became optional.",
        OPERATION,
        "{responses: {'200': {description: ok, headers: {X-Rate: {required: true}}}}}",
        "{responses: {'200': {description: ok, headers: {X-Rate: {}}}}}",
    ),
    _rule(
        "response.header.became-required",
        INFO,
        "An optional response header became required (always sent).",
        OPERATION,
        "{responses: {'200': {description: ok, headers: {X-Rate: {}}}}}",
        "{responses: {'200': {description: ok, headers: {X-Rate: {required: true}}}}}",
    ),
    # security ------------------------------------------------------------------------------------
    _rule(
        "security.authentication-added",
        BREAKING,
        "A public operation now requires authentication.",
        OPERATION,
        "{security: []}",
        "{security: [{key: []}]}",
        requirement=True,
    ),
    _rule(
        "security.authentication-removed",
        INFO,
        "The operation no longer requires authentication.",
        OPERATION,
        "{security: [{key: []}]}",
        "{security: []}",
    ),
    _rule(
        "security.requirement.added",
        INFO,
        "A new way to authenticate was added (another alternative).",
        OPERATION,
        "{security: [{key: []}]}",
        "{security: [{key: []}, {oauth: [read]}]}",
    ),
    _rule(
        "security.requirement.removed",
        INFO,
        "A security requirement was removed from the operation (oasdiff's api-security-removed "
        "grades it info); a client that authenticated only that way must switch.",
        OPERATION,
        "{security: [{key: []}, {oauth: [read]}]}",
        "{security: [{key: []}]}",
    ),
    _rule(
        "security.scope-added",
        BREAKING,
        "An operation requires an additional OAuth scope.",
        OPERATION,
        "{security: [{oauth: [read]}]}",
        "{security: [{oauth: [read, write]}]}",
        requirement=True,
    ),
    _rule(
        "security.scope-removed",
        INFO,
        "An operation requires fewer OAuth scopes.",
        OPERATION,
        "{security: [{oauth: [read, write]}]}",
        "{security: [{oauth: [read]}]}",
    ),
    _rule(
        "security.scheme.added",
        INFO,
        "A security scheme was added to components.",
        DOCUMENT,
        "{components: {securitySchemes: {}}}",
        f"{{components: {{securitySchemes: {{key: {_KEY}}}}}}}",
    ),
    _rule(
        "security.scheme.removed",
        BREAKING,
        "A security scheme was removed from components.",
        DOCUMENT,
        f"{{components: {{securitySchemes: {{key: {_KEY}}}}}}}",
        "{components: {securitySchemes: {}}}",
    ),
    _rule(
        "security.scheme.type-changed",
        BREAKING,
        "A security scheme changed type (e.g. http to apiKey).",
        DOCUMENT,
        "{components: {securitySchemes: {key: {type: http, scheme: bearer}}}}",
        f"{{components: {{securitySchemes: {{key: {_KEY}}}}}}}",
    ),
    _rule(
        "security.scheme.http-scheme-changed",
        BREAKING,
        "An http security scheme changed scheme (e.g. basic to bearer).",
        DOCUMENT,
        "{components: {securitySchemes: {key: {type: http, scheme: basic}}}}",
        "{components: {securitySchemes: {key: {type: http, scheme: bearer}}}}",
    ),
    _rule(
        "security.scheme.api-key-changed",
        BREAKING,
        "An apiKey scheme moved or renamed its key (`in` or `name`).",
        DOCUMENT,
        f"{{components: {{securitySchemes: {{key: {_KEY}}}}}}}",
        "{components: {securitySchemes: {key: {type: apiKey, in: query, name: key}}}}",
    ),
    _rule(
        "security.scheme.oauth-flow-removed",
        BREAKING,
        "An OAuth flow was removed from a scheme.",
        DOCUMENT,
        "{components: {securitySchemes: {oauth: {type: oauth2, flows: {implicit: "
        "{authorizationUrl: /auth, scopes: {}}, password: {tokenUrl: /token, scopes: {}}}}}}}",
        "{components: {securitySchemes: {oauth: {type: oauth2, flows: {implicit: "
        "{authorizationUrl: /auth, scopes: {}}}}}}}",
    ),
    _rule(
        "security.scheme.oauth-url-changed",
        WARNING,
        "An OAuth flow's authorization, token or refresh URL changed.",
        DOCUMENT,
        f"{{components: {{securitySchemes: {{oauth: {_OAUTH}}}}}}}",
        "{components: {securitySchemes: {oauth: {type: oauth2, flows: {clientCredentials: "
        "{tokenUrl: /oauth/token, scopes: {read: r}}}}}}}",
    ),
    _rule(
        "security.scheme.oauth-scope-added",
        INFO,
        "An OAuth flow offers a new scope.",
        DOCUMENT,
        f"{{components: {{securitySchemes: {{oauth: {_OAUTH}}}}}}}",
        "{components: {securitySchemes: {oauth: {type: oauth2, flows: {clientCredentials: "
        "{tokenUrl: /token, scopes: {read: r, write: w}}}}}}}",
    ),
    _rule(
        "security.scheme.oauth-scope-removed",
        BREAKING,
        "An OAuth flow no longer offers a scope clients may request.",
        DOCUMENT,
        "{components: {securitySchemes: {oauth: {type: oauth2, flows: {clientCredentials: "
        "{tokenUrl: /token, scopes: {read: r, write: w}}}}}}}",
        f"{{components: {{securitySchemes: {{oauth: {_OAUTH}}}}}}}",
    ),
)


@dataclass(frozen=True)
class Family:
    """One kind of schema change, instantiated once per context it applies to."""

    name: str
    description: str  # "{where}" becomes the context noun
    levels: dict[str, Level]  # context -> level; contexts absent here have no such rule
    old: str
    new: str
    # value: the snippet is one property's schema; object: the snippet is the whole schema
    kind: str = "value"
    requirement: bool = False


def _dir(request: Level, response: Level, *, header: bool = True) -> dict[str, Level]:
    """Levels for a change that is `request` in requests and `response` in responses."""
    levels = {REQUEST_PARAMETER: request, REQUEST_PROPERTY: request, RESPONSE_PROPERTY: response}
    if header:
        levels[RESPONSE_HEADER] = response
    return levels


# narrowing: breaking in requests, info in responses; widening: the opposite.
def _narrow(**kw: bool) -> dict[str, Level]:
    return _dir(BREAKING, INFO, **kw)


def _widen(**kw: bool) -> dict[str, Level]:
    return _dir(INFO, BREAKING, **kw)


FAMILIES: tuple[Family, ...] = (
    Family(
        "type-changed",
        "The type of {where} changed incompatibly.",
        _dir(BREAKING, BREAKING),
        "{type: string}",
        "{type: boolean}",
    ),
    Family(
        "type-widened",
        "The type of {where} was widened (e.g. integer to number, or a type added).",
        _widen(),
        "{type: integer}",
        "{type: number}",
    ),
    Family(
        "type-narrowed",
        "The type of {where} was narrowed (e.g. number to integer, or a type dropped).",
        _narrow(),
        "{type: number}",
        "{type: integer}",
    ),
    Family(
        "enum-value-added",
        "A value was added to the enum of {where}.",
        _widen(),
        "{type: string, enum: [a]}",
        "{type: string, enum: [a, b]}",
    ),
    Family(
        "enum-value-removed",
        "A value was removed from the enum of {where}.",
        _narrow(),
        "{type: string, enum: [a, b]}",
        "{type: string, enum: [a]}",
    ),
    Family(
        "enum-added",
        "An enum now restricts {where}.",
        _narrow(),
        "{type: string}",
        "{type: string, enum: [a, b]}",
    ),
    Family(
        "enum-removed",
        "The enum of {where} was dropped (any value allowed).",
        _widen(),
        "{type: string, enum: [a, b]}",
        "{type: string}",
    ),
    Family(
        "format-added",
        "A format now restricts {where}.",
        _narrow(),
        "{type: string}",
        "{type: string, format: uuid}",
    ),
    Family(
        "format-removed",
        "The format of {where} was dropped.",
        _widen(),
        "{type: string, format: uuid}",
        "{type: string}",
    ),
    Family(
        "format-changed",
        "The format of {where} changed.",
        _dir(BREAKING, BREAKING),
        "{type: string, format: date}",
        "{type: string, format: date-time}",
    ),
    Family(
        "max-length-decreased",
        "maxLength of {where} decreased or was set.",
        _narrow(),
        "{type: string, maxLength: 100}",
        "{type: string, maxLength: 50}",
    ),
    Family(
        "max-length-increased",
        "maxLength of {where} increased or was dropped.",
        _widen(),
        "{type: string, maxLength: 50}",
        "{type: string, maxLength: 100}",
    ),
    Family(
        "min-length-increased",
        "minLength of {where} increased or was set.",
        _narrow(),
        "{type: string}",
        "{type: string, minLength: 3}",
    ),
    Family(
        "min-length-decreased",
        "minLength of {where} decreased or was dropped.",
        _widen(),
        "{type: string, minLength: 3}",
        "{type: string, minLength: 1}",
    ),
    Family(
        "maximum-decreased",
        "The maximum of {where} decreased, became exclusive, or was set.",
        _narrow(),
        "{type: integer, maximum: 100}",
        "{type: integer, maximum: 10}",
    ),
    Family(
        "maximum-increased",
        "The maximum of {where} increased or was dropped.",
        _widen(),
        "{type: integer, maximum: 10}",
        "{type: integer, maximum: 100}",
    ),
    Family(
        "minimum-increased",
        "The minimum of {where} increased, became exclusive, or was set.",
        _narrow(),
        "{type: integer, minimum: 0}",
        "{type: integer, minimum: 1}",
    ),
    Family(
        "minimum-decreased",
        "The minimum of {where} decreased or was dropped.",
        _widen(),
        "{type: integer, minimum: 1}",
        "{type: integer}",
    ),
    Family(
        "pattern-added",
        "A pattern now restricts {where}.",
        _narrow(),
        "{type: string}",
        "{type: string, pattern: '^[a-z]+$'}",
    ),
    Family(
        "pattern-removed",
        "The pattern of {where} was dropped.",
        _widen(),
        "{type: string, pattern: '^[a-z]+$'}",
        "{type: string}",
    ),
    Family(
        "pattern-changed",
        "The pattern of {where} changed (may widen or narrow; review it).",
        _dir(WARNING, WARNING),
        "{type: string, pattern: '^[a-z]+$'}",
        "{type: string, pattern: '^[a-z0-9]+$'}",
    ),
    Family(
        "max-items-decreased",
        "maxItems of {where} decreased or was set.",
        _narrow(header=False),
        "{type: array, maxItems: 20}",
        "{type: array, maxItems: 10}",
    ),
    Family(
        "max-items-increased",
        "maxItems of {where} increased or was dropped.",
        _widen(header=False),
        "{type: array, maxItems: 10}",
        "{type: array, maxItems: 20}",
    ),
    Family(
        "min-items-increased",
        "minItems of {where} increased or was set.",
        _narrow(header=False),
        "{type: array}",
        "{type: array, minItems: 1}",
    ),
    Family(
        "min-items-decreased",
        "minItems of {where} decreased or was dropped.",
        _widen(header=False),
        "{type: array, minItems: 1}",
        "{type: array}",
    ),
    Family(
        "nullable-added",
        "{where} became nullable.",
        _widen(header=False),
        "{type: string}",
        "{type: string, nullable: true}",
    ),
    Family(
        "nullable-removed",
        "{where} is no longer nullable.",
        _narrow(header=False),
        "{type: string, nullable: true}",
        "{type: string}",
    ),
    # Defaults as oasdiff grades them: a parameter's default is behaviour the client relies on
    # by omitting the parameter (request-parameter-default-value-*: error); a body property's
    # default is graded info (request-property-default-value-*).
    Family(
        "default-changed",
        "The default of {where} changed; clients that omit it get other behaviour.",
        {REQUEST_PARAMETER: BREAKING, REQUEST_PROPERTY: INFO},
        "{type: integer, default: 10}",
        "{type: integer, default: 20}",
    ),
    Family(
        "default-added",
        "{where} gained a default; clients that omit it now get that value.",
        {REQUEST_PARAMETER: BREAKING, REQUEST_PROPERTY: INFO},
        "{type: integer}",
        "{type: integer, default: 20}",
    ),
    Family(
        "default-removed",
        "{where} lost its default; clients that omit it no longer get that value.",
        {REQUEST_PARAMETER: BREAKING, REQUEST_PROPERTY: INFO},
        "{type: integer, default: 10}",
        "{type: integer}",
    ),
    # Composition as oasdiff grades it (request-/response-property-all-of-*, *-wrapped-in-one-of).
    Family(
        "all-of-added",
        "A subschema was added to the allOf of {where}: one more set of constraints to meet.",
        {REQUEST_PROPERTY: BREAKING, RESPONSE_PROPERTY: INFO},
        "{allOf: [{type: object}]}",
        "{allOf: [{type: object}, {type: object}]}",
        "object",
    ),
    Family(
        "all-of-removed",
        "A subschema was removed from the allOf of {where}.",
        {REQUEST_PROPERTY: WARNING, RESPONSE_PROPERTY: INFO},
        "{allOf: [{type: object}, {type: object}]}",
        "{allOf: [{type: object}]}",
        "object",
    ),
    Family(
        "wrapped-in-one-of",
        "{where} was restructured into a oneOf: a value valid before may match none, or two.",
        {REQUEST_PROPERTY: BREAKING, RESPONSE_PROPERTY: BREAKING},
        "{type: object, properties: {a: {type: string}}}",
        "{oneOf: [{type: object, properties: {a: {type: string}}}, {type: integer}]}",
        "object",
    ),
    Family(
        "one-of-branch-added",
        "A oneOf branch was added to {where}.",
        _widen(header=False),
        "{oneOf: [{type: string}]}",
        "{oneOf: [{type: string}, {type: integer}]}",
        "object",
    ),
    Family(
        "one-of-branch-removed",
        "A oneOf branch was removed from {where}.",
        _narrow(header=False),
        "{oneOf: [{type: string}, {type: integer}]}",
        "{oneOf: [{type: string}]}",
        "object",
    ),
    Family(
        "any-of-branch-added",
        "An anyOf branch was added to {where} (oasdiff grades this info in responses too).",
        _dir(INFO, INFO, header=False),
        "{anyOf: [{type: string}]}",
        "{anyOf: [{type: string}, {type: integer}]}",
        "object",
    ),
    Family(
        "any-of-branch-removed",
        "An anyOf branch was removed from {where}.",
        _narrow(header=False),
        "{anyOf: [{type: string}, {type: integer}]}",
        "{anyOf: [{type: string}]}",
        "object",
    ),
    Family(
        "additional-properties-restricted",
        "{where} no longer accepts undeclared properties (additionalProperties: false).",
        {REQUEST_PARAMETER: BREAKING, REQUEST_PROPERTY: BREAKING, RESPONSE_PROPERTY: INFO},
        "{type: object}",
        "{type: object, additionalProperties: false}",
        "object",
    ),
    Family(
        "additional-properties-allowed",
        "{where} now allows undeclared properties; well-behaved clients ignore unknown keys.",
        {REQUEST_PARAMETER: INFO, REQUEST_PROPERTY: INFO, RESPONSE_PROPERTY: WARNING},
        "{type: object, additionalProperties: false}",
        "{type: object}",
        "object",
    ),
    # Property families: emitted at the property itself, in the body contexts only (a property of
    # an object parameter is a request property too).
    Family(
        "removed",
        "A property was removed from {where}; clients still send it.",
        {REQUEST_PROPERTY: BREAKING},
        "{type: object, properties: {a: {type: string}, b: {type: string}}}",
        "{type: object, properties: {a: {type: string}}}",
        "object",
    ),
    Family(
        "required-added",
        "A required property was added to {where}.",
        {REQUEST_PROPERTY: BREAKING},
        "{type: object, properties: {a: {type: string}}}",
        "{type: object, required: [b], properties: {a: {type: string}, b: {type: string}}}",
        "object",
        requirement=True,
    ),
    Family(
        "optional-added",
        "An optional property was added to {where}.",
        {REQUEST_PROPERTY: INFO},
        "{type: object, properties: {a: {type: string}}}",
        "{type: object, properties: {a: {type: string}, b: {type: string}}}",
        "object",
    ),
    Family(
        "became-required",
        "A property of {where} became required.",
        {REQUEST_PROPERTY: BREAKING, RESPONSE_PROPERTY: INFO},
        "{type: object, properties: {a: {type: string}}}",
        "{type: object, required: [a], properties: {a: {type: string}}}",
        "object",
        requirement=True,
    ),
    Family(
        "became-optional",
        "A property of {where} became optional.",
        {REQUEST_PROPERTY: INFO, RESPONSE_PROPERTY: BREAKING},
        "{type: object, required: [a], properties: {a: {type: string}}}",
        "{type: object, properties: {a: {type: string}}}",
        "object",
    ),
    Family(
        "added",
        "A property was added to {where}.",
        {RESPONSE_PROPERTY: INFO},
        "{type: object, properties: {a: {type: string}}}",
        "{type: object, properties: {a: {type: string}, b: {type: string}}}",
        "object",
    ),
    # Two rules for a response property removed: a required one was always there and clients
    # rely on it; an optional one they already had to do without (as oasdiff ≥ 1.30 grades it).
    Family(
        "removed",
        "A required property was removed from {where}.",
        {RESPONSE_PROPERTY: BREAKING},
        "{type: object, required: [a, b], properties: {a: {type: string}, b: {type: string}}}",
        "{type: object, required: [a], properties: {a: {type: string}}}",
        "object",
    ),
    Family(
        "optional-removed",
        "An optional property was removed from {where}; clients lose the value.",
        {RESPONSE_PROPERTY: WARNING},
        "{type: object, properties: {a: {type: string}, b: {type: string}}}",
        "{type: object, properties: {a: {type: string}}}",
        "object",
    ),
)


def _family_rules() -> tuple[Rule, ...]:
    rules = []
    for family in FAMILIES:
        for context, level in family.levels.items():
            description = family.description.format(where=CONTEXT_NOUN[context])
            description = description[0].upper() + description[1:]
            rules.append(
                _rule(
                    f"{context}.{family.name}",
                    level,
                    description,
                    f"{context}:{family.kind}",
                    family.old,
                    family.new,
                    requirement=family.requirement and context.startswith("request."),
                )
            )
    return tuple(rules)


def _registry() -> dict[str, Rule]:
    registry: dict[str, Rule] = {}
    for rule in (*STRUCTURAL, *_family_rules()):
        if rule.id in registry:
            raise ValueError(f"duplicate rule id {rule.id}")
        registry[rule.id] = rule
    return registry


RULES: dict[str, Rule] = _registry()
FAMILY_NAMES = frozenset(family.name for family in FAMILIES)

# Example documents ---------------------------------------------------------------------------
_BASE_SECURITY = {
    "key": {"type": "apiKey", "in": "header", "name": "X-Key"},
    "oauth": {
        "type": "oauth2",
        "flows": {
            "clientCredentials": {"tokenUrl": "/token", "scopes": {"read": "r", "write": "w"}}
        },
    },
}


def _schema_operation(context: str, schema: Any) -> dict[str, Any]:
    """An operation whose only content is `schema`, in the slot `context` names."""
    media = {"application/json": {"schema": schema}}
    if context == REQUEST_PARAMETER:
        return {"parameters": [{"name": "q", "in": "query", "schema": schema}]}
    if context == REQUEST_PROPERTY:
        return {"requestBody": {"content": media}}
    if context == RESPONSE_PROPERTY:
        return {"responses": {"200": {"description": "ok", "content": media}}}
    return {"responses": {"200": {"description": "ok", "headers": {"X-Rate": {"schema": schema}}}}}


def example_document(scope: str, snippet: str) -> dict[str, Any]:
    """A minimal OpenAPI document with an example snippet placed where `scope` says."""
    value = yaml.safe_load(snippet)
    doc: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": "example", "version": "1"},
        "paths": {"/things": {"post": {}}},
        "components": {"securitySchemes": _BASE_SECURITY},
    }
    if scope == DOCUMENT:
        doc.update(value)
    elif scope == PATHS:
        doc["paths"] = value
    elif scope == OPERATION:
        doc["paths"] = {"/things": {"post": value}}
    else:
        context, _, kind = scope.partition(":")
        if kind == "value" and context in (REQUEST_PROPERTY, RESPONSE_PROPERTY):
            value = {"type": "object", "properties": {"x": value}}
        doc["paths"] = {"/things": {"post": _schema_operation(context, value)}}
    return doc


def rules_markdown() -> str:
    """The rule table of docs/contract-diff.md, grouped by section, generated from RULES."""
    titles = {
        "document": "Document",
        "path": "Paths",
        "operation": "Operations",
        "request": "Request parameters and body",
        "response": "Responses: status codes, media types, headers",
        "security": "Security",
        REQUEST_PARAMETER: "Schemas: request parameters (`request.parameter.*`)",
        REQUEST_PROPERTY: "Schemas: request body properties (`request.property.*`)",
        RESPONSE_PROPERTY: "Schemas: response body properties (`response.property.*`)",
        RESPONSE_HEADER: "Schemas: response headers (`response.header.*`)",
    }
    sections: dict[str, list[Rule]] = {}
    for rule in RULES.values():
        section = rule.section
        # Structural request.parameter/response.header rules sit with the other structural ones.
        if section in SCHEMA_CONTEXTS and rule.example.scope in (DOCUMENT, PATHS, OPERATION):
            section = rule.id.split(".")[0]
        sections.setdefault(section, []).append(rule)
    lines = [f"{len(RULES)} rules.", ""]
    for key, title in titles.items():
        if key not in sections:
            continue
        lines += [
            f"### {title}",
            "",
            "| Rule | Level | Description | Old | New |",
            "|---|---|---|---|---|",
        ]
        for rule in sections[key]:
            cells = (
                f"`{rule.id}`",
                rule.level.value,
                rule.description,
                f"`{rule.example.old}`",
                f"`{rule.example.new}`",
            )
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"

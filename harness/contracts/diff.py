"""Classify every change between two OpenAPI 3.x documents by rule id and level."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from dataclasses import field as _field
from pathlib import Path
from typing import Any

import yaml

from harness.contracts.diff_rules import (
    FAMILY_NAMES,
    REQUEST_PARAMETER,
    REQUEST_PROPERTY,
    RESPONSE_HEADER,
    RESPONSE_PROPERTY,
    RULES,
    Level,
)

__all__ = [
    "FOR_US",
    "IN_GENERAL",
    "RULES",
    "Change",
    "Comparison",
    "Document",
    "InputError",
    "Level",
    "OperationRef",
    "OperationUsage",
    "Usage",
    "apply_usage",
    "compare",
    "contracts_against_base",
    "diff_documents",
    "empty_document",
    "exit_code",
    "field_segments",
    "load_usage",
    "parse_document",
    "read_source",
    "render_field",
    "touches",
]

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace", "query")
FOR_US, IN_GENERAL = "breaking-for-us", "breaking-in-general"


class InputError(Exception):
    """An input cannot be read, or is not an OpenAPI 3.x document; the CLI exits 2."""


# Inputs ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    label: str
    data: dict[str, Any]


def empty_document(label: str, openapi: str = "3.0.3") -> Document:
    """Stands in for a contract that exists on one side only (added or deleted under --base)."""
    return Document(
        label, {"openapi": openapi, "info": {"title": label, "version": "0"}, "paths": {}}
    )


_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_document(text: str, label: str) -> Document:
    """Parse YAML or JSON text and check it is OpenAPI 3.x."""
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader, C-accelerated when available
    except yaml.YAMLError as exc:
        raise InputError(f"{label}: not valid YAML or JSON ({str(exc).splitlines()[0]})") from exc
    if data is None:
        raise InputError(f"{label}: the document is empty")
    if not isinstance(data, dict):
        raise InputError(f"{label}: not an OpenAPI document (top level is not a mapping)")
    if "openapi" not in data:
        if "swagger" in data:
            raise InputError(
                f"{label}: a Swagger {data['swagger']} document; only OpenAPI 3.x is supported"
            )
        raise InputError(f"{label}: not an OpenAPI 3.x document (no `openapi: 3.x` field)")
    if not str(data["openapi"]).startswith("3."):
        raise InputError(f"{label}: OpenAPI {data['openapi']} is not supported; need 3.x")
    try:
        # A JSON round trip turns YAML's int status codes into strings, dates into text, and
        # un-shares anchored nodes, so the walkers see plain JSON.
        plain = json.loads(json.dumps(data, default=str))
    except (TypeError, ValueError) as exc:
        raise InputError(f"{label}: cannot be read as JSON data ({exc})") from exc
    return Document(label, plain)


def git_show(ref: str, path: str, cwd: Path | None = None) -> str:
    """The text of `path` at git revision `ref`."""
    try:
        proc = subprocess.run(
            ["git", "show", f"{ref}:{path}"], cwd=cwd, capture_output=True, check=False
        )
    except FileNotFoundError as exc:
        raise InputError("git is not installed; cannot read REF:path inputs") from exc
    if proc.returncode != 0:
        reason = proc.stderr.decode("utf-8", "replace").strip() or "git show failed"
        raise InputError(f"{ref}:{path}: {reason}")
    try:
        return proc.stdout.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{ref}:{path}: not UTF-8 text") from exc


def read_source(source: str, cwd: Path | None = None) -> Document:
    """Read a contract from a file path, or from `REF:path` through git when no such file exists."""
    path = Path(cwd or ".") / source
    if path.is_file():
        try:
            return parse_document(path.read_text(encoding="utf-8"), source)
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{source}: cannot be read ({exc})") from exc
    if path.exists():
        raise InputError(f"{source}: not a file")
    ref, colon, inner = source.partition(":")
    if colon and ref and inner:
        return parse_document(git_show(ref, inner, cwd), source)
    raise InputError(f"{source}: no such file (and not a git REF:path)")


def _git(args: list[str], cwd: Path | None) -> str:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise InputError("git is not installed; --base needs it") from exc
    if proc.returncode != 0:
        reason = proc.stderr.decode("utf-8", "replace").strip()
        raise InputError(f"git {' '.join(args)}: {reason or 'failed'}")
    return proc.stdout.decode("utf-8", "replace")


def contracts_against_base(
    ref: str, contracts: str = "contracts/openapi", cwd: Path | None = None
) -> list[tuple[Document, Document]]:
    """(at ref, working tree) for every `*.yaml` contract in either; a missing side is empty."""
    root = Path(_git(["rev-parse", "--show-toplevel"], cwd).strip())
    try:
        _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], root)
    except InputError as exc:
        raise InputError(f"--base {ref}: not a commit in {root}") from exc
    folder = contracts.strip("/")
    listed = _git(["ls-tree", "--name-only", ref, f"{folder}/"], root).splitlines()
    at_base = {Path(name).name for name in listed if name.endswith(".yaml")}
    in_tree = {p.name for p in (root / folder).glob("*.yaml") if p.is_file()}
    if not at_base | in_tree:
        # Most likely a wrong --contracts folder; passing silently would hide that in CI.
        raise InputError(f"no *.yaml contracts in {folder}/ at {ref} or in the working tree")
    pairs = []
    for name in sorted(at_base | in_tree):
        rel = f"{folder}/{name}"
        old_label, new_label = f"{ref}:{rel}", rel
        old = parse_document(git_show(ref, rel, root), old_label) if name in at_base else None
        new = read_source(rel, root) if name in in_tree else None
        # The empty stand-in takes the other side's version, so no version change is reported.
        version = str(next(d for d in (old, new) if d).data["openapi"])
        pairs.append(
            (old or empty_document(old_label, version), new or empty_document(new_label, version))
        )
    return pairs


# $ref resolution -------------------------------------------------------------------------------


class Resolver:
    """Follows local `$ref`s (`#/...`) within one document; external refs stay opaque."""

    def __init__(self, document: Document) -> None:
        self.label = document.label
        self.root = document.data
        self._cache: dict[str, Any] = {}
        self._ref_free: dict[int, bool] = {}

    def resolve(self, node: Any) -> tuple[Any, str | None]:
        """The node a chain of refs leads to, and the last ref followed (None if not a ref)."""
        ref: str | None = None
        chain: list[str] = []
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            target = node["$ref"]
            if not target.startswith("#"):
                return node, target
            if target in chain:
                raise InputError(f"{self.label}: $ref loop {' -> '.join([*chain, target])}")
            chain.append(target)
            node, ref = self._lookup(target), target
        return node, ref

    def _lookup(self, ref: str) -> Any:
        if ref not in self._cache:
            node: Any = self.root
            for raw in ref[1:].split("/")[1:]:
                token = raw.replace("%7B", "{").replace("%7D", "}")
                token = token.replace("~1", "/").replace("~0", "~")
                if isinstance(node, dict) and token in node:
                    node = node[token]
                elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                    node = node[int(token)]
                else:
                    raise InputError(f"{self.label}: $ref {ref!r} does not resolve")
            self._cache[ref] = node
        return self._cache[ref]

    def ref_free(self, node: Any) -> bool:
        """Whether no `$ref` sits anywhere under this node of the document (memoised by id:
        the document is never mutated and outlives the walk, so ids stay valid)."""
        key = id(node)
        if key not in self._ref_free:
            if isinstance(node, dict):
                free = "$ref" not in node and all(self.ref_free(v) for v in node.values())
            elif isinstance(node, list):
                free = all(self.ref_free(v) for v in node)
            else:
                free = True
            self._ref_free[key] = free
        return self._ref_free[key]

    def get(self, node: Any) -> dict[str, Any]:
        """The resolved node if it is a mapping, else an empty one (tolerates sloppy documents)."""
        value, _ = self.resolve(node)
        return value if isinstance(value, dict) else {}


# Changes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OperationRef:
    method: str
    path: str
    operation_id: str | None = None
    old_operation_id: str | None = None

    def __str__(self) -> str:
        name = f" ({self.operation_id})" if self.operation_id else ""
        return f"{self.method} {self.path}{name}"

    def usage_keys(self) -> list[str]:
        """The names a usage file may use for this operation."""
        ids = [self.operation_id, self.old_operation_id]
        return [i for i in ids if i] + [f"{self.method} {self.path}"]


@dataclass(frozen=True)
class Change:
    """One classified difference: failures as data, collected rather than raised."""

    rule: str
    level: Level
    message: str
    location: str
    operation: OperationRef | None = None
    field: str | None = None  # body field path (`items[].price`; "" is the body itself)
    parameter: str | None = None  # parameter name, for parameter changes
    impact: str | None = None  # FOR_US or IN_GENERAL once a usage file is applied

    @property
    def direction(self) -> str | None:
        head = self.rule.split(".")[0]
        return head if head in ("request", "response") else None

    def to_dict(self) -> dict[str, Any]:
        op = self.operation
        return {
            "level": self.level.value,
            "rule": self.rule,
            "operation": str(op) if op else None,
            "method": op.method if op else None,
            "path": op.path if op else None,
            "operation_id": op.operation_id if op else None,
            "location": self.location,
            "message": self.message,
            "field": self.field,
            "parameter": self.parameter,
            "impact": self.impact,
        }


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def render_field(segments: Iterable[str]) -> str:
    """("items", "[]", "price") -> "items[].price"."""
    text = ""
    for seg in segments:
        text += seg if seg == "[]" else (f".{seg}" if text else seg)
    return text


def field_segments(text: str) -> tuple[str, ...]:
    """ "items[].price" -> ("items", "[]", "price")."""
    return tuple(re.findall(r"\[\]|[^.\[\]]+", text))


@dataclass(frozen=True)
class Ctx:
    """Where the walk is: both documents, a JSON-pointer-like location, the operation and field."""

    old: Resolver
    new: Resolver
    pointer: str = ""
    context: str = ""  # a schema context from diff_rules, or "" outside schemas
    op: OperationRef | None = None
    field: tuple[str, ...] = ()
    parameter: str | None = None
    where: str = ""  # "response 200", "response 200 header 'X-Rate'"
    # (old ref, new ref, context) already compared in this operation: cuts cycles and repeats.
    seen: set[tuple[str | None, str | None, str]] = _field(
        default_factory=set, compare=False, hash=False
    )

    def at(self, *tokens: str) -> Ctx:
        return replace(self, pointer=self.pointer + "".join(f"/{_escape(t)}" for t in tokens))

    def schema(self, context: str, *, where: str = "", parameter: str | None = None) -> Ctx:
        return replace(self, context=context, where=where, parameter=parameter, field=())

    def prop(self, name: str) -> Ctx:
        # A property of an object parameter is a request property; headers hold no objects.
        context = RESPONSE_PROPERTY if self.context.startswith("response") else REQUEST_PROPERTY
        return replace(self.at("properties", name), context=context, field=(*self.field, name))

    def sub(self, segment: str, *tokens: str) -> Ctx:
        return replace(self.at(*tokens), field=(*self.field, segment))

    @property
    def subject(self) -> str:
        path = render_field(self.field)
        if self.parameter is not None:
            tail = path if path.startswith("[]") or not path else f".{path}"
            return f"parameter '{self.parameter}{tail}'"
        if self.context == REQUEST_PROPERTY:
            return f"request property '{path}'" if path else "request body"
        if self.context == RESPONSE_PROPERTY:
            return f"{self.where} property '{path}'" if path else f"{self.where} body"
        return f"{self.where}{f' {path}' if path else ''}"

    def change(self, rule_id: str, message: str) -> Change:
        body = self.context in (REQUEST_PROPERTY, RESPONSE_PROPERTY) and self.parameter is None
        return Change(
            rule=rule_id,
            level=RULES[rule_id].level,
            message=message,
            location=self.pointer,
            operation=self.op,
            field=render_field(self.field) if body else (render_field(self.field) or None),
            parameter=self.parameter,
        )

    def facet(self, family: str, message: str, sep: str = ": ") -> Iterator[Change]:
        """A change of a schema family, if that family has a rule in this context."""
        if family not in FAMILY_NAMES:
            raise KeyError(f"unknown rule family {family!r}")
        rule_id = f"{self.context}.{family}"
        if rule_id in RULES:
            yield self.change(rule_id, f"{self.subject}{sep}{message}")


# Small helpers ----------------------------------------------------------------------------------


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _show(values: Iterable[Any], limit: int = 8) -> str:
    items = [json.dumps(v) if not isinstance(v, str) else v for v in values]
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if is_number else None


def _fmt(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


# Schemas --------------------------------------------------------------------------------------

SchemaCheck = Callable[[Ctx, dict[str, Any], dict[str, Any]], Iterator[Change]]
FACET_CHECKS: list[SchemaCheck] = []  # compare keywords of one schema level
STRUCTURE_CHECKS: list[SchemaCheck] = []  # descend into properties, items, branches


def facet_check(fn: SchemaCheck) -> SchemaCheck:
    FACET_CHECKS.append(fn)
    return fn


def structure_check(fn: SchemaCheck) -> SchemaCheck:
    STRUCTURE_CHECKS.append(fn)
    return fn


_UNIONS = ("oneOf", "anyOf")


def _has_union(schema: dict[str, Any]) -> bool:
    return any(isinstance(schema.get(key), list) for key in _UNIONS)


def merge_all_of(resolver: Resolver, schema: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """Fold allOf parts into one schema: properties and required lists are combined, any other
    keyword comes from the first place that has it. Enough for the usual base-plus-extension use."""
    parts = schema.get("allOf")
    if not isinstance(parts, list) or depth > 16:
        return schema
    merged = {key: value for key, value in schema.items() if key != "allOf"}
    for raw in parts:
        part = merge_all_of(resolver, resolver.get(raw), depth + 1)
        for key, value in part.items():
            if key == "properties" and isinstance(value, dict):
                merged["properties"] = {**value, **_mapping(merged.get("properties"))}
            elif key == "required" and isinstance(value, list):
                merged["required"] = list(dict.fromkeys([*merged.get("required", []), *value]))
            else:
                merged.setdefault(key, value)
    return merged


def compare_schema(ctx: Ctx, old_raw: Any, new_raw: Any) -> Iterator[Change]:
    """Every change between two schemas, in the direction ctx.context gives."""
    old, old_ref = ctx.old.resolve(old_raw)
    new, new_ref = ctx.new.resolve(new_raw)
    if not isinstance(old, dict) or not isinstance(new, dict):
        return  # boolean schemas (3.1) and external refs: nothing we can classify
    if old_ref is not None or new_ref is not None:
        key = (old_ref, new_ref, ctx.context)
        if key in ctx.seen:
            return
        ctx.seen.add(key)
    if old == new and ctx.old.ref_free(old):
        return  # identical and self-contained: nothing below can differ
    # The allOf lists as written (oasdiff's rules), then what the merged schemas mean.
    yield from _all_of(ctx, old, new)
    old, new = merge_all_of(ctx.old, old), merge_all_of(ctx.new, new)
    if _has_union(old) != _has_union(new):
        # A plain schema became a union (or back): compare it as a one-branch union, so a
        # string that became string-or-integer is one branch added, not a dropped type.
        yield from _nullable(ctx, old, new)
        yield from _unions(ctx, old, new)
        return
    # Facets read this level's keywords only, so equal levels have none to report.
    found = [] if old == new else [c for check in FACET_CHECKS for c in check(ctx, old, new)]
    retyped = [change for change in found if change.rule.endswith(".type-changed")]
    if retyped:
        yield from retyped  # other keywords and what lies below follow from the new type
        return
    yield from found
    for check in STRUCTURE_CHECKS:
        yield from check(ctx, old, new)


def _types(schema: dict[str, Any]) -> frozenset[str] | None:
    """The non-null types a schema allows; None when it does not say."""
    declared = schema.get("type")
    if isinstance(declared, str):
        names = {declared}
    elif isinstance(declared, list):
        names = {t for t in declared if isinstance(t, str)}
    elif "properties" in schema:
        names = {"object"}
    elif "items" in schema:
        names = {"array"}
    else:
        return None
    names.discard("null")
    return frozenset(names)


def _covers(wide: frozenset[str], narrow: frozenset[str]) -> bool:
    return all(t in wide or (t == "integer" and "number" in wide) for t in narrow)


@facet_check
def _type(ctx: Ctx, old: dict[str, Any], new: dict[str, Any]) -> Iterator[Change]:
    if _has_union(old) or _has_union(new):
        return  # branches carry the types
    was, now = _types(old), _types(new)
    if was == now:
        return
    if was is None:
        yield from ctx.facet("type-narrowed", f"type set to {_show(sorted(now or ()))}")
    elif now is None:
        yield from ctx.facet("type-widened", f"type {_show(sorted(was))} no longer enforced")
    else:
        text = f"type changed from {_show(sorted(was))} to {_show(sorted(now))}"
        if _covers(now, was):
            yield from ctx.facet("type-widened", text)
        elif _covers(was, now):
            yield from ctx.facet("type-narrowed", text)
        else:
            yield from ctx.facet("type-changed", text)


def _enum(schema: dict[str, Any]) -> dict[str, Any] | None:
    if isinstance(schema.get("enum"), list):
        values = schema["enum"]
    elif "const" in schema:
        values = [schema["const"]]
    else:
        return None
    return {_canon(v): v for v in values if v is not None}  # null belongs to nullability


@facet_check
def _enum_values(ctx: Ctx, old: dict[str, Any], new: dict[str, Any]) -> Iterator[Change]:
    was, now = _enum(old), _enum(new)
    if was is None and now is None:
        return
    if was is None:
        yield from ctx.facet("enum-added", f"restricted to enum [{_show((now or {}).values())}]")
    elif now is None:
        yield from ctx.facet("enum-removed", f"enum [{_show(was.values())}] dropped")
    else:
        added = [v for k, v in now.items() if k not in was]
        removed = [v for k, v in was.items() if k not in now]
        if added:
            yield from ctx.facet("enum-value-added", f"enum value(s) added: {_show(added)}")
        if removed:
            yield from ctx.facet("enum-value-removed", f"enum value(s) removed: {_show(removed)}")


def _keyword_facet(
    ctx: Ctx, old: dict[str, Any], new: dict[str, Any], key: str, show: Any = str
) -> Iterator[Change]:
    """A keyword added, dropped or changed: rules ``<key>-added|removed|changed``."""
    was, now = old.get(key), new.get(key)
    if was == now:
        return
    if was is None:
        yield from ctx.facet(f"{key}-added", f"{key} {show(now)} added")
    elif now is None:
        yield from ctx.facet(f"{key}-removed", f"{key} {show(was)} dropped")
    else:
        yield from ctx.facet(f"{key}-changed", f"{key} changed from {show(was)} to {show(now)}")


@facet_check
def _format(ctx: Ctx, old: dict[str, Any], new: dict[str, Any]) -> Iterator[Change]:
    yield from _keyword_facet(ctx, old, new, "format")


# keyword, its exclusive companion, upper bound?, family stem
_BOUNDS = (
    ("maxLength", None, True, "max-length"),
    ("minLength", None, False, "min-length"),
    ("maximum", "exclusiveMaximum", True, "maximum"),
    ("minimum", "exclusiveMinimum", False, "minimum"),
    ("maxItems", None, True, "max-items"),
    ("minItems", None, False, "min-items"),
)

Bound = tuple[float, bool]  # (value, exclusive)


def _bound(
    schema: dict[str, Any], key: str, exclusive_key: str | None, upper: bool
) -> Bound | None:
    value = _number(schema.get(key))
    if key in ("minLength", "minItems") and value == 0:
        value = None  # zero is the default: no bound
    bounds: list[Bound] = [] if value is None else [(value, False)]
    if exclusive_key:
        flag = schema.get(exclusive_key)
        if flag is True and bounds:  # 3.0: a boolean modifying the inclusive bound
            bounds = [(bounds[0][0], True)]
        elif (limit := _number(flag)) is not None:  # 3.1: a number of its own
            bounds.append((limit, True))
    if not bounds:
        return None
    # The tightest applies: smallest upper or largest lower, exclusive before inclusive.
    return sorted(bounds, key=lambda b: (b[0] if upper else -b[0], not b[1]))[0]


def _tighter(a: Bound, b: Bound, upper: bool) -> bool:
    if a[0] != b[0]:
        return a[0] < b[0] if upper else a[0] > b[0]
    return a[1] and not b[1]


def _show_bound(b: Bound) -> str:
    return f"{_fmt(b[0])}{' (exclusive)' if b[1] else ''}"


@facet_check
def _bounds(ctx: Ctx, old: dict[str, Any], new: dict[str, Any]) -> Iterator[Change]:
    for key, exclusive_key, upper, stem in _BOUNDS:
        was = _bound(old, key, exclusive_key, upper)
        now = _bound(new, key, exclusive_key, upper)
        if was == now:
            continue
        narrower = f"{stem}-{'decreased' if upper else 'increased'}"
        wider = f"{stem}-{'increased' if upper else 'decreased'}"
        if was is None and now is not None:
            yield from ctx.facet(narrower, f"{key} set to {_show_bound(now)}")
        elif now is None and was is not None:
            yield from ctx.facet(wider, f"{key} {_show_bound(was)} dropped")
        elif was is not None and now is not None:
            text = f"{key} changed from {_show_bound(was)} to {_show_bound(now)}"
            yield from ctx.facet(narrower if _tighter(now, was, upper) else wider, text)


@facet_check
def _pattern(ctx: Ctx, old: dict[str, Any], new: dict[str, Any]) -> Iterator[Change]:
    yield from _keyword_facet(ctx, old, new, "pattern", repr)


def _is_nullable(schema: dict[str, Any]) -> bool:
    declared = schema.get("type")
    return schema.get("nullable") is True or (isinstance(declared, list) and "null" in declared)


@facet_check
def _nullable(ctx: Ctx, old: dict[str, Any], new: dict[str, Any]) -> Iterator[Change]:
    was, now = _is_nullable(old), _is_nullable(new)
    if now and not was:
        yield from ctx.facet("nullable-added", "may now be null", sep=" ")
    elif was and not now:
        yield from ctx.facet("nullable-removed", "may no longer be null", sep=" ")


@facet_check
def _default(ctx: Ctx, old: dict[str, Any], new: dict[str, Any]) -> Iterator[Change]:
    if "default" not in old and "default" in new:
        yield from ctx.facet("default-added", f"default {json.dumps(new['default'])} added")
    elif "default" in old and "default" not in new:
        yield from ctx.facet("default-removed", f"default {json.dumps(old['default'])} removed")
    elif "default" in old and _canon(old["default"]) != _canon(new["default"]):
        text = f"default changed from {json.dumps(old['default'])} to {json.dumps(new['default'])}"
        yield from ctx.facet("default-changed", text)


def _is_object(schema: dict[str, Any]) -> bool:
    return "object" in (_types(schema) or ())


@facet_check
def _additional(ctx: Ctx, old: dict[str, Any], new: dict[str, Any]) -> Iterator[Change]:
    if not (_is_object(old) and _is_object(new)):
        return
    was_open = old.get("additionalProperties", True) is not False
    now_open = new.get("additionalProperties", True) is not False
    if was_open and not now_open:
        yield from ctx.facet("additional-properties-restricted", "additionalProperties: false")
    elif now_open and not was_open:
        yield from ctx.facet("additional-properties-allowed", "undeclared properties now allowed")


@structure_check
def _map_values(ctx: Ctx, old: dict[str, Any], new: dict[str, Any]) -> Iterator[Change]:
    was, now = old.get("additionalProperties"), new.get("additionalProperties")
    if isinstance(was, dict) or isinstance(now, dict):
        # true, absent and {} all mean "any value"; compare against {} then.
        old_values = was if isinstance(was, dict) else {}
        new_values = now if isinstance(now, dict) else {}
        if was is not False and now is not False:
            yield from compare_schema(ctx.sub("*", "additionalProperties"), old_values, new_values)


def _hidden(resolver: Resolver, schema: Any, request: bool) -> bool:
    """readOnly properties never appear in requests, writeOnly ones never in responses."""
    resolved = resolver.get(schema)
    return resolved.get("readOnly" if request else "writeOnly") is True


@structure_check
def _properties(ctx: Ctx, old: dict[str, Any], new: dict[str, Any]) -> Iterator[Change]:
    old_props, new_props = _mapping(old.get("properties")), _mapping(new.get("properties"))
    old_req = [n for n in old.get("required") or [] if isinstance(n, str)]
    new_req = [n for n in new.get("required") or [] if isinstance(n, str)]
    request = not ctx.context.startswith("response")
    names = dict.fromkeys([*old_props, *old_req, *new_props, *new_req])
    for name in names:
        child = ctx.prop(name)
        in_old = (name in old_props or name in old_req) and not (
            name in old_props and _hidden(ctx.old, old_props[name], request)
        )
        in_new = (name in new_props or name in new_req) and not (
            name in new_props and _hidden(ctx.new, new_props[name], request)
        )
        if in_old and not in_new:
            if request or name in old_req:
                yield from child.facet("removed", "was removed", sep=" ")
            else:
                yield from child.facet("optional-removed", "was removed (it was optional)", sep=" ")
        elif in_new and not in_old:
            if not request:
                yield from child.facet("added", "was added", sep=" ")
            elif name in new_req:
                yield from child.facet("required-added", "was added as required", sep=" ")
            else:
                yield from child.facet("optional-added", "was added as optional", sep=" ")
        elif in_old and in_new:
            if name in old_req and name not in new_req:
                yield from child.facet("became-optional", "became optional", sep=" ")
            elif name in new_req and name not in old_req:
                yield from child.facet("became-required", "became required", sep=" ")
            if name in old_props and name in new_props:
                yield from compare_schema(child, old_props[name], new_props[name])


@structure_check
def _items(ctx: Ctx, old: dict[str, Any], new: dict[str, Any]) -> Iterator[Change]:
    if isinstance(old.get("items"), dict) and isinstance(new.get("items"), dict):
        yield from compare_schema(ctx.sub("[]", "items"), old["items"], new["items"])


def _describe(resolver: Resolver, raw: Any) -> str:
    schema, ref = resolver.resolve(raw)
    if ref:
        return ref.rsplit("/", 1)[-1]
    schema = _mapping(schema)
    if isinstance(schema.get("title"), str):
        return str(schema["title"])
    types = _types(schema)
    text = _show(sorted(types)) if types else _canon(schema)
    return text if len(text) <= 60 else text[:57] + "..."


def _match_branches(
    ctx: Ctx, old: list[Any], new: list[Any]
) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Pair union branches: same $ref, then equal text, title, or types; one left each pairs too."""
    free_old, free_new = list(range(len(old))), list(range(len(new)))
    pairs: list[tuple[int, int]] = []

    def ref(raw: Any) -> Any:
        return raw.get("$ref") if isinstance(raw, dict) else None

    def title(side: Resolver, raw: Any) -> Any:
        return side.get(raw).get("title")

    def types(side: Resolver, raw: Any) -> Any:
        return _types(side.get(raw))

    keys: list[tuple[Callable[[Any], Any], Callable[[Any], Any]]] = [
        (ref, ref),
        (_canon, _canon),
        (lambda r: title(ctx.old, r), lambda r: title(ctx.new, r)),
        (lambda r: types(ctx.old, r), lambda r: types(ctx.new, r)),
    ]
    for old_key, new_key in keys:
        for i in list(free_old):
            key = old_key(old[i])
            if key is None:
                continue
            for j in free_new:
                if new_key(new[j]) == key:
                    pairs.append((i, j))
                    free_old.remove(i)
                    free_new.remove(j)
                    break
    if len(free_old) == 1 and len(free_new) == 1:
        pairs.append((free_old.pop(), free_new.pop()))
    return pairs, free_old, free_new


def _all_of(ctx: Ctx, old: dict[str, Any], new: dict[str, Any]) -> Iterator[Change]:
    """Subschemas added to or removed from an allOf. Against a side without allOf, a part equal
    to that whole schema is no change: wrapping a schema in allOf unchanged adds nothing."""
    was, now = old.get("allOf"), new.get("allOf")
    if isinstance(was, list) and isinstance(now, list):
        _, removed, added = _match_branches(ctx, was, now)
    elif isinstance(now, list):
        removed, added = [], [j for j, part in enumerate(now) if _canon(part) != _canon(old)]
    elif isinstance(was, list):
        removed, added = [i for i, part in enumerate(was) if _canon(part) != _canon(new)], []
    else:
        return
    for i in removed:
        assert isinstance(was, list)
        text = f"allOf part {_describe(ctx.old, was[i])} removed"
        yield from ctx.at("allOf", str(i)).facet("all-of-removed", text)
    for j in added:
        assert isinstance(now, list)
        text = f"allOf part {_describe(ctx.new, now[j])} added"
        yield from ctx.at("allOf", str(j)).facet("all-of-added", text)


@structure_check
def _unions(ctx: Ctx, old: dict[str, Any], new: dict[str, Any]) -> Iterator[Change]:
    for key, stem in (("oneOf", "one-of"), ("anyOf", "any-of")):
        was, now = old.get(key), new.get(key)
        if not isinstance(was, list) and not isinstance(now, list):
            continue
        wrapped = key == "oneOf" and not _has_union(old) and isinstance(now, list)
        # The side without a union at all counts as a union of itself.
        was = was if isinstance(was, list) else ([] if _has_union(old) else [old])
        now = now if isinstance(now, list) else ([] if _has_union(new) else [new])
        pairs, removed, added = _match_branches(ctx, was, now)
        if wrapped and pairs and f"{ctx.context}.wrapped-in-one-of" in RULES:
            # A plain schema became one branch of a new oneOf: one restructuring, not branches.
            yield from ctx.at(key).facet("wrapped-in-one-of", "restructured into a oneOf")
            removed, added = [], []
        for i in removed:
            text = f"{key} branch {_describe(ctx.old, was[i])} removed"
            yield from ctx.at(key, str(i)).facet(f"{stem}-branch-removed", text)
        for j in added:
            text = f"{key} branch {_describe(ctx.new, now[j])} added"
            yield from ctx.at(key, str(j)).facet(f"{stem}-branch-added", text)
        for i, j in pairs:
            # A wrapped side has no union of its own, so this cannot re-enter this union.
            yield from compare_schema(ctx.at(key, str(j)), was[i], now[j])


# Operations -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    name: str
    location: str
    data: dict[str, Any]

    @property
    def schema(self) -> Any:
        if "schema" in self.data:
            return self.data["schema"]
        for media in _mapping(self.data.get("content")).values():
            return _mapping(media).get("schema")
        return None

    @property
    def serialization(self) -> tuple[str, bool]:
        default = "form" if self.location in ("query", "cookie") else "simple"
        style = str(self.data.get("style") or default)
        return style, bool(self.data.get("explode", style == "form"))


@dataclass(frozen=True)
class OpView:
    """An operation with its path-level parameters merged in and its effective security."""

    method: str
    path: str
    raw: dict[str, Any]
    params: dict[tuple[str, str], Param]
    security: list[dict[str, list[str]]]


_IGNORED_HEADERS = {"accept", "content-type", "authorization"}  # described elsewhere in OpenAPI


def _template_names(path: str) -> list[str]:
    return re.findall(r"\{([^}]*)\}", path)


def _op_view(
    resolver: Resolver, doc: dict[str, Any], path: str, item: dict[str, Any], method: str
) -> OpView:
    raw = _mapping(item.get(method))
    names = _template_names(path)
    params: dict[tuple[str, str], Param] = {}
    for source in (item.get("parameters"), raw.get("parameters")):
        for entry in source if isinstance(source, list) else []:
            data = resolver.get(entry)
            name, location = str(data.get("name", "")), str(data.get("in", ""))
            if location == "header" and name.lower() in _IGNORED_HEADERS:
                continue
            # Path parameters pair by position in the template, so a rename is not a removal.
            if location == "path" and name in names:
                key = ("path", f"#{names.index(name)}")
            else:
                key = (location, name.lower() if location == "header" else name)
            params[key] = Param(name, location, data)
    security = raw.get("security", doc.get("security"))
    requirements = [
        {str(k): [str(s) for s in v or []] for k, v in req.items()}
        for req in (security if isinstance(security, list) else [])
        if isinstance(req, dict)
    ]
    return OpView(method, path, raw, params, requirements)


OperationCheck = Callable[[Ctx, OpView, OpView], Iterator[Change]]
OPERATION_CHECKS: list[OperationCheck] = []


def operation_check(fn: OperationCheck) -> OperationCheck:
    OPERATION_CHECKS.append(fn)
    return fn


@operation_check
def _identity(ctx: Ctx, old: OpView, new: OpView) -> Iterator[Change]:
    was, now = old.raw.get("operationId"), new.raw.get("operationId")
    if was and now and was != now:
        yield ctx.at("operationId").change(
            "operation.id-changed", f"operationId changed from {was} to {now}"
        )
    if new.raw.get("deprecated") is True and old.raw.get("deprecated") is not True:
        yield ctx.at("deprecated").change("operation.deprecated", "operation deprecated")


def _param_ctx(ctx: Ctx, param: Param) -> Ctx:
    return ctx.at("parameters", param.name).schema(REQUEST_PARAMETER, parameter=param.name)


@operation_check
def _parameters(ctx: Ctx, old: OpView, new: OpView) -> Iterator[Change]:
    removed = [k for k in old.params if k not in new.params]
    added = [k for k in new.params if k not in old.params]
    for k in list(removed):
        for k2 in added:
            if old.params[k].name.lower() == new.params[k2].name.lower():
                a, b = old.params[k], new.params[k2]
                text = f"parameter '{b.name}' moved from {a.location} to {b.location}"
                yield _param_ctx(ctx, b).change("request.parameter.location-changed", text)
                removed.remove(k)
                added.remove(k2)
                break
    for k in removed:
        p = old.params[k]
        text = f"{p.location} parameter '{p.name}' was removed"
        yield _param_ctx(ctx, p).change("request.parameter.removed", text)
    for k in added:
        p = new.params[k]
        required = p.data.get("required") is True or p.location == "path"
        rule = (
            "request.parameter.required-added" if required else "request.parameter.optional-added"
        )
        kind = "required" if required else "optional"
        text = f"{p.location} parameter '{p.name}' was added as {kind}"
        yield _param_ctx(ctx, p).change(rule, text)
    for k in old.params.keys() & new.params.keys():
        a, b = old.params[k], new.params[k]
        pctx = _param_ctx(ctx, b)
        if k[0] != "path":
            was, now = a.data.get("required") is True, b.data.get("required") is True
            if now and not was:
                yield pctx.change(
                    "request.parameter.became-required", f"{pctx.subject} became required"
                )
            elif was and not now:
                yield pctx.change(
                    "request.parameter.became-optional", f"{pctx.subject} became optional"
                )
        if a.serialization != b.serialization:
            text = (
                f"{pctx.subject}: style/explode changed from {a.serialization} to {b.serialization}"
            )
            yield pctx.change("request.parameter.style-changed", text)
        if b.data.get("deprecated") is True and a.data.get("deprecated") is not True:
            yield pctx.change("request.parameter.deprecated", f"{pctx.subject} deprecated")
        if a.schema is not None and b.schema is not None:
            yield from compare_schema(pctx.at("schema"), a.schema, b.schema)


def _content(resolver: Resolver, node: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        str(mt).lower().replace(" ", ""): resolver.get(media)
        for mt, media in _mapping(node.get("content")).items()
    }


@operation_check
def _request_body(ctx: Ctx, old: OpView, new: OpView) -> Iterator[Change]:
    body = ctx.at("requestBody")
    was = ctx.old.get(old.raw["requestBody"]) if "requestBody" in old.raw else None
    now = ctx.new.get(new.raw["requestBody"]) if "requestBody" in new.raw else None
    if was is None and now is None:
        return
    if was is None:
        required = _mapping(now).get("required") is True
        rule = "request.body.required-added" if required else "request.body.optional-added"
        yield body.change(
            rule, f"a {'required' if required else 'optional'} request body was added"
        )
        return
    if now is None:
        yield body.change("request.body.removed", "the request body was removed")
        return
    if now.get("required") is True and was.get("required") is not True:
        yield body.change("request.body.became-required", "the request body became required")
    elif was.get("required") is True and now.get("required") is not True:
        yield body.change("request.body.became-optional", "the request body became optional")
    old_media, new_media = _content(ctx.old, was), _content(ctx.new, now)
    for mt in old_media.keys() - new_media.keys():
        text = f"request media type {mt} is no longer accepted"
        yield body.at("content", mt).change("request.body.media-type-removed", text)
    for mt in new_media.keys() - old_media.keys():
        text = f"request media type {mt} is now accepted"
        yield body.at("content", mt).change("request.body.media-type-added", text)
    for mt in old_media.keys() & new_media.keys():
        a, b = old_media[mt].get("schema"), new_media[mt].get("schema")
        if a is not None and b is not None:
            sctx = body.at("content", mt, "schema").schema(REQUEST_PROPERTY)
            yield from compare_schema(sctx, a, b)


def _is_success(code: str) -> bool:
    return code[:1] in ("1", "2", "3")


@operation_check
def _responses(ctx: Ctx, old: OpView, new: OpView) -> Iterator[Change]:
    was, now = _mapping(old.raw.get("responses")), _mapping(new.raw.get("responses"))
    for code in was.keys() - now.keys():
        kind = "success" if _is_success(code) else "error"
        text = f"response {code} was removed"
        yield ctx.at("responses", code).change(f"response.status.{kind}-removed", text)
    for code in now.keys() - was.keys():
        kind = "success" if _is_success(code) else "error"
        text = f"response {code} was added"
        yield ctx.at("responses", code).change(f"response.status.{kind}-added", text)
    for code in sorted(was.keys() & now.keys()):
        rctx = ctx.at("responses", code).schema("", where=f"response {code}")
        a, b = ctx.old.get(was[code]), ctx.new.get(now[code])
        yield from _headers(rctx, a, b)
        old_media, new_media = _content(ctx.old, a), _content(ctx.new, b)
        for mt in old_media.keys() - new_media.keys():
            text = f"response {code} no longer comes as {mt}"
            yield rctx.at("content", mt).change("response.body.media-type-removed", text)
        for mt in new_media.keys() - old_media.keys():
            text = f"response {code} may now come as {mt}"
            yield rctx.at("content", mt).change("response.body.media-type-added", text)
        for mt in old_media.keys() & new_media.keys():
            sa, sb = old_media[mt].get("schema"), new_media[mt].get("schema")
            if sa is not None and sb is not None:
                sctx = rctx.at("content", mt, "schema").schema(RESPONSE_PROPERTY, where=rctx.where)
                yield from compare_schema(sctx, sa, sb)


def _headers(ctx: Ctx, old: dict[str, Any], new: dict[str, Any]) -> Iterator[Change]:
    def index(
        resolver: Resolver, response: dict[str, Any]
    ) -> dict[str, tuple[str, dict[str, Any]]]:
        return {
            str(name).lower(): (str(name), resolver.get(header))
            for name, header in _mapping(response.get("headers")).items()
            if str(name).lower() != "content-type"
        }

    was, now = index(ctx.old, old), index(ctx.new, new)
    for key in was.keys() - now.keys():
        name, header = was[key]
        hctx = ctx.at("headers", name)
        if header.get("required") is True:
            yield hctx.change("response.header.removed", f"{ctx.where} header {name} was removed")
        else:
            text = f"{ctx.where} optional header {name} was removed"
            yield hctx.change("response.header.optional-removed", text)
    for key in now.keys() - was.keys():
        name, _ = now[key]
        text = f"{ctx.where} header {name} was added"
        yield ctx.at("headers", name).change("response.header.added", text)
    for key in sorted(was.keys() & now.keys()):
        (_, a), (name, b) = was[key], now[key]
        hctx = ctx.at("headers", name).schema(RESPONSE_HEADER, where=f"{ctx.where} header '{name}'")
        if a.get("required") is True and b.get("required") is not True:
            yield hctx.change("response.header.became-optional", f"{hctx.where} became optional")
        elif b.get("required") is True and a.get("required") is not True:
            yield hctx.change("response.header.became-required", f"{hctx.where} became required")
        if a.get("schema") is not None and b.get("schema") is not None:
            yield from compare_schema(hctx.at("schema"), a["schema"], b["schema"])


def _names(requirement: Mapping[str, Any]) -> str:
    return " + ".join(sorted(requirement)) or "anonymous"


@operation_check
def _security(ctx: Ctx, old: OpView, new: OpView) -> Iterator[Change]:
    sctx = ctx.at("security")
    was_public = not old.security or any(not req for req in old.security)
    now_public = not new.security or any(not req for req in new.security)
    if was_public and not now_public:
        yield sctx.change(
            "security.authentication-added", "the operation now requires authentication"
        )
        return
    if now_public and not was_public:
        yield sctx.change("security.authentication-removed", "the operation is now public")
        return
    was = {frozenset(req): req for req in old.security if req}
    now = {frozenset(req): req for req in new.security if req}
    for key in was.keys() - now.keys():
        text = f"security requirement {_names(was[key])} was removed"
        yield sctx.change("security.requirement.removed", text)
    for key in now.keys() - was.keys():
        text = f"security requirement {_names(now[key])} was added"
        yield sctx.change("security.requirement.added", text)
    for key in was.keys() & now.keys():
        for scheme in sorted(key):
            gained = sorted(set(now[key][scheme]) - set(was[key][scheme]))
            lost = sorted(set(was[key][scheme]) - set(now[key][scheme]))
            if gained:
                text = f"{scheme} now also requires scope(s) {_show(gained)}"
                yield sctx.change("security.scope-added", text)
            if lost:
                text = f"{scheme} no longer requires scope(s) {_show(lost)}"
                yield sctx.change("security.scope-removed", text)


# Documents --------------------------------------------------------------------------------------

DocumentCheck = Callable[[Ctx, dict[str, Any], dict[str, Any]], Iterator[Change]]
DOCUMENT_CHECKS: list[DocumentCheck] = []


def document_check(fn: DocumentCheck) -> DocumentCheck:
    DOCUMENT_CHECKS.append(fn)
    return fn


@document_check
def _version(ctx: Ctx, old: dict[str, Any], new: dict[str, Any]) -> Iterator[Change]:
    if str(old.get("openapi")) != str(new.get("openapi")):
        text = f"openapi changed from {old.get('openapi')} to {new.get('openapi')}"
        yield ctx.at("openapi").change("document.openapi-version-changed", text)


@document_check
def _servers(ctx: Ctx, old: dict[str, Any], new: dict[str, Any]) -> Iterator[Change]:
    def urls(doc: dict[str, Any]) -> list[str]:
        servers = doc.get("servers")
        return [str(_mapping(s).get("url")) for s in servers] if isinstance(servers, list) else []

    was, now = urls(old), urls(new)
    for url in was:
        if url not in now:
            yield ctx.at("servers").change("document.server-removed", f"server {url} was removed")
    for url in now:
        if url not in was:
            yield ctx.at("servers").change("document.server-added", f"server {url} was added")


@document_check
def _security_schemes(ctx: Ctx, old: dict[str, Any], new: dict[str, Any]) -> Iterator[Change]:
    def schemes(resolver: Resolver, doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
        found = _mapping(_mapping(doc.get("components")).get("securitySchemes"))
        return {str(name): resolver.get(scheme) for name, scheme in found.items()}

    was, now = schemes(ctx.old, old), schemes(ctx.new, new)
    base = ctx.at("components", "securitySchemes")
    for name in was.keys() - now.keys():
        yield base.at(name).change("security.scheme.removed", f"security scheme {name} was removed")
    for name in now.keys() - was.keys():
        yield base.at(name).change("security.scheme.added", f"security scheme {name} was added")
    for name in sorted(was.keys() & now.keys()):
        yield from _scheme(base.at(name), name, was[name], now[name])


def _scheme(ctx: Ctx, name: str, old: dict[str, Any], new: dict[str, Any]) -> Iterator[Change]:
    if old.get("type") != new.get("type"):
        text = f"security scheme {name} changed type from {old.get('type')} to {new.get('type')}"
        yield ctx.change("security.scheme.type-changed", text)
        return
    if str(old.get("scheme", "")).lower() != str(new.get("scheme", "")).lower():
        text = f"security scheme {name} changed from {old.get('scheme')} to {new.get('scheme')}"
        yield ctx.change("security.scheme.http-scheme-changed", text)
    if (old.get("in"), old.get("name")) != (new.get("in"), new.get("name")):
        text = (
            f"security scheme {name} key moved from {old.get('in')} {old.get('name')} "
            f"to {new.get('in')} {new.get('name')}"
        )
        yield ctx.change("security.scheme.api-key-changed", text)
    if old.get("openIdConnectUrl") != new.get("openIdConnectUrl"):
        text = f"security scheme {name} openIdConnectUrl changed"
        yield ctx.change("security.scheme.oauth-url-changed", text)
    was_flows, now_flows = _mapping(old.get("flows")), _mapping(new.get("flows"))
    for flow in was_flows:
        fctx = ctx.at("flows", flow)
        if flow not in now_flows:
            yield fctx.change(
                "security.scheme.oauth-flow-removed", f"{name}: flow {flow} was removed"
            )
            continue
        a, b = _mapping(was_flows[flow]), _mapping(now_flows[flow])
        for key in ("authorizationUrl", "tokenUrl", "refreshUrl"):
            if a.get(key) != b.get(key):
                text = f"{name}: {flow} {key} changed from {a.get(key)} to {b.get(key)}"
                yield fctx.change("security.scheme.oauth-url-changed", text)
        scopes_a, scopes_b = _mapping(a.get("scopes")), _mapping(b.get("scopes"))
        if lost := sorted(scopes_a.keys() - scopes_b.keys()):
            text = f"{name}: {flow} no longer offers scope(s) {_show(lost)}"
            yield fctx.change("security.scheme.oauth-scope-removed", text)
        if gained := sorted(scopes_b.keys() - scopes_a.keys()):
            text = f"{name}: {flow} now offers scope(s) {_show(gained)}"
            yield fctx.change("security.scheme.oauth-scope-added", text)


def _path_key(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def _methods(item: dict[str, Any]) -> list[str]:
    return [m for m in METHODS if isinstance(item.get(m), dict)]


def _op_ref(path: str, item: dict[str, Any], method: str) -> OperationRef:
    op_id = _mapping(item.get(method)).get("operationId")
    return OperationRef(method.upper(), path, str(op_id) if op_id else None)


@document_check
def _paths(ctx: Ctx, old: dict[str, Any], new: dict[str, Any]) -> Iterator[Change]:
    was = {_path_key(p): p for p in _mapping(old.get("paths"))}
    now = {_path_key(p): p for p in _mapping(new.get("paths"))}
    for key, path in was.items():
        if key in now:
            continue
        item = ctx.old.get(old["paths"][path])
        pctx = ctx.at("paths", path)
        for method in _methods(item) or [""]:
            op = _op_ref(path, item, method) if method else None
            yield replace(pctx.at(method) if method else pctx, op=op).change(
                "path.removed", f"path {path} was removed"
            )
    for key, path in now.items():
        if key in was:
            continue
        item = ctx.new.get(new["paths"][path])
        pctx = ctx.at("paths", path)
        for method in _methods(item) or [""]:
            op = _op_ref(path, item, method) if method else None
            yield replace(pctx.at(method) if method else pctx, op=op).change(
                "path.added", f"path {path} was added"
            )
    for key, new_path in now.items():
        if key not in was:
            continue
        old_path = was[key]
        pctx = ctx.at("paths", new_path)
        if old_path != new_path:
            text = f"path {old_path} is now written {new_path}"
            yield pctx.change("path.parameter-renamed", text)
        a, b = ctx.old.get(old["paths"][old_path]), ctx.new.get(new["paths"][new_path])
        for method in _methods(a):
            if method not in _methods(b):
                op = _op_ref(old_path, a, method)
                text = f"operation {op} was removed"
                yield replace(pctx.at(method), op=op).change("operation.removed", text)
        for method in _methods(b):
            if method not in _methods(a):
                op = _op_ref(new_path, b, method)
                yield replace(pctx.at(method), op=op).change(
                    "operation.added", f"operation {op} was added"
                )
        for method in _methods(a):
            if method in _methods(b):
                old_view = _op_view(ctx.old, old, old_path, a, method)
                new_view = _op_view(ctx.new, new, new_path, b, method)
                op = replace(
                    _op_ref(new_path, b, method),
                    old_operation_id=_op_ref(old_path, a, method).operation_id,
                )
                octx = replace(pctx.at(method), op=op, seen=set())
                for check in OPERATION_CHECKS:
                    yield from check(octx, old_view, new_view)


def diff_documents(old: Document, new: Document) -> list[Change]:
    """Every change from `old` to `new`, in document order."""
    ctx = Ctx(Resolver(old), Resolver(new))
    return [change for check in DOCUMENT_CHECKS for change in check(ctx, old.data, new.data)]


# Consumer usage ---------------------------------------------------------------------------------


def _names_list(value: Any, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{where}: must be a list of strings")
    return tuple(value)


@dataclass(frozen=True)
class OperationUsage:
    """What one consumer sends and reads for one operation; None means unknown (assume all)."""

    request_fields: tuple[str, ...] | None = None
    response_fields: tuple[str, ...] | None = None
    parameters: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, list[str]]:
        fields = {
            "request_fields": self.request_fields,
            "response_fields": self.response_fields,
            "parameters": self.parameters,
        }
        return {key: list(value) for key, value in fields.items() if value is not None}


_USAGE_KEYS = ("request_fields", "response_fields", "parameters")


@dataclass(frozen=True)
class Usage:
    """The consumer view: operations a client calls, keyed by operationId (or "METHOD /path")."""

    operations: Mapping[str, OperationUsage] = _field(default_factory=dict)
    version: int = 1

    def lookup(self, op: OperationRef) -> OperationUsage | None:
        for key in op.usage_keys():
            if key in self.operations:
                return self.operations[key]
        return None

    def to_json(self) -> dict[str, Any]:
        ops = {name: usage.to_json() for name, usage in sorted(self.operations.items())}
        return {"version": self.version, "operations": ops}

    @classmethod
    def from_json(cls, data: Any, label: str = "usage") -> Usage:
        if not isinstance(data, dict) or not isinstance(data.get("operations"), dict):
            raise InputError(f"{label}: a usage file is an object with an `operations` object")
        if unknown := set(data) - {"version", "operations"}:
            raise InputError(f"{label}: unknown key(s) {', '.join(sorted(unknown))}")
        if data.get("version", 1) != 1:
            raise InputError(f"{label}: usage format version {data['version']} is not supported")
        operations: dict[str, OperationUsage] = {}
        for name, entry in data["operations"].items():
            where = f"{label}: operations.{name}"
            if not isinstance(entry, dict):
                raise InputError(f"{where}: must be an object")
            if unknown := set(entry) - set(_USAGE_KEYS):
                raise InputError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
            lists = {key: _names_list(entry.get(key), f"{where}.{key}") for key in _USAGE_KEYS}
            operations[name] = OperationUsage(**lists)
        return cls(operations)


def load_usage(path: str | Path) -> Usage:
    """Read a usage file (JSON); InputError when unreadable or malformed."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read ({exc})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from exc
    return Usage.from_json(data, str(path))


def _related(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """One field path is a prefix of the other (a change to a parent touches its children)."""
    return all(x == y or "*" in (x, y) for x, y in zip(a, b, strict=False))


def touches(change: Change, usage: Usage) -> bool:
    """Whether a change reaches what this consumer calls, sends or reads."""
    if change.operation is None:
        return True  # document-wide (security schemes, servers): assume it reaches everyone
    used = usage.lookup(change.operation)
    if used is None:
        return False
    requirement = RULES[change.rule].requirement
    if change.parameter is not None:
        if used.parameters is None:
            return True
        sent = change.parameter in used.parameters
        if requirement and not change.field:
            return not sent  # a newly required parameter breaks us only if we do not send it
        return sent
    if change.field is None:
        return True  # operation-wide: status codes, media types, security, headers
    fields = used.request_fields if change.direction == "request" else used.response_fields
    path = field_segments(change.field)
    if fields is None or not path:
        return True
    mine = [field_segments(f) for f in fields]
    if requirement:
        if any(len(m) == len(path) and _related(m, path) for m in mine):
            return False  # we already send it
        parent = path[:-1]
        return not parent or any(_related(m, parent) for m in mine)
    return any(_related(m, path) for m in mine)


def apply_usage(changes: list[Change], usage: Usage | None) -> list[Change]:
    """Mark each breaking change breaking-for-us or breaking-in-general."""
    if usage is None:
        return changes
    return [
        replace(c, impact=FOR_US if touches(c, usage) else IN_GENERAL)
        if c.level is Level.BREAKING
        else c
        for c in changes
    ]


# Results ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    old: str
    new: str
    changes: list[Change]

    def counts(self) -> dict[str, int]:
        counts = {level.value: 0 for level in Level}
        for change in self.changes:
            counts[change.level.value] += 1
        counts[FOR_US] = sum(c.impact == FOR_US for c in self.changes)
        counts[IN_GENERAL] = sum(c.impact == IN_GENERAL for c in self.changes)
        return counts


def compare(old: Document, new: Document, usage: Usage | None = None) -> Comparison:
    changes = sorted(diff_documents(old, new), key=lambda c: c.level.rank)
    return Comparison(old.label, new.label, apply_usage(changes, usage))


def exit_code(comparisons: Iterable[Comparison], with_usage: bool) -> int:
    """1 when something breaks (for us, with a usage file), else 0."""
    for comparison in comparisons:
        for change in comparison.changes:
            breaks = change.impact == FOR_US if with_usage else change.level is Level.BREAKING
            if breaks:
                return 1
    return 0

"""Stripe-style form bodies: bracket-notation decode, schema-driven leaf coercion, and encode."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from operator import itemgetter
from typing import Any
from urllib.parse import quote_plus, unquote_plus

__all__ = [
    "MAX_DEPTH",
    "MAX_INDEX",
    "MAX_PAIRS",
    "FormDecodeError",
    "coerce",
    "decode_form",
    "encode_form",
]

MAX_DEPTH = 20  # bracket groups in one key: a[1][2]...[20]
MAX_INDEX = 10_000  # list indexes must be below this
MAX_PAIRS = 10_000
_INDEX_DIGITS = len(str(MAX_INDEX))
# Deep enough for any decoded body (MAX_DEPTH) plus anyOf nesting, shallow enough to stop
# self-referencing ($ref-resolved, cyclic) schemas and hostile values before Python's stack does.
_MAX_COERCE_DEPTH = 64

# One C-level scan of the whole body, instead of a Python loop over every '%' (the SDK emits
# several per nested key).
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_DECIMAL = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


class FormDecodeError(ValueError):
    """Carries `param` (Stripe bracket notation, e.g. "items[0][price]") and `message`."""

    param: str | None
    message: str

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


# ---------------------------------------------------------------------------------------------
# decode


def decode_form(raw: bytes | str) -> dict[str, Any]:
    """Decode an x-www-form-urlencoded body or query string into nested dicts, lists and strs."""
    if isinstance(raw, bytes | bytearray | memoryview):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormDecodeError(f"Body is not valid UTF-8 (byte {exc.start}).") from None
    else:
        text = raw
        # A str can still hold lone surrogates, which no UTF-8 client could have sent.
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise FormDecodeError(f"Body is not valid UTF-8 (char {exc.start}).") from None
    if not text:
        return {}
    bad = _BAD_PERCENT.search(text)
    if bad is not None:
        # urllib silently keeps broken escapes; Stripe (Rack) rejects the whole request.
        start = text.rfind("&", 0, bad.start()) + 1
        key = text[start:].partition("&")[0].partition("=")[0]
        raise FormDecodeError(
            f"Invalid percent-encoding at offset {bad.start()}.",
            unquote_plus(key, errors="replace"),
        )
    parts = text.split("&")
    if len(parts) > MAX_PAIRS and sum(1 for p in parts if p) > MAX_PAIRS:
        raise FormDecodeError(f"Too many parameters (more than {MAX_PAIRS}).")
    root: dict[str, Any] = {}
    for part in parts:
        if not part:
            continue  # "a=1&&b=2" and a trailing "&" are harmless
        rkey, _, rval = part.partition("=")
        key = _unquote(rkey, None)
        _insert(root, key, _split_key(key), _unquote(rval, key))
    return {k: _finalize(v, k) if type(v) is dict else v for k, v in root.items()}


def _unquote(s: str, param: str | None) -> str:
    if "%" not in s:
        return s.replace("+", " ") if "+" in s else s
    try:
        return unquote_plus(s, errors="strict")
    except UnicodeDecodeError:
        what = "Value" if param is not None else "Parameter name"
        raise FormDecodeError(
            f"{what} is not valid UTF-8 after percent-decoding.", s if param is None else param
        ) from None


def _split_key(key: str) -> list[str]:
    """["items", "0", "price"] for "items[0][price]"; a trailing "" means "append" ("a[]")."""
    open_at = key.find("[")
    if open_at == -1:
        if not key or "]" in key:
            raise FormDecodeError(f"Malformed parameter name {key!r}.", key)
        return [key]
    depth = key.count("[")
    if depth > MAX_DEPTH:
        raise FormDecodeError(f"Parameter nested deeper than {MAX_DEPTH} levels.", key)
    # Counting instead of walking the brackets keeps this in C: with n '[' and no ']' before the
    # first, the key is base[s1]...[sn] iff it ends in ']' and has n ']' and n-1 '][' pairs.
    if (
        open_at == 0
        or not key.endswith("]")
        or key.count("]") != depth
        or key.count("][") != depth - 1
        or key.find("]") < open_at
    ):
        raise FormDecodeError(f"Malformed parameter name {key!r}: unbalanced brackets.", key)
    empty = key.find("[]")
    if empty != -1 and empty != len(key) - 2:
        # Rack guesses what a[][b] means; the SDK never sends it, so refuse to guess.
        raise FormDecodeError(f"Malformed parameter name {key!r}: '[]' must be last.", key)
    names = key[open_at + 1 : -1].split("][")
    names.insert(0, key[:open_at])
    return names


def _path(names: list[str], upto: int) -> str:
    return names[0] + "".join(f"[{s}]" for s in names[1:upto])


def _insert(root: dict[str, Any], key: str, names: list[str], value: str) -> None:
    # Containers are dicts until _finalize; leaves are str, or list[str] for repeated keys and
    # "a[]" appends (both are how arrays of scalars arrive without indexes).
    append = names[-1] == ""
    last = len(names) - 2 if append else len(names) - 1
    node = root
    for depth in range(last):
        name = names[depth]
        child = node.get(name)
        if child is None:
            child = node[name] = {}
        elif type(child) is not dict:
            raise FormDecodeError(
                f"Conflicting parameter {key!r}: {_path(names, depth + 1)!r} is already a value.",
                _path(names, depth + 1),
            )
        node = child
    name = names[last]
    existing = node.get(name)
    if existing is None:
        node[name] = [value] if append else value
    elif type(existing) is dict:
        raise FormDecodeError(
            f"Conflicting parameter {key!r}: {_path(names, last + 1)!r} already has sub-keys.",
            _path(names, last + 1),
        )
    elif type(existing) is list:
        existing.append(value)
    else:
        node[name] = [existing, value]


def _finalize(node: dict[str, Any], path: str) -> dict[str, Any] | list[Any]:
    for k, v in node.items():
        if type(v) is dict:
            node[k] = _finalize(v, f"{path}[{k}]")
    keys = "".join(node)  # keys are never empty, so this is all-digits iff every key is
    if not (keys.isdigit() and keys.isascii()):
        return node
    indexed: list[tuple[int, Any]] = []
    for k, v in node.items():
        # Strip before int(): a huge digit string is slow to convert or over int_max_str_digits.
        digits = k.lstrip("0") or "0"
        if len(digits) > _INDEX_DIGITS or int(digits) >= MAX_INDEX:
            raise FormDecodeError(
                f"Array index {k} is too large (max {MAX_INDEX - 1}).", f"{path}[{k}]"
            )
        indexed.append((int(digits), v))
    # Gaps are compacted, as Rack does: indexes only order the elements.
    indexed.sort(key=itemgetter(0))
    return [v for _, v in indexed]


# ---------------------------------------------------------------------------------------------
# coerce


def coerce(value: Any, schema: Mapping[str, Any], *, param: str = "") -> Any:
    """Best-effort conversion of decoded string leaves to the types `schema` declares; never raises.

    Values that do not convert are returned unchanged for the validator to report. `param` (the
    value's bracket path) is accepted for call-site symmetry; coercion cannot fail, so it is unused.
    """
    try:
        return _coerce(value, schema, 0, ())
    except RecursionError:  # only reachable with absurdly deep anyOf trees
        return value


def _coerce(value: Any, schema: Any, depth: int, chain: tuple[int, ...]) -> Any:
    # `chain` holds the ids of the anyOf/oneOf schemas entered without descending into the value:
    # $ref resolution can make them cyclic, and depth alone would still allow branches**depth work.
    if depth > _MAX_COERCE_DEPTH or not isinstance(schema, Mapping):
        return value
    for keyword in ("anyOf", "oneOf"):
        branches = schema.get(keyword)
        if isinstance(branches, list):
            inner = (*chain, id(schema))
            for branch in branches:
                if isinstance(branch, Mapping) and id(branch) not in inner:
                    if not _constrains_type(branch):
                        # A branch such as {required: [x]} says nothing about types: the
                        # schema's own type and properties decide the conversion.
                        continue
                    candidate = _coerce(value, branch, depth + 1, inner)
                    if _matches(candidate, branch, depth + 1, inner):
                        return candidate
    kind = _kind(schema)
    if value == "" and kind != "string" and schema.get("nullable") is True:
        return None
    convert = _CONVERTERS.get(kind) if kind is not None else None
    return value if convert is None else convert(value, schema, depth)


def _constrains_type(schema: Mapping[str, Any]) -> bool:
    return _kind(schema) is not None or "enum" in schema or "anyOf" in schema or "oneOf" in schema


def _kind(schema: Mapping[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, str):
        return kind
    if kind is None:
        if "properties" in schema or "additionalProperties" in schema:
            return "object"
        if "items" in schema:
            return "array"
    return None


def _matches(value: Any, schema: Mapping[str, Any], depth: int, chain: tuple[int, ...]) -> bool:
    if value is None and schema.get("nullable") is True:
        return True
    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        return False
    kind = _kind(schema)
    if kind is not None:
        check = _TYPE_CHECKS.get(kind)
        return check is not None and check(value)
    if schema.get("type") is not None or depth > _MAX_COERCE_DEPTH:
        return False
    branches = [
        b
        for keyword in ("anyOf", "oneOf")
        if isinstance(bs := schema.get(keyword), list)
        for b in bs
        if isinstance(b, Mapping)
    ]
    if not branches:
        return True  # no type constraint accepts anything (JSON Schema semantics)
    inner = (*chain, id(schema))
    return any(_matches(value, b, depth + 1, inner) for b in branches if id(b) not in inner)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": _is_int,
    "number": _is_number,
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


def _to_integer(value: Any, schema: Mapping[str, Any], depth: int) -> Any:
    if not isinstance(value, str):
        return value
    digits = value[1:] if value.startswith("-") else value
    if digits.isascii() and digits.isdigit():
        try:
            return int(value)
        except ValueError:  # longer than sys.get_int_max_str_digits()
            return value
    return value


def _to_number(value: Any, schema: Mapping[str, Any], depth: int) -> Any:
    if not isinstance(value, str) or _DECIMAL.fullmatch(value) is None:
        return value
    try:
        if "." not in value and "e" not in value and "E" not in value:
            return int(value)
        number = float(value)
    except ValueError:
        return value
    if not math.isfinite(number):
        return value
    return int(number) if number.is_integer() else number


def _to_boolean(value: Any, schema: Mapping[str, Any], depth: int) -> Any:
    if value == "true":
        return True
    if value == "false":
        return False
    return value


def _to_object(value: Any, schema: Mapping[str, Any], depth: int) -> Any:
    if not isinstance(value, dict):
        return value
    props = schema.get("properties")
    if not isinstance(props, Mapping):
        props = {}
    extra = schema.get("additionalProperties")
    if not isinstance(extra, Mapping):
        extra = None
    out: dict[Any, Any] = {}
    for k, v in value.items():
        sub = props.get(k, extra)
        out[k] = v if sub is None else _coerce(v, sub, depth + 1, ())
    return out


def _index_order(key: str) -> tuple[int, str]:
    digits = key.lstrip("0")
    return len(digits), digits


def _to_array(value: Any, schema: Mapping[str, Any], depth: int) -> Any:
    if (
        isinstance(value, dict)
        and value
        and all(isinstance(k, str) and k.isascii() and k.isdigit() for k in value)
    ):
        value = [value[k] for k in sorted(value, key=_index_order)]
    if not isinstance(value, list):
        return value
    items = schema.get("items")
    if not isinstance(items, Mapping):
        return value
    return [_coerce(v, items, depth + 1, ()) for v in value]


_CONVERTERS: dict[str, Callable[[Any, Mapping[str, Any], int], Any]] = {
    "integer": _to_integer,
    "number": _to_number,
    "boolean": _to_boolean,
    "object": _to_object,
    "array": _to_array,
}


# ---------------------------------------------------------------------------------------------
# encode


def encode_form(data: Mapping[str, Any]) -> str:
    """Encode like the stripe SDK: a[b]=, always-indexed a[0]=, true/false, None omitted."""
    pairs: list[str] = []
    for key, value in data.items():
        _encode(str(key), value, pairs)
    return "&".join(pairs)


def _encode(key: str, value: Any, out: list[str]) -> None:
    if value is None:
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            _encode(f"{key}[{k}]", v, out)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _encode(f"{key}[{i}]", v, out)
    else:
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        out.append(f"{quote_plus(key)}={quote_plus(text)}")

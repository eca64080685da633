"""Tests for the Stripe-style form codec, using the real stripe SDK encoder as the reference."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stripe._encode import _api_encode

from simulators.common.formcodec import (
    MAX_DEPTH,
    MAX_INDEX,
    MAX_PAIRS,
    FormDecodeError,
    coerce,
    decode_form,
    encode_form,
)


def sdk_form(params: dict[str, Any]) -> str:
    """What stripe._api_requestor builds before it un-escapes the brackets."""
    return urlencode(list(_api_encode(params)))


def sdk_wire(params: dict[str, Any]) -> str:
    """The body/query the SDK really sends: it turns %5B/%5D back into literal brackets."""
    return sdk_form(params).replace("%5B", "[").replace("%5D", "]")


# ---------------------------------------------------------------------------------------------
# strategies and models

# Keys are restricted to [a-z_]: the SDK does not escape '[' or ']' inside keys (so such keys are
# unparseable by any server), and a dict whose keys are all digits is indistinguishable on the
# wire from an indexed list, so it decodes as a list by design.
KEYS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=6)
STRINGS = st.one_of(st.text(), st.text(alphabet="&=[]%+ ;#?a5BD\u00e9\u20ac\U0001f600", max_size=8))
SCALARS = st.one_of(
    STRINGS,
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)


def _is_quirky_list_item(v: object) -> bool:
    return v is None or isinstance(v, bool)


def params_strategy(*, bools_and_none_in_lists: bool) -> st.SearchStrategy[dict[str, Any]]:
    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        items = (
            children
            if bools_and_none_in_lists
            else children.filter(lambda v: not _is_quirky_list_item(v))
        )
        return st.one_of(
            st.lists(items, max_size=4),
            st.dictionaries(KEYS, children, max_size=4),
        )

    values = st.recursive(SCALARS, extend, max_leaves=16)
    return st.dictionaries(KEYS, values, max_size=5)


ALL_PARAMS = params_strategy(bools_and_none_in_lists=True)
# The SDK writes bools/None that sit directly in a list without its usual conversion (see
# test_sdk_quirk_bools_and_none_in_lists); encode_form deliberately does not copy that.
SANE_PARAMS = params_strategy(bools_and_none_in_lists=False)

MISSING: Any = object()


def sdk_view(value: Any, ctx: str = "value") -> Any:
    """What decode_form must return for `value` after the SDK encoded it.

    Mirrors stripe._encode._api_encode: dict values and top-level values ("value" context) drop
    None and lowercase bools; scalars directly inside a list ("item" context) are yielded raw, so
    urlencode str()s them ("True", "None"). A list inside a list is re-fed to _api_encode as a
    dict of index -> element, so its elements are back in "value" context. Nothing is sent for
    empty lists/dicts, and skipped list elements leave index gaps that the decoder compacts.
    """
    if isinstance(value, dict):
        out = {k: e for k, v in value.items() if (e := sdk_view(v)) is not MISSING}
        return out or MISSING
    if isinstance(value, list):
        child_ctx = "item" if ctx == "value" else "value"
        items = [e for v in value if (e := sdk_view(v, child_ctx)) is not MISSING]
        return items or MISSING
    if ctx == "item":
        return str(value)
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def sane_view(value: Any) -> Any:
    """What decode_form(encode_form(x)) must return: leaves stringified, None/empties dropped."""
    if isinstance(value, dict):
        out = {k: e for k, v in value.items() if (e := sane_view(v)) is not MISSING}
        return out or MISSING
    if isinstance(value, list):
        items = [e for v in value if (e := sane_view(v)) is not MISSING]
        return items or MISSING
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def top(view: Any) -> Any:
    return {} if view is MISSING else view


# ---------------------------------------------------------------------------------------------
# decode_form against the SDK


@settings(max_examples=400, deadline=None)
@given(ALL_PARAMS)
def test_decode_of_sdk_encoding_matches_params(params: dict[str, Any]) -> None:
    expected = top(sdk_view(params))
    assert decode_form(sdk_form(params)) == expected
    assert decode_form(sdk_wire(params)) == expected
    assert decode_form(sdk_wire(params).encode("utf-8")) == expected


@settings(max_examples=400, deadline=None)
@given(SANE_PARAMS)
def test_encode_form_equals_sdk_encoding(params: dict[str, Any]) -> None:
    assert encode_form(params) == sdk_form(params)


@settings(max_examples=400, deadline=None)
@given(ALL_PARAMS)
def test_encode_decode_round_trip(params: dict[str, Any]) -> None:
    assert decode_form(encode_form(params)) == top(sane_view(params))


def test_sdk_quirk_bools_and_none_in_lists() -> None:
    params: dict[str, Any] = {"a": [True, None, "x"], "b": [[False, None]], "c": {"d": True}}
    # The SDK lowercases bools and drops None only outside lists (or in lists of lists).
    assert decode_form(sdk_wire(params)) == {
        "a": ["True", "None", "x"],
        "b": [["false"]],
        "c": {"d": "true"},
    }
    assert decode_form(encode_form(params)) == {
        "a": ["true", "x"],
        "b": [["false"]],
        "c": {"d": "true"},
    }


def test_sdk_sends_literal_brackets_and_nothing_for_empties() -> None:
    params = {"items": [{"price": "p", "quantity": 2}], "expand": [], "metadata": {}}
    assert sdk_wire(params) == "items[0][price]=p&items[0][quantity]=2"
    assert decode_form(sdk_wire(params)) == {"items": [{"price": "p", "quantity": "2"}]}


def test_encode_form_examples() -> None:
    data = {
        "a": "x y&z",
        "b": {"c": True, "d": None, "e": [1, {"f": False}]},
        "g": ("h",),
        "i": None,
    }
    assert encode_form(data) == (
        "a=x+y%26z&b%5Bc%5D=true&b%5Be%5D%5B0%5D=1&b%5Be%5D%5B1%5D%5Bf%5D=false&g%5B0%5D=h"
    )
    assert encode_form({}) == ""


# ---------------------------------------------------------------------------------------------
# decode_form examples


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a=1", {"a": "1"}),
        ("a[b][c]=1", {"a": {"b": {"c": "1"}}}),
        ("items[0][price]=p&items[1][price]=q", {"items": [{"price": "p"}, {"price": "q"}]}),
        ("items[1][price]=q&items[0][price]=p", {"items": [{"price": "p"}, {"price": "q"}]}),
        ("a[10]=z&a[2]=y&a[0]=x", {"a": ["x", "y", "z"]}),
        ("a[0][b]=1&a[1][b]=2&a[0][c]=3", {"a": [{"b": "1", "c": "3"}, {"b": "2"}]}),
        ("expand[]=x&expand[]=y", {"expand": ["x", "y"]}),
        ("expand[]=x", {"expand": ["x"]}),
        ("expand[0]=x", {"expand": ["x"]}),
        ("expand=x&expand=y", {"expand": ["x", "y"]}),
        ("a[b]=1&a[b]=2", {"a": {"b": ["1", "2"]}}),
        ("metadata[0]=x&metadata[k]=y", {"metadata": {"0": "x", "k": "y"}}),
        ("metadata[0]=x&metadata[1]=y", {"metadata": ["x", "y"]}),
        ("a[0][0]=x&a[0][1]=y&a[1][k]=z", {"a": [["x", "y"], {"k": "z"}]}),
        ("a=", {"a": ""}),
        ("a", {"a": ""}),
        ("a[b]=&c=", {"a": {"b": ""}, "c": ""}),
        ("a=1&&b=2&", {"a": "1", "b": "2"}),
        ("a=x+y%20z%2B", {"a": "x y z+"}),
        ("a=b=c", {"a": "b=c"}),
        ("a%5Bb%5D=1", {"a": {"b": "1"}}),
        ("a+b=1", {"a b": "1"}),
        ("n=%E2%82%AC%F0%9F%98%80", {"n": "\u20ac\U0001f600"}),
        ("0=a&1=b", {"0": "a", "1": "b"}),
        ("", {}),
        (b"", {}),
        (b"a=%C3%A9&b=\xc3\xa9", {"a": "\u00e9", "b": "\u00e9"}),
    ],
)
def test_decode_examples(raw: str | bytes, expected: dict[str, Any]) -> None:
    assert decode_form(raw) == expected


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        ("a=1&a[b]=2", "a"),
        ("a[b]=1&a=2", "a"),
        ("a[b]=1&a[b][c]=2", "a[b]"),
        ("a[b][c]=1&a[b]=2", "a[b]"),
        ("a[0]=1&a[]=2", "a"),
        ("a[]=1&a[0]=2", "a"),
        ("a[b=1", "a[b"),
        ("a]=1", "a]"),
        ("a[b]]=1", "a[b]]"),
        ("a[b]c=1", "a[b]c"),
        ("a[b[c]]=1", "a[b[c]]"),
        ("a][b]=1", "a][b]"),
        ("[x]=1", "[x]"),
        ("=1", ""),
        ("a[][b]=1", "a[][b]"),
        ("a=%zz", "a"),
        ("a=1%", "a"),
        ("a=%4", "a"),
        ("k%zz[x]=1", "k%zz[x]"),
        ("a=%FF", "a"),
        ("a=%C3", "a"),
        ("a[b]=%ED%A0%80", "a[b]"),
        ("a%FF=1", "a%FF"),
        ("a[10000]=x", "a[10000]"),
        ("a[0]=x&a[" + "9" * 5000 + "]=y", "a[" + "9" * 5000 + "]"),
    ],
)
def test_decode_errors_name_the_param(raw: str, param: str) -> None:
    with pytest.raises(FormDecodeError) as info:
        decode_form(raw)
    assert info.value.param == param
    assert info.value.message
    assert str(info.value) == info.value.message


@pytest.mark.parametrize("raw", [b"a=\xff", b"a\xc3=1", "a=\ud800"])
def test_decode_rejects_invalid_utf8(raw: str | bytes) -> None:
    with pytest.raises(FormDecodeError, match="UTF-8"):
        decode_form(raw)


def test_guard_rail_depth() -> None:
    ok = "a" + "[b]" * MAX_DEPTH + "=1"
    node: Any = decode_form(ok)["a"]
    for _ in range(MAX_DEPTH - 1):
        node = node["b"]
    assert node == {"b": "1"}
    too_deep = "a" + "[b]" * (MAX_DEPTH + 1)
    with pytest.raises(FormDecodeError, match="deeper") as info:
        decode_form(too_deep + "=1")
    assert info.value.param == too_deep
    with pytest.raises(FormDecodeError):
        decode_form("a" + "[b]" * 200_000 + "=1")
    with pytest.raises(FormDecodeError):
        decode_form("a" + "[" * 200_000 + "=1")


def test_guard_rail_indexes() -> None:
    assert decode_form(f"a[{MAX_INDEX - 1}]=x&a[0]=y") == {"a": ["y", "x"]}
    assert decode_form("a[0009999]=x") == {"a": ["x"]}
    # A large all-digit key mixed with a name is a dict key, not an index.
    assert decode_form("m[123456]=x&m[k]=y") == {"m": {"123456": "x", "k": "y"}}
    with pytest.raises(FormDecodeError) as info:
        decode_form(f"a[b][{MAX_INDEX}]=x")
    assert info.value.param == f"a[b][{MAX_INDEX}]"


def test_guard_rail_pair_count() -> None:
    body = "&".join(f"k{i}=v" for i in range(MAX_PAIRS))
    assert len(decode_form(body + "&&")) == MAX_PAIRS
    with pytest.raises(FormDecodeError, match="Too many") as info:
        decode_form(body + "&one=more")
    assert info.value.param is None


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.binary(), st.text(alphabet="ab[]=&%5B+0", max_size=40)))
def test_decode_never_crashes(raw: str | bytes) -> None:
    try:
        result = decode_form(raw)
    except FormDecodeError as exc:
        assert exc.message
    else:
        assert isinstance(result, dict)


# ---------------------------------------------------------------------------------------------
# coerce

INT = {"type": "integer"}
NUM = {"type": "number"}
BOOL = {"type": "boolean"}
STR = {"type": "string"}
UNSET = {"type": "string", "enum": [""]}


@pytest.mark.parametrize(
    ("value", "schema", "expected"),
    [
        ("42", INT, 42),
        ("-7", INT, -7),
        ("007", INT, 7),
        ("+1", INT, "+1"),
        ("1.0", INT, "1.0"),
        (" 1", INT, " 1"),
        ("1_000", INT, "1_000"),
        ("\u0661", INT, "\u0661"),  # Arabic-Indic one: int() takes it, Stripe would not
        ("", INT, ""),
        ("9" * 5000, INT, "9" * 5000),
        (5, INT, 5),
        ("1.5", NUM, 1.5),
        ("-0.25", NUM, -0.25),
        ("3", NUM, 3),
        ("3.0", NUM, 3),
        ("1e3", NUM, 1000),
        (".5", NUM, 0.5),
        ("1e999", NUM, "1e999"),
        ("nan", NUM, "nan"),
        ("inf", NUM, "inf"),
        ("0x10", NUM, "0x10"),
        ("true", BOOL, True),
        ("false", BOOL, False),
        ("True", BOOL, "True"),
        ("1", BOOL, "1"),
        ("abc", STR, "abc"),
        ("12", STR, "12"),
        ("12", {}, "12"),
        ("12", {"type": ["integer"]}, "12"),
    ],
)
def test_coerce_scalars(value: Any, schema: dict[str, Any], expected: Any) -> None:
    result = coerce(value, schema)
    assert result == expected
    assert type(result) is type(expected)


def test_coerce_nested_object_and_arrays() -> None:
    schema = {
        "type": "object",
        "properties": {
            "quantity": INT,
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"price": STR, "quantity": INT, "adjustable": BOOL},
                },
            },
            "metadata": {"type": "object", "additionalProperties": STR},
            "tiers": {"type": "object", "additionalProperties": NUM},
        },
    }
    value = {
        "quantity": "3",
        "items": [{"price": "123", "quantity": "2", "adjustable": "true", "unknown": "9"}],
        "metadata": {"n": "1"},
        "tiers": {"a": "1.5"},
        "unknown": "1",
    }
    snapshot = repr(value)
    assert coerce(value, schema) == {
        "quantity": 3,
        "items": [{"price": "123", "quantity": 2, "adjustable": True, "unknown": "9"}],
        "metadata": {"n": "1"},
        "tiers": {"a": 1.5},
        "unknown": "1",
    }
    assert repr(value) == snapshot, "coerce must not mutate its input"


def test_coerce_array_from_digit_keyed_dict() -> None:
    schema = {"type": "array", "items": INT}
    assert coerce({"10": "3", "2": "2", "0": "1"}, schema) == [1, 2, 3]
    assert coerce({"0": "1", "x": "2"}, schema) == {"0": "1", "x": "2"}
    assert coerce({}, schema) == {}
    assert coerce("1", schema) == "1"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", ""), ("1700000000", 1_700_000_000), ("now", "now"), ("x", "x")],
)
def test_coerce_any_of_with_empty_string_branch(value: str, expected: Any) -> None:
    schema = {"anyOf": [{"type": "string", "enum": ["now"]}, INT, UNSET]}
    assert coerce(value, schema) == expected


def test_coerce_any_of_object_or_unset() -> None:
    schema = {
        "anyOf": [
            {"type": "object", "properties": {"days": INT}},
            UNSET,
        ]
    }
    assert coerce("", schema) == ""
    assert coerce({"days": "7"}, schema) == {"days": 7}
    assert coerce("junk", schema) == "junk"
    one_of = {"oneOf": [{"type": "array", "items": BOOL}, UNSET]}
    assert coerce(["true", "false"], one_of) == [True, False]
    assert coerce("", one_of) == ""


def test_coerce_any_of_order_and_typeless_branches() -> None:
    assert coerce("5", {"anyOf": [STR, INT]}) == "5"
    assert coerce("5", {"anyOf": [INT, STR]}) == 5
    assert coerce("5", {"anyOf": [{"enum": [""]}, INT]}) == 5
    assert coerce("5", {"anyOf": [{"anyOf": [BOOL]}, INT]}) == 5
    assert coerce("true", {"anyOf": [{"anyOf": [BOOL]}, INT]}) is True


def test_coerce_ignores_any_of_branches_that_do_not_constrain_type() -> None:
    # Stripe-style "one of these fields is required": the object's own properties still apply.
    schema = {
        "type": "object",
        "properties": {"a": INT, "b": BOOL},
        "anyOf": [{"required": ["a"]}, {"required": ["b"]}],
    }
    assert coerce({"a": "1", "b": "true"}, schema) == {"a": 1, "b": True}


def test_coerce_nullable() -> None:
    assert coerce("", {"type": "object", "nullable": True}) is None
    assert coerce("", {"type": "integer", "nullable": True}) is None
    assert coerce("", {"type": "array", "items": INT, "nullable": True}) is None
    assert coerce("", {"type": "string", "nullable": True}) == ""
    assert coerce("", {"type": "object"}) == ""
    assert coerce("", {"anyOf": [INT], "nullable": True}) is None
    assert coerce("", {"anyOf": [INT, UNSET], "nullable": True}) == ""
    assert coerce("", {"anyOf": [INT, {"type": "boolean", "nullable": True}]}) is None


def test_coerce_after_decode_of_sdk_request() -> None:
    schema = {
        "type": "object",
        "properties": {
            "line_items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"price": STR, "quantity": INT},
                },
            },
            "expand": {"type": "array", "items": STR},
            "allow_promotion_codes": BOOL,
            "expires_at": {"anyOf": [INT, UNSET]},
            "metadata": {
                "anyOf": [{"type": "object", "additionalProperties": STR}, UNSET],
            },
        },
    }
    params = {
        "line_items": [{"price": "price_1", "quantity": 2}],
        "expand": ["line_items"],
        "allow_promotion_codes": True,
        "expires_at": 1_700_000_000,
        "metadata": "",
    }
    assert coerce(decode_form(sdk_wire(params)), schema) == params


def test_coerce_survives_cyclic_schemas_and_deep_values() -> None:
    cyclic: dict[str, Any] = {"anyOf": []}
    cyclic["anyOf"].extend([cyclic, cyclic, {"oneOf": [cyclic]}, INT])
    assert coerce("3", cyclic) == 3
    assert coerce("x", cyclic) == "x"
    array: dict[str, Any] = {"type": "array"}
    array["items"] = array
    deep: Any = "1"
    for _ in range(500):
        deep = [deep]
    assert coerce(deep, array) == deep
    for _ in range(5000):
        deep = [deep]
    assert isinstance(coerce(deep, array), list)
    obj: dict[str, Any] = {"type": "object"}
    obj["additionalProperties"] = {"anyOf": [obj, INT]}
    assert coerce({"a": {"b": "2"}}, obj) == {"a": {"b": 2}}


JSONISH = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(),
        st.sampled_from(["", "1", "-2", "1.5", "true", "false", "now", "0", "1e400", "-"]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=3), st.sampled_from(["0", "1", "a"])), children),
    ),
    max_leaves=20,
)
TYPES = st.sampled_from(
    ["integer", "number", "boolean", "string", "object", "array", "null", "bogus"]
)
JUNK = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=3), st.lists(st.none()))


def _schemas(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.fixed_dictionaries(
            {"type": st.just("object")},
            optional={
                "properties": st.one_of(
                    st.dictionaries(st.sampled_from(["0", "1", "a", ""]), children), JUNK
                ),
                "additionalProperties": st.one_of(children, JUNK),
                "nullable": st.one_of(st.booleans(), JUNK),
            },
        ),
        st.fixed_dictionaries(
            {"type": st.just("array")},
            optional={"items": st.one_of(children, JUNK), "nullable": st.booleans()},
        ),
        st.fixed_dictionaries(
            {},
            optional={
                "anyOf": st.one_of(st.lists(children, max_size=3), JUNK),
                "oneOf": st.one_of(st.lists(children, max_size=3), JUNK),
                "nullable": st.booleans(),
                "enum": st.one_of(st.lists(JSONISH, max_size=3), JUNK),
                "type": st.one_of(TYPES, JUNK),
            },
        ),
        JUNK,
    )


SCHEMAS = st.recursive(
    st.fixed_dictionaries(
        {"type": st.one_of(TYPES, JUNK)},
        optional={"nullable": st.booleans(), "enum": st.lists(JSONISH, max_size=3)},
    ),
    _schemas,
    max_leaves=12,
)


@settings(max_examples=500, deadline=None)
@given(JSONISH, SCHEMAS)
def test_coerce_never_raises(value: Any, schema: Any) -> None:
    snapshot = repr(value)
    coerce(value, schema)
    assert repr(value) == snapshot


@settings(max_examples=200, deadline=None)
@given(JSONISH)
def test_coerce_with_empty_schema_is_identity(value: Any) -> None:
    assert repr(coerce(value, {})) == repr(value)

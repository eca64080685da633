"""Contract schemas as jsonschema-rs compiles them: acyclic, with OpenAPI's nullable as types."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Where the nodes that close a cycle are kept, named by JSON pointer; a key no contract uses.
_CYCLES = "x-finsim-cycles"


def compiled_validator(schema: Mapping[str, Any]) -> Any:
    """jsonschema-rs's Draft 4 validator for ``schema`` (formats off), or None where it is not
    installed or cannot take the schema: then the pure-Python validator decides alone."""
    try:
        import jsonschema_rs
    except ImportError:  # optional: the pure-Python validator alone gives the same answers
        return None
    try:
        return jsonschema_rs.Draft4Validator(compilable(schema), validate_formats=False)
    except Exception:  # a schema it does not support: jsonschema alone
        return None


def compilable(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` rewritten so jsonschema-rs accepts and judges it as connexion does.

    - Resolved contracts are object graphs that may loop (a Stripe invoice's expandable
      subscription holds invoices again). jsonschema-rs reads plain trees, so every node a
      depth-first walk meets again on its own path is stored once under ``x-finsim-cycles``
      and named by ``$ref`` wherever it appears.
    - connexion lets ``null`` through the ``type`` and ``enum`` of a schema marked
      ``nullable`` (OpenAPI 3.0) and checks every other keyword as usual; Draft 4 says the
      same with ``"null"`` among the types and ``None`` among the enum values. Without this,
      every response with a null field fell back to the interpreted validator."""
    looping = _loop_heads(schema)
    cycles: dict[str, Any] = {}
    done: dict[int, Any] = {}

    def emit(node: Any) -> Any:
        if isinstance(node, list):
            return [emit(item) for item in node]
        if not isinstance(node, Mapping):
            return node
        if id(node) in looping:
            name = f"n{id(node)}"
            if name not in cycles:
                cycles[name] = {}  # taken before its body is written: the loop ends here
                cycles[name] = body(node)
            return {"$ref": f"#/{_CYCLES}/{name}"}
        if id(node) not in done:
            done[id(node)] = body(node)
        return done[id(node)]

    def body(node: Mapping[str, Any]) -> dict[str, Any]:
        out = {key: emit(value) for key, value in node.items()}
        if node.get("nullable") is True or node.get("x-nullable") is True:
            kinds = out.get("type")
            if isinstance(kinds, str):
                out["type"] = [kinds, "null"]
            elif isinstance(kinds, list) and "null" not in kinds:
                out["type"] = [*kinds, "null"]
            if isinstance(out.get("enum"), list) and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        return out

    root = body(schema)
    if cycles:
        root[_CYCLES] = cycles
    return root


# Keywords whose value maps names to schemas: such a map is not a schema itself, so a loop is
# never cut there (a ``$ref`` in its place would be a property named "$ref").
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "definitions"})


def _loop_heads(schema: Any) -> set[int]:
    """The ids of the schemas a depth-first walk reaches again while still inside them. When
    the mapping met again is a map of named schemas (two schemas sharing one ``properties``
    map, as YAML anchors make them), the loop is cut at the schema the walk entered from it."""
    heads: set[int] = set()
    finished: set[int] = set()
    on_path: dict[int, int] = {}  # id → its place on the path
    path: list[tuple[int, bool]] = []  # (id, is a map of schemas), root first
    # An explicit stack: contracts nest deeper than Python's recursion allows.
    stack: list[tuple[Any, bool, bool]] = [(schema, False, False)]
    while stack:
        node, leaving, is_map = stack.pop()
        if leaving:
            path.pop()
            del on_path[id(node)]
            finished.add(id(node))
        elif isinstance(node, list):
            # Only mappings are named: a loop through a list is caught at a mapping in it.
            stack.extend(
                (child, False, False) for child in node if isinstance(child, Mapping | list)
            )
        elif id(node) in on_path:
            at = on_path[id(node)]
            while path[at][1]:  # a map of schemas: the schema entered from it instead
                at += 1
            heads.add(path[at][0])
        elif id(node) not in finished:
            on_path[id(node)] = len(path)
            path.append((id(node), is_map))
            stack.append((node, True, is_map))
            stack.extend(
                (child, False, not is_map and key in _SCHEMA_MAPS)
                for key, child in node.items()
                if isinstance(child, Mapping | list)
            )
    return heads

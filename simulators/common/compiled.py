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


def _loop_heads(schema: Any) -> set[int]:
    """The ids of the mappings a depth-first walk reaches again while still inside them."""
    heads: set[int] = set()
    finished: set[int] = set()
    on_path: set[int] = set()
    # An explicit stack: contracts nest deeper than Python's recursion allows.
    stack: list[tuple[Any, bool]] = [(schema, False)]
    while stack:
        node, leaving = stack.pop()
        if leaving:
            on_path.discard(id(node))
            finished.add(id(node))
        elif isinstance(node, list):
            # Only mappings are named: a loop through a list is caught at a mapping in it.
            stack.extend((child, False) for child in node if isinstance(child, Mapping | list))
        elif id(node) in on_path:
            heads.add(id(node))
        elif id(node) not in finished:
            on_path.add(id(node))
            stack.append((node, True))
            stack.extend(
                (child, False) for child in node.values() if isinstance(child, Mapping | list)
            )
    return heads

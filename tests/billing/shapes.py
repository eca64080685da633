"""Stripe's published shapes as a check: every billing object a test receives, validated against
the extract of Stripe's schemas in ``contracts/vendor/stripe/schemas.json``.

``ShapeRecorder`` hooks a ``requests`` session (the transport the stripe SDK uses here) and keeps
every JSON response; ``problems()`` lists each object that does not conform, by the object's
``object`` field (lists and events are opened: each item and ``data.object`` is checked too).
Set ``FINSIM_SHAPES_REPORT=FILE`` to append per-object conformance counts (JSON lines) there.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import requests
from jsonschema import Draft202012Validator

EXTRACT = Path(__file__).resolve().parents[2] / "contracts" / "vendor" / "stripe" / "schemas.json"
# Stripe sends `previous_attributes` only on events that describe a change.
_UPDATE_EVENTS = (".updated",)


@functools.cache
def _defs() -> dict[str, Any]:
    defs: dict[str, Any] = json.loads(EXTRACT.read_text(encoding="utf-8"))["$defs"]
    return defs


@functools.cache
def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"#/$defs/{name}", "$defs": _defs()})


def schema_name(obj: dict[str, Any]) -> str | None:
    kind = obj.get("object")
    if not isinstance(kind, str):
        return None
    name = f"deleted_{kind}" if obj.get("deleted") is True else kind
    return name if name in _defs() else None


def check(obj: Any, where: str, counts: Counter[tuple[str, bool]]) -> list[str]:
    """Every problem of ``obj`` (and of the objects a list or an event carries)."""
    if not isinstance(obj, dict):
        return []
    if obj.get("object") == "list":
        found = []
        for n, item in enumerate(obj.get("data") or []):
            found += check(item, f"{where}.data[{n}]", counts)
        return found
    if set(obj) == {"error"}:
        return _problems(obj["error"], "api_errors", f"{where} (error)", counts)
    name = schema_name(obj)
    if name is None:
        return [f"{where}: no Stripe schema for object {obj.get('object')!r}"]
    found = _problems(obj, name, f"{where} ({name} {obj.get('id', '')})", None)
    if name == "event":
        data = obj.get("data") or {}
        if "previous_attributes" in data and not str(obj.get("type", "")).endswith(_UPDATE_EVENTS):
            found.append(
                f"{where} (event {obj.get('type')}): previous_attributes on a non-update event"
            )
        found += check(data.get("object"), f"{where}.data.object", counts)
    counts[(name, not found)] += 1
    return found


def _problems(
    obj: Any, name: str, where: str, counts: Counter[tuple[str, bool]] | None
) -> list[str]:
    errors = sorted(_validator(name).iter_errors(obj), key=lambda e: list(e.absolute_path))
    found = [
        f"{where}: {'/'.join(map(str, e.absolute_path)) or '.'}: {e.message[:300]}" for e in errors
    ]
    if counts is not None:
        counts[(name, not found)] += 1
    return found


class ShapeRecorder:
    """Collects JSON responses from a requests session and checks them against Stripe's shapes."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, Any]] = []
        self._lock = threading.Lock()

    def hook(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if "json" not in response.headers.get("content-type", ""):
            return
        with self._lock:
            self.bodies.append(
                (f"{response.request.method} {response.request.path_url}", response.json())
            )

    def attach(self, session: requests.Session) -> requests.Session:
        session.hooks["response"].append(self.hook)
        return session

    def add(self, where: str, body: Any) -> None:
        with self._lock:
            self.bodies.append((where, body))

    def problems(self) -> list[str]:
        counts: Counter[tuple[str, bool]] = Counter()
        with self._lock:
            bodies = list(self.bodies)
        found = [p for where, body in bodies for p in check(body, where, counts)]
        report = os.environ.get("FINSIM_SHAPES_REPORT")
        if report:
            with open(report, "a", encoding="utf-8") as out:
                for (name, ok), n in sorted(counts.items()):
                    out.write(json.dumps({"schema": name, "conforms": ok, "count": n}) + "\n")
        return found

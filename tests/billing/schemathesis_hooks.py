"""Hooks the schemathesis CLI loads (``SCHEMATHESIS_HOOKS``) for the billing contract.

Stripe reads nested form parameters in bracket notation (``items[0][price]=…``), which the
contract declares as ``deepObject`` encodings; the CLI gets the same form serializer the
project's own conformance run registers. Generated Idempotency-Keys repeat a few strings, so
each request gets its own key (otherwise most writes would be idempotency mismatches that
never reach a handler), and free-form hash keys are made representable in brackets.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

import schemathesis

from harness.contracts import conformance  # registers the form serializer on import

_serial = itertools.count(1)
_lock = threading.Lock()
IDEMPOTENCY = "Idempotency-Key"


@schemathesis.hook
def map_case(ctx: schemathesis.HookContext, case: schemathesis.Case[Any]) -> schemathesis.Case[Any]:
    key = case.headers.get(IDEMPOTENCY) if case.headers else None
    if case.headers and isinstance(key, str) and key and len(key) <= 255:
        with _lock:
            suffix = f"-{next(_serial)}"
        case.headers[IDEMPOTENCY] = key[: 255 - len(suffix)] + suffix
    if isinstance(case.body, dict) and "x-www-form-urlencoded" in (case.media_type or ""):
        case.body = {
            # The rule the project's own conformance run applies to free-form hash keys.
            name: conformance._representable_keys(value)
            for name, value in case.body.items()
        }
    return case

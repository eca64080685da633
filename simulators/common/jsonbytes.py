"""JSON bytes that are kept: orjson's output copied down to its own size."""

from __future__ import annotations

from typing import Any

import orjson


def trimmed(data: bytes) -> bytes:
    """``data`` in a bytes object of its own size, for keeping.

    orjson hands back its whole working buffer (32 KiB for a 3 KiB invoice), so every body a
    simulator keeps (an event's object, a pending webhook, an idempotent reply) would hold ten
    times its size, and the store's memory and its bounds would be off by as much."""
    return memoryview(data).tobytes()


def dumps_kept(obj: Any) -> bytes:
    """``orjson.dumps`` for a body that is kept (see ``trimmed``)."""
    return trimmed(orjson.dumps(obj))

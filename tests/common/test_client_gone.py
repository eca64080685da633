"""A client that dies before its request body arrives broke no contract and gets no answer."""

from __future__ import annotations

from typing import Any

from tests.conftest import InProcess


async def test_a_body_cut_off_by_a_dead_client_is_journaled_without_a_violation(
    billing: InProcess,
) -> None:
    app = billing.client._transport.app  # type: ignore[attr-defined]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}  # killed before the body was sent

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/customers",
        "raw_path": b"/v1/customers",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"billing.test"),
            (b"authorization", f"Bearer {billing.sim.api_key}".encode()),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", b"10"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("billing.test", 80),
    }
    await app(scope, receive, send)
    assert sent == []  # nobody to answer
    (entry,) = [e for e in billing.sim.journal.snapshot() if e.path == "/v1/customers"]
    assert entry.status == 0 and entry.violations == []
    assert billing.sim.store.customers == {}

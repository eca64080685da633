"""A small NetSuite REST client: external-id upserts and SuiteQL, with retries."""

from __future__ import annotations

from typing import Any

import httpx

from examples.reference_integration.retry import (
    PermanentError,
    TransientError,
    parse_retry_after,
    with_retries,
)

RECORD = "/services/rest/record/v1"


class NetSuite:
    """Upserts by external id (`PUT …/<type>/eid:<id>`), so repeating a write never duplicates."""

    def __init__(self, url: str, token: str, *, verify: str | bool = True) -> None:
        self._client = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(30.0),
            trust_env=False,
            verify=verify,
        )

    def close(self) -> None:
        self._client.close()

    def upsert(self, kind: str, external_id: str, body: dict[str, Any]) -> None:
        """Create or update the record of ``kind`` with that external id."""
        path = f"{RECORD}/{kind}/eid:{external_id}"
        with_retries(lambda: self._send("PUT", path, json=body), what=f"PUT {kind} {external_id}")

    def suiteql(self, query: str) -> list[dict[str, Any]]:
        """Rows of a SuiteQL query (first page, up to 1000)."""
        response = with_retries(
            lambda: self._send(
                "POST",
                "/services/rest/query/v1/suiteql",
                json={"q": query},
                headers={"Prefer": "transient"},
            ),
            what="suiteql",
        )
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._client.request(method, path, **kwargs)
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(
                f"netsuite {response.status_code} {method} {path}: {response.text[:300]}",
                parse_retry_after(response.headers.get("Retry-After")),
            )
        if response.status_code >= 400:
            raise PermanentError(
                f"netsuite {response.status_code} {method} {path}: {response.text[:500]}"
            )
        return response

"""A small client of the revenue subledger: external-id upserts and idempotency keys, retried."""

from __future__ import annotations

import ssl
from typing import Any

from examples.reference_integration.http import Answer, Http
from examples.reference_integration.reads import Reads
from examples.reference_integration.retry import (
    Gate,
    PermanentError,
    TransientError,
    parse_retry_after,
    with_retries,
)


class Revrec:
    """Every write carries an external id (the subledger's upsert) and an idempotency key, so a
    retry after a lost response returns the record already there instead of a second one."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        headers: dict[str, str] | None = None,
        reads: Reads | None = None,
        gate: Gate | None = None,
        verify: ssl.SSLContext | str | bool = True,
    ) -> None:
        self.reads = reads or Reads()
        self.gate = gate or Gate()
        self._client = Http(
            url, headers={"Authorization": f"Bearer {token}", **(headers or {})}, verify=verify
        )

    def close(self) -> None:
        self._client.close()

    def entity(self, entity_id: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/entities/{entity_id}")

    def mapped(self, product: str) -> bool:
        """Whether the subledger has a revenue mapping for the product (its control point)."""
        return bool(self._json("GET", f"/v1/revenue_mappings/{product}")["mapped"])

    def contract_by_external_id(self, external_id: str) -> dict[str, Any] | None:
        page = self._json("GET", "/v1/contracts", params={"external_id": external_id})
        data: list[dict[str, Any]] = page["data"]
        return data[0] if data else None

    def create_contract(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", "/v1/contracts", json=body, key=f"contract-{body['external_id']}")

    def modifications(self, contract_id: str) -> list[dict[str, Any]]:
        page = self._json(
            "GET", f"/v1/contracts/{contract_id}/modifications", params={"limit": 100}
        )
        data: list[dict[str, Any]] = page["data"]
        return data

    def modify(self, contract_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._json(
            "POST",
            f"/v1/contracts/{contract_id}/modifications",
            json=body,
            key=f"modification-{contract_id}-{body['external_id']}",
        )

    def usage(self, contract_id: str, line: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._json(
            "POST",
            f"/v1/contracts/{contract_id}/lines/{line}/usage_records",
            json=body,
            key=f"usage-{body['external_id']}",
        )

    def billing_event(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._json(
            "POST", "/v1/billing_events", json=body, key=f"billing-{body['external_id']}"
        )

    def billing_events(self, contract_id: str) -> list[dict[str, Any]]:
        page = self._json(
            "GET", "/v1/billing_events", params={"contract": contract_id, "limit": 100}
        )
        data: list[dict[str, Any]] = page["data"]
        return data

    def _json(
        self, method: str, path: str, *, key: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        headers = {"Idempotency-Key": key} if key else {}
        response = with_retries(
            lambda: self._send(method, path, headers=headers, **kwargs), what=f"{method} {path}"
        )
        body: dict[str, Any] = response.json()
        return body

    def _send(self, method: str, path: str, **kwargs: Any) -> Answer:
        key = (path, repr(kwargs))
        if method == "GET":
            kept: Answer | None = self.reads.get(key)
            if kept is not None:
                return kept
        else:
            self.reads.forget()
        with self.gate.turn():
            response = self._client.request(method, path, **kwargs)
            self.gate.answered(parse_retry_after(response.headers.get("Retry-After")))
        if method == "GET" and response.status_code == 200:
            self.reads.keep(key, response)
        status = response.status_code
        # 409 without a revenue code is the idempotency key still in flight: wait and retry.
        in_flight = status == 409 and "idempotency" in response.text
        if status == 429 or status >= 500 or in_flight:
            raise TransientError(
                f"revrec {status} {method} {path}: {response.text[:300]}",
                parse_retry_after(response.headers.get("Retry-After")),
            )
        if status >= 400:
            raise PermanentError(f"the subledger refused {method} {path}: {_detail(response)}")
        return response


def _detail(response: Answer) -> str:
    """The subledger's own words (its problem's detail and code), not the raw body."""
    try:
        problem = response.json()
        return f"{problem['detail']} ({problem['code']})"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"

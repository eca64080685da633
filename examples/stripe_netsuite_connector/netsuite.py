"""NetSuite REST records and SuiteQL over httpx, with NetSuite's refusals as typed errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx

from .money import json_number
from .throttle import Gate, PeriodMoved, Rejected, Transient

Json = dict[str, Any]
RECORDS = "/services/rest/record/v1"
MAX_QUERY_PAGES = 20  # 20,000 rows: more means the query is wrong, not that the data is big


class ErpRefusal(Rejected):
    def __init__(self, status: int, code: str, detail: str, request: str = "") -> None:
        super().__init__(f"NetSuite {status} {code}: {detail}")
        self.status, self.code, self.detail = status, code, detail
        self.request = request  # "POST /services/rest/record/v1/invoice": what was refused


class Duplicate(ErpRefusal):
    """DUP_RCRD: a record with this external id exists already."""


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return json_number(value)
    raise TypeError(f"cannot send {type(value).__name__} to NetSuite")


class NetSuite:
    def __init__(self, base_url: str, token: str, *, gate: Gate, verify: str | bool = True) -> None:
        self.gate = gate
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            verify=verify,
            trust_env=False,
            timeout=httpx.Timeout(15.0, connect=5.0),
        )

    def close(self) -> None:
        self._http.close()

    # records ------------------------------------------------------------------------------
    def get(self, kind: str, key: str) -> Json | None:
        """A record by internal id or ``eid:<external id>``, sublists expanded; None if absent."""
        try:
            response = self._send(
                "GET", f"{RECORDS}/{kind}/{key}", params={"expandSubResources": "true"}
            )
        except ErpRefusal as exc:
            if exc.status == 404:
                return None
            raise
        return self._json(response)

    def create(self, kind: str, body: Json) -> str:
        """POST a record; its internal id (from Location)."""
        response = self._send("POST", f"{RECORDS}/{kind}", body=body)
        location = str(response.headers.get("Location", ""))
        record_id = location.rstrip("/").rsplit("/", 1)[-1]
        if not record_id:
            raise Transient(f"NetSuite created a {kind} without a Location header")
        return record_id

    def update(self, kind: str, record_id: str, body: Json) -> None:
        self._send("PATCH", f"{RECORDS}/{kind}/{record_id}", body=body)

    def void(self, kind: str, record_id: str) -> None:
        self._send("POST", f"{RECORDS}/{kind}/{record_id}/@void")

    def ensure(self, kind: str, external_id: str, build: Callable[[], Json]) -> str:
        """The record with this external id, created from ``build()`` if there is none. Never
        posts twice: a retry after a lost reply finds the first one (or DUP_RCRD says so)."""
        found = self.get(kind, f"eid:{external_id}")
        if found is not None:
            return str(found["id"])
        try:
            return self.create(kind, {**build(), "externalId": external_id})
        except Duplicate:
            found = self.get(kind, f"eid:{external_id}")
            if found is None:
                raise Transient(f"{kind} {external_id} is a duplicate but cannot be read") from None
            return str(found["id"])

    # SuiteQL --------------------------------------------------------------------------------
    def query(self, q: str) -> list[Json]:
        rows: list[Json] = []
        for page in range(MAX_QUERY_PAGES):
            response = self._send(
                "POST",
                "/services/rest/query/v1/suiteql",
                body={"q": q},
                params={"limit": "1000", "offset": str(page * 1000)},
                headers={"Prefer": "transient"},
            )
            data = self._json(response)
            rows.extend(data.get("items", []))
            if not data.get("hasMore"):
                return rows
        raise Rejected(f"SuiteQL answered more than {MAX_QUERY_PAGES} pages: {q[:200]}")

    # transport ------------------------------------------------------------------------------
    def _send(
        self,
        method: str,
        path: str,
        *,
        body: Json | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = dict(headers or {})
        content = None
        if body is not None:
            content = json.dumps(body, default=_encode).encode()
            sent["Content-Type"] = "application/json"
        with self.gate.turn():
            try:
                response = self._http.request(
                    method, path, content=content, params=params, headers=sent
                )
            except httpx.RequestError as exc:
                # Also a write applied whose reply was lost: the retry looks before it writes.
                raise Transient(f"NetSuite {method} {path}: {type(exc).__name__}: {exc}") from None
            status = response.status_code
            if status >= 400:
                self.gate.note(response.headers.get("Retry-After"))
        if status < 400:
            return response
        if status == 429 or status >= 500:
            raise Transient(f"NetSuite {method} {path}: {status}")
        raise self._refusal(response, f"{method} {path}")

    @staticmethod
    def _json(response: httpx.Response) -> Json:
        try:
            data = json.loads(response.content, parse_float=Decimal)
        except ValueError:
            raise Transient(f"NetSuite answered unreadable JSON ({response.status_code})") from None
        if not isinstance(data, dict):
            raise Transient("NetSuite answered JSON that is not an object")
        return data

    @staticmethod
    def _refusal(response: httpx.Response, request: str) -> Exception:
        code, detail = "UNKNOWN", response.text[:500]
        try:
            details = json.loads(response.content)["o:errorDetails"][0]
            code, detail = str(details["o:errorCode"]), str(details["detail"])
        except (ValueError, KeyError, IndexError, TypeError):
            pass
        if code == "DUP_RCRD":
            return Duplicate(response.status_code, code, detail, request)
        if code == "USER_ERROR" and "accounting period" in detail.lower():
            # A period closed between our look-up and the post: look again.
            return PeriodMoved(f"NetSuite {response.status_code} {code}: {detail}")
        return ErpRefusal(response.status_code, code, detail, request)

"""A small NetSuite REST client: external-id upserts, voids, periods and SuiteQL, with retries."""

from __future__ import annotations

import re
import ssl
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from examples.reference_integration.http import Answer, Http
from examples.reference_integration.reads import Reads
from examples.reference_integration.retry import (
    Gate,
    PermanentError,
    Refusal,
    TransientError,
    parse_retry_after,
    with_retries,
)

RECORD = "/services/rest/record/v1"
# How long a read of the accounting periods is used before reading them again.
PERIODS_FRESH_S = 2.0
# Invoices, credit memos and payments are AR postings: an AR lock refuses them too.
AR_KINDS = frozenset({"invoice", "creditMemo", "customerPayment"})
_SAFE = re.compile(r"^[A-Za-z0-9_.-]+$")
# NetSuite refuses a reference to an inactive record by its key, not its cause ("Invalid item
# reference key 12."): the record we read to explain it, and the field that names it.
_REFERENCE = re.compile(r"Invalid (item|entity|subsidiary|account) reference key (\d+)")
_RECORD_OF = {
    "item": ("serviceSaleItem", "item", "itemId"),
    "entity": ("customer", "customer", "companyName"),
    "subsidiary": ("subsidiary", "subsidiary", "name"),
    "account": ("account", "account", "acctNumber"),
}


@dataclass(frozen=True)
class Period:
    external_id: str
    start_on: str
    end_on: str
    closed: bool
    all_locked: bool
    ar_locked: bool

    @property
    def name(self) -> str:
        return self.start_on[:7]

    def holds_ar(self) -> bool:
        """AR locked, the period otherwise open: AR documents wait for the unlock."""
        return self.ar_locked and not self.closed and not self.all_locked

    def refuses(self, kind: str) -> bool:
        """True when the integration role cannot post a ``kind`` document here."""
        return self.closed or self.all_locked or (self.ar_locked and kind in AR_KINDS)


class NetSuite:
    """Upserts by external id (`PUT …/<type>/eid:<id>`), so repeating a write never duplicates."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        verify: ssl.SSLContext | str | bool = True,
        headers: dict[str, str] | None = None,
        reads: Reads | None = None,
        gate: Gate | None = None,
    ) -> None:
        self.reads = reads or Reads()
        self.gate = gate or Gate()
        self._periods: dict[str, tuple[float, list[Period]]] = {}
        self._stale_periods = False  # the last periods used came from an earlier read
        self._client = Http(
            url, headers={"Authorization": f"Bearer {token}", **(headers or {})}, verify=verify
        )

    def close(self) -> None:
        self._client.close()

    def upsert(self, kind: str, external_id: str, body: dict[str, Any]) -> str:
        """Create or update the record of ``kind`` with that external id; its internal id."""
        path = f"{RECORD}/{kind}/eid:{external_id}"
        response = with_retries(
            lambda: self._send("PUT", path, json=body), what=f"PUT {kind} {external_id}"
        )
        location: str = response.headers.get("Location", "")
        return location.rstrip("/").rsplit("/", 1)[-1]

    def get(self, kind: str, external_id: str, *, expand: bool = False) -> dict[str, Any] | None:
        """The record with that external id (sublists' items too when ``expand``), or None."""
        return self._get(kind, f"eid:{external_id}", expand)

    def get_by_id(
        self, kind: str, internal_id: str, *, expand: bool = False
    ) -> dict[str, Any] | None:
        """The record with that internal id, or None."""
        return self._get(kind, str(int(internal_id)), expand)

    def patch_by_id(self, kind: str, internal_id: str, body: dict[str, Any]) -> None:
        path = f"{RECORD}/{kind}/{int(internal_id)}"
        with_retries(
            lambda: self._send("PATCH", path, json=body), what=f"PATCH {kind} {internal_id}"
        )

    def _get(self, kind: str, key: str, expand: bool) -> dict[str, Any] | None:
        path = f"{RECORD}/{kind}/{key}"
        params = {"expandSubResources": "true"} if expand else None
        response = with_retries(
            lambda: self._send("GET", path, allow_404=True, params=params),
            what=f"GET {kind} {key}",
        )
        if response.status_code == 404:
            return None
        record: dict[str, Any] = response.json()
        return record

    def void(self, kind: str, external_id: str) -> None:
        path = f"{RECORD}/{kind}/eid:{external_id}/@void"
        with_retries(lambda: self._send("POST", path), what=f"void {kind} {external_id}")

    def periods(self, subsidiary: str) -> list[Period]:
        """The subsidiary's accounting periods in date order (NetSuite's are per subsidiary),
        as read at most ``PERIODS_FRESH_S`` ago: a posting a period closed since then is
        refused, which makes us read them again (`PeriodRefused`)."""
        kept = self._periods.get(subsidiary)
        self._stale_periods = kept is not None and time.monotonic() - kept[0] < PERIODS_FRESH_S
        if kept is not None and self._stale_periods:
            return kept[1]
        rows = self.suiteql(
            "SELECT p.externalid, p.startdate, p.enddate, p.closed, p.alllocked, p.arlocked"
            " FROM accountingperiod p JOIN subsidiary s ON s.id = p.subsidiary"
            f" WHERE s.externalid = '{quoted(subsidiary)}' ORDER BY p.startdate"
        )
        periods = [
            Period(
                row["externalid"],
                row["startdate"],
                row["enddate"],
                row.get("closed") == "T",
                row.get("alllocked") == "T",
                row.get("arlocked") == "T",
            )
            for row in rows
        ]
        self._periods[subsidiary] = (time.monotonic(), periods)
        return periods

    def posting_period(self, subsidiary: str, on: str, kind: str) -> str | None:
        """None when the period holding ``on`` takes postings, else the first later one that
        does (corrections land in the first open period; a closed one is never restated)."""
        periods = self.periods(subsidiary)
        later = [p for p in periods if p.end_on >= on]
        if later and not later[0].refuses(kind) and later[0].start_on <= on:
            return None
        own = later[0] if later and later[0].start_on <= on else None
        if own is not None and kind in AR_KINDS and own.holds_ar() and self._stale_periods:
            self._periods.pop(subsidiary, None)  # refuse only on what the ERP says now
            return self.posting_period(subsidiary, on, kind)
        if own is not None and kind in AR_KINDS and own.holds_ar():
            # AR locked while the month is being closed: the document belongs in it, so it
            # waits (set aside) for the unlock; a closed month sends it to the next instead.
            raise Refusal(
                f"AR is locked for {own.name} in subsidiary {subsidiary}: the ERP refuses AR "
                "postings to it until a finance user unlocks it"
            )
        for period in later:
            if not period.refuses(kind):
                return period.external_id
        raise TransientError(f"no open period on or after {on} in {subsidiary}", 60.0)

    def rate(self, currency: str, base: str, on: str) -> Decimal:
        """The dated rate NetSuite would use: one ``currency`` in ``base``, effective on ``on``."""
        if currency.upper() == base.upper():
            return Decimal(1)
        rows = self.suiteql(
            "SELECT r.exchangerate, r.effectivedate FROM currencyrate r"
            " JOIN currency b ON b.id = r.basecurrency"
            " JOIN currency t ON t.id = r.transactioncurrency"
            f" WHERE b.externalid = '{quoted(base.upper())}'"
            f" AND t.externalid = '{quoted(currency.upper())}'"
            f" AND r.effectivedate <= '{quoted(on)}' ORDER BY r.effectivedate DESC, r.id DESC"
        )
        if not rows:
            raise PermanentError(f"no {currency}->{base} rate on {on} in the ERP")
        return Decimal(str(rows[0]["exchangerate"]))

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

    def _send(self, method: str, path: str, *, allow_404: bool = False, **kwargs: Any) -> Answer:
        # SuiteQL is a POST that only reads.
        read = method == "GET" or path.endswith("/suiteql")
        key = (method, path, repr(kwargs)) if read else None
        kept: Answer | None = self.reads.get(key) if read else None
        if kept is not None:
            return kept
        if not read:
            self.reads.forget()
        with self.gate.turn():
            response = self._client.request(method, path, **kwargs)
            self.gate.answered(parse_retry_after(response.headers.get("Retry-After")))
        if read and (response.status_code == 200 or (allow_404 and response.status_code == 404)):
            self.reads.keep(key, response)
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(
                f"netsuite {response.status_code} {method} {path}: {response.text[:300]}",
                parse_retry_after(response.headers.get("Retry-After")),
            )
        if response.status_code == 404 and allow_404:
            return response
        if response.status_code >= 400 and self._stale_periods and _refuses_period(response):
            self._periods.clear()
            self._stale_periods = False
            raise PeriodRefused(
                f"netsuite {response.status_code} {method} {path}: {response.text[:300]}"
            )
        if response.status_code >= 400:
            detail = _detail(response)
            cause = self._inactive(detail)
            if cause is not None:
                # Master data a finance user made inactive: set aside until it is active again.
                raise Refusal(f"NetSuite refused {method} {_record_of(path)}: {cause} — {detail}")
            raise PermanentError(f"NetSuite refused {method} {_record_of(path)}: {detail}")
        return response

    def _inactive(self, detail: str) -> str | None:
        """`the ERP item SUBSCRIPTION is inactive` when NetSuite's refusal names the key of a
        record that is inactive now (read to find out); None for any other refusal."""
        match = _REFERENCE.search(detail)
        if match is None:
            return None
        kind, what, name_field = _RECORD_OF[match.group(1)]
        try:
            record = self.get_by_id(kind, match.group(2))
        except (PermanentError, TransientError):
            return None  # the refusal stands on NetSuite's own words
        if record is None or record.get("isInactive") is not True:
            return None
        return f"the ERP {what} {record.get(name_field) or match.group(2)} is inactive"


def _record_of(path: str) -> str:
    """`invoice eid:in_1` from `/services/rest/record/v1/invoice/eid:in_1`."""
    return " ".join(path.removeprefix(RECORD).strip("/").split("/")[:2]) or path


def _detail(response: Answer) -> str:
    """NetSuite's own words (`o:errorDetails[0].detail` and its code), not the raw body."""
    try:
        details = response.json().get("o:errorDetails") or [{}]
        detail = str(details[0].get("detail") or "").removeprefix(
            "Error while accessing a resource. "
        )
        code = str(details[0].get("o:errorCode") or response.status_code)
    except (ValueError, AttributeError):
        return f"HTTP {response.status_code}"
    return f"{detail} ({code})" if detail else f"HTTP {response.status_code} ({code})"


class PeriodRefused(Exception):
    """A posting dated by periods read earlier was refused (one closed since): not worth
    retrying the same request, but the event is — its next try reads the periods again, and
    a refusal then is permanent."""


def _refuses_period(response: Answer) -> bool:
    """NetSuite's refusal of a posting into a closed or locked period (USER_ERROR)."""
    text = response.text
    return response.status_code == 400 and "USER_ERROR" in text and "accounting period" in text


def quoted(value: str) -> str:
    """A value safe to put between quotes in SuiteQL (ids only)."""
    if not _SAFE.match(value):
        raise PermanentError(f"unsafe SuiteQL literal {value!r}")
    return value

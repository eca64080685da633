"""The CRM through simple-salesforce: re-fetch opportunities and write back, with retries."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceGeneralError,
    SalesforceRefusedRequest,
)

from examples.reference_integration.retry import (
    Gate,
    PermanentError,
    TransientError,
    parse_retry_after,
    with_retries,
)

T = TypeVar("T")


class SharedTls(HTTPAdapter):
    """HTTPS through one TLS context that already holds the CA bundle. Given the bundle's path,
    requests has urllib3 read the whole file into a new context for every connection (~50 ms
    of CPU, paid by each worker's first call to the CRM in every run)."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host, pool = super().build_connection_pool_key_attributes(request, verify, cert)
        if verify is not False:  # the context verifies, with the CAs it was made with
            pool.pop("ca_certs", None)
            pool.pop("ca_cert_dir", None)
        return host, pool

    def cert_verify(self, conn: Any, url: str, verify: bool | str, cert: Any) -> None:
        super().cert_verify(conn, url, verify, cert)
        if verify is not False:
            conn.ca_certs = conn.ca_cert_dir = None


_OPPORTUNITY_FIELDS = (
    "Id, Name, AccountId, StageName, IsWon, IsClosed, Type, CloseDate, CurrencyIsoCode,"
    " Contracting_Entity__c, Term_Months__c, Account.Name, Account.Contracting_Entity__c"
)


class Crm:
    """simple-salesforce raises without the response headers, so a response hook keeps the
    last Retry-After to honour it when Salesforce refuses a request for its limits."""

    def __init__(
        self,
        instance_url: str,
        session_id: str,
        *,
        ca_bundle: str,
        writeback: dict[str, str],
        headers: dict[str, str] | None = None,
        gate: Gate | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.gate = gate or Gate()
        session = requests.Session()
        session.verify = ca_bundle or True
        if tls is not None:
            session.mount("https://", SharedTls(tls))
        session.trust_env = False  # loopback simulators; proxies must not see this traffic
        session.headers.update(headers or {})
        # The write-back fields as declared: the deal's subscription and sync flag, and the
        # account's billing and ERP customer ids.
        self._fields = (
            f"{writeback['opportunity_subscription']}, {writeback['opportunity_synced']},"
            f" Account.{writeback['account_customer']}, Account.{writeback['account_erp_customer']}"
        )
        self._retry_after_s: float | None = None
        session.hooks["response"].append(self._remember)
        self._session = session
        self.sf = Salesforce(
            instance_url=instance_url, session_id=session_id, version="60.0", session=session
        )

    def close(self) -> None:
        self._session.close()

    def _remember(self, response: requests.Response, *_: Any, **__: Any) -> None:
        self._retry_after_s = parse_retry_after(response.headers.get("Retry-After"))
        self.gate.answered(self._retry_after_s)

    def opportunity(self, opportunity_id: str) -> dict[str, Any]:
        """The opportunity now, with its account and line items (not the pushed snapshot)."""
        soql = (
            f"SELECT {_OPPORTUNITY_FIELDS}, {self._fields},"
            " (SELECT Id, Quantity, UnitPrice, TotalPrice,"
            " Billing_Price_Id__c FROM OpportunityLineItems)"
            f" FROM Opportunity WHERE Id = '{_id(opportunity_id)}'"
        )
        result = self._call(lambda: self.sf.query(soql), f"opportunity {opportunity_id}")
        records: list[dict[str, Any]] = result["records"]
        if not records:
            raise PermanentError(f"opportunity {opportunity_id} not found")
        return records[0]

    def update(self, sobject: str, record_id: str, fields: dict[str, Any]) -> None:
        def call() -> Any:
            return getattr(self.sf, sobject).update(record_id, fields)

        self._call(call, f"update {sobject} {record_id}")

    def _call(self, call: Callable[[], T], what: str) -> T:
        def attempt() -> T:
            self._retry_after_s = None
            try:
                with self.gate.turn():
                    return call()
            except SalesforceRefusedRequest as exc:  # 403 REQUEST_LIMIT_EXCEEDED
                if "REQUEST_LIMIT_EXCEEDED" in str(exc.content):
                    raise TransientError(f"crm {what}: {exc}", self._retry_after_s) from exc
                raise PermanentError(f"crm {what}: {exc}") from exc
            except SalesforceGeneralError as exc:
                if exc.status >= 500:
                    raise TransientError(f"crm {what}: {exc}", self._retry_after_s) from exc
                raise PermanentError(f"crm {what}: {exc}") from exc
            except SalesforceError as exc:
                raise PermanentError(f"crm {what}: {exc}") from exc
            except requests.RequestException as exc:
                raise TransientError(f"crm {what}: {exc!r}") from exc

        return with_retries(attempt, what=what)


def _id(value: str) -> str:
    if not value.isalnum():
        raise PermanentError(f"not a Salesforce id: {value!r}")
    return value

"""ERP handlers: parse the call, ask the backend, render NetSuite JSON — no business rules."""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.datastructures import Headers

from simulators.common.app import Call, Reply
from simulators.common.errors import SimError
from simulators.erp import errors, render
from simulators.erp.backend import ErpBackend, Role
from simulators.erp.models import Job
from simulators.erp.store import ErpStore

SINGULAR = {"content-type": "application/vnd.oracle.resource+json; type=singular"}
COLLECTION = {"content-type": "application/vnd.oracle.resource+json; type=collection"}


def prefers(headers: Headers, token: str) -> bool:
    """Whether the ``Prefer`` header carries ``token`` (``respond-async``, ``transient``)."""
    parts = re.split(r"[,;]", headers.get("prefer", ""))
    return token in {part.split("=", 1)[0].strip().lower() for part in parts}


class ErpHandlers:
    def __init__(
        self, backend: ErpBackend, store: ErpStore, role_of: Callable[[Headers], Role]
    ) -> None:
        self.b = backend
        self.s = store
        self.role_of = role_of

    # helpers ---------------------------------------------------------------------------
    def _write(self, call: Call, run: Callable[[], Reply]) -> Reply:
        """Run a write now, or as an async job when the client prefers ``respond-async``."""
        if not prefers(call.headers, "respond-async"):
            return run()
        key = call.headers.get("x-netsuite-idempotency-key")
        job = self.b.submit(call.operation_id, key, lambda: _outcome(run()))
        return (
            None,
            202,
            {"Location": render.JOB_PATH + job.id, "Preference-Applied": "respond-async"},
        )

    def _page(self, call: Call) -> tuple[int, int]:
        limit, offset = int(call.query.get("limit", 1000)), int(call.query.get("offset", 0))
        if offset % limit:
            raise errors.bad_parameter("The offset must be a multiple of the limit.", "offset")
        return limit, offset

    def _list(self, kind: str, call: Call) -> Reply:
        limit, offset = self._page(call)
        ids = sorted((row.id for row in self.s.rows(kind)), key=int)
        base = render.RECORD_PATH + kind
        body = render.collection(ids, lambda i: render.record_path(kind, i), base, limit, offset)
        return body, 200, COLLECTION

    def _get(self, kind: str, call: Call) -> Reply:
        row = self.b.find(kind, call.path["id"])
        expand = bool(call.query.get("expandSubResources", False))
        return render.record(self.s, kind, row, self.b.today(), expand), 200, SINGULAR

    def _create(self, kind: str, call: Call) -> Reply:
        def run() -> Reply:
            row = self.b.create(kind, call.body, self.role_of(call.headers))
            return None, 204, {"Location": render.record_path(kind, row.id)}

        return self._write(call, run)

    def _update(self, kind: str, call: Call) -> Reply:
        def run() -> Reply:
            row = self.b.find(kind, call.path["id"])
            self.b.update(kind, row, call.body, self.role_of(call.headers))
            return None, 204, {}

        return self._write(call, run)

    def _upsert(self, kind: str, call: Call) -> Reply:
        def run() -> Reply:
            row, _ = self.b.upsert(kind, call.path["id"], call.body, self.role_of(call.headers))
            return None, 204, {"Location": render.record_path(kind, row.id)}

        return self._write(call, run)

    def _delete(self, kind: str, call: Call) -> Reply:
        def run() -> Reply:
            row = self.b.find(kind, call.path["id"])
            self.b.delete(kind, row, self.role_of(call.headers))
            return None, 204, {}

        return self._write(call, run)

    def _void(self, kind: str, call: Call) -> Reply:
        def run() -> Reply:
            row = self.b.find(kind, call.path["id"])
            journal = self.b.void(kind, row, self.role_of(call.headers))
            href = f"{render.record_path(kind, row.id)}/@void"
            body = {"links": render.links(href), "result": journal.id}
            location = render.record_path("journalEntry", journal.id)
            return body, 200, {**SINGULAR, "Location": location}

        return self._write(call, run)

    # subsidiary ------------------------------------------------------------------------
    def list_subsidiaries(self, call: Call) -> Reply:
        return self._list("subsidiary", call)

    def create_subsidiary(self, call: Call) -> Reply:
        return self._create("subsidiary", call)

    def get_subsidiary(self, call: Call) -> Reply:
        return self._get("subsidiary", call)

    def update_subsidiary(self, call: Call) -> Reply:
        return self._update("subsidiary", call)

    def upsert_subsidiary(self, call: Call) -> Reply:
        return self._upsert("subsidiary", call)

    # currency --------------------------------------------------------------------------
    def list_currencies(self, call: Call) -> Reply:
        return self._list("currency", call)

    def create_currency(self, call: Call) -> Reply:
        return self._create("currency", call)

    def get_currency(self, call: Call) -> Reply:
        return self._get("currency", call)

    def update_currency(self, call: Call) -> Reply:
        return self._update("currency", call)

    def upsert_currency(self, call: Call) -> Reply:
        return self._upsert("currency", call)

    # currencyRate ----------------------------------------------------------------------
    def list_currency_rates(self, call: Call) -> Reply:
        return self._list("currencyRate", call)

    def create_currency_rate(self, call: Call) -> Reply:
        return self._create("currencyRate", call)

    def get_currency_rate(self, call: Call) -> Reply:
        return self._get("currencyRate", call)

    def update_currency_rate(self, call: Call) -> Reply:
        return self._update("currencyRate", call)

    def upsert_currency_rate(self, call: Call) -> Reply:
        return self._upsert("currencyRate", call)

    def delete_currency_rate(self, call: Call) -> Reply:
        return self._delete("currencyRate", call)

    # account ---------------------------------------------------------------------------
    def list_accounts(self, call: Call) -> Reply:
        return self._list("account", call)

    def create_account(self, call: Call) -> Reply:
        return self._create("account", call)

    def get_account(self, call: Call) -> Reply:
        return self._get("account", call)

    def update_account(self, call: Call) -> Reply:
        return self._update("account", call)

    def upsert_account(self, call: Call) -> Reply:
        return self._upsert("account", call)

    def delete_account(self, call: Call) -> Reply:
        return self._delete("account", call)

    # serviceSaleItem -------------------------------------------------------------------
    def list_service_sale_items(self, call: Call) -> Reply:
        return self._list("serviceSaleItem", call)

    def get_service_sale_item(self, call: Call) -> Reply:
        return self._get("serviceSaleItem", call)

    def update_service_sale_item(self, call: Call) -> Reply:
        return self._update("serviceSaleItem", call)

    # accountingPeriod ------------------------------------------------------------------
    def list_accounting_periods(self, call: Call) -> Reply:
        return self._list("accountingPeriod", call)

    def get_accounting_period(self, call: Call) -> Reply:
        return self._get("accountingPeriod", call)

    def update_accounting_period(self, call: Call) -> Reply:
        return self._update("accountingPeriod", call)

    # customer --------------------------------------------------------------------------
    def list_customers(self, call: Call) -> Reply:
        return self._list("customer", call)

    def create_customer(self, call: Call) -> Reply:
        return self._create("customer", call)

    def get_customer(self, call: Call) -> Reply:
        return self._get("customer", call)

    def update_customer(self, call: Call) -> Reply:
        return self._update("customer", call)

    def upsert_customer(self, call: Call) -> Reply:
        return self._upsert("customer", call)

    def delete_customer(self, call: Call) -> Reply:
        return self._delete("customer", call)

    # invoice ---------------------------------------------------------------------------
    def list_invoices(self, call: Call) -> Reply:
        return self._list("invoice", call)

    def create_invoice(self, call: Call) -> Reply:
        return self._create("invoice", call)

    def get_invoice(self, call: Call) -> Reply:
        return self._get("invoice", call)

    def update_invoice(self, call: Call) -> Reply:
        return self._update("invoice", call)

    def upsert_invoice(self, call: Call) -> Reply:
        return self._upsert("invoice", call)

    def delete_invoice(self, call: Call) -> Reply:
        return self._delete("invoice", call)

    def void_invoice(self, call: Call) -> Reply:
        return self._void("invoice", call)

    # creditMemo ------------------------------------------------------------------------
    def list_credit_memos(self, call: Call) -> Reply:
        return self._list("creditMemo", call)

    def create_credit_memo(self, call: Call) -> Reply:
        return self._create("creditMemo", call)

    def get_credit_memo(self, call: Call) -> Reply:
        return self._get("creditMemo", call)

    def update_credit_memo(self, call: Call) -> Reply:
        return self._update("creditMemo", call)

    def upsert_credit_memo(self, call: Call) -> Reply:
        return self._upsert("creditMemo", call)

    def delete_credit_memo(self, call: Call) -> Reply:
        return self._delete("creditMemo", call)

    def void_credit_memo(self, call: Call) -> Reply:
        return self._void("creditMemo", call)

    # customerPayment -------------------------------------------------------------------
    def list_customer_payments(self, call: Call) -> Reply:
        return self._list("customerPayment", call)

    def create_customer_payment(self, call: Call) -> Reply:
        return self._create("customerPayment", call)

    def get_customer_payment(self, call: Call) -> Reply:
        return self._get("customerPayment", call)

    def update_customer_payment(self, call: Call) -> Reply:
        return self._update("customerPayment", call)

    def upsert_customer_payment(self, call: Call) -> Reply:
        return self._upsert("customerPayment", call)

    def delete_customer_payment(self, call: Call) -> Reply:
        return self._delete("customerPayment", call)

    def void_customer_payment(self, call: Call) -> Reply:
        return self._void("customerPayment", call)

    # journalEntry ----------------------------------------------------------------------
    def list_journal_entries(self, call: Call) -> Reply:
        return self._list("journalEntry", call)

    def create_journal_entry(self, call: Call) -> Reply:
        return self._create("journalEntry", call)

    def get_journal_entry(self, call: Call) -> Reply:
        return self._get("journalEntry", call)

    def update_journal_entry(self, call: Call) -> Reply:
        return self._update("journalEntry", call)

    def upsert_journal_entry(self, call: Call) -> Reply:
        return self._upsert("journalEntry", call)

    def delete_journal_entry(self, call: Call) -> Reply:
        return self._delete("journalEntry", call)

    def void_journal_entry(self, call: Call) -> Reply:
        return self._void("journalEntry", call)

    # async jobs ------------------------------------------------------------------------
    def get_async_job(self, call: Call) -> Reply:
        return render.job(self.b.job(call.path["id"])), 200, SINGULAR

    def list_async_job_tasks(self, call: Call) -> Reply:
        job = self.b.job(call.path["id"])
        limit, offset = self._page(call)
        base = f"{render.JOB_PATH}{job.id}/task"
        body = render.collection(["1"], lambda i: f"{base}/{i}", base, limit, offset)
        return body, 200, COLLECTION

    def get_async_job_task(self, call: Call) -> Reply:
        return render.task(self._task(call)), 200, SINGULAR

    def get_async_job_task_result(self, call: Call) -> Reply:
        """What the synchronous request would have answered: 204 (+ Location) or its error."""
        job = self._task(call)
        if job.error is not None:
            raise SimError(
                job.error["status"], job.error["code"], job.error["message"], job.error["param"]
            )
        return None, 204, ({"Location": job.location} if job.location else {})

    def _task(self, call: Call) -> Job:
        job = self.b.job(call.path["id"])
        if call.path["taskId"] != "1":
            raise errors.nonexistent("task", call.path["taskId"])
        return job

    # SuiteQL ---------------------------------------------------------------------------
    def run_suiteql(self, call: Call) -> Reply:
        if not prefers(call.headers, "transient"):
            raise errors.bad_parameter(
                'SuiteQL queries need the request header "Prefer: transient".', "Prefer"
            )
        limit, offset = self._page(call)
        result = self.b.query(call.body["q"], render.suiteql_catalog(self.s))
        # Only the page is rendered; the total counts every row.
        records = result.records(offset, offset + limit)
        items = [{"links": [], **row} for row in records]
        return render.suiteql_page(items, len(result.rows), limit, offset), 200, COLLECTION


def _outcome(reply: Reply) -> tuple[int, str | None]:
    """The status and Location a write answered, as a job records them."""
    headers = reply[2] if len(reply) == 3 else {}
    return reply[1], headers.get("Location")

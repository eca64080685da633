"""CRM handlers: parse the call, ask the backend, render Salesforce JSON — no business rules."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from starlette.datastructures import Headers

from simulators.common.app import Call, Reply
from simulators.common.errors import SimError
from simulators.crm import composite, errors, render
from simulators.crm.backend import CrmBackend, MultipleMatches
from simulators.crm.limits import limit_info

Json = dict[str, Any]
Handler = Callable[[Call], Reply]
ErrorBody = Callable[[SimError], Any]

# Upsert of an existing record answers 200 with a body from API version 46.0, 204 before.
UPSERT_RESULT_FROM = 46.0
_BATCH = re.compile(r"batchsize\s*=\s*(\d+)", re.IGNORECASE)
HALTED = "The transaction was rolled back since another operation in the same transaction failed."


class CrmHandlers:
    def __init__(
        self,
        backend: CrmBackend,
        *,
        usage: Callable[[], tuple[int, int]],
        error_body: ErrorBody,
        batch_size: int,
    ) -> None:
        self.b = backend
        self._usage = usage
        self._error_body = error_body
        self.batch_size = batch_size
        # Composite calls the bare methods; each HTTP call goes through _committed, which
        # publishes the notifications a request decided only once it has succeeded.
        self._bare: dict[str, Handler] = {}
        for name in dir(type(self)):
            if not name.startswith("_"):
                method = getattr(self, name)
                if callable(method):
                    self._bare[name] = method
                    setattr(self, name, self._committed(method))

    def _committed(self, handler: Handler) -> Handler:
        @functools.wraps(handler)
        def run(call: Call) -> Reply:
            try:
                reply = handler(call)
            except BaseException:
                self.b.discard()
                raise
            self.b.flush()
            headers = dict(reply[2]) if len(reply) == 3 else {}
            # Set as the response leaves, so the count includes this request.
            headers["Sforce-Limit-Info"] = limit_info(*self._usage())
            return reply[0], reply[1], headers

        return run

    # helpers -------------------------------------------------------------------------------
    def _batch(self, headers: Headers) -> int:
        """Sforce-Query-Options: batchSize=N (200..2000) overrides the configured page size."""
        match = _BATCH.search(headers.get("sforce-query-options", ""))
        if match is None:
            return self.batch_size
        return max(200, min(2000, int(match.group(1))))

    def _record(self, call: Call) -> Json:
        obj = self.b.sobject(call.path["sobject"])
        rec = self.b.record(obj, call.path["id"])
        fields = self.b.field_list(obj, call.query.get("fields"))
        return render.record(obj, rec, call.path["version"], fields)

    # sobjects ------------------------------------------------------------------------------
    def describe_global(self, call: Call) -> Reply:
        return render.describe_global(self.b.schema, call.path["version"]), 200

    def get_sobject_info(self, call: Call) -> Reply:
        obj = self.b.sobject(call.path["sobject"])
        return render.sobject_info(obj, call.path["version"], self.b.recent(obj)), 200

    def describe_sobject(self, call: Call) -> Reply:
        return render.describe(self.b.sobject(call.path["sobject"]), call.path["version"]), 200

    def create_record(self, call: Call) -> Reply:
        obj = self.b.sobject(call.path["sobject"])
        rec = self.b.create(obj, call.body)
        location = render.record_url(call.path["version"], obj.name, rec.id)
        return render.save_result(rec.id), 201, {"Location": location}

    def retrieve_record(self, call: Call) -> Reply:
        return self._record(call), 200

    def update_record(self, call: Call) -> Reply:
        obj = self.b.sobject(call.path["sobject"])
        self.b.update(obj, call.path["id"], call.body)
        return None, 204

    def delete_record(self, call: Call) -> Reply:
        obj = self.b.sobject(call.path["sobject"])
        self.b.delete(obj, call.path["id"])
        return None, 204

    def retrieve_record_by_external_id(self, call: Call) -> Reply:
        obj = self.b.sobject(call.path["sobject"])
        _, found = self.b.matches(obj, call.path["field"], call.path["value"])
        version = call.path["version"]
        if not found:
            raise errors.not_found()
        if len(found) > 1:
            return [render.record_url(version, obj.name, r.id) for r in found], 300
        fields = self.b.field_list(obj, call.query.get("fields"))
        return render.record(obj, found[0], version, fields), 200

    def upsert_record_by_external_id(self, call: Call) -> Reply:
        obj = self.b.sobject(call.path["sobject"])
        try:
            rec, created = self.b.upsert(obj, call.path["field"], call.path["value"], call.body)
        except MultipleMatches as exc:
            return exc.urls, 300
        version = call.path["version"]
        with_result = float(version[1:]) >= UPSERT_RESULT_FROM
        location = {"Location": render.record_url(version, obj.name, rec.id)}
        if created:
            body = render.upsert_result(rec.id, True) if with_result else render.save_result(rec.id)
            return body, 201, location
        if with_result:
            return render.upsert_result(rec.id, False), 200, location
        return None, 204

    def get_updated_records(self, call: Call) -> Reply:
        obj = self.b.sobject(call.path["sobject"])
        return self.b.updated(obj, call.query["start"], call.query["end"]), 200

    def get_deleted_records(self, call: Call) -> Reply:
        obj = self.b.sobject(call.path["sobject"])
        return self.b.deleted(obj, call.query["start"], call.query["end"]), 200

    # queries -------------------------------------------------------------------------------
    def _query(self, call: Call, endpoint: str) -> Reply:
        text = call.query.get("q")
        if not text:
            raise errors.malformed_query("A query string has to be specified")
        page = self.b.query(
            text,
            endpoint=endpoint,
            version=call.path["version"],
            batch_size=self._batch(call.headers),
        )
        return page, 200

    def query(self, call: Call) -> Reply:
        return self._query(call, "query")

    def query_all(self, call: Call) -> Reply:
        return self._query(call, "queryAll")

    def query_more(self, call: Call) -> Reply:
        page = self.b.query_more(
            call.path["locator"], endpoint="query", batch_size=self._batch(call.headers)
        )
        return page, 200

    def query_all_more(self, call: Call) -> Reply:
        page = self.b.query_more(
            call.path["locator"], endpoint="queryAll", batch_size=self._batch(call.headers)
        )
        return page, 200

    # limits --------------------------------------------------------------------------------
    def get_limits(self, call: Call) -> Reply:
        used, quota = self._usage()
        return {"DailyApiRequests": {"Max": quota, "Remaining": max(0, quota - used)}}, 200

    # composite -----------------------------------------------------------------------------
    def composite(self, call: Call) -> Reply:
        all_or_none = bool(call.body.get("allOrNone", False))
        subrequests: list[Json] = call.body["compositeRequest"]
        seen: set[str] = set()
        for sub in subrequests:
            if sub["referenceId"] in seen:
                raise errors.error(
                    "INVALID_INPUT", f"Duplicate referenceId provided: {sub['referenceId']}"
                )
            seen.add(sub["referenceId"])
        point = self.b.savepoint() if all_or_none else None
        results: dict[str, Any] = {}
        responses: list[Json] = []
        failed_at: int | None = None
        for n, sub in enumerate(subrequests):
            if failed_at is not None and all_or_none:
                responses.append(_halted(sub, HALTED))
                continue
            response = self._subrequest(sub, results, call)
            responses.append(response)
            if response["httpStatusCode"] >= 400:
                failed_at = n if failed_at is None else failed_at
            else:
                results[sub["referenceId"]] = response["body"]
        if failed_at is not None and point is not None:
            self.b.rollback(point)
            responses = [
                r if n == failed_at else _halted(r, HALTED) for n, r in enumerate(responses)
            ]
        return {"compositeResponse": responses}, 200

    def _subrequest(self, sub: Json, results: dict[str, Any], call: Call) -> Json:
        ref = sub["referenceId"]
        try:
            url = composite.resolve(sub["url"], results)
            body = composite.resolve(sub.get("body"), results)
        except composite.UnresolvedReference as exc:
            return _halted(
                sub,
                f"Invalid reference specified. No value for {exc.expression} found in {exc.ref}.",
            )
        method = sub["method"]
        try:
            target = composite.route(method, str(url))
            if method in ("POST", "PATCH") and not isinstance(body, dict):
                raise errors.json_parser("The request body must be a JSON object.")
            inner = Call(
                target.handler,
                target.path,
                target.query,
                body if isinstance(body, dict) else {},
                Headers(headers=sub.get("httpHeaders") or {}),
                call.request_id,
            )
            reply = self._bare[target.handler](inner)
        except composite.RouteError as exc:
            err = errors.not_found() if exc.status == 404 else errors.method_not_allowed(method)
            return _response(ref, self._error_body(err), err.status, {})
        except SimError as err:
            return _response(ref, self._error_body(err), err.status, {})
        headers = dict(reply[2]) if len(reply) == 3 else {}
        return _response(ref, reply[0], reply[1], headers)


def _response(ref: str, body: Any, status: int, headers: dict[str, str]) -> Json:
    return {"body": body, "httpHeaders": headers, "httpStatusCode": status, "referenceId": ref}


def _halted(sub: Json, message: str) -> Json:
    return _response(
        sub["referenceId"], [{"errorCode": "PROCESSING_HALTED", "message": message}], 400, {}
    )

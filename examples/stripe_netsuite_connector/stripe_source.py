"""Reads from Stripe through the official SDK: current state only, every page, typed failures."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import stripe

from .throttle import Gate, Rejected, Transient

Json = dict[str, Any]
T = TypeVar("T")
MAX_PAGES = 50  # 5,000 lines on one invoice or documents of one customer: plenty, and bounded


class StripeSource:
    """The connector never writes to Stripe; it re-reads the object an event names."""

    def __init__(self, api_base: str, api_key: str, *, gate: Gate) -> None:
        self.gate = gate
        # The SDK's own retries would ignore our gate; ours wait for it.
        self._client = stripe.StripeClient(
            api_key, base_addresses={"api": api_base}, max_network_retries=0
        )

    def invoice(self, invoice_id: str) -> Json:
        invoices = self._client.v1.invoices
        return self._with_lines(
            lambda: invoices.retrieve(invoice_id).to_dict(),
            lambda params: invoices.line_items.list(invoice_id, params=params).to_dict(),
        )

    def credit_note(self, credit_note_id: str) -> Json:
        notes = self._client.v1.credit_notes
        return self._with_lines(
            lambda: notes.retrieve(credit_note_id).to_dict(),
            lambda params: notes.line_items.list(credit_note_id, params=params).to_dict(),
        )

    def customer(self, customer_id: str) -> Json:
        return self._call(lambda: self._client.v1.customers.retrieve(customer_id).to_dict())

    def subscription(self, subscription_id: str) -> Json:
        return self._call(lambda: self._client.v1.subscriptions.retrieve(subscription_id).to_dict())

    def credit_sources(self, customer_id: str) -> Iterator[tuple[str, str]]:
        """("credit_note" | "invoice", id) of every document that may have given the customer
        credit: its credit notes and its negative invoices, oldest first."""
        notes = self._all(
            lambda after: self._client.v1.credit_notes.list(
                params={"customer": customer_id, "limit": 100, "starting_after": after}
                if after
                else {"customer": customer_id, "limit": 100}
            ).to_dict()
        )
        invoices = self._all(
            lambda after: self._client.v1.invoices.list(
                params={
                    "customer": customer_id,
                    "status": "paid",
                    "limit": 100,
                    "starting_after": after,
                }
                if after
                else {"customer": customer_id, "status": "paid", "limit": 100}
            ).to_dict()
        )
        found = [("credit_note", n) for n in notes] + [
            ("invoice", i) for i in invoices if int(i["total"]) < 0
        ]
        for kind, doc in sorted(found, key=lambda pair: int(pair[1]["created"])):
            yield kind, str(doc["id"])

    def events_since(self, created: int, types: list[str]) -> list[Json]:
        """Events of these types created at or after ``created``, oldest first."""
        events = self._all(
            lambda after: self._client.v1.events.list(
                params={
                    "created": {"gte": created},
                    "types": types,
                    "limit": 100,
                    "starting_after": after,
                }
                if after
                else {"created": {"gte": created}, "types": types, "limit": 100}
            ).to_dict()
        )
        return sorted(events, key=lambda e: (int(e["created"]), str(e["id"])))

    # paging and failures ----------------------------------------------------------------
    def _with_lines(self, retrieve: Callable[[], Json], lines: Callable[[Any], Json]) -> Json:
        """A document whose embedded ``lines`` list is completed page by page."""
        document = self._call(retrieve)
        document["lines"] = self._complete(
            document["lines"],
            lambda after: lines(
                {"limit": 100, "starting_after": after} if after else {"limit": 100}
            ),
        )
        return document

    def _complete(self, first: Json, fetch: Callable[[str | None], Json]) -> list[Json]:
        """An embedded list (Stripe embeds a first page) with every further page fetched."""
        rows: list[Json] = list(first.get("data", []))
        page = first
        for _ in range(MAX_PAGES):
            if not page.get("has_more") or not rows:
                return rows
            after = str(rows[-1]["id"])
            page = self._call(functools.partial(fetch, after))
            rows.extend(page.get("data", []))
        raise Rejected(f"more than {MAX_PAGES} pages of {first.get('url')}")

    def _all(self, fetch: Callable[[str | None], Json]) -> list[Json]:
        return self._complete(self._call(lambda: fetch(None)), fetch)

    def _call(self, call: Callable[[], T]) -> T:
        with self.gate.turn():
            try:
                return call()
            except stripe.StripeError as exc:
                failure = exc
                if exc.http_status is not None and exc.http_status >= 400:
                    headers = exc.headers or {}
                    self.gate.note(
                        next(
                            (str(v) for k, v in headers.items() if k.lower() == "retry-after"), None
                        )
                    )
        status = failure.http_status
        # APIError also stands for a reply the SDK could not read (a cut-off body).
        kinds = stripe.APIConnectionError | stripe.RateLimitError | stripe.APIError
        if isinstance(failure, kinds) or status is None or status == 409 or status >= 500:
            raise Transient(f"Stripe: {type(failure).__name__} ({status}): {failure}")
        raise Rejected(f"Stripe {status}: {failure.user_message or failure}")

"""Revrec handlers: parse the call, ask the backend, render JSON — no business rules."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from simulators.common.app import Call, Reply
from simulators.revrec import render
from simulators.revrec.backend import RevrecBackend
from simulators.revrec.models import Contract, parse_period
from simulators.revrec.store import RevrecStore

Json = dict[str, Any]


def _status(created: bool) -> int:
    """201 for a new record, 200 when an external id found the one already there."""
    return 201 if created else 200


class RevrecHandlers:
    def __init__(self, backend: RevrecBackend, store: RevrecStore) -> None:
        self.b = backend
        self.s = store

    def _as_of(self, call: Call) -> int:
        as_of = call.query.get("as_of")
        return self.b.now() if as_of is None else int(as_of)

    def _page(self, call: Call, rows: list[Any], fn: Callable[[Any], Json], url: str) -> Reply:
        q = call.query
        body = render.page(
            rows, fn, url, limit=q.get("limit", 10), starting_after=q.get("starting_after")
        )
        return body, 200

    # revenue mappings ----------------------------------------------------------------------
    def retrieve_revenue_mapping(self, call: Call) -> Reply:
        return render.revenue_mapping(self.b.mapping(call.path["product"])), 200

    def upsert_revenue_mapping(self, call: Call) -> Reply:
        row = self.b.set_mapping(call.path["product"], bool(call.body["mapped"]))
        return render.revenue_mapping(row), 200

    # entities --------------------------------------------------------------------------
    def upsert_entity(self, call: Call) -> Reply:
        row, created = self.b.upsert_entity(call.path["entity"], call.body)
        return render.entity(row), _status(created)

    def retrieve_entity(self, call: Call) -> Reply:
        return render.entity(self.b.entity(call.path["entity"])), 200

    def list_entities(self, call: Call) -> Reply:
        rows = list(self.s.entities.values())
        return self._page(call, rows, render.entity, "/v1/entities")

    # contracts -------------------------------------------------------------------------
    def create_contract(self, call: Call) -> Reply:
        row, created = self.b.create_contract(call.body)
        return render.contract(self.s, row), _status(created)

    def list_contracts(self, call: Call) -> Reply:
        q = call.query
        candidates: Iterable[Contract] = self.s.contracts.values()
        if q.get("external_id") is not None:
            # The lookup integrations make per document: by the store's index, not a scan.
            found = self.s.contract_by_external_id.get(q["external_id"])
            candidates = [self.s.contracts[found]] if found in self.s.contracts else []
        rows = [
            c
            for c in candidates
            if q.get("entity") in (None, c.entity)
            and q.get("customer") in (None, c.customer)
            and q.get("external_id") in (None, c.external_id)
        ]
        return self._page(call, rows, lambda c: render.contract(self.s, c), "/v1/contracts")

    def retrieve_contract(self, call: Call) -> Reply:
        return render.contract(self.s, self.b.contract(call.path["contract"])), 200

    def retrieve_contract_schedule(self, call: Call) -> Reply:
        return self.b.schedule(self.b.contract(call.path["contract"])), 200

    def retrieve_contract_balances(self, call: Call) -> Reply:
        contract = self.b.contract(call.path["contract"])
        return self.b.balances(contract, self._as_of(call)), 200

    # modifications, deliveries and usage -----------------------------------------------
    def create_modification(self, call: Call) -> Reply:
        row, created = self.b.create_modification(call.path["contract"], call.body)
        return render.modification(row), _status(created)

    def list_modifications(self, call: Call) -> Reply:
        contract = self.b.contract(call.path["contract"])
        rows = [self.s.modifications[m] for m in contract.modifications]
        return self._page(
            call, rows, render.modification, f"/v1/contracts/{contract.id}/modifications"
        )

    def create_delivery(self, call: Call) -> Reply:
        row, created = self.b.create_delivery(call.path["contract"], call.path["line"], call.body)
        return render.delivery(row), _status(created)

    def create_usage_record(self, call: Call) -> Reply:
        row, created = self.b.record_usage(call.path["contract"], call.path["line"], call.body)
        return render.usage_record(row), _status(created)

    # billing ---------------------------------------------------------------------------
    def create_billing_event(self, call: Call) -> Reply:
        row, created = self.b.create_billing_event(call.body)
        return render.billing_event(row), _status(created)

    def list_billing_events(self, call: Call) -> Reply:
        q = call.query
        rows = [
            e
            for e in self.s.billing_events.values()
            if q.get("contract") in (None, e.contract)
            and q.get("external_id") in (None, e.external_id)
        ]
        return self._page(call, rows, render.billing_event, "/v1/billing_events")

    def retrieve_billing_event(self, call: Call) -> Reply:
        return render.billing_event(self.b.billing_event(call.path["billing_event"])), 200

    # periods ---------------------------------------------------------------------------
    def close_period(self, call: Call) -> Reply:
        entity = self.b.entity(call.path["entity"])
        close = self.b.close_period(entity.id, self.b.checked_period(call.path["period"]))
        return render.period(self.b, entity, parse_period(close.period)), 200

    def retrieve_period(self, call: Call) -> Reply:
        entity = self.b.entity(call.path["entity"])
        month = parse_period(self.b.checked_period(call.path["period"]))
        return render.period(self.b, entity, month), 200

    # reports and events ----------------------------------------------------------------
    def retrieve_balances_report(self, call: Call) -> Reply:
        q = call.query
        return self.b.balances_report(q["entity"], self._as_of(call), q.get("currency")), 200

    def retrieve_waterfall_report(self, call: Call) -> Reply:
        q = call.query
        return self.b.waterfall(q["entity"], self._as_of(call), q.get("currency")), 200

    def list_events(self, call: Call) -> Reply:
        kind = call.query.get("type")
        rows = [e for e in self.s.events if kind in (None, e.type)]
        return self._page(call, rows, render.event, "/v1/events")

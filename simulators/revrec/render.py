"""Revrec records as the API's JSON objects, and the list envelope."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from simulators.revrec import errors
from simulators.revrec.models import (
    BillingEvent,
    Contract,
    Delivery,
    Entity,
    Event,
    Line,
    Modification,
    RevenueMapping,
    UsageRecord,
    month_start,
    parse_period,
    period_name,
)
from simulators.revrec.store import RevrecStore

if TYPE_CHECKING:
    from simulators.revrec.backend import RevrecBackend

Json = dict[str, Any]


def revenue_mapping(row: RevenueMapping) -> Json:
    return {
        "object": "revenue_mapping",
        "product": row.id,
        "mapped": row.mapped,
        "updated_at": row.updated_at or None,
    }


def entity(row: Entity) -> Json:
    through = row.closed_through
    return {
        "id": row.id,
        "object": "entity",
        "name": row.name,
        "functional_currency": row.functional_currency,
        "created_at": row.created_at,
        "closed_through": through,
        "first_open_period": None if through is None else period_name(parse_period(through) + 1),
    }


def line(row: Line) -> Json:
    usage = row.pattern == "usage"
    return {
        "id": row.id,
        "object": "contract_line",
        "contract": row.contract,
        "external_id": row.external_id,
        "product": row.product,
        "pattern": row.pattern,
        "quantity": None if usage else row.quantity,
        "unit_price_minor": row.unit_price_minor,
        "amount_minor": None if usage else row.amount_minor,
        "discount_minor": None if usage else row.discount_minor,
        "unit_ssp_minor": None if usage else row.unit_ssp_minor,
        "allocated_minor": sum(u.amount_minor for u in row.usage) if usage else row.allocated_minor,
        "service_start_at": row.service_start_at,
        "service_end_at": row.service_end_at,
        "series": row.series,
        "terminated_at": row.terminated_at,
        "delivered_quantity": sum(d.quantity for d in row.deliveries),
        "consumed_quantity": sum(u.quantity for u in row.usage),
        "created_at": row.created_at,
    }


def contract(store: RevrecStore, row: Contract) -> Json:
    lines = [store.lines[i] for i in row.lines]
    return {
        "id": row.id,
        "object": "contract",
        "external_id": row.external_id,
        "customer": row.customer,
        "entity": row.entity,
        "currency": row.currency,
        "functional_currency": row.functional_currency,
        "exchange_rate": row.exchange_rate,
        "recognition_convention": row.convention,
        "booked_at": row.booked_at,
        "created_at": row.created_at,
        "transaction_price_minor": sum(ln.amount_minor for ln in lines if ln.fixed),
        "metadata": dict(row.metadata),
        "lines": [line(ln) for ln in lines],
        "modifications": list(row.modifications),
    }


def modification(row: Modification) -> Json:
    return {
        "id": row.id,
        "object": "modification",
        "contract": row.contract,
        "external_id": row.external_id,
        "effective_at": row.effective_at,
        "created_at": row.created_at,
        "requested_treatment": row.requested_treatment,
        "treatment": row.treatment,
        "changes": list(row.terms.get("changes") or []),
        "added_lines": list(row.added_lines),
        "adjustments": [dict(a) for a in row.adjustments],
    }


def billing_event(row: BillingEvent) -> Json:
    sign = 1 if row.type == "invoice" else -1
    return {
        "id": row.id,
        "object": "billing_event",
        "external_id": row.external_id,
        "type": row.type,
        "contract": row.contract,
        "currency": row.currency,
        "exchange_rate": row.exchange_rate,
        "issued_at": row.issued_at,
        "created_at": row.created_at,
        "total_minor": sign * sum(item["amount_minor"] for item in row.lines),
        "lines": [dict(item) for item in row.lines],
    }


def delivery(row: Delivery) -> Json:
    return {
        "id": row.id,
        "object": "delivery",
        "contract": row.contract,
        "line": row.line,
        "external_id": row.external_id,
        "quantity": row.quantity,
        "delivered_at": row.delivered_at,
        "created_at": row.created_at,
    }


def usage_record(row: UsageRecord) -> Json:
    return {
        "id": row.id,
        "object": "usage_record",
        "contract": row.contract,
        "line": row.line,
        "external_id": row.external_id,
        "quantity": row.quantity,
        "amount_minor": row.amount_minor,
        "consumed_at": row.consumed_at,
        "created_at": row.created_at,
    }


def period(backend: RevrecBackend, row: Entity, month: int) -> Json:
    """A period with its journal summary: stored when closed, provisional while open."""
    through = None if row.closed_through is None else parse_period(row.closed_through)
    closed = through is not None and month <= through
    close = backend.period_close(row, month) if closed else None
    if closed:
        journal = close.journal if close is not None else None
    else:
        journal = backend.period_journal(row, month)
    return {
        "object": "period",
        "entity": row.id,
        "period": period_name(month),
        "status": "closed" if closed else "open",
        "starts_at": month_start(month),
        "ends_at": month_start(month + 1),
        "closed_at": None if close is None else close.closed_at,
        "close_id": None if close is None else close.id,
        "functional_currency": row.functional_currency,
        "journal_summary": None
        if journal is None
        else {"provisional": not closed, "lines": journal},
    }


def event(row: Event) -> Json:
    return {
        "id": row.id,
        "object": "event",
        "type": row.type,
        "created_at": row.created_at,
        "data": row.data,
    }


def page(
    rows: Sequence[Any],
    fn: Callable[[Any], Json],
    url: str,
    *,
    limit: int,
    starting_after: str | None,
    key: Callable[[Any], str] = lambda r: str(r.id),
) -> Json:
    """Oldest first; ``starting_after`` is the id of the last row of the previous page."""
    start = 0
    if starting_after is not None:
        ids = [key(r) for r in rows]
        if starting_after not in ids:
            raise errors.no_such("object", starting_after, "starting_after")
        start = ids.index(starting_after) + 1
    chunk = rows[start : start + limit]
    return {
        "object": "list",
        "url": url,
        "has_more": start + limit < len(rows),
        "data": [fn(r) for r in chunk],
    }

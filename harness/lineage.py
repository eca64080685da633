"""What the report shows besides the verdict: lineage per deal, hand-off times, the fingerprint.

Everything here reads one Books snapshot, and documents across systems only through its link
index, so an integration with its own conventions is traced as it declared itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from harness.books import Books, ar_link
from harness.results import Sla, StepResult


def deals(names: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(scenario key, kind, CRM id or "") of every deal: won opportunities and subscriptions
    made in billing, in the order the scenario named them."""
    found = []
    for name, value in names.items():
        kind, _, key = name.partition(":")
        if kind == "opportunity":
            found.append((key, "opportunity", value))
        elif kind == "deal":  # a subscription made in billing, no CRM deal behind it
            found.append((key, "billing", ""))
    return found


def lineage(books: Books, names: Mapping[str, str]) -> list[dict[str, Any]]:
    """Per deal: opportunity → subscription → invoices → ERP documents → revenue contract."""
    links = books.links
    rows = []
    shown: set[str] = set()
    for key, kind, crm_id in deals(names):
        sub = names.get(f"subscription:{key}")
        invoices = []
        # An amendment's invoices are its subscription's: shown once, under the first deal.
        if sub is not None and sub not in shown:
            for invoice in books.invoices_by_subscription.get(sub, []):
                invoices.append(_invoice_row(books, invoice))
            shown.add(sub)
        contract = None
        row = links.target("revrec.contract", sub)
        if row is not None:
            contract = {"id": row.id, "entity": row.entity, "lines": list(row.lines)}
        rows.append(
            {
                "opportunity": key,
                "source": kind,
                "crm_id": crm_id or None,
                "subscription": sub,
                "invoices": invoices,
                "revenue_contract": contract,
            }
        )
    return rows


def _invoice_row(books: Books, invoice: Any) -> dict[str, Any]:
    links = books.links
    link = ar_link(invoice.total) if invoice.finalized_at is not None else None
    erp_doc = links.target(link, invoice.id) if link is not None else None
    payment = links.target("erp.payment", invoice.id)
    return {
        "id": invoice.id,
        "status": invoice.status,
        "currency": invoice.currency,
        "total": invoice.total,
        "billing_reason": invoice.billing_reason,
        "erp_invoice": erp_doc.id if erp_doc else None,
        "erp_kind": erp_doc.kind if erp_doc else None,
        "erp_subsidiary": _subsidiary(books, erp_doc),
        "erp_period": _period(books, erp_doc),
        "erp_payment": payment.id if payment else None,
        "credit_notes": [
            {
                "id": note.id,
                "erp_credit_memo": (memo := links.target("erp.credit_memo", note.id)) and memo.id,
            }
            for note in books.credit_notes_by_invoice.get(invoice.id, [])
        ],
    }


def _subsidiary(books: Books, row: Any) -> str | None:
    if row is None:
        return None
    subsidiary = books.erp_subsidiaries.get(row.subsidiary)
    return str(subsidiary.external_id or subsidiary.id) if subsidiary else str(row.subsidiary)


def _period(books: Books, row: Any) -> str | None:
    if row is None:
        return None
    period = books.erp_periods.get(row.period)
    return period.ym if period else str(row.period)


def sla(
    books: Books, steps: list[StepResult], won: Iterable[tuple[int, str]], names: Mapping[str, str]
) -> list[Sla]:
    """Closed-won → subscription, invoice → ERP posting, period close → revenue journal: each
    only for a hand-off the integration under test owns (a stand-in's times say nothing)."""
    out: list[Sla] = []
    step_wall = {s.index: s.wall_s for s in steps}
    if books.owns("crm.provision"):
        for index, opportunity in won:
            sub = books.subscriptions.get(names.get(f"subscription:{opportunity}", ""))
            if sub is None:
                continue
            closed_at = _parse(steps[index].sim_at)
            if sub.created < closed_at:
                continue  # an amendment: its subscription came from an earlier deal
            out.append(
                Sla(
                    "closed_won_to_subscription",
                    opportunity,
                    sub.created - closed_at,
                    step_wall[index],
                )
            )
    if books.owns("erp.invoices"):
        for invoice in books.finalised_invoices:
            link = ar_link(invoice.total)
            row = books.links.target(link, invoice.id) if link else None
            if row is None or invoice.finalized_at is None:
                continue
            step = _step_at(steps, invoice.finalized_at)
            out.append(
                Sla(
                    "invoice_to_erp_posting",
                    invoice.id,
                    int(row.created_at) - int(invoice.finalized_at),
                    step_wall.get(step, 0.0),
                )
            )
    if books.owns("erp.journals"):
        for close in books.rr_period_closes.values():
            row = books.links.target("erp.journal", close.id)
            if row is None:
                continue
            step = _step_at(steps, close.closed_at)
            out.append(
                Sla(
                    "period_close_to_revenue_journal",
                    f"{close.entity} {close.period}",
                    int(row.created_at) - int(close.closed_at),
                    step_wall.get(step, 0.0),
                )
            )
    return out


def _parse(instant: str) -> int:
    return int(datetime.fromisoformat(instant.replace("Z", "+00:00")).timestamp())


def _step_at(steps: list[StepResult], sim_at: int) -> int:
    """The last step that began at or before ``sim_at``: the one whose settle covered it."""
    chosen = 0
    for step in steps:
        if step.kind in ("fixtures", "final"):
            continue
        if _parse(step.sim_at) <= sim_at:
            chosen = step.index
    return chosen


def fingerprint(
    books: Books,
    names: Mapping[str, str],
    faults: list[dict[str, Any]],
    verdict: Iterable[tuple[str, str]],
) -> str:
    """A digest of what must not vary between runs of one scenario and seed: the ids, the
    amounts, the fault schedule and the verdict (wall times excluded)."""
    data = {
        "names": dict(sorted(names.items())),
        "documents": _documents(books),
        "faults": faults,  # seq, rule, kind, sim time: no wall clock in them
        "verdict": sorted(verdict),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _documents(books: Books) -> dict[str, Any]:
    docs: dict[str, Any] = {}
    if "billing" in books.systems:
        docs["invoices"] = sorted(
            (i.id, i.status, i.total, i.amount_due, i.currency) for i in books.invoices.values()
        )
        docs["credit_notes"] = sorted((n.id, n.total) for n in books.credit_notes.values())
    if "erp" in books.systems:
        docs["erp"] = sorted(
            (t.kind, t.external_id or "", t.subsidiary, t.period, t.currency)
            for t in books.erp_transactions.values()
        )
    return docs

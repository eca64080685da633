"""The HTML report: a view of each scenario result for finance readers, rendered by Jinja2
from harness/templates/report.html.j2 (money in major units, durations in words, anchors)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, select_autoescape

from harness.humanize import Anchors, duration, money

if TYPE_CHECKING:
    from harness.runner import ScenarioResult

HANDOFFS = {
    "closed_won_to_subscription": "closed-won → subscription",
    "invoice_to_erp_posting": "invoice → ERP posting",
    "period_close_to_revenue_journal": "period close → revenue journal",
}
CHART_HEIGHT = 160  # px of the tallest bar


def render_html(results: Sequence[ScenarioResult]) -> str:
    env = Environment(
        loader=PackageLoader("harness", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = money
    env.filters["duration"] = duration
    anchors = Anchors()
    scenarios = [_scenario(n, r, anchors) for n, r in enumerate(results, start=1)]
    from harness.report import judged_lines

    return env.get_template("report.html.j2").render(
        scenarios=scenarios,
        passed=sum(1 for r in results if r.passed),
        total=len(results),
        judged=results[0].judged if results else {},
        judged_lines=judged_lines(results[0]) if results else [],
    )


def _scenario(number: int, r: ScenarioResult, anchors: Anchors) -> dict[str, Any]:
    scope = f"s{number}"
    deals = [_deal(deal, scope, anchors) for deal in r.lineage]  # anchors first, then links

    def link(record: str) -> dict[str, str | None]:
        return {"name": record, "href": anchors.known(scope, record)}

    return {
        "id": anchors.id(scope, r.name),
        "result": r,
        "violations": [
            {"rule": v.rule, "message": v.message, "records": [link(x) for x in v.records]}
            for v in r.violations
        ],
        "steps": [
            {
                "step": s,
                "found": [str(v) for v in s.violations],
                "deferred": [str(v) for v in s.deferred],
            }
            for s in r.steps
        ],
        "faults": _faults(r.faults_injected),
        "deals": deals,
        "handoffs": [
            {
                "name": HANDOFFS.get(sla.name, sla.name),
                "subject": link(sla.subject),
                "sim_s": sla.sim_s,
                "wall_s": sla.wall_s,
            }
            for sla in r.sla
        ],
        "revenue": [chart for entity in r.revenue for chart in _revenue(entity)],
        # Filled by the runner once it calls harness.reconcile.reconciliation(books).
        "reconciliation": list(getattr(r, "reconciliation", None) or []),
        "exceptions": r.exceptions,
        "output_tail": "\n".join(r.integration_output[-60:]),
    }


def _faults(hits: Sequence[dict[str, Any]]) -> list[tuple[str, str, str, int]]:
    counts: dict[tuple[str, str, str], int] = {}
    for hit in hits:
        key = (str(hit.get("system", "")), str(hit.get("kind", "")), str(hit.get("operation", "")))
        counts[key] = counts.get(key, 0) + 1
    return [(*key, n) for key, n in sorted(counts.items())]


def _deal(deal: dict[str, Any], scope: str, anchors: Anchors) -> dict[str, Any]:
    def anchor(record: str | None) -> dict[str, str | None]:
        return {"name": record, "id": anchors.id(scope, record) if record else None}

    contract = deal.get("revenue_contract") or {}
    return {
        "opportunity": deal["opportunity"],
        "crm": anchor(f"crm:{deal['crm_id']}"),
        "subscription": anchor(f"billing:{deal['subscription']}" if deal["subscription"] else None),
        "contract": anchor(f"revrec:{contract['id']}" if contract.get("id") else None),
        "entity": contract.get("entity"),
        "invoices": [
            {
                **inv,
                "anchor": anchor(f"billing:{inv['id']}"),
                "erp": anchor(f"erp:invoice/{inv['erp_invoice']}" if inv["erp_invoice"] else None),
                "total_text": money(inv["total"], inv["currency"]),
            }
            for inv in deal["invoices"]
        ],
    }


def _revenue(entity: dict[str, Any]) -> list[dict[str, Any]]:
    """One chart per entity and currency: bars per month with a y axis in major units."""
    charts = []
    currencies = sorted({c["currency"] for c in entity["recognised"]})
    for currency in currencies:
        cells = [c for c in entity["recognised"] if c["currency"] == currency]
        top = max((int(c["amount_minor"]) for c in cells), default=0)
        deferred = [
            t["deferred_minor"]
            for t in entity.get("totals", [])
            if str(t.get("currency", "")).lower() == currency.lower()
        ]
        scale = CHART_HEIGHT / top if top > 0 else 0.0
        bars = [
            {
                "period": c["period"],
                "amount": money(int(c["amount_minor"]), currency),
                "height": max(0, round(int(c["amount_minor"]) * scale)),
            }
            for c in cells
        ]
        ticks = [
            {"y": round(CHART_HEIGHT * i / 4), "label": money(top * i // 4, currency)}
            for i in range(5)
        ]
        charts.append(
            {
                "entity": entity["entity"],
                "currency": currency.upper(),
                "bars": bars,
                "ticks": ticks,
                "height": CHART_HEIGHT,
                "total": money(sum(int(c["amount_minor"]) for c in cells), currency),
                "deferred": money(deferred[0], currency) if deferred else None,
            }
        )
    return charts

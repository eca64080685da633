"""Reports of a run: the console verdict table, JUnit XML, JSON and an HTML report."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from rich.console import Console
from rich.table import Table

from harness.results import ScenarioResult


def verdict_table(results: Sequence[ScenarioResult]) -> Table:
    table = Table(title="Scenario verdicts", show_lines=False)
    table.add_column("scenario")
    table.add_column("verdict")
    table.add_column("steps", justify="right")
    table.add_column("violations")
    table.add_column("hand-offs, slowest (wall s)")
    table.add_column("wall s", justify="right")
    for result in results:
        verdict = "[green]pass[/]" if result.passed else "[red]FAIL[/]"
        rules = ", ".join(result.rules) if result.violations else ""
        if result.error:
            rules = (rules + " " if rules else "") + "error"
        table.add_row(
            result.name,
            verdict,
            str(len(result.steps) - 2),
            rules,
            _slowest_handoffs(result),
            f"{result.wall_s:.1f}",
        )
    return table


_HANDOFFS = {
    "closed_won_to_subscription": "won→sub",
    "invoice_to_erp_posting": "inv→ERP",
    "period_close_to_revenue_journal": "close→GL",
}


def _slowest_handoffs(result: ScenarioResult) -> str:
    slowest: dict[str, float] = {}
    for sla in result.sla:
        slowest[sla.name] = max(slowest.get(sla.name, 0.0), sla.wall_s)
    return " ".join(
        f"{label} {slowest[name]:.1f}" for name, label in _HANDOFFS.items() if name in slowest
    )


def judged_lines(result: ScenarioResult) -> list[str]:
    """What the verdict does not cover, one line each: hand-offs played by stand-ins (or by
    nobody) and the rules not judged, with why. Empty when everything was judged."""
    judged = result.judged or {}
    lines = []
    if judged.get("standins"):
        lines.append("played by the stand-in, not judged: " + ", ".join(judged["standins"]))
    if judged.get("not_played"):
        lines.append("not played (no stand-in), not judged: " + ", ".join(judged["not_played"]))
    lines += [f"not judged {item['rule']}: {item['why']}" for item in judged.get("not_judged", [])]
    return lines


def print_judged(console: Console, results: Sequence[ScenarioResult]) -> None:
    """The scope, once for the run (every scenario shares the declaration)."""
    if results:
        for line in judged_lines(results[0]):
            console.print(f"[yellow]{line}[/]")


def print_violations(console: Console, results: Sequence[ScenarioResult], limit: int = 8) -> None:
    for result in results:
        if result.passed:
            continue
        console.print(f"[bold red]{result.name}[/] ({result.source}, seed {result.seed})")
        if result.error:
            console.print(f"  error: {result.error.splitlines()[0]}")
        for violation in result.violations[:limit]:
            console.print(f"  {violation}")
        if len(result.violations) > limit:
            console.print(f"  … and {len(result.violations) - limit} more (see the JSON report)")


def write_json(results: Sequence[ScenarioResult], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "passed": all(r.passed for r in results),
        "scenarios": [r.as_json() for r in results],
    }
    path.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")


def write_junit(results: Sequence[ScenarioResult], path: Path) -> None:
    """One testsuite, one testcase per scenario; each violation a failure message line."""
    suite = ET.Element(
        "testsuite",
        name="harness scenarios",
        tests=str(len(results)),
        failures=str(sum(1 for r in results if r.violations and r.error is None)),
        errors=str(sum(1 for r in results if r.error is not None)),
        time=f"{sum(r.wall_s for r in results):.3f}",
    )
    if results and judged_lines(results[0]):
        properties = ET.SubElement(suite, "properties")
        for line in judged_lines(results[0]):
            ET.SubElement(properties, "property", name="not_judged", value=line)
    for result in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=Path(result.source).stem or "scenario",
            name=result.name,
            time=f"{result.wall_s:.3f}",
        )
        if result.error is not None:
            error = ET.SubElement(case, "error", message=result.error.splitlines()[0][:500])
            error.text = result.error
        elif result.violations:
            failure = ET.SubElement(
                case,
                "failure",
                message=f"{len(result.violations)} violation(s): {', '.join(result.rules)}",
            )
            failure.text = "\n".join(str(v) for v in result.violations)
        out = ET.SubElement(case, "system-out")
        out.text = (
            "\n".join(
                f"step {s.index} {s.kind} @ {s.sim_at}: {s.note} [{s.settle}]" for s in result.steps
            )
            + f"\nseed {result.seed}; fingerprint {result.fingerprint}"
        )
        if result.integration_output:
            err = ET.SubElement(case, "system-err")
            err.text = "\n".join(result.integration_output[-200:])
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


# --- HTML ----------------------------------------------------------------------------------------
_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#1b1f24;max-width:1200px}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccd}h3{margin-bottom:.3em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #d0d7de;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#f6f8fa}.pass{color:#1a7f37;font-weight:600}
.fail{color:#cf222e;font-weight:600}.muted{color:#57606a}.rec{font-family:monospace;
background:#f6f8fa;padding:0 3px}code{font-size:.92em}.fault{color:#9a6700}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _records(records: Sequence[str]) -> str:
    return " ".join(f'<a class="rec" href="#{_e(r)}">{_e(r)}</a>' for r in records)


def write_html(results: Sequence[ScenarioResult], path: Path) -> None:
    passed = sum(1 for r in results if r.passed)
    parts = [
        "<!doctype html><meta charset=utf-8><title>Harness report</title>",
        f"<style>{_STYLE}</style><h1>Scenario report</h1>",
        f"<p>{passed} of {len(results)} scenarios passed.</p>",
        *_judged_html(results),
        "<table><tr><th>scenario</th><th>verdict</th><th>violated rules</th><th>seed</th></tr>",
    ]
    for r in results:
        cls, word = ("pass", "pass") if r.passed else ("fail", "FAIL")
        parts.append(
            f'<tr><td><a href="#s-{_e(r.name)}">{_e(r.name)}</a></td>'
            f'<td class="{cls}">{word}</td><td>{_e(", ".join(r.rules))}</td>'
            f"<td>{r.seed}</td></tr>"
        )
    parts.append("</table>")
    for r in results:
        parts.append(_scenario_html(r))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")


def _judged_html(results: Sequence[ScenarioResult]) -> list[str]:
    judged = (results[0].judged or {}) if results else {}
    if not judged:
        return []
    out = [
        "<h2 id=scope>What was judged</h2>",
        f"<p>The integration owns: {_e(', '.join(judged.get('owned', [])) or 'nothing')}.</p>",
    ]
    lines = judged_lines(results[0])
    if lines:
        out.append("<ul>" + "".join(f"<li>{_e(line)}</li>" for line in lines) + "</ul>")
    else:
        out.append("<p>Every rule was judged.</p>")
    return out


def _scenario_html(r: ScenarioResult) -> str:
    cls, word = ("pass", "pass") if r.passed else ("fail", "FAIL")
    out = [
        f'<h2 id="s-{_e(r.name)}">{_e(r.name)} <span class="{cls}">{word}</span></h2>',
        f'<p class="muted">{_e(r.description)}<br>{_e(r.source)} · seed {r.seed} · start '
        f"{_e(r.start_at)} · {r.wall_s:.1f} s wall · reproduce: "
        f"<code>harness run {_e(r.source)} --seed {r.seed}</code></p>",
    ]
    if r.error:
        out.append(f"<pre>{_e(r.error)}</pre>")
    if r.violations:
        out.append("<h3>Violations</h3><table><tr><th>rule</th><th>what</th><th>records</th></tr>")
        for v in r.violations:
            out.append(
                f"<tr><td>{_e(v.rule)}</td><td>{_e(v.message)}</td>"
                f"<td>{_records(v.records)}</td></tr>"
            )
        out.append("</table>")
    out.append(
        "<h3>Timeline</h3><table><tr><th>#</th><th>sim time</th><th>step</th><th>what happened"
        "</th><th>faults on</th><th>settle</th><th>violations</th></tr>"
    )
    for s in r.steps:
        found = "; ".join(str(v) for v in s.violations)
        deferred = f' <span class="muted">({len(s.deferred)} deferred)</span>' if s.deferred else ""
        line = f" <span class=muted>line {s.line}</span>" if s.line else ""
        out.append(
            f"<tr><td>{s.index}</td><td>{_e(s.sim_at)}</td><td>{_e(s.kind)}{line}</td>"
            f"<td>{_e(s.error or s.note)}</td><td class=fault>{_e(', '.join(s.faults))}</td>"
            f"<td>{_e(s.settle)}</td><td>{_e(found)}{deferred}</td></tr>"
        )
    out.append("</table>")
    if r.faults_injected:
        kinds: dict[str, int] = {}
        for hit in r.faults_injected:
            key = f"{hit.get('system')} {hit.get('kind')} {hit.get('operation')}"
            kinds[key] = kinds.get(key, 0) + 1
        out.append("<h3>Faults injected</h3><table><tr><th>fault</th><th>hits</th></tr>")
        out += [f"<tr><td>{_e(k)}</td><td>{n}</td></tr>" for k, n in sorted(kinds.items())]
        out.append("</table>")
    if r.lineage:
        out.append("<h3>Lineage of each deal</h3>")
        for deal in r.lineage:
            out.append(_deal_html(deal))
    if r.sla:
        out.append(
            "<h3>Hand-off times</h3><table><tr><th>hand-off</th><th>document</th>"
            "<th>sim time</th><th>wall time to settled</th></tr>"
        )
        for sla in r.sla:
            out.append(
                f"<tr><td>{_e(sla.name)}</td><td>{_e(sla.subject)}</td>"
                f"<td>{_e(sla.sim_s)} s</td><td>{sla.wall_s:.2f} s</td></tr>"
            )
        out.append("</table>")
    for entity in r.revenue:
        out.append(_revenue_svg(entity))
    if r.integration_output:
        tail = "\n".join(r.integration_output[-60:])
        out.append(
            f"<details><summary>Integration output (last lines)</summary><pre>{_e(tail)}</pre>"
            "</details>"
        )
    return "\n".join(out)


def _deal_html(deal: dict[str, Any]) -> str:
    contract = deal.get("revenue_contract") or {}
    head = (
        f"<p><b>{_e(deal['opportunity'])}</b>: opportunity "
        f'<span class=rec id="crm:{_e(deal["crm_id"])}">{_e(deal["crm_id"])}</span> → subscription '
        f'<span class=rec id="billing:{_e(deal["subscription"])}">{_e(deal["subscription"])}</span>'
        f" → revenue contract <span class=rec>{_e(contract.get('id'))}</span>"
        f" ({_e(contract.get('entity'))})</p>"
    )
    rows = [
        "<table><tr><th>invoice</th><th>reason</th><th>status</th><th>total</th><th>ERP invoice"
        "</th><th>subsidiary / period</th><th>ERP payment</th><th>credit notes → memos</th></tr>"
    ]
    for inv in deal["invoices"]:
        notes = ", ".join(f"{n['id']} → {n['erp_credit_memo']}" for n in inv["credit_notes"])
        rows.append(
            f'<tr><td class=rec id="billing:{_e(inv["id"])}">{_e(inv["id"])}</td>'
            f"<td>{_e(inv['billing_reason'])}</td><td>{_e(inv['status'])}</td>"
            f"<td>{inv['total']} {_e(inv['currency'])}</td>"
            f"<td>{_e(inv['erp_invoice'] or 'missing')}</td>"
            f"<td>{_e(inv['erp_subsidiary'])} / {_e(inv['erp_period'])}</td>"
            f"<td>{_e(inv['erp_payment'])}</td><td>{_e(notes)}</td></tr>"
        )
    rows.append("</table>")
    return head + "\n".join(rows)


def _revenue_svg(entity: dict[str, Any]) -> str:
    """Recognised revenue per month as bars, with the deferred balance at the end."""
    cells = entity["recognised"]
    deferred = ", ".join(f"{t['deferred_minor']} {t['currency']}" for t in entity.get("totals", []))
    if not cells:
        return ""
    top = max(int(c["amount_minor"]) for c in cells) or 1
    width, height, bar = 40 * len(cells) + 60, 180, 28
    shapes = []
    for i, cell in enumerate(cells):
        h = int(130 * int(cell["amount_minor"]) / top)
        x = 40 + 40 * i
        shapes.append(
            f'<rect x="{x}" y="{150 - h}" width="{bar}" height="{h}" fill="#0969da">'
            f"<title>{_e(cell['period'])}: {cell['amount_minor']} {_e(cell['currency'])}</title>"
            f"</rect>"
            f'<text x="{x}" y="165" font-size="9">{_e(cell["period"][2:])}</text>'
        )
    return (
        f"<h3>Recognised revenue, {_e(entity['entity'])}</h3>"
        f'<svg width="{width}" height="{height}" role="img">{"".join(shapes)}'
        f'<line x1="36" y1="150" x2="{width}" y2="150" stroke="#999"/></svg>'
        f"<p class=muted>Deferred revenue at the end: {_e(deferred)} (minor units)</p>"
    )

"""Reports of a run: the console verdict table, JUnit XML, JSON and an HTML report."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from xml.etree import ElementTree as ET

from rich.console import Console
from rich.table import Table

from harness.humanize import duration
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
            str(played_steps(result)),
            rules,
            _slowest_handoffs(result),
            f"{result.wall_s:.1f}",
        )
    return table


def played_steps(result: ScenarioResult) -> int:
    """The scenario's own steps that ran (not the fixtures or the final judgement)."""
    return sum(1 for step in result.steps if step.kind not in ("fixtures", "final"))


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
    if result.exceptions and not result.exceptions.get("declared"):
        lines.append(
            "no exception list declared (integration.exceptions): EXC rules judge nothing; "
            "judged on the books alone"
        )
    return lines


def print_judged(console: Console, results: Sequence[ScenarioResult]) -> None:
    """The scope, once for the run (every scenario shares the declaration)."""
    if results:
        for line in judged_lines(results[0]):
            console.print(f"[yellow]{line}[/]")


def exception_lines(result: ScenarioResult) -> list[str]:
    """What the integration set aside in a scenario, one line each, with how long it sat."""
    lines = []
    for item in (result.exceptions or {}).get("items", []):
        sat = "still open" if item["sat_s"] is None else f"resolved after {duration(item['sat_s'])}"
        replayed = f", replayed {', '.join(item['replayed_at'])}" if item["replayed_at"] else ""
        lines.append(f"{item['system']}:{item['document']} {sat}{replayed}: {item['reason']}")
    return lines


def print_exceptions(console: Console, results: Sequence[ScenarioResult]) -> None:
    """Per scenario, what was set aside, why, when replayed and how long it sat (sim time)."""
    for result in results:
        lines = exception_lines(result)
        if lines:
            console.print(f"[bold]{result.name}[/]: {len(lines)} set aside")
            for line in lines:
                console.print(f"  {line}", markup=False, highlight=False)


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
        exception_properties(case, result)
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


# Items listed one property each in the JUnit XML; the JSON report has them all.
JUNIT_EXCEPTION_ITEMS = 50


def exception_properties(case: ET.Element, result: ScenarioResult) -> None:
    """The scenario's exceptions section as testcase properties (CI dashboards read these):
    counts, how many were replayed, the longest time one sat open (sim seconds), and one
    ``exception`` property per item as the console prints it."""
    exceptions = result.exceptions
    if not exceptions:
        return
    items = exceptions.get("items", [])
    sat = exceptions.get("max_sat_s")
    values = {
        "exceptions.declared": str(bool(exceptions.get("declared"))).lower(),
        "exceptions.count": str(len(items)),
        "exceptions.open": str(exceptions.get("open", 0)),
        "exceptions.replayed": str(sum(1 for item in items if item.get("replayed_at"))),
        "exceptions.max_sat_s": "" if sat is None else str(sat),
        "exceptions.read_errors": str(len(exceptions.get("errors", []))),
    }
    properties = ET.SubElement(case, "properties")
    for name, value in values.items():
        ET.SubElement(properties, "property", name=name, value=value)
    for line in exception_lines(result)[:JUNIT_EXCEPTION_ITEMS]:
        ET.SubElement(properties, "property", name="exception", value=line)


def write_html(results: Sequence[ScenarioResult], path: Path) -> None:
    """The HTML report (harness/templates/report.html.j2), for finance readers."""
    from harness.report_html import render_html

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(results), encoding="utf-8")

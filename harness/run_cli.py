"""`harness run`: play scenarios against the configured integration and report the verdict."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.config import ConfigError, load_config
from harness.judging import Judge
from harness.report import (
    print_judged,
    print_violations,
    verdict_table,
    write_html,
    write_json,
    write_junit,
)
from harness.runner import ScenarioResult, StepResult, run_scenario
from harness.scenario import Scenario, ScenarioError, load_scenario

DEFAULT_PATHS = ("scenarios",)


def register(subparsers: Any) -> None:
    run = subparsers.add_parser(
        "run", help="play scenarios through the integration under test and judge the books"
    )
    run.add_argument("paths", nargs="*", help="scenario files or directories (default: scenarios)")
    run.add_argument("--integration", default="harness.toml", help="the harness.toml to use")
    run.add_argument("--seed", type=int, help="override every scenario's seed")
    run.add_argument("-k", dest="keyword", help="only scenarios whose name or file contains this")
    run.add_argument("--junit", help="write JUnit XML here")
    run.add_argument("--json", dest="json_path", help="write the JSON report here")
    run.add_argument("--html", help="write the HTML report here")
    run.add_argument("--quiet", action="store_true", help="no per-step progress")
    run.add_argument(
        "--only", nargs="+", metavar="RULE", help="judge only these rules (INV-06 … ORACLE)"
    )
    run.add_argument(
        "--skip", nargs="+", metavar="RULE", default=[], help="do not judge these rules"
    )
    run.set_defaults(func=cmd_run)


def discover(paths: list[str], keyword: str | None = None) -> list[Path]:
    """Scenario files under the paths, in name order; ``keyword`` filters by file name."""
    found: list[Path] = []
    for raw in paths or DEFAULT_PATHS:
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.y*ml") if p.suffix in (".yaml", ".yml"))
        elif path.exists():
            found.append(path)
        else:
            raise SystemExit(f"no such scenario file or directory: {path}")
    return found


def load_all(files: list[Path], keyword: str | None) -> list[Scenario]:
    scenarios, problems = [], []
    for path in files:
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            problems.append(str(exc))
            continue
        if keyword is None or keyword in scenario.name or keyword in path.name:
            scenarios.append(scenario)
    if problems:
        raise SystemExit("scenario errors:\n" + "\n".join(problems))
    return scenarios


def cmd_run(args: argparse.Namespace) -> int:
    console = Console()
    config_path = Path(args.integration)
    cwd = config_path.parent.resolve()
    try:
        config = load_config(config_path)
        judge = Judge.from_config(config, base=str(cwd), only=args.only, skip=args.skip)
    except ConfigError as exc:
        console.print(f"[red]{exc}[/]")
        return 2
    scenarios = load_all(discover(args.paths), args.keyword)
    if not scenarios:
        console.print("[yellow]no scenario matched[/]")
        return 2
    results = play_all(scenarios, config, cwd, args.seed, console, args.quiet, judge)
    console.print(verdict_table(results))
    print_judged(console, results)
    print_violations(console, results)
    if args.junit:
        write_junit(results, Path(args.junit))
    if args.json_path:
        write_json(results, Path(args.json_path))
    if args.html:
        write_html(results, Path(args.html))
    return 0 if all(r.passed for r in results) else 1


def play_all(
    scenarios: list[Scenario],
    config: Any,
    cwd: Path,
    seed: int | None,
    console: Console,
    quiet: bool = False,
    judge: Judge | None = None,
) -> list[ScenarioResult]:
    results = []
    for number, scenario in enumerate(scenarios, start=1):
        console.print(
            f"[bold]{number}/{len(scenarios)} {scenario.name}[/] [dim]{scenario.source}[/]"
        )

        def progress(step: StepResult) -> None:
            if quiet:
                return
            mark = "[red]✗[/]" if step.violations or step.error else "[green]✓[/]"
            console.print(
                f"  {mark} {step.index:>2} {step.kind:<28} [dim]{step.sim_at}[/] "
                f"{step.error or step.note}"
            )

        result = run_scenario(scenario, config, cwd=cwd, seed=seed, on_step=progress, judge=judge)
        verdict = "[green]pass[/]" if result.passed else f"[red]FAIL[/] {', '.join(result.rules)}"
        console.print(f"  → {verdict} in {result.wall_s:.1f} s")
        results.append(result)
    return results

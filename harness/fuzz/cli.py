"""`harness fuzz`: generated lifecycles against the configured integration, reported like
`harness run`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.results import StepResult


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "fuzz",
        help="play generated lifecycles through the integration; shrink and write out a failure",
    )
    parser.add_argument("--integration", default="harness.toml", help="the harness.toml to use")
    parser.add_argument("--seed", type=int, default=0, help="chooses the lifecycles (and ids)")
    parser.add_argument("--examples", type=int, default=5, help="lifecycles to generate")
    parser.add_argument("--steps", type=int, default=6, help="steps per lifecycle at most")
    parser.add_argument(
        "--max-time", type=float, default=300.0, help="wall seconds for it all, shrinking included"
    )
    parser.add_argument(
        "--fixtures", help="a scenario file whose fixtures and start to use (default: built in)"
    )
    parser.add_argument("--out", default="out/fuzz", help="where a failing lifecycle is written")
    parser.add_argument("--junit", help="write JUnit XML here")
    parser.add_argument("--json", dest="json_path", help="write the JSON report here")
    parser.add_argument("--quiet", action="store_true", help="no per-step progress")
    parser.add_argument("--no-replay", action="store_true", help="do not replay the failure")
    parser.add_argument("--only", nargs="+", metavar="RULE", help="judge only these rules")
    parser.add_argument("--skip", nargs="+", metavar="RULE", default=[], help="do not judge these")
    parser.set_defaults(func=cmd_fuzz)


def cmd_fuzz(args: argparse.Namespace) -> int:
    # Hypothesis, the simulators and the judges are loaded when the command runs, not for --help.
    from rich.console import Console

    from harness.fuzz.run import FIXTURES, fuzz
    from harness.report import (
        print_judged,
        print_violations,
        verdict_table,
        write_json,
        write_junit,
    )
    from harness.run_cli import configured
    from harness.scenario import ScenarioError

    console = Console()
    for name in ("examples", "steps"):
        if getattr(args, name) < 1:
            console.print(f"[red]--{name} must be at least 1[/]")
            return 2
    config, cwd, judge = configured(args)  # a wrong configuration: UsageError, exit 2

    def progress(example: int, step: StepResult) -> None:
        if args.quiet:
            return
        mark = "[red]✗[/]" if step.violations or step.error else "[green]✓[/]"
        console.print(
            f"  {mark} {example:>3}.{step.index:<2} {step.kind:<28} [dim]{step.sim_at}[/] "
            f"{step.error or step.note}",
            highlight=False,
        )

    console.print(
        f"[bold]fuzz[/] seed {args.seed}: up to {args.examples} lifecycles of {args.steps} "
        f"steps, {args.max_time:.0f} s"
    )
    try:
        report = fuzz(
            config,
            cwd=cwd,
            judge=judge,
            seed=args.seed,
            examples=args.examples,
            steps=args.steps,
            max_time_s=args.max_time,
            fixtures=Path(args.fixtures) if args.fixtures else FIXTURES,
            out=Path(args.out),
            on_step=progress,
            replay=not args.no_replay,
        )
    except ScenarioError as exc:
        console.print("[red]fixtures errors:[/]")
        console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        return 2
    results = report.results
    if results:
        console.print(verdict_table(results))
        print_judged(console, results)
        print_violations(console, results)
    played = sum(1 for r in report.examples for s in r.steps if s.kind not in ("fixtures", "final"))
    console.print(
        f"{len(report.examples)} lifecycle(s), {played} step(s), "
        f"{report.shrink_attempts} shrink attempt(s) in {report.wall_s:.0f} s"
    )
    if args.junit:
        write_junit(results, Path(args.junit))
    if args.json_path:
        write_json(results, Path(args.json_path))
    for error in report.errors:
        console.print(f"[red]{error}[/]", highlight=False)
    if report.failure is None:
        if report.errors:
            return 2
        console.print("[green]nothing found[/]")
        return 0
    replayed = report.reproduction
    verdict = (
        "not replayed"
        if replayed is None
        else ("[red]reproduces[/] " + ", ".join(replayed.rules))
        if not replayed.passed
        else "[yellow]did not reproduce when replayed[/]"
    )
    console.print(
        f"[red]found[/]: shrunk to {len(report.failure.steps)} step(s), written to "
        f"{report.scenario_path} ({verdict}); play it with "
        f"`harness run {report.scenario_path} --integration {args.integration}`",
        highlight=False,
    )
    return 1

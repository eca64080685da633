"""`harness run`: play scenarios against the configured integration and report the verdict."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from harness import exits
from harness.exits import UsageError

if TYPE_CHECKING:
    from harness.config import HarnessConfig
    from harness.judging import Judge
    from harness.progress import Events
    from harness.runner import ScenarioResult, StepResult
    from harness.scenario import Scenario

DEFAULT_PATHS = ("scenarios",)


def register(subparsers: Any) -> None:
    run = subparsers.add_parser(
        "run",
        help="play scenarios through the integration under test and judge the books",
        description="Play scenarios through the integration under test and judge the books. "
        "Without paths: ./scenarios if it exists, else the scenarios shipped with the harness.",
        epilog=exits.EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("paths", nargs="*", help="scenario files or directories (default: scenarios)")
    run.add_argument(
        "--config",
        "--integration",
        dest="integration",
        metavar="FILE",
        help="the harness.toml to use (default: the nearest one, from here upwards)",
    )
    run.add_argument("--seed", type=int, help="override every scenario's seed")
    run.add_argument("-k", dest="keyword", help="only scenarios whose name or file contains this")
    run.add_argument("--junit", help="write JUnit XML here")
    run.add_argument("--json", dest="json_path", help="write the JSON report here")
    run.add_argument("--html", help="write the HTML report here")
    run.add_argument("--quiet", action="store_true", help="no per-step lines")
    run.add_argument(
        "-n",
        dest="workers",
        type=int,
        default=1,
        metavar="N",
        help="play N scenarios at once, each in its own process, world, integration and ports",
    )
    run.add_argument(
        "--only", nargs="+", metavar="RULE", help="judge only these rules (INV-06 … ORACLE)"
    )
    run.add_argument(
        "--skip", nargs="+", metavar="RULE", default=[], help="do not judge these rules"
    )
    run.set_defaults(func=cmd_run)


def discover(paths: list[str], keyword: str | None = None) -> list[Path]:
    """Scenario files under the paths, in name order; a missing path is a ScenarioError."""
    found: list[Path] = []
    for raw in paths or default_paths():
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.y*ml") if p.suffix in (".yaml", ".yml"))
        elif path.exists():
            found.append(path)
        else:
            raise UsageError(f"no such scenario file or directory: {path}")
    return found


def default_paths() -> list[str]:
    """./scenarios when there is one; else the scenarios that ship with the harness."""
    if Path(DEFAULT_PATHS[0]).is_dir():
        return list(DEFAULT_PATHS)
    from harness.resources import bundled_scenarios

    return [str(bundled_scenarios())]


def load_all(files: list[Path], keyword: str | None) -> list[Scenario]:
    """Every scenario, checked whole before anything plays: one UsageError lists every problem
    of every file (names given twice across files too)."""
    from harness.scenario import ScenarioError, load_scenario
    from harness.yamlines import YamlError

    scenarios, problems = [], []
    seen: dict[str, Path] = {}
    for path in files:
        try:
            scenario = load_scenario(path)
        except (ScenarioError, YamlError) as exc:
            problems.append(str(exc))
            continue
        if scenario.name in seen and seen[scenario.name].resolve() != path.resolve():
            problems.append(
                f"{path}:1: name {scenario.name!r} is taken by {seen[scenario.name]} already"
            )
        seen.setdefault(scenario.name, path)
        if keyword is None or keyword in scenario.name or keyword in path.name:
            scenarios.append(scenario)
    if problems:
        raise UsageError("scenario errors (nothing was run):\n" + "\n".join(problems))
    return scenarios


def prepare(config_path: Path, config: HarnessConfig) -> None:
    """Check what can only be checked against served simulators, before any scenario plays:
    fixed ports that are taken, and template names in [integration]."""
    from harness.config import check_templates
    from harness.ports import check_free
    from harness.session import open_session

    check_free(
        "127.0.0.1", config.simulators.ports, fix=f"change [simulators] ports in {config_path}"
    )
    alone = config.scope.model_copy(update={"standin": False})
    bare = config.model_copy(update={"integration": None, "scope": alone})
    with open_session(bare, cwd=config_path.parent, pooled=True) as session:
        check_templates(config, session.context, config_path)


def configured(args: argparse.Namespace) -> tuple[HarnessConfig, Path, Judge]:
    """The harness.toml of ``--integration`` (else the nearest one), the directory it is in and
    the judge with ``--only`` / ``--skip``; a wrong configuration is a UsageError (exit 2)."""
    from harness.config import load_config, locate_config
    from harness.judging import Judge

    config_path = locate_config(args.integration)
    config = load_config(config_path)
    cwd = config_path.parent.resolve()
    return config, cwd, Judge.from_config(config, base=str(cwd), only=args.only, skip=args.skip)


def cmd_run(args: argparse.Namespace) -> int:
    from harness.config import locate_config
    from harness.progress import make_console
    from harness.report import print_exceptions, print_judged, print_violations, verdict_table

    console = make_console()
    config, cwd, judge = configured(args)
    config_path = locate_config(args.integration)
    scenarios = load_all(discover(args.paths), args.keyword)
    if not scenarios:
        raise UsageError("no scenario matched" + (f" -k {args.keyword}" if args.keyword else ""))
    prepare(config_path, config)
    if args.workers < 1:
        raise UsageError(f"-n takes a number of workers of at least 1 (got {args.workers})")
    if args.workers > 1 and len(scenarios) > 1:
        results, interrupted = play_parallel(
            scenarios, config, cwd, args.seed, console, judge, args.workers
        )
    else:
        results, interrupted = play_all(
            scenarios, config, cwd, args.seed, console, args.quiet, judge
        )
    console.print(verdict_table(results))
    print_judged(console, results)
    print_exceptions(console, results)
    print_violations(console, results)
    write_reports(results, args)
    if interrupted:
        console.print("[yellow]interrupted[/]: the reports hold the scenarios that ran")
        return exits.INTERRUPTED
    return exits.PASSED if all(r.passed for r in results) else exits.FAILED


def write_reports(results: list[ScenarioResult], args: argparse.Namespace) -> None:
    from harness.report import write_html, write_json, write_junit

    if args.junit:
        write_junit(results, Path(args.junit))
    if args.json_path:
        write_json(results, Path(args.json_path))
    if args.html:
        write_html(results, Path(args.html))


def play_all(
    scenarios: list[Scenario],
    config: HarnessConfig,
    cwd: Path,
    seed: int | None,
    console: Any,
    quiet: bool = False,
    judge: Judge | None = None,
) -> tuple[list[ScenarioResult], bool]:
    """Play each scenario; on Ctrl-C stop (each session stops its integration and servers on
    the way out) and return what ran, the interrupted scenario last, and True."""
    from harness.progress import Events

    results: list[ScenarioResult] = []
    with Events(console, quiet) as events:
        events.task("all", "scenarios", len(scenarios))
        for number, scenario in enumerate(scenarios, start=1):
            events.print(
                f"[bold]{number}/{len(scenarios)} {escape(scenario.name)}[/] "
                f"[dim]{escape(scenario.source)}[/]",
                important=True,
            )
            played: list[StepResult] = []
            try:
                results.append(_play_one(scenario, config, cwd, seed, events, played, judge))
            except KeyboardInterrupt:
                results.append(_interrupted(scenario, seed, played))
                return results, True
            events.advance("all")
    return results, False


def play_parallel(
    scenarios: list[Scenario],
    config: HarnessConfig,
    cwd: Path,
    seed: int | None,
    console: Any,
    judge: Judge | None,
    workers: int,
) -> tuple[list[ScenarioResult], bool]:
    """Play the scenarios ``workers`` at a time, each in a process of its own (its own served
    world, integration and free ports); a line per scenario as it ends, results in the
    scenarios' order. On Ctrl-C, what ended is returned and the rest marked interrupted."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    context = multiprocessing.get_context("spawn")  # no fork of a process with server threads
    done: dict[int, ScenarioResult] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as executor:
        pending = {
            executor.submit(_play_in_worker, scenario, config, cwd, seed, judge): n
            for n, scenario in enumerate(scenarios)
        }
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    n = pending.pop(future)
                    result = done[n] = future.result()
                    verdict = "pass" if result.passed else f"FAIL {', '.join(result.rules)}"
                    console.print(
                        f"{len(done)}/{len(scenarios)} {escape(result.name)} → {verdict} in "
                        f"{result.wall_s:.1f} s"
                    )
        except KeyboardInterrupt:
            executor.shutdown(wait=False, cancel_futures=True)
            return [
                done.get(n) or _interrupted(scenario, seed, [])
                for n, scenario in enumerate(scenarios)
            ], True
    return [done[n] for n in range(len(scenarios))], False


def _play_in_worker(
    scenario: Scenario, config: HarnessConfig, cwd: Path, seed: int | None, judge: Judge | None
) -> ScenarioResult:
    from harness.runner import run_scenario

    return run_scenario(scenario, config, cwd=cwd, seed=seed, judge=judge)


def _interrupted(scenario: Scenario, seed: int | None, played: list[StepResult]) -> ScenarioResult:
    """What ran of a scenario stopped by Ctrl-C: its steps so far, marked as an error."""
    from harness.results import ScenarioResult

    result = ScenarioResult(
        scenario.name,
        scenario.source,
        scenario.seed if seed is None else seed,
        scenario.start_at,
        scenario.description,
    )
    result.steps = list(played)
    result.error = f"interrupted (Ctrl-C) after {len(played)} of {len(scenario.steps)} steps"
    return result


def _play_one(
    scenario: Scenario,
    config: HarnessConfig,
    cwd: Path,
    seed: int | None,
    events: Events,
    played: list[StepResult],
    judge: Judge | None = None,
) -> ScenarioResult:
    from harness.runner import run_scenario

    events.task("steps", scenario.name, len(scenario.steps))

    def progress(step: StepResult) -> None:
        played.append(step)
        mark = "[red]✗[/]" if step.violations or step.error else "[green]✓[/]"
        events.advance(
            "steps",
            f"  {mark} {step.index:>2} {step.kind:<28} [dim]{step.sim_at}[/] "
            f"{escape(step.error or step.note)}",
        )

    result = run_scenario(scenario, config, cwd=cwd, seed=seed, on_step=progress, judge=judge)
    events.done("steps")
    verdict = "[green]pass[/]" if result.passed else f"[red]FAIL[/] {', '.join(result.rules)}"
    events.print(f"  → {verdict} in {result.wall_s:.1f} s", important=True)
    return result

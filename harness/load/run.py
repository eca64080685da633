"""One load run: serve, load (with progress), catch up (bounded, while progress is made), judge."""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.console import Console

from harness.actors import Actors
from harness.books import Books
from harness.config import ConfigError, HarnessConfig, load_config
from harness.judging import Judge
from harness.load.checks import documents, match
from harness.load.fixtures import create_fixtures, write_target
from harness.load.locust import Locust, LocustPlan, locust_stats
from harness.load.profiles import PROFILES, Profile
from harness.load.report import Progress, print_summary
from harness.load.taps import Taps
from harness.load.traffic import fault_hits, fault_kinds, journal_errors
from harness.load.verdict import SHOWN_IDS, Timeline, invoice_sla, judge_documents, verdict
from harness.session import Session, open_session

DEFAULT_OUT = Path("out/load")
DEFAULT_SETTLE_TIMEOUT_S = 600.0
DEFAULT_STALL_S = 60.0
SETTLE_WINDOW_S = 0.5  # no request in flight this long, with everything drained and idle
SETTLE_SLICE_S = 2.0  # how often the wait looks at progress
TICK_S = 1.0


@dataclass
class LoadOptions:
    profile: str
    integration: Path = Path("harness.toml")
    out: Path = DEFAULT_OUT
    users: int | None = None
    spawn_rate: float | None = None
    duration_s: int | None = None
    workers: int = 0
    expect_workers: int | None = None  # local workers plus workers started on other hosts
    master_bind_host: str = "127.0.0.1"
    master_bind_port: int = 0
    seed: int | None = None
    settle_timeout_s: float = DEFAULT_SETTLE_TIMEOUT_S
    stall_s: float = DEFAULT_STALL_S
    # The simulators' own answers are checked against their contracts in tests and scenario
    # runs; under load that check would be most of their work.
    validate_responses: bool = False
    locust_args: list[str] = field(default_factory=list)


def run_load(
    options: LoadOptions, console: Console, config: HarnessConfig | None = None
) -> tuple[int, dict[str, Any]]:
    """Serve, load, catch up, judge; returns the exit code and the summary written to --out.
    ``config`` stands in for the file ``options.integration`` (whose folder stays the cwd)."""
    profile = PROFILES.get(options.profile)
    if profile is None:
        raise ConfigError(f"unknown profile {options.profile!r}; known: {', '.join(PROFILES)}")
    config = config or load_config(options.integration)
    if config.integration is None:
        raise ConfigError(f"{options.integration}: no [integration] to put under load")
    plan = _plan(options, profile)
    seed = options.seed if options.seed is not None else config.simulators.seed
    console.print(
        f"[bold]harness load[/] {profile.name}: {plan.users} users, spawn {plan.spawn_rate:g}/s, "
        f"{plan.duration_s} s, {plan.workers} worker(s), seed {seed}"
    )
    summary: dict[str, Any] = {
        "profile": profile.name,
        "summary": profile.summary,
        "options": {
            "users": plan.users,
            "spawn_rate": plan.spawn_rate,
            "duration_s": plan.duration_s,
            "workers": plan.workers,
            "seed": seed,
            "integration": str(options.integration),
            "faults": profile.faults,
            "settle_timeout_s": options.settle_timeout_s,
            "stall_s": options.stall_s,
            "validate_responses": options.validate_responses,
        },
    }
    with (
        open_session(
            config,
            cwd=options.integration.resolve().parent,
            seed=seed,
            validate_responses=options.validate_responses,
        ) as session,
        Taps(session) as taps,
    ):
        admin = Actors(session.context, timeout_s=60)
        try:
            _judge(session, config, admin, taps, profile, plan, options, summary, console)
        finally:
            admin.close()
    summary["verdict"] = verdict(summary)
    (plan.out / "summary.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    print_summary(summary, console, plan.out)
    return int(summary["verdict"]["exit_code"]), summary


def _plan(options: LoadOptions, profile: Profile) -> LocustPlan:
    plan = LocustPlan(
        locustfile=profile.path,
        target=options.out / "target.json",
        out=options.out,
        users=options.users or profile.users,
        spawn_rate=options.spawn_rate or profile.spawn_rate,
        duration_s=options.duration_s or profile.duration_s,
        workers=options.workers,
        expect_workers=options.expect_workers,
        master_bind_host=options.master_bind_host,
        master_bind_port=options.master_bind_port,
        extra_args=options.locust_args,
    )
    if plan.users < 1 or plan.spawn_rate <= 0 or plan.duration_s < 1 or plan.workers < 0:
        raise ConfigError("--users, --spawn-rate and --duration must be positive")
    if options.settle_timeout_s < 0 or options.stall_s <= 0:
        raise ConfigError("--settle-timeout must not be negative and --stall-timeout positive")
    options.out.mkdir(parents=True, exist_ok=True)
    return plan


def _judge(
    session: Session,
    config: HarnessConfig,
    admin: Actors,
    taps: Taps,
    profile: Profile,
    plan: LocustPlan,
    options: LoadOptions,
    summary: dict[str, Any],
    console: Console,
) -> None:
    world = session.stack.world
    judge = Judge.from_config(config, base=str(options.integration.resolve().parent))
    catalog = create_fixtures(session, config)
    clock = admin.control("GET", "/clock")
    seed = summary["options"]["seed"]
    write_target(
        plan.target,
        session,
        catalog,
        start_at=int(clock["now"]),
        seed=seed,
        calendar=profile.calendar,
    )
    for rule in profile.faults:
        admin.control("POST", "/faults", rule)
    with Progress(console) as progress:
        progress.event(f"load: Locust started ({plan.locustfile.name})")
        with Locust(plan) as locust:
            while locust.running:
                progress.update("load", _load_figures(locust, session, taps))
                time.sleep(TICK_S)
        stop_wall = time.time()
        at_stop = documents(judge.books(world, session.standin_endpoints))
        progress.event(
            f"load: stopped after {locust.wall_s:.0f} s (Locust exit {locust.exit_code}); "
            f"{len(at_stop):,} documents in the target systems so far"
        )
        fault_state = admin.control("GET", "/faults") if profile.faults else {}
        # The outage is over and the throttles lifted: the integration must now catch up.
        if profile.faults:
            admin.control("DELETE", "/faults")
        settle = catch_up(session, taps, progress, stop_wall, options)
        progress.event(
            "settled: caught up" if settle["settled"] else f"not caught up: {settle['why']}"
        )
    until = {name: sim.journal.last_seq() for name, sim in session.stack.sims.items()}
    books = judge.books(world, session.standin_endpoints)
    results, unexpected = match(books)
    timeline = Timeline(stop_wall, frozenset(at_stop), dict(taps.posted_wall), settle["settled"])
    summary["locust"] = {
        "exit_code": locust.exit_code,
        "timed_out": locust.timed_out,
        "wall_s": round(locust.wall_s, 2),
        "command": shlex.join(locust.command),
        **locust_stats(plan.out),
    }
    summary["errors"] = journal_errors(session, until, fault_kinds(fault_state))
    summary["faults_hit"] = fault_hits(fault_state)
    summary["settle"] = settle
    summary["documents"], summary["unexpected"] = judge_documents(results, unexpected, timeline)
    # Each owed invoice's document written at (-1: none found), for the SLA.
    posted = {
        m.owed.source: timeline.written_at(m.found[0]) if m.found else -1.0
        for r in results
        if r.rule.name == "erp_ar_document_per_finalised_invoice"
        for m in r.matches
    }
    summary["sla"] = invoice_sla(dict(taps.finalised_wall), posted, stop_wall)
    summary["invariants"] = (
        invariants(judge, books)
        if settle["settled"]
        else {"checked": False, "reason": "the world had not settled (backlog)"}
    )
    if session.integration is not None:
        output = session.integration.output()
        summary["integration_output"] = output[-40:]
        # What the integration said about each lost document, for the post-mortem.
        named = {i for d in summary["documents"] for i in d["lost_ids"]}
        summary["integration_output_on_lost"] = [
            line for line in output if any(i in line for i in named)
        ][:200]


def _load_figures(locust: Locust, session: Session, taps: Taps) -> dict[str, str]:
    users_rps = locust.progress()
    _, posted, _ = taps.counts()
    return {
        "t": f"{locust.wall_s:.0f} s",
        "users": str(users_rps[0]) if users_rps else "-",
        "req/s": f"{users_rps[1]:.0f}" if users_rps else "-",
        "deliveries pending": f"{session.stack.world.dispatcher.pending():,}",
        "invoices awaiting ERP": f"{taps.awaiting_erp():,}",
        "ERP documents posted": f"{posted:,}",
    }


def catch_up(
    session: Session, taps: Taps, progress: Progress, stop_wall: float, options: LoadOptions
) -> dict[str, Any]:
    """Wait for the world to settle while the integration is making progress (writes accepted
    or webhook deliveries leaving the queue), at most ``settle_timeout_s`` in all and never
    more than ``stall_s`` without progress."""
    dispatcher = session.stack.world.dispatcher
    started = time.monotonic()
    last_progress = started
    mark = (taps.counts()[2], dispatcher.pending())
    why = ""
    while True:
        remaining = options.settle_timeout_s - (time.monotonic() - started)
        result = session.settle(
            window_s=SETTLE_WINDOW_S, timeout_s=max(0.0, min(SETTLE_SLICE_S, remaining))
        )
        now = time.monotonic()
        if result.settled:
            break
        if session.integration is not None and not session.integration.running:
            why = "the integration died"
            break
        writes, pending = taps.counts()[2], dispatcher.pending()
        if writes > mark[0] or pending < mark[1]:
            last_progress = now
        mark = (writes, pending)
        progress.update(
            "catching up",
            {
                "t": f"{now - started:.0f} s",
                "deliveries pending": f"{pending:,}",
                "invoices awaiting ERP": f"{taps.awaiting_erp():,}",
                "integration writes": f"{writes:,}",
                "idle": "yes" if result.idle else "no",
            },
        )
        if now - started >= options.settle_timeout_s:
            why = f"the {options.settle_timeout_s:g} s bound passed"
            break
        if now - last_progress >= options.stall_s:
            why = f"no progress for {options.stall_s:g} s"
            break
    posted = list(taps.posted_wall.values())
    settled = bool(result.settled)
    return {
        "settled": settled,
        "why": why,
        "waited_s": round(time.monotonic() - started, 2),
        "caught_up_after_s": round(time.time() - stop_wall, 2) if settled else None,
        "last_document_after_s": round(max([0.0, *(p - stop_wall for p in posted)]), 2),
        "pending_webhooks": result.pending_webhooks,
        "in_flight": result.in_flight,
        "integration_idle": result.idle,
        "integration_alive": session.integration is None or session.integration.running,
        "integration_says": None if settled else _idle_says(session),
    }


def _idle_says(session: Session) -> str | None:
    """The integration's own idle probe, verbatim (e.g. "busy: 340 pending"), if it has one."""
    probe = session.integration.config.idle if session.integration is not None else None
    if probe is None or probe.http is None:
        return None
    try:
        response = httpx.get(probe.http, timeout=2.0, trust_env=False)
    except httpx.HTTPError as exc:
        return f"no answer ({type(exc).__name__})"
    return f"{response.status_code} {response.text[:120]}"


def invariants(judge: Judge, books: Books) -> dict[str, Any]:
    """Every invariant the declaration judges, over the final books."""
    try:
        found = judge.check(books)
    except Exception as exc:  # their failure must fail the verdict, not the whole report
        return {"checked": True, "error": f"{type(exc).__name__}: {exc}"[:500], "violations": 0}
    return {
        "checked": True,
        "violations": len(found),
        "first": [v.as_json() for v in found[:SHOWN_IDS]],
    }

"""`harness load`: a bounded Locust run against the simulators and the integration, judged."""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib
import json
import math
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.actors import Actors
from harness.config import ConfigError, HarnessConfig, load_config

if TYPE_CHECKING:
    from harness.session import Session
    from loadtests.profiles import Profile
    from simulators.common.journal import JournalEntry

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = Path("out/load")
DEFAULT_SETTLE_TIMEOUT_S = 120.0
# Past the run time: Locust's own stop timeout, start-up and report writing.
LOCUST_GRACE_S = 60.0
LOCUST_STOP_TIMEOUT_S = 5
PAGE = 100
SUITEQL_PAGE = 1000
SHOWN_IDS = 20
ERP_INVOICE_WRITE = re.compile(r"/record/v1/invoice/eid:([^/?]+)$")
# NetSuite transaction types as SuiteQL names them.
ERP_INVOICE, ERP_PAYMENT, ERP_JOURNAL = "CustInvc", "CustPymt", "Journal"


# ---------------------------------------------------------------------------------------------
# options and outcome


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
    locust_args: list[str] = field(default_factory=list)


@dataclass
class DocumentCheck:
    """One document rule: every source document has exactly one target document."""

    rule: str
    expected: int
    found: int
    lost: list[str]
    duplicated: dict[str, int]
    unexpected: list[str]
    note: str = ""

    @property
    def ok(self) -> bool:
        return not self.lost and not self.duplicated and not self.unexpected

    def as_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "expected": self.expected,
            "found": self.found,
            "lost": len(self.lost),
            "duplicated": sum(n - 1 for n in self.duplicated.values()),
            "unexpected": len(self.unexpected),
            "lost_ids": self.lost[:SHOWN_IDS],
            "duplicated_ids": dict(list(self.duplicated.items())[:SHOWN_IDS]),
            "unexpected_ids": self.unexpected[:SHOWN_IDS],
            "note": self.note,
        }


def check_documents(
    rule: str, expected: Iterator[str] | list[str] | set[str], found: Counter[str], note: str = ""
) -> DocumentCheck:
    """Exactly one found document per expected id: the rest are lost, duplicated or unexpected."""
    wanted = set(expected)
    return DocumentCheck(
        rule=rule,
        expected=len(wanted),
        found=sum(found.values()),
        lost=sorted(wanted - set(found)),
        duplicated={k: n for k, n in sorted(found.items()) if n > 1},
        unexpected=sorted(set(found) - wanted),
        note=note,
    )


# ---------------------------------------------------------------------------------------------
# taps: wall-clock moments the verdict needs and the journals do not keep


class Taps:
    """Wall time each invoice was finalised (its invoice.finalized was published) and first
    posted to the ERP (a 2xx upsert by external id), observed in-process while the run lasts."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.finalised_wall: dict[str, float] = {}
        self.posted_wall: dict[str, float] = {}
        self.posted_sim: dict[str, int] = {}
        self._undo: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def __enter__(self) -> Taps:
        world = self.session.stack.world
        dispatcher = world.dispatcher
        publish = dispatcher.publish

        def tapped_publish(system: str, event_id: str, event_type: str, payload: bytes) -> Any:
            if system == "billing" and event_type == "invoice.finalized":
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    invoice_id = orjson.loads(payload)["data"]["object"]["id"]
                    with self._lock:
                        self.finalised_wall.setdefault(invoice_id, time.time())
            return publish(system, event_id, event_type, payload)

        dispatcher.publish = tapped_publish  # type: ignore[method-assign]
        self._undo.append(lambda: setattr(dispatcher, "publish", publish))
        erp = self.session.stack.sims.get("erp")
        if erp is not None:
            journal = erp.journal
            close = journal.close

            def tapped_close(entry: JournalEntry) -> None:
                close(entry)
                if entry.method in ("PUT", "PATCH", "POST") and 200 <= entry.status < 300:
                    match = ERP_INVOICE_WRITE.search(entry.path)
                    if match is not None:
                        with self._lock:
                            self.posted_wall.setdefault(match.group(1), time.time())
                            self.posted_sim.setdefault(match.group(1), entry.sim_at)

            journal.close = tapped_close  # type: ignore[method-assign]
            self._undo.append(lambda: setattr(journal, "close", close))
        return self

    def __exit__(self, *_: object) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


# ---------------------------------------------------------------------------------------------
# talking to the world as its vendors' admins


class Admin(Actors):
    """The harness reading every system as the vendors' own admins (never faulted)."""

    def __init__(self, session: Session) -> None:
        super().__init__(session.context, timeout_s=60)
        ctx = session.context
        self.urls: dict[str, str] = {
            name: ctx[name]["url"] for name in session.stack.sims if name in ctx
        }
        self.control_token: str = ctx["control_token"]

    def get(self, system: str, path: str, **params: Any) -> Any:
        return self.call(system, "GET", path, params=params)

    def cursor_list(self, system: str, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every row of a Stripe-style list (billing, the subledger), page by page."""
        items: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            cursor = {"starting_after": after} if after else {}
            page = self.get(system, path, limit=PAGE, **params, **cursor)
            items.extend(page["data"])
            if not page.get("has_more") or not page["data"]:
                return items
            after = page["data"][-1]["id"]

    def suiteql(self, query: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self.call(
                "erp",
                "POST",
                "/services/rest/query/v1/suiteql",
                params={"limit": SUITEQL_PAGE, "offset": offset},
                json={"q": query},
                headers={"Prefer": "transient"},
            )
            rows.extend(page["items"])
            if not page.get("hasMore"):
                return rows
            offset += SUITEQL_PAGE

    def soql(self, query: str) -> list[dict[str, Any]]:
        from loadtests.builders import API

        records: list[dict[str, Any]] = []
        page = self.get("crm", f"{API}/query/", q=query)
        while True:
            records.extend(page["records"])
            if page.get("done", True):
                return records
            page = self.get("crm", page["nextRecordsUrl"])


# ---------------------------------------------------------------------------------------------
# the run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _loadtests_importable() -> None:
    # The Locust suites live beside the package in the repository, not inside it.
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def profiles() -> dict[str, Profile]:
    _loadtests_importable()
    from loadtests.profiles import PROFILES

    return PROFILES


@dataclass
class LocustRun:
    command: list[str]
    exit_code: int | None
    wall_s: float
    timed_out: bool
    workers: int
    log: Path


def run_locust(
    profile: Profile,
    options: LoadOptions,
    target_path: Path,
    users: int,
    spawn_rate: float,
    duration_s: int,
) -> LocustRun:
    """Locust headless as child processes: one, or a master and ``workers`` local workers."""
    out = options.out
    env = {
        **os.environ,
        "FINSIM_LOAD_TARGET": str(target_path),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    base = [sys.executable, "-m", "locust", "-f", str(profile.path), "--loglevel", "WARNING"]
    command = [
        *base,
        "--headless",
        "--users",
        str(users),
        "--spawn-rate",
        str(spawn_rate),
        "--run-time",
        f"{duration_s}s",
        "--stop-timeout",
        str(LOCUST_STOP_TIMEOUT_S),
        "--csv",
        str(out / "locust"),
        "--html",
        str(out / "locust.html"),
        "--exit-code-on-error",
        "0",  # request failures are judged here, with everything else
        "--only-summary",
    ]
    expect = options.expect_workers if options.expect_workers is not None else options.workers
    port = options.master_bind_port or _free_port()
    if expect > 0:
        command += [
            "--master",
            "--expect-workers",
            str(expect),
            "--expect-workers-max-wait",
            "60",
            "--master-bind-host",
            options.master_bind_host,
            "--master-bind-port",
            str(port),
        ]
    command += options.locust_args
    log_path = out / "locust.log"
    started = time.monotonic()
    with open(log_path, "w") as log:
        master = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        workers = [
            subprocess.Popen(
                [*base, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            for _ in range(options.workers)
        ]
        timed_out = False
        try:
            master.wait(timeout=duration_s + LOCUST_GRACE_S + (60 if expect else 0))
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            for proc in [master, *workers]:
                _stop(proc)
    return LocustRun(
        command, master.returncode, time.monotonic() - started, timed_out, options.workers, log_path
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Workers leave when the master quits; whatever is left gets SIGTERM, then SIGKILL."""
    if proc.poll() is not None:
        return
    try:
        proc.wait(timeout=10)
        return
    except subprocess.TimeoutExpired:
        pass
    for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


# ---------------------------------------------------------------------------------------------
# measurements


def percentiles(values: list[float]) -> dict[str, float | int]:
    """Nearest-rank p50/p90/p95/p99 and max; an empty list reports only its count."""
    ordered = sorted(values)
    summary: dict[str, float | int] = {"count": len(ordered)}
    if not ordered:
        return summary
    for p in (50, 90, 95, 99):
        summary[f"p{p}"] = round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 4)
    summary["max"] = round(ordered[-1], 4)
    return summary


def locust_stats(out: Path) -> dict[str, Any]:
    """Throughput and latency percentiles per operation, from Locust's own CSV."""
    stats_path = out / "locust_stats.csv"
    if not stats_path.exists():
        return {"available": False}
    operations = []
    aggregated: dict[str, Any] = {}
    with stats_path.open(newline="") as f:
        for row in csv.DictReader(f):
            record = {
                "method": row["Type"],
                "name": row["Name"],
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "rps": float(row["Requests/s"]),
                "p50_ms": _ms(row.get("50%")),
                "p90_ms": _ms(row.get("90%")),
                "p95_ms": _ms(row.get("95%")),
                "p99_ms": _ms(row.get("99%")),
                "max_ms": _ms(row.get("Max Response Time")),
            }
            if row["Name"] == "Aggregated":
                aggregated = record
            else:
                operations.append(record)
    failures: list[dict[str, Any]] = []
    failures_path = out / "locust_failures.csv"
    if failures_path.exists():
        with failures_path.open(newline="") as f:
            failures = [
                {"name": r["Name"], "error": r["Error"][:300], "occurrences": int(r["Occurrences"])}
                for r in csv.DictReader(f)
            ]
    return {
        "available": True,
        "requests": aggregated.get("requests", 0),
        "failures": aggregated.get("failures", 0),
        "throughput_rps": aggregated.get("rps", 0.0),
        "operations": operations,
        "failure_kinds": failures,
    }


def _ms(value: str | None) -> float | None:
    if value in (None, "", "N/A"):
        return None
    return float(value)


def journal_errors(
    session: Session, until_seq: dict[str, int], fault_kinds: dict[str, str]
) -> dict[str, Any]:
    """Responses by kind per actor, from every simulator's request journal: the integration's
    traffic (what faults hit) apart from the load users' (the vendors' staff)."""
    by_actor: dict[str, Counter[str]] = {"integration": Counter(), "harness": Counter()}
    violations: dict[str, Counter[str]] = {"integration": Counter(), "harness": Counter()}
    truncated = []
    for name, sim in session.stack.sims.items():
        journal = sim.journal
        kept = journal.snapshot()  # one consistent copy: the integration may still be writing
        entries = [e for e in kept if e.seq <= until_seq[name] and not e.control]
        if journal.total > len(kept):
            truncated.append(name)
        for entry in entries:
            kinds = by_actor.setdefault(entry.actor, Counter())
            kinds["requests"] += 1
            kinds[_error_kind(entry, fault_kinds)] += 1
            for message in entry.violations:
                violations.setdefault(entry.actor, Counter())[f"{name}: {message}"[:200]] += 1
    return {
        actor: {
            **{k: v for k, v in sorted(kinds.items()) if k != "ok"},
            "ok": kinds.get("ok", 0),
            "contract_violations": sum(violations.get(actor, Counter()).values()),
            "violation_kinds": dict(violations.get(actor, Counter()).most_common(10)),
        }
        for actor, kinds in by_actor.items()
    } | {"journal_truncated": truncated}


def _error_kind(entry: JournalEntry, fault_kinds: dict[str, str]) -> str:
    for rule_id in entry.faults:
        kind = fault_kinds.get(rule_id)
        if kind in ("throttle", "outage"):
            return "throttled" if kind == "throttle" else "outage"
        if kind in ("error", "hang", "reset", "malformed", "truncated", "ambiguous_commit"):
            return f"fault_{kind}"
    status = entry.status
    if status == 429:
        return "throttled"
    if status == 503:
        return "outage"
    if status >= 500 or status == 0:
        return "server_error"
    if status >= 400:
        return "client_error"
    return "ok"


def document_checks(admin: Admin) -> tuple[list[DocumentCheck], dict[str, Any]]:
    """Lost and duplicated documents, read through the vendors' APIs after the world settled."""
    checks: list[DocumentCheck] = []
    facts: dict[str, Any] = {}
    erp_rows = (
        admin.suiteql("SELECT id, externalid, type FROM transaction")
        if ("erp" in admin.urls)
        else []
    )
    erp = {kind: Counter[str]() for kind in (ERP_INVOICE, ERP_PAYMENT, ERP_JOURNAL)}
    for row in erp_rows:
        if row.get("type") in erp:
            erp[row["type"]][str(row.get("externalid") or f"(no external id) {row['id']}")] += 1
    if "billing" in admin.urls:
        invoices = admin.cursor_list("billing", "/v1/invoices")
        finalised = [i for i in invoices if (i.get("status_transitions") or {}).get("finalized_at")]
        facts["finalised_at"] = {
            i["id"]: i["status_transitions"]["finalized_at"] for i in finalised
        }
        checks.append(
            check_documents(
                "erp_invoice_per_finalised_invoice", [i["id"] for i in finalised], erp[ERP_INVOICE]
            )
        )
        paid = [i["id"] for i in finalised if i.get("status") == "paid" and i["amount_paid"] > 0]
        checks.append(
            check_documents(
                "erp_payment_per_paid_invoice", [f"pay_{i}" for i in paid], erp[ERP_PAYMENT]
            )
        )
        if "crm" in admin.urls:
            won = admin.soql("SELECT Id FROM Opportunity WHERE IsWon = true")
            subscriptions = admin.cursor_list("billing", "/v1/subscriptions", status="all")
            by_opportunity = Counter(
                str(s["metadata"]["crm_opportunity_id"])
                for s in subscriptions
                if (s.get("metadata") or {}).get("crm_opportunity_id")
            )
            checks.append(
                check_documents(
                    "subscription_per_won_opportunity", [o["Id"] for o in won], by_opportunity
                )
            )
    if "revrec" in admin.urls and "erp" in admin.urls:
        closes = [
            e["data"]["object"]
            for e in admin.cursor_list("revrec", "/v1/events", type="period.closed")
        ]
        # One journal per close and currency with anything to post. The id the integration keys
        # it on is its own choice, so this rule counts rather than matching ids.
        keys = sorted(
            {
                f"{p['entity']}/{p['period']}/{line['currency']}"
                for p in closes
                for line in (p.get("journal_summary") or {}).get("lines") or []
            }
        )
        journals = sum(erp[ERP_JOURNAL].values())
        check = check_documents(
            "erp_journal_per_period_close",
            keys,
            Counter({k: 1 for k in keys[:journals]}),
            note="counted: one ERP journal entry per closed period and currency",
        )
        if journals > len(keys):
            check.duplicated = {"(journal entries beyond the closes)": journals - len(keys) + 1}
        check.found = journals
        checks.append(check)
    return checks, facts


def sla(taps: Taps, finalised_at: dict[str, int]) -> dict[str, Any]:
    """Invoice finalised → ERP invoice posted: wall seconds (as seen in-process) and sim seconds."""
    wall = [
        taps.posted_wall[i] - taps.finalised_wall[i]
        for i in finalised_at
        if i in taps.posted_wall and i in taps.finalised_wall
    ]
    sim = [float(taps.posted_sim[i] - at) for i, at in finalised_at.items() if i in taps.posted_sim]
    return {
        "invoice_finalised_to_erp_posted_wall_s": percentiles(wall),
        "invoice_finalised_to_erp_posted_sim_s": percentiles(sim),
        "measured": len(wall),
        "finalised": len(finalised_at),
        "note": "ERP postings are seen as upserts by external id (PUT …/invoice/eid:<id>)",
    }


def invariants(session: Session, config: HarnessConfig) -> dict[str, Any]:
    """harness.invariants.check_all over harness.books.take_books, when both exist."""
    try:
        books_module = importlib.import_module("harness.books")
        invariants_module = importlib.import_module("harness.invariants")
    except ImportError as exc:
        return {"checked": False, "reason": f"not available: {exc}"}
    take_books = getattr(books_module, "take_books", None)
    check_all = getattr(invariants_module, "check_all", None)
    if not callable(take_books) or not callable(check_all):
        return {"checked": False, "reason": "harness.books.take_books or check_all missing"}
    try:
        books = take_books(session.stack.world, dict(config.accounts))
        found = list(check_all(books))
    except Exception as exc:  # their failure must fail the verdict, not the whole report
        return {"checked": True, "error": f"{type(exc).__name__}: {exc}"[:500], "violations": 0}
    return {
        "checked": True,
        "violations": len(found),
        "first": [v.as_json() if hasattr(v, "as_json") else str(v) for v in found[:SHOWN_IDS]],
    }


# ---------------------------------------------------------------------------------------------
# the command


def run_load(
    options: LoadOptions, console: Console, config: HarnessConfig | None = None
) -> tuple[int, dict[str, Any]]:
    """Serve, load, settle, judge; returns the exit code and the summary written to --out.
    ``config`` stands in for the file ``options.integration`` (whose folder stays the cwd)."""
    _loadtests_importable()
    from harness.session import open_session
    from loadtests.fixtures import create_fixtures
    from loadtests.target import Target

    catalogue = profiles()
    profile = catalogue.get(options.profile)
    if profile is None:
        raise ConfigError(f"unknown profile {options.profile!r}; known: {', '.join(catalogue)}")
    config = config or load_config(options.integration)
    if config.integration is None:
        raise ConfigError(f"{options.integration}: no [integration] to put under load")
    users = options.users or profile.users
    spawn_rate = options.spawn_rate or profile.spawn_rate
    duration_s = options.duration_s or profile.duration_s
    if users < 1 or spawn_rate <= 0 or duration_s < 1 or options.workers < 0:
        raise ConfigError("--users, --spawn-rate and --duration must be positive")
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    seed = options.seed if options.seed is not None else config.simulators.seed
    console.print(
        f"[bold]harness load[/] {profile.name}: {users} users, spawn {spawn_rate:g}/s, "
        f"{duration_s} s, {options.workers} worker(s), seed {seed}"
    )
    summary: dict[str, Any] = {
        "profile": profile.name,
        "summary": profile.summary,
        "options": {
            "users": users,
            "spawn_rate": spawn_rate,
            "duration_s": duration_s,
            "workers": options.workers,
            "seed": seed,
            "integration": str(options.integration),
            "faults": profile.faults,
        },
    }
    with (
        open_session(config, cwd=options.integration.resolve().parent, seed=seed) as session,
        Taps(session) as taps,
    ):
        admin = Admin(session)
        try:
            catalog = create_fixtures(session, config)
            clock = admin.control("GET", "/clock")
            target = Target(
                urls=admin.urls,
                credentials={
                    name: {k: str(v) for k, v in session.context[name].items()}
                    for name in admin.urls
                },
                control_token=admin.control_token,
                ca_bundle=session.context["ca_bundle"],
                catalog=catalog,
                entities=["US"],
                start_at=int(clock["now"]),
                seed=seed,
                calendar=profile.calendar,
            )
            target_path = out / "target.json"
            target.write(target_path)
            for rule in profile.faults:
                admin.control("POST", "/faults", rule)
            run = run_locust(profile, options, target_path, users, spawn_rate, duration_s)
            fault_state = admin.control("GET", "/faults") if profile.faults else {}
            # The outage is over and the throttles lifted: the integration must now catch up.
            if profile.faults:
                admin.control("DELETE", "/faults")
            settled = session.settle(window_s=0.5, timeout_s=options.settle_timeout_s)
            until = {name: _last_seq(sim.journal) for name, sim in session.stack.sims.items()}
            alive = session.integration is not None and session.integration.running
            checks, facts = document_checks(admin)
            summary["locust"] = {
                "exit_code": run.exit_code,
                "timed_out": run.timed_out,
                "wall_s": round(run.wall_s, 2),
                "command": shlex.join(run.command),
                **locust_stats(out),
            }
            summary["errors"] = journal_errors(session, until, _fault_kinds(fault_state))
            summary["faults_hit"] = _fault_hits(fault_state)
            summary["settle"] = {
                "settled": settled.settled,
                "waited_s": round(settled.waited_s, 2),
                "pending_webhooks": settled.pending_webhooks,
                "in_flight": settled.in_flight,
                "integration_alive": alive,
            }
            summary["sla"] = sla(taps, facts.get("finalised_at", {}))
            summary["documents"] = [c.as_json() for c in checks]
            summary["invariants"] = invariants(session, config)
            if session.integration is not None:
                output = session.integration.output()
                summary["integration_output"] = output[-40:]
                # What the integration said about each lost document, for the post-mortem.
                named = {i for c in checks for i in c.lost[:SHOWN_IDS]}
                summary["integration_output_on_lost"] = [
                    line for line in output if any(i in line for i in named)
                ][:200]
        finally:
            admin.close()
    summary["verdict"] = verdict(summary, checks)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print_summary(summary, console, out)
    return (0 if summary["verdict"]["passed"] else 1), summary


def _last_seq(journal: Any) -> int:
    return int(journal.last_seq())


def _fault_kinds(state: Any) -> dict[str, str]:
    rules = state.get("rules", []) if isinstance(state, dict) else []
    return {str(r["id"]): str(r["kind"]) for r in rules if "id" in r and "kind" in r}


def _fault_hits(state: Any) -> dict[str, int]:
    hits = state.get("hits", []) if isinstance(state, dict) else []
    return dict(Counter(str(hit.get("kind")) for hit in hits))


def verdict(summary: dict[str, Any], checks: list[DocumentCheck]) -> dict[str, Any]:
    """Pass = nothing lost, duplicated or unexpected, no invariant broken, the world settled."""
    reasons = []
    lost = sum(len(c.lost) for c in checks)
    duplicated = sum(n - 1 for c in checks for n in c.duplicated.values())
    unexpected = sum(len(c.unexpected) for c in checks)
    for check in checks:
        if not check.ok:
            reasons.append(
                f"{check.rule}: {len(check.lost)} lost, "
                f"{sum(n - 1 for n in check.duplicated.values())} duplicated, "
                f"{len(check.unexpected)} unexpected of {check.expected}"
            )
    inv = summary.get("invariants", {})
    if inv.get("violations"):
        reasons.append(f"{inv['violations']} invariant violation(s)")
    if inv.get("error"):
        reasons.append(f"the invariant check failed: {inv['error']}")
    settle = summary.get("settle", {})
    if not settle.get("settled"):
        reasons.append("the system did not settle: documents may still be on their way")
    if not settle.get("integration_alive"):
        reasons.append("the integration is not running any more")
    locust = summary.get("locust", {})
    if locust.get("timed_out") or not locust.get("available") or not locust.get("requests"):
        reasons.append("the Locust run did not complete (see locust.log)")
    return {
        "passed": not reasons,
        "lost": lost,
        "duplicated": duplicated,
        "unexpected": unexpected,
        "reasons": reasons,
    }


def print_summary(summary: dict[str, Any], console: Console, out: Path) -> None:
    locust = summary.get("locust", {})
    table = Table(title="operations (Locust)", show_lines=False)
    for column in ("operation", "requests", "fail", "rps", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(column, justify="left" if column == "operation" else "right")
    for op in locust.get("operations", []):
        table.add_row(
            escape(op["name"]),
            str(op["requests"]),
            str(op["failures"]),
            f"{op['rps']:.1f}",
            *(f"{op[k]:.0f}" if op[k] is not None else "-" for k in ("p50_ms", "p95_ms", "p99_ms")),
        )
    console.print(table)
    console.print(
        f"throughput {locust.get('throughput_rps', 0):.1f} req/s over "
        f"{locust.get('requests', 0)} requests ({locust.get('failures', 0)} failed)"
    )
    integration = summary.get("errors", {}).get("integration", {})
    shown = {k: v for k, v in integration.items() if k != "violation_kinds"}
    console.print(f"integration traffic: {escape(json.dumps(shown))}")
    wall = summary.get("sla", {}).get("invoice_finalised_to_erp_posted_wall_s", {})
    console.print(f"SLA invoice finalised → ERP posted (wall s): {escape(json.dumps(wall))}")
    for check in summary.get("documents", []):
        state = (
            "ok" if not (check["lost"] or check["duplicated"] or check["unexpected"]) else "FAIL"
        )
        console.print(
            f"  {state:4} {check['rule']}: {check['expected']} expected, {check['found']} found, "
            f"{check['lost']} lost, {check['duplicated']} duplicated, "
            f"{check['unexpected']} unexpected"
        )
    inv = summary.get("invariants", {})
    console.print(
        f"invariants: {inv.get('violations', 0)} violation(s)"
        if inv.get("checked")
        else f"invariants: not checked ({escape(str(inv.get('reason', '')))})"
    )
    result = summary["verdict"]
    if result["passed"]:
        console.print("[bold green]PASS[/]: nothing lost, nothing duplicated")
    else:
        console.print("[bold red]FAIL[/]")
        for reason in result["reasons"]:
            console.print(f"  - {escape(reason)}")
    console.print(f"summary, Locust CSV and HTML in {escape(str(out))}/")


# ---------------------------------------------------------------------------------------------
# command line


def parse_duration(text: str) -> int:
    """Seconds from ``90``, ``90s``, ``2m`` or ``1h``."""
    match = re.fullmatch(r"(\d+)([smh]?)", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"a duration is 90, 90s, 2m or 1h (got {text!r})")
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "load",
        help="close-period load through the integration under test, judged on lost documents",
        description=(
            "Serve the simulators, start the integration from harness.toml, run a Locust "
            "profile headless and bounded, let everything settle, then judge: throughput, "
            "latency per operation, errors by kind, end-to-end SLA, and lost or duplicated "
            "documents. Exit 0 on a pass, 1 on any loss, duplicate or invariant violation, "
            "2 on usage errors."
        ),
    )
    parser.add_argument("--profile", required=True, metavar="NAME", help="a load profile")
    parser.add_argument("--users", type=int, metavar="N", help="peak users (profile default)")
    parser.add_argument("--spawn-rate", type=float, metavar="R", help="users started per second")
    parser.add_argument(
        "--duration", type=parse_duration, metavar="D", help="run time: 90, 90s, 2m"
    )
    parser.add_argument(
        "--workers", type=int, default=0, metavar="W", help="local Locust workers (0: one process)"
    )
    parser.add_argument(
        "--expect-workers",
        type=int,
        metavar="N",
        help="workers the master waits for, local ones included (more start on other hosts)",
    )
    parser.add_argument(
        "--master-bind-host", default="127.0.0.1", help="where the Locust master listens"
    )
    parser.add_argument("--master-bind-port", type=int, default=0, help="0: a free port")
    parser.add_argument("--integration", type=Path, default=Path("harness.toml"), metavar="FILE")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR")
    parser.add_argument("--seed", type=int, metavar="S", help="default: harness.toml's seed")
    parser.add_argument(
        "--settle-timeout",
        type=float,
        default=DEFAULT_SETTLE_TIMEOUT_S,
        metavar="S",
        help="how long the integration may take to catch up after the run",
    )
    parser.add_argument(
        "--locust-args", default="", metavar="ARGS", help="more Locust options for the master"
    )
    parser.set_defaults(func=cmd_load)


def cmd_load(args: argparse.Namespace) -> int:
    console = Console(highlight=False, soft_wrap=True)
    options = LoadOptions(
        profile=args.profile,
        integration=args.integration,
        out=args.out,
        users=args.users,
        spawn_rate=args.spawn_rate,
        duration_s=args.duration,
        workers=args.workers,
        expect_workers=args.expect_workers,
        master_bind_host=args.master_bind_host,
        master_bind_port=args.master_bind_port,
        seed=args.seed,
        settle_timeout_s=args.settle_timeout,
        locust_args=shlex.split(args.locust_args),
    )
    try:
        code, _ = run_load(options, console)
    except ConfigError as exc:
        Console(stderr=True, highlight=False).print(f"[red]harness load: {escape(str(exc))}[/]")
        return 2
    return code


def main(argv: list[str] | None = None) -> int:
    """`python -m harness.load …`, until the command is wired into `harness`."""
    parser = argparse.ArgumentParser(prog="harness")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())

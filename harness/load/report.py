"""What a load run shows: live progress while it runs, then the summary as tables."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

PLAIN_EVERY_S = 5.0  # a progress line this often when the output is not a terminal


class Progress:
    """One status line refreshed in place on a terminal; elsewhere (CI logs, pipes) a plain
    line per event and a progress line every few seconds."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live: Live | None = None
        self._last_line = 0.0

    def __enter__(self) -> Progress:
        if self.console.is_terminal:
            self.live = Live(Text(""), console=self.console, refresh_per_second=4)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)
            self.live = None

    def event(self, message: str) -> None:
        """A phase change: always its own line."""
        self.console.print(message)
        self._flush()

    def update(self, phase: str, figures: dict[str, str]) -> None:
        line = f"{phase}: " + " · ".join(f"{k} {v}" for k, v in figures.items())
        if self.live is not None:
            self.live.update(Text(line))
            return
        now = time.monotonic()
        if now - self._last_line >= PLAIN_EVERY_S:
            self._last_line = now
            self.console.print(line, markup=False, highlight=False)
            self._flush()

    def _flush(self) -> None:
        # A log file or pipe reader (CI) sees each line when it happens, not in blocks.
        with contextlib.suppress(AttributeError, OSError, ValueError):
            self.console.file.flush()


def print_summary(summary: dict[str, Any], console: Console, out: Path) -> None:
    console.print(_operations(summary.get("locust", {})))
    console.print(_documents(summary))
    console.print(_traffic(summary.get("errors", {})))
    locust = summary.get("locust", {})
    console.print(
        f"throughput {locust.get('throughput_rps', 0):.1f} req/s over "
        f"{locust.get('requests', 0):,} requests ({locust.get('failures', 0):,} failed)"
    )
    sla = summary.get("sla", {})
    figures = sla.get("invoice_finalised_to_erp_posted_s", {})
    if figures.get("count"):
        console.print(
            f"invoice finalised → ERP posted, {sla['finalised_during_load']:,} finalised during "
            f"the load: p50 {figures['p50']:.2f} s, p99 {figures['p99']:.2f} s, max "
            f"{figures['max']:.2f} s ({sla['not_posted']} not posted)"
        )
    settle = summary.get("settle", {})
    if settle.get("settled"):
        console.print(
            f"caught up {settle['caught_up_after_s']:.1f} s after the load stopped "
            f"(last document {settle['last_document_after_s']:.1f} s after)"
        )
    else:
        console.print(
            f"[yellow]not caught up[/] after {settle.get('waited_s', 0):.1f} s: "
            f"{escape(settle.get('why', ''))}; webhook deliveries pending "
            f"{settle.get('pending_webhooks', 0)}, integration says "
            f"{escape(str(settle.get('integration_says')))}"
        )
    inv = summary.get("invariants", {})
    console.print(
        f"invariants: {inv.get('violations', 0)} violation(s)"
        if inv.get("checked")
        else f"invariants: not checked ({escape(str(inv.get('reason', '')))})"
    )
    result = summary["verdict"]
    if result["passed"]:
        console.print(
            f"[bold green]PASS[/]: {result['posted']:,} posted during the load, "
            f"{result['late']:,} late, nothing lost or duplicated"
        )
    else:
        console.print(
            "[bold red]FAIL[/]" if result["exit_code"] != 3 else "[bold yellow]BACKLOG[/]"
        )
        for reason in result["reasons"]:
            console.print(f"  - {escape(reason)}")
    console.print(f"summary, Locust CSV and HTML in {escape(str(out))}/")


def _operations(locust: dict[str, Any]) -> Table:
    table = Table(title="operations (Locust)")
    for column in ("operation", "requests", "fail", "req/s", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(column, justify="left" if column == "operation" else "right")
    for op in locust.get("operations", []):
        table.add_row(
            escape(op["name"]),
            f"{op['requests']:,}",
            f"{op['failures']:,}",
            f"{op['rps']:.1f}",
            *(f"{op[k]:.0f}" if op[k] is not None else "-" for k in ("p50_ms", "p95_ms", "p99_ms")),
        )
    return table


def _documents(summary: dict[str, Any]) -> Table:
    table = Table(title="documents the flow owes")
    columns = ("document ← source", "owed", "posted", "late", "catch-up max s", "lost")
    for column in (*columns, "backlog", "dup", "not owed"):
        left = column in ("document ← source", "not owed")
        table.add_column(column, justify="left" if left else "right")
    for d in summary.get("documents", []):
        late = d["late_catch_up_s"]
        table.add_row(
            d["label"],
            f"{d['owed']:,}",
            f"{d['posted']:,}",
            f"{d['late']:,}",
            f"{late['max']:.1f}" if late.get("count") else "-",
            _bad(d["lost"]),
            _bad(d["backlog"], "yellow"),
            _bad(d["duplicated"]),
            escape(", ".join(f"{n:,} {why}" for why, n in d["exempt"].items())),
        )
    for kind, u in summary.get("unexpected", {}).items():
        table.add_row(f"unexpected {kind}", "-", "-", "-", "-", _bad(u["count"]), "", "", "")
    return table


def _traffic(errors: dict[str, Any]) -> Table:
    table = Table(title="responses by kind (simulators' journals)")
    kinds = ("requests", "ok", "throttled", "outage", "server_error", "client_error")
    table.add_column("actor")
    for kind in (*kinds, "faults", "violations"):
        table.add_column(kind.replace("_", " "), justify="right")
    for actor in ("integration", "harness"):
        counts = errors.get(actor, {})
        injected = sum(v for k, v in counts.items() if k.startswith("fault_"))
        table.add_row(
            "integration" if actor == "integration" else "load users",
            *(f"{counts.get(k, 0):,}" for k in kinds),
            f"{injected:,}",
            f"{counts.get('contract_violations', 0):,}",
        )
    return table


def _bad(count: int, colour: str = "red") -> str:
    return f"[{colour}]{count:,}[/]" if count else "0"

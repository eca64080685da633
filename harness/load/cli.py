"""`harness load` on the command line: flags, and errors as one line (exit 2), never a trace."""

from __future__ import annotations

import argparse
import re
import shlex
import signal
import threading
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from harness.actors import StepFailed
from harness.config import ConfigError
from harness.integration import IntegrationError
from harness.load.run import (
    DEFAULT_OUT,
    DEFAULT_SETTLE_TIMEOUT_S,
    DEFAULT_STALL_S,
    LoadOptions,
    run_load,
)
from harness.load.verdict import EXIT_USAGE


def parse_duration(text: str) -> int:
    """Seconds from ``90``, ``90s``, ``2m`` or ``1h``."""
    match = re.fullmatch(r"(\d+)([smh]?)", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"a duration is 90, 90s, 2m or 1h (got {text!r})")
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "load",
        help="close-period load through the integration under test, judged on every document",
        description=(
            "Serve the simulators, start the integration from harness.toml, run a Locust "
            "profile headless and bounded (progress as it goes), let the integration catch up "
            "while it makes progress, then judge every document the flow owes: posted during "
            "the load, late (posted after it, with the catch-up time), lost, or still on its "
            "way (backlog). Exit 0 on a pass, 1 on any loss, duplicate, unexpected document or "
            "invariant violation, 2 on usage errors, 3 when the integration had not caught up "
            "when the bounded wait ended (backlog, nothing lost so far)."
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
        help="the longest the integration may take to catch up after the load",
    )
    parser.add_argument(
        "--stall-timeout",
        type=float,
        default=DEFAULT_STALL_S,
        metavar="S",
        help="stop waiting after this long without progress (no write accepted, no delivery)",
    )
    parser.add_argument(
        "--validate-responses",
        action="store_true",
        help="also check every simulator answer against its contract (slower: off under load)",
    )
    parser.add_argument(
        "--locust-args", default="", metavar="ARGS", help="more Locust options for the master"
    )
    parser.set_defaults(func=cmd_load)


def _stop_on_sigterm(signum: int, _frame: Any) -> None:
    # A cancelled CI job sends SIGTERM: leave through the context managers, so the
    # integration, Locust and the simulators are stopped rather than orphaned.
    raise SystemExit(128 + signum)


def cmd_load(args: argparse.Namespace) -> int:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console.width = max(console.width, 140)  # CI logs: tables at full width, not 80
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
        stall_s=args.stall_timeout,
        validate_responses=args.validate_responses,
        locust_args=shlex.split(args.locust_args),
    )
    try:
        code, _ = run_load(options, console)
    except (ConfigError, IntegrationError, StepFailed) as exc:
        # A declaration that does not work (unknown profile, an integration that does not
        # start, fixtures the simulators refuse): the user's to fix, said in one message.
        Console(stderr=True, highlight=False).print(f"[red]harness load: {escape(str(exc))}[/]")
        return EXIT_USAGE
    return code


def main(argv: list[str] | None = None) -> int:
    """`python -m harness.load load …`: the same command outside the `harness` entry point."""
    parser = argparse.ArgumentParser(prog="harness")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code

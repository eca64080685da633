"""The `harness` command line: serve, run scenarios, load-test, check contracts, demo."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.up import DEFAULT_PORTS, SYSTEMS, Stack, UpOptions, serve, warnings_for
from simulators.common.world import DEFAULT_START

console = Console()
CONTRACT_COMMANDS = (
    "harness.contracts.conformance",  # harness contracts test
    "harness.contracts.diff_cli",  # harness contracts diff
    "harness.contracts.usage",  # harness contracts usage
)
# Top-level commands that register their own parser: `register(subparsers)`.
COMMANDS = (
    "harness.run_cli",  # harness run
    "harness.load",  # harness load
    "harness.mutants",  # harness mutants
    "harness.fuzz.cli",  # harness fuzz
)


def _up_options(args: argparse.Namespace) -> UpOptions:
    ports = dict(DEFAULT_PORTS)
    for item in args.port or []:
        name, _, value = item.partition("=")
        if name not in DEFAULT_PORTS or not value.isdigit():
            raise SystemExit(
                f"--port takes SYSTEM=PORT with SYSTEM in {', '.join(DEFAULT_PORTS)} (got {item!r})"
            )
        ports[name] = int(value)
    return UpOptions(
        seed=args.seed,
        start_at=args.start_at,
        host=args.host,
        ports=ports,
        tls=set(filter(None, (args.tls or "").split(","))),
        systems=list(filter(None, args.systems.split(","))),
        webhook_time_scale=args.webhook_time_scale,
        validate_responses=not args.no_response_validation,
        ca_dir=Path(args.ca_dir) if args.ca_dir else None,
        webhook_hosts=list(args.webhook_host or []),
        fixed_credentials=args.fixed_credentials,
        allow_remote=args.allow_remote,
    )


def _announce(stack: Stack) -> None:
    ready = stack.ready()
    console.print("[bold green]simulators up[/] (Ctrl-C to stop)")
    for name, info in ready["systems"].items():
        creds = ", ".join(f"{k}={v}" for k, v in info["credentials"].items())
        console.print(f"  {name:8} {info['url']}  {creds}")
    console.print(f"  control token  {ready['control_token']}  (header X-Sim-Control-Token)")
    if ready["ca_bundle"]:
        bundle = ready["ca_bundle"]
        console.print(f"  CA bundle      {bundle}  (export REQUESTS_CA_BUNDLE={bundle})")
    console.print(
        f"  seed {ready['seed']}, sim time {stack.world.clock.now()}, "
        f"{ready['credentials']} credentials"
    )


def cmd_up(args: argparse.Namespace) -> int:
    options = _up_options(args)
    for warning in warnings_for(options):
        console.print(f"[bold yellow]warning:[/] {warning}", highlight=False)
    serve(
        options,
        Path(args.ready_json) if args.ready_json else None,
        _announce,
        state_path=Path(args.state) if args.state else None,
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from harness.demo import run_demo

    return run_demo(console, seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="serve the simulators on loopback until Ctrl-C or SIGTERM")
    up.add_argument("--seed", type=int, default=0)
    up.add_argument("--start-at", default=DEFAULT_START, help="ISO-8601 start of sim time")
    up.add_argument(
        "--host", default="127.0.0.1", help="address to serve on (loopback unless --allow-remote)"
    )
    up.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host other than loopback (the simulators are then reachable from "
        "other machines)",
    )
    up.add_argument(
        "--webhook-host",
        action="append",
        metavar="HOST",
        help="a host webhooks may be sent to besides loopback; repeatable; '*' allows any",
    )
    up.add_argument(
        "--fixed-credentials",
        action="store_true",
        help="derive the control token, API keys and webhook secrets from the seed "
        "(reproducible) instead of drawing them at random",
    )
    up.add_argument(
        "--state",
        metavar="FILE",
        help="restore the world from FILE on start (if it exists) and save it there on exit",
    )
    up.add_argument(
        "--port",
        action="append",
        metavar="SYSTEM=PORT",
        help="port per system (0 picks a free one); repeatable",
    )
    up.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated systems")
    up.add_argument("--tls", default="crm", help="comma-separated systems to serve over HTTPS")
    up.add_argument("--ca-dir", help="where to write the local CA (default: a temp dir)")
    up.add_argument("--ready-json", help="write URLs, credentials and token here when ready")
    up.add_argument(
        "--webhook-time-scale",
        type=float,
        default=1.0,
        help="multiply webhook retry delays (0.001 for CI)",
    )
    up.add_argument(
        "--no-response-validation",
        action="store_true",
        help="skip response validation (faster; load runs)",
    )
    up.set_defaults(func=cmd_up)

    contracts = sub.add_parser("contracts", help="contract conformance and breaking changes")
    contract_commands = contracts.add_subparsers(dest="contracts_command", required=True)
    for module in CONTRACT_COMMANDS:
        # Each contract command registers its own parser: `register(subparsers)`.
        importlib.import_module(module).register(contract_commands)

    for module in COMMANDS:
        try:
            importlib.import_module(module).register(sub)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise

    demo = sub.add_parser("demo", help="serve billing and drive a lifecycle with the stripe SDK")
    demo.add_argument("--seed", type=int, default=42)
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args: Any = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())

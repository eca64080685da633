"""The `harness` command line: serve, run scenarios, load-test, check contracts, demo."""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import exits

if TYPE_CHECKING:
    from harness.up import Stack, UpOptions

# Every subcommand is registered only when it is the one asked for, so `harness --help` imports
# no simulator, connexion or schemathesis. name → (register function or module, one-line help).
Register = Callable[[Any], None]
CONTRACT_COMMANDS: dict[str, tuple[str, str]] = {
    "test": (
        "harness.contracts.conformance",
        "schemathesis conformance of a simulator or any API against its contract",
    ),
    "diff": (
        "harness.contracts.diff_cli",
        "classify changes between two contracts: breaking / warning / info",
    ),
    "usage": (
        "harness.contracts.usage",
        "operations and fields an integration used, for `diff --usage`",
    ),
}
# Top-level commands whose module registers its own parser: `register(subparsers)`.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": (
        "harness.run_cli",
        "play scenarios through the integration under test and judge the books",
    ),
    "load": (
        "harness.load",
        "close-period load through the integration under test, judged on lost documents",
    ),
    "mutants": (
        "harness.mutants",
        "prove the checks: play each buggy copy of the reference integration",
    ),
    "fuzz": (
        "harness.fuzz.cli",
        "generated lifecycles through the integration, failures shrunk into scenarios",
    ),
}


# --- harness up (its flags are the hardening area's; kept as they were) -------------------------
def _up_options(args: argparse.Namespace) -> UpOptions:
    from harness.up import DEFAULT_PORTS, UpOptions

    ports = dict(DEFAULT_PORTS)
    for item in args.port or []:
        name, _, value = item.partition("=")
        if name not in DEFAULT_PORTS or not value.isdigit():
            raise exits.UsageError(
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
    from rich.console import Console

    console = Console()
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
    from harness.ports import check_free
    from harness.up import serve, warnings_for

    options = _up_options(args)
    check_free(options.host, {name: options.ports.get(name, 0) for name in options.systems})
    from rich.console import Console

    console = Console()
    for warning in warnings_for(options):
        console.print(f"[bold yellow]warning:[/] {warning}", highlight=False)
    serve(
        options,
        Path(args.ready_json) if args.ready_json else None,
        _announce,
        state_path=Path(args.state) if args.state else None,
    )
    return 0


def register_up(sub: Any) -> None:
    from harness.config import DEFAULT_START
    from harness.up import SYSTEMS

    up = sub.add_parser("up", help=TOP_HELP["up"])
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


# --- small commands ------------------------------------------------------------------------------
def register_demo(sub: Any) -> None:
    demo = sub.add_parser("demo", help=TOP_HELP["demo"])
    demo.add_argument("--seed", type=int, default=42)
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from rich.console import Console

    from harness.demo import run_demo

    return run_demo(Console(), seed=args.seed)


def register_init(sub: Any) -> None:
    init = sub.add_parser(
        "init",
        help=TOP_HELP["init"],
        description="Write harness.toml for the reference integration into DIR, to edit for yours.",
    )
    init.add_argument("directory", nargs="?", default=".", help="where to write it (default: .)")
    init.set_defaults(func=cmd_init)


def cmd_init(args: argparse.Namespace) -> int:
    from harness.resources import reference_config

    target = Path(args.directory) / "harness.toml"
    if target.exists():
        raise exits.UsageError(f"{target} exists already; edit it or remove it first")
    if not target.parent.is_dir():
        raise exits.UsageError(f"{target.parent}: no such directory")
    target.write_text(reference_config().read_text(encoding="utf-8"), encoding="utf-8")
    print(f"wrote {target}: the reference integration; point [integration] at yours")
    return 0


def register_completion(sub: Any) -> None:
    completion = sub.add_parser(
        "completion",
        help=TOP_HELP["completion"],
        description='Print a completion script: eval "$(harness completion bash)" in ~/.bashrc, '
        'or eval "$(harness completion zsh)" in ~/.zshrc.',
    )
    completion.add_argument("shell", choices=("bash", "zsh", "fish"))
    completion.set_defaults(func=cmd_completion)


def cmd_completion(args: argparse.Namespace) -> int:
    from argcomplete.shell_integration import shellcode

    sys.stdout.write(shellcode(["harness"], shell=args.shell))
    return 0


def register_contracts(sub: Any, words: Sequence[str]) -> None:
    contracts = sub.add_parser("contracts", help=TOP_HELP["contracts"])
    commands = contracts.add_subparsers(dest="contracts_command", required=True)
    chosen = _chosen(words, CONTRACT_COMMANDS)
    for name, (module, help_text) in CONTRACT_COMMANDS.items():
        if name == chosen:
            importlib.import_module(module).register(commands)
        else:
            commands.add_parser(name, help=help_text)


LOCAL: dict[str, Register] = {
    "up": register_up,
    "demo": register_demo,
    "init": register_init,
    "completion": register_completion,
}
TOP_HELP = {
    "up": "serve the simulators on loopback until Ctrl-C or SIGTERM",
    **{name: help_text for name, (_, help_text) in COMMANDS.items()},
    "contracts": "contract conformance and breaking changes",
    "demo": "serve billing and drive a lifecycle with the stripe SDK",
    "init": "write a harness.toml to start from (the reference integration)",
    "completion": "print a shell completion script (bash, zsh, fish)",
}


def _chosen(words: Sequence[str], names: Any) -> str | None:
    """The first word that names a command (options before it are the parent's)."""
    for word in words:
        if word in names:
            return str(word)
        if not word.startswith("-"):
            return None
    return None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("finsim-harness")
    except PackageNotFoundError:  # a checkout used without installing it
        return "unknown (not installed)"


def build_parser(words: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser, with the full arguments of the command named in ``words`` only: the other
    commands are listed with their help, their modules not imported."""
    parser = argparse.ArgumentParser(
        prog="harness",
        description=__doc__,
        epilog=exits.EXIT_CODES_HELP + "\ndocs: docs/getting-started.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = _chosen(words, TOP_HELP)
    for name, help_text in TOP_HELP.items():
        if name != chosen:
            sub.add_parser(name, help=help_text)
        elif name == "contracts":
            register_contracts(sub, words[words.index(name) + 1 :])
        elif name in LOCAL:
            LOCAL[name](sub)
        else:
            importlib.import_module(COMMANDS[name][0]).register(sub)
    return parser


def _complete() -> None:
    """Answer the shell's completion request (argcomplete's protocol), then exit."""
    from argcomplete import autocomplete

    line = os.environ.get("COMP_LINE", "")[: int(os.environ.get("COMP_POINT", "0") or 0)]
    try:
        words = shlex.split(line)[1:]
    except ValueError:  # an open quote while typing
        words = line.split()[1:]
    autocomplete(build_parser(words))


def main(argv: list[str] | None = None) -> int:
    if "_ARGCOMPLETE" in os.environ:
        _complete()
    words = sys.argv[1:] if argv is None else argv
    from harness.errors import guarded

    return guarded(lambda: _dispatch(words))


def _dispatch(words: list[str]) -> int:
    args: Any = build_parser(words).parse_args(words)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())

"""`harness contracts usage`: what an integration used of a contract, from the request journal."""

from __future__ import annotations

import argparse
import json
import ssl
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx

from harness.contracts.diff import OperationUsage, Usage


def usage_from_journal(entries: Iterable[dict[str, Any]]) -> Usage:
    """Operations, body fields and query parameters the integration sent.

    Only the integration's own traffic counts (not the control plane, not the harness acting
    as the vendor's users). Response fields are left unknown: a server cannot see what a
    client reads, so a diff treats every response field as used."""
    fields: dict[str, set[str]] = {}
    parameters: dict[str, set[str]] = {}
    for entry in entries:
        op = entry.get("operation_id")
        if not op or entry.get("control") or entry.get("actor", "integration") != "integration":
            continue
        fields.setdefault(op, set()).update(entry.get("fields") or [])
        parameters.setdefault(op, set()).update(entry.get("parameters") or [])
    return Usage(
        {
            op: OperationUsage(
                request_fields=tuple(sorted(fields[op])), parameters=tuple(sorted(parameters[op]))
            )
            for op in sorted(fields)
        }
    )


def fetch_journal(ready: dict[str, Any], system: str) -> list[dict[str, Any]]:
    """Every journal entry of a running simulator (`harness up --ready-json`)."""
    try:
        url = ready["systems"][system]["url"]
    except KeyError:
        raise SystemExit(
            f"no system {system!r} in the ready file; it has {', '.join(ready.get('systems', {}))}"
        ) from None
    verify: ssl.SSLContext | bool = True
    if ready.get("ca_bundle"):
        verify = ssl.create_default_context(cafile=ready["ca_bundle"])
    entries: list[dict[str, Any]] = []
    since = 0
    with httpx.Client(verify=verify, trust_env=False, timeout=30) as client:
        while True:
            page = client.get(
                f"{url}/_sim/journal",
                params={"since_seq": since, "limit": 10000},
                headers={"X-Sim-Control-Token": ready["control_token"]},
            )
            page.raise_for_status()
            data = page.json()["data"]
            if not data:
                return entries
            entries.extend(data)
            since = data[-1]["seq"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "usage", help="operations and fields an integration used, for `diff --usage`"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--ready-json", help="a running world (`harness up --ready-json`)")
    source.add_argument("--journal", help="a saved `GET /_sim/journal` answer (JSON)")
    parser.add_argument("--system", help="the system whose contract the usage is of")
    parser.add_argument("--out", help="write the usage file here (default: stdout)")
    parser.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    if args.ready_json:
        if not args.system:
            print("harness contracts usage: --ready-json needs --system", file=sys.stderr)
            return 2
        entries = fetch_journal(json.loads(Path(args.ready_json).read_text()), args.system)
    else:
        try:
            data = json.loads(Path(args.journal).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            print(f"harness contracts usage: {args.journal}: {exc}", file=sys.stderr)
            return 2
        entries = data["data"] if isinstance(data, dict) else data
    text = json.dumps(usage_from_journal(entries).to_json(), indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    else:
        print(text)
    return 0

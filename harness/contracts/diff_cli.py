"""`harness contracts diff`: classify the changes between contracts and render them."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape

from harness.contracts.diff import (
    FOR_US,
    IN_GENERAL,
    RULES,
    Change,
    Comparison,
    InputError,
    Level,
    compare,
    contracts_against_base,
    exit_code,
    load_usage,
    read_source,
)
from harness.contracts.diff_rules import rules_markdown

EPILOG = """\
inputs: a file path (YAML or JSON), or REF:path read with `git show`,
  e.g. HEAD~1:contracts/openapi/billing.yaml

exit codes:
  0  nothing breaking (with --usage: nothing breaking for us)
  1  something breaking (with --usage: something breaking for us)
  2  an input cannot be read or is not OpenAPI 3.x, or the arguments are wrong

rules and the usage file format: docs/contract-diff.md
"""

COLOURS = {Level.BREAKING: "bold red", Level.WARNING: "yellow", Level.INFO: "cyan"}
ICONS = {Level.BREAKING: "❌", Level.WARNING: "⚠️", Level.INFO: "ℹ️"}


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "diff",
        help="classify changes between two contracts: breaking / warning / info",
        description="Classify every change between two OpenAPI 3.x documents by rule and level.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("old", nargs="?", help="the contract before (file or REF:path)")
    parser.add_argument("new", nargs="?", help="the contract after (file or REF:path)")
    parser.add_argument(
        "--base",
        metavar="REF",
        help="compare every contract in the working tree against git REF (for CI)",
    )
    parser.add_argument(
        "--contracts",
        default="contracts/openapi",
        metavar="DIR",
        help="with --base: the contracts folder, from the repository root (default %(default)s)",
    )
    parser.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    parser.add_argument(
        "--usage",
        metavar="FILE",
        help="consumer usage (JSON): mark breaking changes for-us or in-general; "
        "exit 1 only for ours",
    )
    parser.add_argument(
        "--list-rules", action="store_true", help="print the rule registry and exit"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out, err = sys.stdout, sys.stderr
    if args.list_rules:
        _list_rules(args.format, out)
        return 0
    try:
        if args.base:
            if args.old or args.new:
                raise InputError("give either OLD NEW or --base REF, not both")
            pairs = contracts_against_base(args.base, args.contracts)
        elif args.old and args.new:
            pairs = [(read_source(args.old), read_source(args.new))]
        else:
            raise InputError("give OLD and NEW contracts, or --base REF")
        usage = load_usage(args.usage) if args.usage else None
        comparisons = [compare(old, new, usage) for old, new in pairs]
    except InputError as exc:
        print(f"harness contracts diff: {exc}", file=err)
        return 2
    with_usage = usage is not None
    if args.format == "json":
        render_json(comparisons, with_usage, out)
    elif args.format == "markdown":
        out.write(render_markdown(comparisons, with_usage, base=args.base))
    else:
        render_text(
            comparisons, with_usage, Console(file=out, soft_wrap=True, highlight=False, emoji=False)
        )
    return exit_code(comparisons, with_usage)


def _list_rules(fmt: str, out: TextIO) -> None:
    if fmt == "markdown":
        out.write(rules_markdown())
    elif fmt == "json":
        rows = [
            {"id": r.id, "level": r.level.value, "description": r.description}
            for r in RULES.values()
        ]
        json.dump(rows, out, indent=2)
        out.write("\n")
    else:
        width = max(len(rule_id) for rule_id in RULES)
        for rule in RULES.values():
            out.write(f"{rule.id:<{width}}  {rule.level.value:<8}  {rule.description}\n")


def _totals(comparisons: Sequence[Comparison]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for comparison in comparisons:
        for key, value in comparison.counts().items():
            totals[key] = totals.get(key, 0) + value
    return totals


def summary_line(counts: dict[str, int], with_usage: bool) -> str:
    """ "2 breaking (1 for us, 1 in general), 1 warning, 3 info" or "no changes"."""
    if not any(counts[level.value] for level in Level):
        return "no changes"
    breaking = f"{counts['breaking']} breaking"
    if with_usage:
        breaking += f" ({counts[FOR_US]} for us, {counts[IN_GENERAL]} in general)"
    return f"{breaking}, {counts['warning']} warning, {counts['info']} info"


def _level_label(change: Change) -> str:
    if change.impact == FOR_US:
        return "breaking (for us)"
    if change.impact == IN_GENERAL:
        return "breaking (in general)"
    return change.level.value


def render_text(comparisons: Sequence[Comparison], with_usage: bool, console: Console) -> None:
    for comparison in comparisons:
        console.print(f"[bold]{escape(comparison.old)} → {escape(comparison.new)}[/]")
        for change in comparison.changes:
            colour = COLOURS[change.level]
            op = f"  {escape(str(change.operation))}" if change.operation else ""
            console.print(f"  [{colour}]{_level_label(change)}[/]  {change.rule}{op}")
            console.print(f"      {escape(change.message)}")
            console.print(f"      [dim]{escape(change.location or '/')}[/]")
        counts = comparison.counts()
        console.print(f"  {summary_line(counts, with_usage)}")
    if len(comparisons) > 1:
        console.print(f"[bold]total:[/] {summary_line(_totals(comparisons), with_usage)}")


def render_json(comparisons: Sequence[Comparison], with_usage: bool, out: TextIO) -> None:
    document = {
        "summary": _totals(comparisons),
        "usage": with_usage,
        "exit_code": exit_code(comparisons, with_usage),
        "comparisons": [
            {
                "old": c.old,
                "new": c.new,
                "summary": c.counts(),
                "changes": [change.to_dict() for change in c.changes],
            }
            for c in comparisons
        ],
    }
    json.dump(document, out, indent=2)
    out.write("\n")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(changes: Sequence[Change]) -> list[str]:
    lines = ["| Level | Rule | Operation | Change |", "|---|---|---|---|"]
    for change in changes:
        op = f"`{change.operation}`" if change.operation else ""
        where = f"<br><sub>`{change.location}`</sub>" if change.location else ""
        level = f"{ICONS[change.level]} {_level_label(change)}"
        cells = (level, f"`{change.rule}`", op, f"{change.message}{where}")
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return lines


def render_markdown(
    comparisons: Sequence[Comparison], with_usage: bool, base: str | None = None
) -> str:
    """A pull-request comment: breaking and warnings in a table, info folded away."""
    title = f"against `{base}`" if base else ""
    lines = [f"### Contract diff {title}".rstrip(), ""]
    lines += [f"**{summary_line(_totals(comparisons), with_usage)}**", ""]
    for comparison in comparisons:
        if len(comparisons) > 1 or not base:
            lines += [f"#### `{comparison.old}` → `{comparison.new}`", ""]
        shown = [c for c in comparison.changes if c.level is not Level.INFO]
        folded = [c for c in comparison.changes if c.level is Level.INFO]
        if not comparison.changes:
            lines += ["No changes.", ""]
            continue
        lines += [summary_line(comparison.counts(), with_usage), ""]
        if shown:
            lines += [*_table(shown), ""]
        if folded:
            lines += [f"<details><summary>{len(folded)} info</summary>", ""]
            lines += [*_table(folded), "", "</details>", ""]
    return "\n".join(lines).rstrip() + "\n"

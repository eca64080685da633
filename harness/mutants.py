"""Mutants: copies of the reference integration with one realistic bug each, and their catchers.

A mutant is made, not stored: the reference integration is copied into a scratch directory and
one snippet is replaced, so every mutant tracks the reference as it evolves. A snippet that no
longer occurs exactly once is an error, so a mutant can never silently become the reference.
`harness mutants` plays each against the scenario that should expose it.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from harness.config import HarnessConfig, load_config, locate_config
from harness.runner import ScenarioResult, run_scenario
from harness.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "examples" / "reference_integration"


@dataclass(frozen=True)
class Edit:
    file: str  # relative to examples/reference_integration
    find: str
    replace: str


@dataclass(frozen=True)
class Mutant:
    name: str
    bug: str  # what a developer got wrong, in one line
    edits: tuple[Edit, ...]  # one bug, sometimes in two places
    scenario: str  # the scenario that exposes it (under scenarios/)
    caught_by: str  # the rule that must fire


class MutantError(RuntimeError):
    """The mutant's snippet is not in the reference integration exactly once."""


def materialize(mutant: Mutant, root: Path) -> Path:
    """Write ``root/examples/reference_integration`` with the bug in; ``root`` is the cwd to
    start it from (``python -m examples.reference_integration`` then imports the copy)."""
    target = root / "examples" / "reference_integration"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(REFERENCE, target, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "examples" / "__init__.py").touch()
    for edit in mutant.edits:
        path = target / edit.file
        text = path.read_text(encoding="utf-8")
        count = text.count(edit.find)
        if count != 1:
            raise MutantError(
                f"mutant {mutant.name}: a snippet occurs {count} times in {edit.file}, not once"
            )
        path.write_text(text.replace(edit.find, edit.replace), encoding="utf-8")
    return root


def _one(file: str, find: str, replace: str) -> tuple[Edit, ...]:
    return (Edit(file, find, replace),)


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "no_dedup",
        "keys its inbox by delivery, not by event id, and posts a payment per processing",
        (
            Edit(
                "app.py",
                'inbox.put, "stripe", event.id,',
                'inbox.put, "stripe", f"{event.id}-{__import__(\'uuid\').uuid4()}",',
            ),
            Edit(
                "sync.py",
                'external_id = f"pay_{invoice_id}"',
                "external_id = f\"pay_{invoice_id}_{__import__('uuid').uuid4().hex[:8]}\"",
            ),
        ),
        "13_duplicate_reordered_webhooks.yaml",
        "INV-26",
    ),
    Mutant(
        "wall_clock_date",
        "dates ERP invoices by the wall clock instead of the invoice's finalisation",
        _one(
            "sync.py",
            'utc_date(invoice["status_transitions"]["finalized_at"], "finalized_at")',
            'utc_date(int(__import__("time").time()), "now")',
        ),
        "01_new_business.yaml",
        "INV-03",
    ),
    Mutant(
        "decimal_slip",
        "converts minor units with three decimals for every currency",
        _one(
            "sync.py",
            "return Decimal(minor).scaleb(-_EXPONENT.get(currency.lower(), 2))",
            "return Decimal(minor).scaleb(-3)",
        ),
        "01_new_business.yaml",
        "INV-06",
    ),
    Mutant(
        "route_by_currency",
        "routes documents to the subsidiary of the invoice currency, not the contracting entity",
        _one(
            "sync.py",
            'entity = (customer.get("metadata") or {}).get("entity")',
            'entity = {"usd": "US", "gbp": "UK", "eur": "DE"}.get(str(customer.get("currency")))',
        ),
        "12_fx_paid_later.yaml",
        "INV-05",
    ),
    Mutant(
        "ignores_retry_after",
        "retries a throttled vendor on its own schedule, ignoring Retry-After",
        _one("retry.py", "wait = max(backoff, exc.retry_after_s or 0.0)", "wait = backoff"),
        "14_crm_throttled_spike.yaml",
        "INV-30",
    ),
    Mutant(
        "drops_on_outage",
        "treats the ERP's 503 as a permanent refusal and sets the event aside",
        _one(
            "erp.py",
            "if response.status_code == 429 or response.status_code >= 500:",
            "if response.status_code == 429:",
        ),
        "15_erp_outage_month_end.yaml",
        "INV-06",
    ),
    Mutant(
        "upgrade_as_new_contract",
        "books an amendment as a second revenue contract instead of modifying the first",
        _one(
            "sync.py",
            'self._modify(contract, opp["Id"], before, after, at, start, end, renewal)',
            "self.book_contract({**after, \"id\": f\"{after['id']}-{opp['Id']}\"})",
        ),
        "04_seat_expansion.yaml",
        "INV-26",
    ),
    Mutant(
        "drops_credit_lines",
        "drops negative invoice lines (proration credits) when posting to the ERP",
        _one(
            "sync.py",
            'groups[(item_for(line), key)] += sign * line["amount"]',
            'groups[(item_for(line), key)] += sign * max(line["amount"], 0)',
        ),
        "02_upgrade_always_invoice.yaml",
        "INV-06",
    ),
    Mutant(
        "post_not_upsert",
        "creates ERP records with POST and no external id, so a retry after a lost reply "
        "posts again",
        _one(
            "erp.py",
            'lambda: self._send("PUT", path, json=body)',
            'lambda: self._send("POST", f"{RECORD}/{kind}", json=body)',
        ),
        "16_ambiguous_commit_erp.yaml",
        "INV-06",
    ),
    Mutant(
        "posts_into_closed_period",
        "dates postings by document date only: the ERP refuses the closed period and the "
        "late credit memo is set aside",
        _one("sync.py", "period = self.erp.posting_period(subsidiary, on, kind)", "period = None"),
        "18_late_change_closed_period.yaml",
        "INV-08",
    ),
    Mutant(
        "fx_rounding",
        "rounds each foreign-currency line of the revenue journal to whole units on its own",
        (
            Edit(
                "sync.py",
                'debit = row["debit_minor"] if own else row["functional_debit_minor"]',
                'debit = row["debit_minor"] if own else round(row["functional_debit_minor"], -2)',
            ),
            Edit(
                "sync.py",
                'credit = row["credit_minor"] if own else row["functional_credit_minor"]',
                'credit = row["credit_minor"] if own else '
                'round(row["functional_credit_minor"], -2)',
            ),
        ),
        "12_fx_paid_later.yaml",
        "INV-21",
    ),
    Mutant(
        "no_crm_writeback",
        "never writes the subscription back to the won opportunity",
        _one(
            "sync.py",
            '{"Billing_Subscription_Id__c": sub["id"], "Synced_To_Billing__c": True},',
            "{},",
        ),
        "01_new_business.yaml",
        "INV-24",
    ),
)


@dataclass
class MutantVerdict:
    mutant: Mutant
    result: ScenarioResult

    @property
    def caught(self) -> bool:
        return self.mutant.caught_by in self.result.rules


def mutant_config(config: HarnessConfig, mutant: Mutant, root: Path) -> HarnessConfig:
    """The reference integration's configuration, started from the mutant's copy."""
    spec = config.integration
    if spec is None:
        raise ValueError("harness.toml declares no integration to mutate")
    return config.model_copy(update={"integration": spec.model_copy(update={"cwd": str(root)})})


def play_mutant(
    mutant: Mutant, config: HarnessConfig, scratch: Path, scenarios: Path = ROOT / "scenarios"
) -> MutantVerdict:
    root = materialize(mutant, scratch / mutant.name)
    scenario = load_scenario(scenarios / mutant.scenario)
    result = run_scenario(scenario, mutant_config(config, mutant, root), cwd=ROOT)
    return MutantVerdict(mutant, result)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "mutants", help="prove the checks: play each buggy copy of the reference integration"
    )
    parser.add_argument(
        "--config",
        "--integration",
        dest="integration",
        metavar="FILE",
        help="the harness.toml to use (default: the nearest one, from here upwards)",
    )
    parser.add_argument("-k", dest="keyword", help="only mutants whose name contains this")
    parser.set_defaults(func=cmd_mutants)


def cmd_mutants(args: argparse.Namespace) -> int:
    console = Console()
    config = load_config(locate_config(args.integration))
    chosen = [m for m in MUTANTS if args.keyword is None or args.keyword in m.name]
    table = Table(title="Mutants of the reference integration")
    for column in ("mutant", "scenario", "must be caught by", "caught", "rules fired"):
        table.add_column(column)
    missed = 0
    with tempfile.TemporaryDirectory(prefix="finsim-mutants-") as scratch:
        for mutant in chosen:
            console.print(f"[bold]{mutant.name}[/] on {mutant.scenario}")
            verdict = play_mutant(mutant, config, Path(scratch))
            missed += not verdict.caught
            table.add_row(
                mutant.name,
                mutant.scenario.removesuffix(".yaml"),
                mutant.caught_by,
                "[green]yes[/]" if verdict.caught else "[red]NO[/]",
                ", ".join(verdict.result.rules),
            )
    console.print(table)
    return 1 if missed else 0

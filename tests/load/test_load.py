"""`harness load` end to end: a short run of every profile passes on the reference integration,
and mutants that lose documents or fall behind are told apart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from harness.config import HarnessConfig
from harness.load import LoadOptions, run_load
from harness.load.profiles import PROFILES
from harness.load.verdict import EXIT_BACKLOG, EXIT_FAIL, EXIT_PASS
from tests.load.helpers import REPO, integration_config

REFERENCE = "examples.reference_integration"
MUTANT = "tests.load.proxy_mutant"
# A few seconds of each profile: enough to make every kind of document it is about.
SHORT = {"users": 3, "duration_s": 5}


def _run(
    tmp_path: Path, config: HarnessConfig, profile: str, **options: Any
) -> tuple[int, dict[str, Any]]:
    load = LoadOptions(
        profile=profile,
        integration=REPO / "harness.toml",
        out=tmp_path / "out",
        seed=7,
        **{"settle_timeout_s": 90.0, **options},
    )
    with (tmp_path / "console.txt").open("w") as console:
        return run_load(load, Console(file=console, width=160), config)


def _rule(summary: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(d for d in summary["documents"] if d["rule"] == name)
    return found


# What each profile is about: the rule whose documents it must make (and so really tests). A
# few seconds of usage-flood end no month, so its invoices are the first ones, of total 0.
MAKES: dict[str, str | None] = {
    "closed-won-spike": "subledger_contract_per_deal_subscription",
    "renewal-storm": "erp_ar_document_per_finalised_invoice",
    "usage-flood": None,
    "bulk-payments": "erp_payment_per_paid_invoice",
    "period-close": "erp_journal_per_period_close",
    "month-end": "erp_ar_document_per_finalised_invoice",
    "month-end-faults": "erp_ar_document_per_finalised_invoice",
    "smoke": "erp_ar_document_per_finalised_invoice",
}


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_a_short_run_of_every_profile_passes_on_the_reference_integration(
    tmp_path: Path, profile: str
) -> None:
    short = {} if profile == "smoke" else SHORT
    code, summary = _run(tmp_path, integration_config(tmp_path, REFERENCE), profile, **short)
    assert code == EXIT_PASS, json.dumps(summary["verdict"], indent=2)
    rule = MAKES[profile]
    if rule is not None:
        made = _rule(summary, rule)
        assert made["owed"] > 0 and made["posted"] + made["late"] == made["owed"], made
    assert summary["settle"]["settled"] and summary["invariants"]["checked"]
    assert summary["invariants"]["violations"] == 0
    out = tmp_path / "out"
    assert json.loads((out / "summary.json").read_text())["verdict"]["passed"] is True
    for name in ("locust_stats.csv", "locust.html", "target.json"):
        assert (out / name).exists(), name
    if PROFILES[profile].faults:
        # The profile's faults really fired on the integration's traffic, and were survived.
        assert summary["faults_hit"], summary["faults_hit"]
    if profile == "usage-flood":
        # Metered customers' first invoices total 0: owed nothing, and not reported lost.
        exempt = _rule(summary, "erp_ar_document_per_finalised_invoice")["exempt"]
        assert exempt.get("total 0: the flow posts nothing", 0) > 0, exempt


def test_a_mutant_that_drops_invoice_webhooks_is_caught(tmp_path: Path) -> None:
    config = integration_config(tmp_path, MUTANT, {"MUTANT_DROP_EVERY": "4"})
    code, summary = _run(tmp_path, config, "smoke")
    invoices = _rule(summary, "erp_ar_document_per_finalised_invoice")
    assert code == EXIT_FAIL
    assert summary["settle"]["settled"], "a loss, not a slow integration"
    # Every 4th invoice is dropped: about a quarter of them, each one named.
    assert invoices["lost"] >= invoices["owed"] // 4 - 1 > 0, invoices
    assert summary["verdict"]["lost"] >= invoices["lost"]
    assert all(i.startswith("in_") for i in invoices["lost_ids"])


def test_a_mutant_that_falls_behind_is_backlog_not_loss(tmp_path: Path) -> None:
    # It answers every 2nd invoice's webhooks 503: billing keeps retrying them (for ~26 s at
    # harness.toml's compressed schedule), so at a 3 s bound they are pending, not lost.
    config = integration_config(
        tmp_path, MUTANT, {"MUTANT_MODE": "refuse", "MUTANT_DROP_EVERY": "2"}
    )
    code, summary = _run(tmp_path, config, "smoke", settle_timeout_s=3)
    invoices = _rule(summary, "erp_ar_document_per_finalised_invoice")
    assert code == EXIT_BACKLOG, json.dumps(summary["verdict"], indent=2)
    assert not summary["settle"]["settled"] and summary["settle"]["pending_webhooks"] > 0
    assert invoices["lost"] == 0 and invoices["backlog"] > 0, invoices
    assert summary["verdict"]["lost"] == 0

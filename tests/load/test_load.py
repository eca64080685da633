"""`harness load`: a short profile passes on the reference integration and catches a mutant."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from harness.config import HarnessConfig, load_config
from harness.load import (
    LoadOptions,
    check_documents,
    parse_duration,
    percentiles,
    register,
    run_load,
    verdict,
)

REPO = Path(__file__).resolve().parents[2]
PROFILE = "smoke"


def _config(tmp_path: Path, module: str, extra_env: dict[str, str] | None = None) -> HarnessConfig:
    """harness.toml's integration, run as ``module`` with this interpreter and a private inbox."""
    config = load_config(REPO / "harness.toml")
    assert config.integration is not None
    env = {**config.integration.env, "INBOX_PATH": str(tmp_path / "inbox-{port}.sqlite")}
    integration = config.integration.model_copy(
        update={"command": [sys.executable, "-m", module], "env": {**env, **(extra_env or {})}}
    )
    return config.model_copy(update={"integration": integration})


def _run(tmp_path: Path, config: HarnessConfig) -> tuple[int, dict[str, Any]]:
    options = LoadOptions(
        profile=PROFILE,
        integration=REPO / "harness.toml",
        out=tmp_path / "out",
        seed=7,
        settle_timeout_s=40,
    )
    with (tmp_path / "console.txt").open("w") as console:
        return run_load(options, Console(file=console), config)


def _check(summary: dict[str, Any], rule: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in summary["documents"] if c["rule"] == rule)
    return found


def test_the_reference_integration_loses_and_duplicates_nothing_under_load(
    tmp_path: Path,
) -> None:
    code, summary = _run(tmp_path, _config(tmp_path, "examples.reference_integration"))
    out = tmp_path / "out"
    assert code == 0, json.dumps(summary["verdict"], indent=2)
    invoices = _check(summary, "erp_invoice_per_finalised_invoice")
    assert invoices["expected"] > 0 and invoices["found"] == invoices["expected"]
    assert summary["verdict"] == {
        "passed": True,
        "lost": 0,
        "duplicated": 0,
        "unexpected": 0,
        "reasons": [],
    }
    # The profile's faults really fired on the integration's traffic, and were survived.
    assert summary["faults_hit"].get("duplicate", 0) > 0
    names = {op["name"] for op in summary["locust"]["operations"]}
    assert {"billing createCustomer", "billing createSubscription"} <= names
    assert summary["sla"]["measured"] == invoices["expected"]
    assert summary["sla"]["invoice_finalised_to_erp_posted_wall_s"]["p50"] > 0
    assert json.loads((out / "summary.json").read_text())["verdict"]["passed"] is True
    for name in ("locust_stats.csv", "locust_failures.csv", "locust.html", "target.json"):
        assert (out / name).exists(), name


def test_a_mutant_that_drops_invoice_webhooks_is_caught(tmp_path: Path) -> None:
    config = _config(tmp_path, "loadtests.mutants.drop_every_nth", {"MUTANT_DROP_EVERY": "4"})
    code, summary = _run(tmp_path, config)
    invoices = _check(summary, "erp_invoice_per_finalised_invoice")
    assert code == 1
    assert summary["verdict"]["passed"] is False
    # Every 4th invoice is dropped: about a quarter of them, each one named.
    assert invoices["lost"] >= invoices["expected"] // 4 - 1 > 0, invoices
    assert summary["verdict"]["lost"] >= invoices["lost"]
    assert all(i.startswith("in_") for i in invoices["lost_ids"])
    assert summary["settle"]["settled"], "a loss, not a slow integration"


def test_documents_are_lost_duplicated_or_unexpected() -> None:
    check = check_documents(
        "rule", ["in_1", "in_2", "in_3"], Counter({"in_1": 1, "in_2": 3, "in_9": 1})
    )
    assert check.lost == ["in_3"]
    assert check.duplicated == {"in_2": 3}
    assert check.unexpected == ["in_9"]
    assert not check.ok
    assert check.as_json()["duplicated"] == 2
    assert check_documents("rule", ["in_1"], Counter({"in_1": 1})).ok


def test_the_verdict_fails_on_any_loss_or_an_unsettled_world() -> None:
    settled = {
        "settle": {"settled": True, "integration_alive": True},
        "locust": {"available": True, "requests": 10},
        "invariants": {"checked": False},
    }
    fine = check_documents("rule", ["a"], Counter({"a": 1}))
    lost = check_documents("rule", ["a", "b"], Counter({"a": 1}))
    assert verdict(settled, [fine])["passed"] is True
    assert verdict(settled, [fine, lost])["lost"] == 1
    assert verdict({**settled, "settle": {"settled": False}}, [fine])["passed"] is False
    broken = {**settled, "invariants": {"checked": True, "violations": 2}}
    assert verdict(broken, [fine])["reasons"] == ["2 invariant violation(s)"]


def test_percentiles_and_durations() -> None:
    assert percentiles([]) == {"count": 0}
    values = [float(v) for v in range(1, 101)]
    assert percentiles(values) == {
        "count": 100,
        "p50": 50.0,
        "p90": 90.0,
        "p95": 95.0,
        "p99": 99.0,
        "max": 100.0,
    }
    assert [parse_duration(d) for d in ("90", "90s", "2m", "1h")] == [90, 90, 120, 3600]
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration("soon")


def test_the_command_registers_its_flags() -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["load", "--profile", "smoke", "--users", "5", "--duration", "1m", "--workers", "2"]
    )
    assert (args.profile, args.users, args.duration, args.workers) == ("smoke", 5, 60, 2)

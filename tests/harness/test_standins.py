"""Stand-ins: an integration owning any subset of the hand-offs plays every scenario, the harness
playing the rest with the reference flow, and is judged on exactly what it owns.

The integration under test here is the reference integration itself told to own only a subset
(``FINSIM_HANDOFFS``), so the only difference between runs is who plays which hand-off."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import HarnessConfig, load_config
from harness.pytest_plugin import describe
from harness.runner import run_scenario
from harness.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SUBSETS = {
    "erp": ["erp.customers", "erp.invoices", "erp.payments", "erp.credit_memos"],
    "crm": ["crm.provision", "crm.amend", "crm.writeback"],
    "subledger": ["revrec.contracts", "revrec.billing", "erp.journals"],
}


def owning(owns: list[str], *, does: list[str] | None = None) -> HarnessConfig:
    """The reference as an integration that owns ``owns`` and does ``does`` (default: the same)."""
    config = load_config(ROOT / "harness.toml")
    spec = config.integration
    assert spec is not None
    env = {**spec.env, "FINSIM_HANDOFFS": ",".join(owns if does is None else does)}
    return config.model_copy(
        update={
            "scope": config.scope.model_copy(update={"owns": owns}),
            "integration": spec.model_copy(update={"env": env}),
        }
    )


@pytest.mark.parametrize(
    ("subset", "scenario"),
    [
        ("erp", "09_credit_notes.yaml"),
        ("crm", "04_seat_expansion.yaml"),
        ("subledger", "12_fx_paid_later.yaml"),
    ],
)
def test_an_integration_owning_a_subset_passes_with_stand_ins(subset: str, scenario: str) -> None:
    result = run_scenario(
        load_scenario(ROOT / "scenarios" / scenario), owning(SUBSETS[subset]), cwd=ROOT
    )
    assert result.passed, describe(result)
    judged = result.judged
    assert judged["owned"] == SUBSETS[subset]
    assert set(judged["standins"]) | set(SUBSETS[subset]) == set(judged["owned"]) | set(
        judged["standins"]
    )
    assert result.standin_output, "the stand-in ran"


def test_a_hand_off_claimed_and_not_done_is_caught() -> None:
    # It declares it owns ERP credit memos but never posts them: nobody posts them, and INV-08
    # names the credit notes — the stand-in never covers a hand-off the integration claims.
    owns = SUBSETS["erp"]
    config = owning(owns, does=[h for h in owns if h != "erp.credit_memos"])
    result = run_scenario(load_scenario(ROOT / "scenarios/09_credit_notes.yaml"), config, cwd=ROOT)
    assert "INV-08" in result.rules, describe(result)


def test_a_hand_off_not_owned_is_played_and_not_judged() -> None:
    # The same integration, honest about what it does: the stand-in posts the credit memos
    # and no credit-memo rule is judged against the integration.
    owns = [h for h in SUBSETS["erp"] if h != "erp.credit_memos"]
    result = run_scenario(
        load_scenario(ROOT / "scenarios/09_credit_notes.yaml"), owning(owns), cwd=ROOT
    )
    assert result.passed, describe(result)
    not_judged = {item["rule"] for item in result.judged["not_judged"]}
    assert "INV-08" in not_judged and "INV-06" not in not_judged

"""The adversary's step kinds refuse, at load, what their judges could not judge fairly."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.scenario import ScenarioError, load_scenario

FIXTURES = """\
name: adversary
start_at: 2026-01-01T00:00:00Z
fixtures:
  entities: [{key: us, name: US Inc, currency: usd}]
  products: [{key: pro, name: Pro, ssp_minor: 10000}]
  prices: [{key: pro_monthly, product: pro, currency: usd, unit_amount: 10000}]
  customers: [{key: acme, name: Acme, entity: us, currency: usd}]
steps:
  - crm.create_opportunity: {key: deal, customer: acme, lines: [{price: pro_monthly}]}
"""


def load(tmp_path: Path, steps: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(FIXTURES + textwrap.indent(textwrap.dedent(steps), "  "))
    load_scenario(path)


def test_a_deal_reopened_while_the_integration_is_down_loads(tmp_path: Path) -> None:
    load(
        tmp_path,
        """\
        - integration: stop
        - crm.close_won: {opportunity: deal}
        - crm.reopen: {opportunity: deal}
        - integration: start
        """,
    )


@pytest.mark.parametrize(
    "steps",
    [
        # Won while the integration was up: it has made the subscription, which stays.
        "- crm.close_won: {opportunity: deal}\n- integration: stop\n"
        "- crm.reopen: {opportunity: deal}\n",
        # Won while down, but the integration is back by the reopen.
        "- integration: stop\n- crm.close_won: {opportunity: deal}\n- integration: start\n"
        "- crm.reopen: {opportunity: deal}\n",
        # Never won.
        "- integration: stop\n- crm.reopen: {opportunity: deal}\n",
    ],
    ids=["won_while_up", "back_up_before_the_reopen", "never_won"],
)
def test_a_reopen_of_a_win_the_integration_may_have_seen_is_refused(
    tmp_path: Path, steps: str
) -> None:
    with pytest.raises(ScenarioError, match="reopen only a win it has not acted on"):
        load(tmp_path, steps)


def test_a_reopen_to_a_closed_stage_is_refused(tmp_path: Path) -> None:
    steps = """\
        - integration: stop
        - crm.close_won: {opportunity: deal}
        - crm.reopen: {opportunity: deal, stage: Closed Lost}
        """
    with pytest.raises(ScenarioError, match="'Closed Lost' does not reopen the deal"):
        load(tmp_path, steps)


def test_a_forgery_under_a_fault_window_is_refused(tmp_path: Path) -> None:
    won = "- crm.close_won: {opportunity: deal}\n"
    on = "- faults.on: {name: slow, rules: [{system: revrec, kind: throttle, retry_after_s: 1}]}\n"
    forge = "- webhook.forge: {system: billing, kind: unsigned, event: invoice.finalized}\n"
    with pytest.raises(ScenarioError, match="forge a push with no fault window on"):
        load(tmp_path, won + on + forge)
    # Once the window is off, the same forgery loads.
    load(tmp_path, won + on + "- faults.off: {name: slow}\n" + forge)


@pytest.mark.parametrize(
    ("forge", "message"),
    [
        ("{system: crm, kind: unsigned}", "names the opportunity it claims closed"),
        ("{system: crm, kind: replayed, opportunity: deal}", "nothing to replay"),
        ("{system: billing, kind: stale}", "name the billing event type to copy"),
        (
            "{system: billing, kind: stale, event: invoice.paid, opportunity: deal}",
            "only a CRM push names an opportunity",
        ),
        ("{system: crm, kind: stale, opportunity: nobody}", "nobody"),
    ],
)
def test_a_forgery_that_cannot_be_made_is_refused(tmp_path: Path, forge: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        load(tmp_path, f"- webhook.forge: {forge}\n")

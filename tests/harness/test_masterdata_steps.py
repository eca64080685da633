"""The master-data steps load as documented: one ERP record named, entities checked at load."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scenario import ScenarioError, load_scenario
from harness.steps.masterdata import ErpDeactivate, ErpReactivate

SCENARIO = """\
name: master data
start_at: 2026-01-05T00:00:00Z
seed: 7
fixtures:
  entities: [{key: us, name: US Inc, currency: usd}]
  products: [{key: pro, name: Pro}]
  prices: [{key: pro_monthly, product: pro, currency: usd, unit_amount: 1000}]
  customers: [{key: acme, name: Acme, entity: us, currency: usd}]
steps:
  - erp.deactivate: {item: subscription}
  - erp.reactivate: {item: SERVICES}
  - erp.deactivate: {entity: us}
  - erp.reactivate: {entity: us}
"""


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return load_scenario(path)


def test_an_item_or_an_entity_is_named_as_documented(tmp_path: Path) -> None:
    scenario = _load(tmp_path, SCENARIO)
    params = [step.params for step in scenario.steps]  # type: ignore[attr-defined]
    assert [type(p) for p in params] == [ErpDeactivate, ErpReactivate, ErpDeactivate, ErpReactivate]
    assert [p.key() for p in params] == [
        "erp item subscription",
        "erp item SERVICES",
        "erp subsidiary us",
        "erp subsidiary us",
    ]


@pytest.mark.parametrize(
    ("step", "says"),
    [
        ("erp.deactivate: {item: subscription, entity: us}", "name one of customer, account"),
        ("erp.deactivate: {}", "name one of customer, account"),
        ("erp.deactivate: {entity: uss}", "no entity named 'uss'"),
        ("erp.deactivate: {item: 'SUB SCRIPTION'}", "item"),
    ],
)
def test_a_step_naming_none_two_or_an_unknown_record_fails_at_load(
    tmp_path: Path, step: str, says: str
) -> None:
    text = SCENARIO.replace("erp.deactivate: {item: subscription}", step)
    with pytest.raises(ScenarioError) as failed:
        _load(tmp_path, text)
    message = str(failed.value)
    assert ":10:" in message and says in message, message

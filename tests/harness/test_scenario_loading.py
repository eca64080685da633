"""Scenario files fail at load with file, line and a clear message; good ones load."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scenario import ScenarioError, load_scenario

GOOD = """\
name: new business to first invoice
start_at: 2026-01-05T00:00:00Z
seed: 7
fixtures:
  entities: [{key: us, name: US Inc, currency: usd}]
  products: [{key: pro, name: Pro}]
  prices: [{key: pro_monthly, product: pro, currency: usd, unit_amount: 1000}]
  customers: [{key: acme, name: Acme, entity: us, currency: usd}]
steps:
  - crm.create_account: {customer: acme}
  - crm.create_opportunity: {key: acme_pro, customer: acme, lines: [{price: pro_monthly}]}
  - crm.close_won: {opportunity: acme_pro}
  - clock.advance: P14D
  - integration: kill
  - expect: {invariants: all}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return path


def test_a_good_scenario_loads_with_its_steps_and_lines(tmp_path: Path) -> None:
    scenario = load_scenario(_write(tmp_path, GOOD))
    assert [s.kind for s in scenario.steps] == [
        "crm.create_account",
        "crm.create_opportunity",
        "crm.close_won",
        "clock.advance",
        "integration",
        "expect",
    ]
    assert scenario.steps[3].params.duration == "P14D"  # type: ignore[attr-defined]
    assert [s.line for s in scenario.steps] == [10, 11, 12, 13, 14, 15]


@pytest.mark.parametrize(
    "change, line, words",
    [
        ("  - clock.advance: P14D", 13, ["not an ISO-8601 duration"]),
        ("  - crm.close_won: {opportunity: acme_pro}", 12, ["unknown step"]),
        ("  - crm.close_won: {opportunity: acme_pro}", 12, ["unknown key"]),
        (
            "  - crm.close_won: {opportunity: acme_pro}",
            12,
            ["no opportunity named 'acme_plus'", "did you mean 'acme_pro'?"],
        ),
        ("seed: 7", 3, ["seed", "integer"]),
    ],
)
def test_bad_values_and_unknown_keys_fail_with_file_and_line(
    tmp_path: Path, change: str, line: int, words: list[str]
) -> None:
    broken = {
        "not an ISO-8601 duration": "  - clock.advance: fortnight",
        "unknown step": "  - crm.close_lost: {opportunity: acme_pro}",
        "unknown key": "  - crm.close_won: {opportunity: acme_pro, stage: Won}",
        "no opportunity named 'acme_plus'": "  - crm.close_won: {opportunity: acme_plus}",
        "seed": "seed: seven",
    }[words[0]]
    path = _write(tmp_path, GOOD.replace(change, broken))
    with pytest.raises(ScenarioError) as failed:
        load_scenario(path)
    message = str(failed.value)
    assert message.startswith(f"{path}:{line}:"), message
    for word in words:
        assert word in message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("unit_amount: 1000", "unit_amount: -5").replace(
        "entity: us, currency", "entity: eu, currency"
    )
    with pytest.raises(ScenarioError) as failed:
        load_scenario(_write(tmp_path, text))
    assert len(str(failed.value).splitlines()) >= 1
    assert "unit_amount" in str(failed.value)


def test_yaml_syntax_errors_have_a_line(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("seed: 7", "seed: [7"))
    with pytest.raises(Exception) as failed:
        load_scenario(path)
    assert f"{path}:" in str(failed.value) and "YAML" in str(failed.value)


def test_crm_custom_fields_are_checked_on_load(tmp_path: Path) -> None:
    fixture = "  customers: [{key: acme, name: Acme, entity: us, currency: usd}]\n"
    good = GOOD.replace(fixture, fixture + "  crm_custom_fields: {Opportunity: [Region__c]}\n")
    assert load_scenario(_write(tmp_path, good)).fixtures.crm_custom_fields == {
        "Opportunity": ["Region__c"]
    }
    bad = GOOD.replace(fixture, fixture + "  crm_custom_fields: {Opportunity: [Region]}\n")
    with pytest.raises(ScenarioError, match="Name__c"):
        load_scenario(_write(tmp_path, bad))

"""Scenario files fail at load with file, line and a clear message; good ones load."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
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


# Every kind of mistake at once: each (line, what the message must say).
TYPOS = """\
name: typos everywhere
sed: 3
start_at: 2026-01-01T00:00:00Z
fixtures:
  entities: [{key: us, name: US, currency: usd}]
  products: [{key: pro, name: Pro}]
  prices:
    - {key: pro_monthly, product: pro, currency: usd, unit_amount: 1000}
    - {key: pro_eur, product: pro, currency: eur, unit_amount: 900}
    - {key: ent_monthly, product: ent, currency: usd, unit_amount: -5}
  customers: [{key: acme, name: Acme, entity: uss, currency: usd}]
steps:
  - crm.create_opportunity: {key: deal, customer: acme, lines: [{price: pro_montly}]}
  - crm.close_won: {opportunity: deal}
  - billing.update_subscription:
      opportunity: dael
      lines: [{price: pro_monthly}, {price: pro_eur}]
  - faults.on:
      name: erp_down
      rules:
        - {system: erp, operation: createInvoce, kind: outage}
        - {system: billing, kind: duplicat}
        - {system: billing, operation: invoice.finalised, kind: drop}
  - clock.advance: P1M
  - faults.off: {name: erp_dwn}
  - expect:
      invariants: [INV-06, INV-6]
      figures:
        invoice_totl:deal:1: 1000
        invoice_total:deals:1: 1000
        recognised:us:2026-13: 5
        erp_invoice_total:deal:0: 1
        balance:acme: 0
  - clock.advance: {to: 2026-01-10T00:00:00Z}
  - billing.pay: {custmer: acme}
  - crm.close_wno: {opportunity: deal}
"""
WANTED = [
    (2, "sed: unknown key; did you mean 'seed'?"),
    (10, "fixtures.prices.2.unit_amount: Input should be greater than or equal to 0"),
    (11, "fixtures.customers[0].entity: no entity named 'uss'; did you mean 'us'?"),
    (13, "lines[0].price: no price named 'pro_montly' before this step; did you mean "),
    (16, "opportunity: no opportunity named 'dael' before this step; did you mean 'deal'?"),
    (17, "lines mix currencies eur, usd"),
    (21, "'createInvoce' matches no operationId of the erp system; did you mean 'createInvoice'"),
    (22, "unknown fault kind 'duplicat'; did you mean 'duplicate'?"),
    (23, "'invoice.finalised' matches no event type of the billing system; did you mean "),
    (25, "faults.off: name: no faults named 'erp_dwn' before this step; did you mean 'erp_down'?"),
    (27, "unknown invariant 'INV-6'; did you mean"),
    (29, "unknown figure 'invoice_totl'; did you mean 'invoice_total'"),
    (30, "figure 'invoice_total:deals:1': no opportunity or subscription named 'deals'"),
    (31, "figure 'recognised:us:2026-13': <month> is YYYY-MM"),
    (32, "figure 'erp_invoice_total:deal:0': <n> is a 1-based invoice number"),
    (34, "is before the clock (2026-02-01T00:00:00Z)"),
    (35, "billing.pay: custmer: unknown key; did you mean 'customer'?"),
    (36, "unknown step 'crm.close_wno'; did you mean 'crm.close_won'"),
]


def test_every_problem_is_reported_at_once_in_file_order_with_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, TYPOS)
    with pytest.raises(ScenarioError) as failed:
        load_scenario(path)
    lines = str(failed.value).splitlines()
    for line, words in WANTED:
        assert any(text.startswith(f"{path}:{line}:") and words in text for text in lines), (
            f"line {line}: {words!r} not in\n" + "\n".join(lines)
        )
    # Nothing else (but the key the misspelt one left missing), and in line order.
    assert len(lines) == len(WANTED) + 1, "\n".join(lines)
    assert f"{path}:35: billing.pay: customer: Field required" in lines
    numbers = [int(text.split(":")[1]) for text in lines]
    assert numbers == sorted(numbers)
    # The figure that names a real deal and customer passes.
    assert not any("balance:acme" in text for text in lines)


def test_a_deal_used_before_it_is_won_or_after_it_is_cancelled_is_a_load_error(
    tmp_path: Path,
) -> None:
    text = GOOD.replace(
        "  - clock.advance: P14D\n",
        "  - billing.cancel: {opportunity: acme_pro}\n"
        "  - billing.pay: {customer: acme}\n"
        "  - billing.update_subscription: {opportunity: acme_pro, lines: [{price: pro_monthly}]}\n"
        "  - clock.advance: P14D\n",
    ).replace(
        "  - crm.close_won: {opportunity: acme_pro}\n",
        "  - billing.cancel: {opportunity: acme_pro, at_period_end: true}\n"
        "  - crm.close_won: {opportunity: acme_pro}\n"
        "  - crm.close_won: {opportunity: acme_pro}\n",
    )
    path = _write(tmp_path, text)
    with pytest.raises(ScenarioError) as failed:
        load_scenario(path)
    message = str(failed.value)
    assert f"{path}:12: billing.cancel: 'acme_pro' is not won before this step" in message
    assert f"{path}:14: crm.close_won: 'acme_pro' is won already" in message
    assert f"{path}:17: billing.update_subscription: 'acme_pro' is cancelled before" in message
    assert len(message.splitlines()) == 3


def test_a_coupon_restricted_to_an_unknown_product_is_a_load_error(tmp_path: Path) -> None:
    text = GOOD.replace(
        "  customers: [{key: acme",
        "  coupons: [{key: half, percent_off: '50', applies_to: [pro, support]}]\n"
        "  customers: [{key: acme",
    )
    path = _write(tmp_path, text)
    with pytest.raises(ScenarioError) as failed:
        load_scenario(path)
    assert str(failed.value).splitlines() == [
        f"{path}:8: coupon half applies to 'support', which is not a fixture product"
    ]


def test_a_scenario_that_fails_validation_exits_2_naming_every_problem_and_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _write(tmp_path, GOOD)
    bad = tmp_path / "typos.yaml"
    bad.write_text(TYPOS)
    twin = tmp_path / "twin.yaml"
    twin.write_text(GOOD)
    config = Path(__file__).resolve().parents[2] / "harness.toml"
    code = main(["run", str(good), str(bad), str(twin), "--integration", str(config)])
    out = capsys.readouterr().err  # a usage error: one message on stderr, exit 2
    assert code == 2
    assert "nothing was run" in out and "Traceback" not in out
    assert f"{bad}:36: unknown step 'crm.close_wno'" in out
    assert f"{twin}:1: name 'new business to first invoice' is taken by {good}" in out
    assert main(["run", str(tmp_path / "missing.yaml"), "--integration", str(config)]) == 2
    assert "no such scenario file or directory" in capsys.readouterr().err


def test_yaml_syntax_errors_have_a_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, GOOD.replace("seed: 7", "seed: [7"))
    with pytest.raises(ScenarioError) as failed:
        load_scenario(path)
    assert str(failed.value).startswith(f"{path}:") and "YAML" in str(failed.value)
    config = Path(__file__).resolve().parents[2] / "harness.toml"
    assert main(["run", str(path), "--integration", str(config)]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_crm_custom_fields_are_checked_on_load(tmp_path: Path) -> None:
    fixture = "  customers: [{key: acme, name: Acme, entity: us, currency: usd}]\n"
    good = GOOD.replace(fixture, fixture + "  crm_custom_fields: {Opportunity: [Region__c]}\n")
    assert load_scenario(_write(tmp_path, good)).fixtures.crm_custom_fields == {
        "Opportunity": ["Region__c"]
    }
    bad = GOOD.replace(fixture, fixture + "  crm_custom_fields: {Opportunity: [Region]}\n")
    with pytest.raises(ScenarioError, match="Name__c"):
        load_scenario(_write(tmp_path, bad))

"""Batch steps: many customers in one step — loaded, named, predicted and played as the single
steps they stand for."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from harness import oracle
from harness.config import load_config
from harness.runner import run_scenario
from harness.scenario import ScenarioError, scenario_from_data

ROOT = Path(__file__).resolve().parents[2]
LINES = [{"price": "pro_monthly", "quantity": 2}]


def _scenario(steps: list[dict[str, Any]], customers: int = 3) -> dict[str, Any]:
    return {
        "name": "batch",
        "start_at": "2026-01-01T00:00:00Z",
        "fixtures": {
            "entities": [{"key": "us", "name": "Finsim Inc.", "currency": "usd"}],
            "products": [{"key": "pro", "name": "Pro plan", "ssp_minor": 10000}],
            "prices": [
                {"key": "pro_monthly", "product": "pro", "currency": "usd", "unit_amount": 10000}
            ],
            "customers": [
                {"key": f"c{n}", "name": f"Customer {n}", "entity": "us", "currency": "usd"}
                for n in range(1, customers + 1)
            ],
        },
        "steps": steps,
    }


BATCH = [
    {"crm.close_won_many": {"count": 3, "key": "deal{n}", "customer": "c{n}", "lines": LINES}},
    {"billing.pay_many": {"count": 3, "customer": "c{n}"}},
    {"clock.advance": "P1M"},
]
SINGLE = [
    *[
        {"crm.create_opportunity": {"key": f"deal{n}", "customer": f"c{n}", "lines": LINES}}
        for n in (1, 2, 3)
    ],
    *[{"crm.close_won": {"opportunity": f"deal{n}"}} for n in (1, 2, 3)],
    *[{"billing.pay": {"customer": f"c{n}"}} for n in (1, 2, 3)],
    {"clock.advance": "P1M"},
]


@pytest.mark.parametrize(
    "template", ["deal", "deal{m}", "deal{}", "deal{n}{x}", "deal{n", "deal{0}"]
)
def test_a_name_template_must_number_members_with_n_alone(template: str) -> None:
    steps = [
        {"crm.close_won_many": {"count": 2, "key": template, "customer": "c{n}", "lines": LINES}}
    ]
    with pytest.raises(ScenarioError, match=re.escape("must name each member with `{n}`")):
        scenario_from_data(_scenario(steps))


def test_members_use_and_give_names_as_single_steps_would() -> None:
    # Customer c4 is not a fixture; deal5 is never given (the batch gives deal1..deal4).
    steps = [
        {"crm.close_won_many": {"count": 4, "key": "deal{n}", "customer": "c{n}", "lines": LINES}},
        {"billing.pay": {"customer": "c3"}},
        {
            "crm.create_opportunity": {
                "key": "more",
                "customer": "c1",
                "kind": "renewal",
                "amends": "deal5",
                "lines": LINES,
            }
        },
    ]
    with pytest.raises(ScenarioError) as raised:
        scenario_from_data(_scenario(steps))
    message = str(raised.value)
    assert "customer[4]: no customer named 'c4'" in message
    assert "no opportunity named 'deal5'" in message
    assert len(message.splitlines()) == 2  # c1–c3 and deal1–deal4 are known


def test_the_oracle_predicts_a_batch_as_its_single_steps() -> None:
    batch = oracle.expect(scenario_from_data(_scenario(BATCH)))
    single = oracle.expect(scenario_from_data(_scenario(SINGLE)))
    assert not batch.notes
    assert batch.invoices.keys() == single.invoices.keys() == {"deal1", "deal2", "deal3"}
    for deal, invoices in single.invoices.items():
        # Two invoices per deal (January's, paid, and February's renewal): 2 seats × $100.
        assert [(i.total_minor, i.status, i.customer) for i in batch.invoices[deal]] == [
            (i.total_minor, i.status, i.customer) for i in invoices
        ]
        assert [i.total_minor for i in invoices] == [20000, 20000]
        assert invoices[0].status == "paid"
    assert batch.balances == single.balances


def test_a_batch_plays_through_the_reference_integration_and_is_judged_once() -> None:
    scenario = scenario_from_data(_scenario(BATCH))
    result = run_scenario(scenario, load_config(ROOT / "harness.toml"), cwd=ROOT)
    assert result.passed, [str(v) for v in result.violations] + [result.error or ""]
    assert [s.kind for s in result.steps] == [
        "fixtures",
        "crm.close_won_many",
        "billing.pay_many",
        "clock.advance",
        "final",
    ]
    assert len(result.lineage) == 3
    paid = [i for deal in result.lineage for i in deal["invoices"] if i["status"] == "paid"]
    assert len(paid) == 3
    # Every deal won in the batch counts for the closed-won → subscription SLA.
    won = sorted(s.subject for s in result.sla if s.name == "closed_won_to_subscription")
    assert won == ["deal1", "deal2", "deal3"]

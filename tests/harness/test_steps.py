"""The step registry: every kind complete, money never moved behind the oracle's back, the docs
generated from it, and the oracle following the billing-made subscriptions it used to skip."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from harness import oracle
from harness.scenario import Scenario, load_scenario, scenario_from_data
from harness.steps import STEPS, StepKind, figures_markdown, register, steps_markdown
from harness.steps.registry import Context, Problem

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "scenarios.md"


def _between(text: str, marker: str) -> str:
    return text.split(f"<!-- {marker}:start -->\n")[1].split(f"<!-- {marker}:end -->")[0]


def test_the_docs_step_and_figure_tables_are_the_registry() -> None:
    text = DOCS.read_text()
    assert _between(text, "steps") == steps_markdown(), "regenerate: steps_markdown()"
    assert _between(text, "figures") == figures_markdown(), "regenerate: figures_markdown()"
    for kind in STEPS:
        assert f"| `{kind}` |" in steps_markdown()


def test_every_step_that_moves_money_has_its_own_oracle_replay() -> None:
    money = [kind for kind, cls in STEPS.items() if cls.moves_money]
    # The lifecycle steps the oracle must follow, named here independently of the classes.
    assert set(money) >= {
        "crm.close_won",
        "billing.subscribe",
        "billing.create_subscription",
        "billing.update_subscription",
        "billing.cancel",
        "billing.report_usage",
        "billing.pay",
        "billing.credit_note",
        "clock.advance",
    }
    for kind in money:
        assert STEPS[kind].replay is not StepKind.replay, kind
        # And the fuzzer plays it: generated lifecycles move money every way a scenario can.
        assert STEPS[kind].not_generated is None, kind


def test_a_step_that_moves_money_without_a_replay_is_refused_at_registration() -> None:
    with pytest.raises(TypeError, match="moves money but has no oracle replay"):

        @register("billing.refund")
        class Refund(StepKind):
            """Refunds the latest payment."""

            moves_money: ClassVar[bool] = True
            customer: str

            def execute(self, run: Any) -> str:
                return "refunded"

    assert "billing.refund" not in STEPS


def test_a_step_without_an_executor_or_doc_row_is_refused() -> None:
    with pytest.raises(TypeError, match="no executor"):

        @register("billing.nothing")
        class Nothing(StepKind):
            """Does nothing."""

    with pytest.raises(TypeError, match="docstring"):

        @register("billing.undocumented")
        class Undocumented(StepKind):
            def execute(self, run: Any) -> str:
                return ""

    with pytest.raises(TypeError, match="give it a generator for the fuzzer"):

        @register("billing.ungenerated")
        class Ungenerated(StepKind):
            """Neither generated nor saying why not."""

            def execute(self, run: Any) -> str:
                return ""

    with pytest.raises(ValueError, match="registered twice"):
        register("clock.advance")(STEPS["clock.advance"])
    assert {"billing.nothing", "billing.undocumented", "billing.ungenerated"}.isdisjoint(STEPS)


def test_every_step_kind_is_played_by_a_shipped_scenario() -> None:
    played = {
        step.kind
        for path in sorted((ROOT / "scenarios").rglob("*.yaml"))
        for step in load_scenario(path).steps
    }
    assert set(STEPS) - played == set()


class _Bumps(StepKind):
    """Not registered: a step kind's own check, seen by the loader."""

    not_generated: ClassVar[str | None] = "a probe of the loader"

    def execute(self, run: Any) -> str:
        return ""

    def check(self, ctx: Context) -> Iterator[Problem]:
        yield Problem((), f"{len(ctx.names)} names known")


def test_a_registered_kind_is_loaded_validated_and_checked_by_its_class(tmp_path: Path) -> None:
    kind = "faults.probe"
    register(kind)(_Bumps)
    try:
        path = tmp_path / "s.yaml"
        path.write_text("name: probe\nsteps:\n  - faults.probe: {}\n  - faults.probe: {x: 1}\n")
        with pytest.raises(Exception) as failed:
            load_scenario(path)
        message = str(failed.value)
        assert f"{path}:3: faults.probe: 0 names known" in message
        assert f"{path}:4: faults.probe: x: unknown key" in message
    finally:
        del STEPS[kind]


# --- the oracle follows subscriptions made in billing ------------------------------------------
FIXTURES = """\
name: billing first
start_at: 2026-01-15T00:00:00Z
fixtures:
  entities: [{key: us, name: US Inc, currency: usd}]
  products: [{key: pro, name: Pro, ssp_minor: 10000}]
  prices: [{key: pro_monthly, product: pro, currency: usd, unit_amount: 10000}]
  customers:
    - {key: acme, name: Acme, entity: us, currency: usd}
    - {key: globex, name: Globex, entity: us, currency: usd}
"""


def _scenario(steps: str) -> Scenario:
    return scenario_from_data(yaml.safe_load(FIXTURES + textwrap.dedent(steps)))


def half_up(value: Fraction) -> int:
    return int(value + Fraction(1, 2))


def test_the_oracle_follows_a_self_serve_and_an_ops_made_subscription() -> None:
    expected = oracle.expect(
        _scenario("""\
        steps:
          - billing.subscribe:
              {key: self, customer: acme, lines: [{price: pro_monthly, quantity: 3}]}
          - billing.create_subscription:
              {key: ops, customer: globex, lines: [{price: pro_monthly, quantity: 2}]}
          - clock.advance: P10D
          - billing.update_subscription:
              subscription: ops
              lines: [{price: pro_monthly, quantity: 4}]
              proration_behavior: always_invoice
          - clock.advance: P22DT2H
        """)
    )
    self_serve, ops = expected.invoices["self"], expected.invoices["ops"]
    # Charged automatically: 3 × 100.00 at sign-up and again at the Feb 15 renewal, both paid.
    assert [(i.total_minor, i.status, i.amount_paid_minor) for i in self_serve] == [
        (30000, "paid", 30000),
        (30000, "paid", 30000),
    ]
    # Invoiced: 2 × 100.00 open; on Jan 25 two more seats for 21 of the period's 31 days,
    # invoiced at once; the renewal bills 4 seats.
    credit = half_up(Fraction(20000 * 21, 31))  # 13548
    debit = half_up(Fraction(40000 * 21, 31))  # 27097
    assert (credit, debit) == (13548, 27097)
    assert [(i.billing_reason, i.total_minor, i.status) for i in ops] == [
        ("subscription_create", 20000, "open"),
        ("subscription_update", debit - credit, "open"),
        ("subscription_cycle", 40000, "open"),
    ]
    # Each is booked as a contract in its customer's entity, over the default 12 months.
    assert {k: (c.entity, c.term_months) for k, c in expected.contracts.items()} == {
        "self": ("US", 12),
        "ops": ("US", 12),
    }
    assert oracle.figure(expected, "invoice_count:ops") == 3


def test_a_self_serve_sign_up_with_a_declining_card_is_noted_not_predicted() -> None:
    text = FIXTURES.replace(
        "{key: acme, name: Acme, entity: us, currency: usd}",
        "{key: acme, name: Acme, entity: us, currency: usd, "
        "payment_method: pm_card_chargeDeclined}",
    )
    scenario = scenario_from_data(
        yaml.safe_load(
            text
            + "steps:\n  - billing.subscribe: "
            + "{key: self, customer: acme, lines: [{price: pro_monthly, quantity: 3}]}\n"
        )
    )
    expected = oracle.expect(scenario)
    assert "self" not in expected.invoices
    assert any("declined" in note for note in expected.notes)


QUARTERLY = """\
name: quarterly
start_at: 2026-01-01T00:00:00Z
fixtures:
  entities: [{key: us, name: US Inc, currency: usd}]
  products: [{key: pro, name: Pro}, {key: ent, name: Enterprise}]
  prices:
    - {key: pro_q, product: pro, currency: usd, unit_amount: 9000, interval_count: 3}
    - {key: ent_q, product: ent, currency: usd, unit_amount: 15000, interval_count: 3}
  customers: [{key: acme, name: Acme, entity: us, currency: usd}]
steps:
  - billing.create_subscription: {key: deal, customer: acme, lines: [{price: pro_q, quantity: 100}]}
  - clock.advance: {to: 2026-02-15T00:00:00Z}
  - billing.update_subscription:
      subscription: deal
      lines: [{price: ent_q, quantity: 400}]
  - billing.invoice_now: {subscription: deal}
  - clock.advance: {to: 2026-07-01T02:00:00Z}
"""


def test_a_quarterly_price_renews_every_three_months_and_invoice_now_bills_the_prorations() -> None:
    expected = oracle.expect(scenario_from_data(yaml.safe_load(QUARTERLY)))
    invoices = expected.invoices["deal"]
    # Jan 1 – Apr 1 is 90 days; Feb 15 leaves 45 of them: half of each quarter's amount.
    credit = half_up(Fraction(100 * 9000 * 45, 90))
    debit = half_up(Fraction(400 * 15000 * 45, 90))
    assert [(i.billing_reason, i.total_minor, i.status) for i in invoices] == [
        ("subscription_create", 900000, "open"),
        ("manual", debit - credit, "open"),  # 2,550,000 at once, nothing left pending
        ("subscription_cycle", 6000000, "open"),  # Apr 1
        ("subscription_cycle", 6000000, "open"),  # Jul 1: three months later, not one
    ]
    assert expected.subscriptions["deal"].interval_months == 3
    assert expected.contracts["deal"].interval_months == 3


def test_interval_count_is_bounded_as_stripe_bounds_it(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        QUARTERLY.replace(
            "unit_amount: 9000, interval_count: 3",
            "unit_amount: 9000, interval: year, interval_count: 4",
        )
    )
    with pytest.raises(Exception, match="at most every 3 years"):
        load_scenario(path)

"""The oracle against the real billing simulator, driven through the real ``stripe`` SDK:
agreement on small scenarios, and a wrong simulator-side figure reported by name."""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from harness.books import take_books
from harness.oracle import compare, expect, figure
from harness.scenario import Scenario


def half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


Play = Callable[[Scenario], Any]
Make = Callable[[str], Scenario]

UPGRADE_AND_RENEW = """\
name: upgrade, usage, payment, credit and two renewals from a month-end anchor
start_at: 2026-01-31T00:00:00Z
steps:
  - crm.create_opportunity:
      key: deal
      customer: acme
      lines: [{price: pro_usd, quantity: 3}, {price: api_usd}]
  - crm.close_won: {opportunity: deal}
  - clock.advance: P10D
  - crm.create_opportunity:
      key: more_seats
      customer: acme
      kind: amendment
      amends: deal
      lines: [{price: pro_usd, quantity: 5}, {price: api_usd}, {price: support_usd}]
  - crm.close_won: {opportunity: more_seats}
  - billing.report_usage: {customer: acme, price: api_usd, value: 7, identifier: u1, repeat: 3}
  - billing.report_usage: {customer: acme, price: api_usd, value: 5, repeat: 2}
  - clock.advance: {to: 2026-03-01T02:00:00Z}
  - billing.pay: {customer: acme}
  - billing.credit_note: {customer: acme, amount: 1000}
  - clock.advance: {to: 2026-04-01T00:00:00Z}
"""

DOWNGRADE_AND_CANCEL = """\
name: downgrade invoiced at once, then cancelled with a proration credit
start_at: 2026-03-10T12:00:00Z
steps:
  - crm.create_opportunity:
      key: deal
      customer: acme
      lines: [{price: pro_usd, quantity: 4}, {price: support_usd, quantity: 1}]
  - crm.close_won: {opportunity: deal}
  - billing.credit_note: {customer: acme, amount: 2500}
  - clock.advance: PT100H
  - billing.update_subscription:
      opportunity: deal
      lines: [{price: pro_usd, quantity: 2}]
      proration_behavior: always_invoice
  - clock.advance: P3DT7H
  - billing.cancel: {opportunity: deal, prorate: true, invoice_now: true}
"""

CANCEL_AT_PERIOD_END = """\
name: usage billed in arrears when the subscription ends at its period end
start_at: 2026-01-15T00:00:00Z
steps:
  - crm.create_opportunity:
      key: deal
      customer: acme
      lines: [{price: pro_usd, quantity: 1}, {price: api_usd}]
  - crm.close_won: {opportunity: deal}
  - clock.advance: P20D
  - billing.report_usage: {customer: acme, price: api_usd, value: 1000, identifier: a}
  - billing.cancel: {opportunity: deal, at_period_end: true}
  - clock.advance: P1M
"""


def test_upgrade_usage_and_renewals_agree(billing_player: Play, scenario: Make) -> None:
    s = scenario(UPGRADE_AND_RENEW)
    expected = expect(s)
    player = billing_player(s)
    assert compare(expected, player.snapshot(), player.names) == []
    # Amendment at Feb 10 in [Jan 31, Feb 28): 18 of 28 days left, each line rounded
    # half-up. Usage at 3 cents: 7 once (u1 deduplicated), 5 once (a step's repeats without
    # an identifier are one event).
    left = Fraction(18, 28)
    prorations = -half_up(30000 * left) + half_up(50000 * left) + half_up(2500 * left)
    assert (-half_up(30000 * left), half_up(2500 * left)) == (-19286, 1607)
    renewal = 3 * (7 + 5) + 5 * 10000 + 2500 + prorations
    assert figure(expected, "invoice_count:deal") == 3
    assert figure(expected, "invoice_total:more_seats:2") == renewal
    # The 10.00 credit note on the paid renewal is customer credit, used by the next one.
    assert figure(expected, "amount_due:deal:3") == 52500 + 0 - 1000
    assert figure(expected, "balance:acme") == 0


def test_downgrade_and_cancellation_agree(billing_player: Play, scenario: Make) -> None:
    s = scenario(DOWNGRADE_AND_CANCEL)
    expected = expect(s)
    player = billing_player(s)
    assert compare(expected, player.snapshot(), player.names) == []
    assert [inv.billing_reason for inv in expected.invoices["deal"]] == [
        "subscription_create",
        "subscription_update",
        "subscription_cycle",
    ]


def test_cancel_at_period_end_agrees(billing_player: Play, scenario: Make) -> None:
    s = scenario(CANCEL_AT_PERIOD_END)
    expected = expect(s)
    player = billing_player(s)
    assert compare(expected, player.snapshot(), player.names) == []
    final = expected.invoices["deal"][-1]
    assert [(line.kind, line.amount_minor) for line in final.lines] == [("usage", 3000)]


def test_a_manual_extra_invoice_item_is_reported(billing_player: Play, scenario: Make) -> None:
    s = scenario(CANCEL_AT_PERIOD_END)
    expected = expect(s)
    # Play all but the last clock advance, slip in a figure the scenario never asked for,
    # then let the period end.
    player = billing_player(s.model_copy(update={"steps": s.steps[:-1]}))
    player.client.v1.invoice_items.create(
        params={
            "customer": player.names["customer:acme"],
            "subscription": player.names["opportunity:deal"],
            "amount": 500,
            "currency": "usd",
        }
    )
    player.clock_advance(s.steps[-1].params)
    found = compare(expected, player.snapshot(), player.names)
    assert len(found) == 1, found
    (invoice,) = found
    assert invoice.rule == "ORACLE"
    last = player.snapshot()["systems"]["billing"]["store"]["invoices"][-1]
    assert invoice.records == (f"billing:{last['id']}",)
    # 1000 units at 3 cents, plus the 5.00 nobody asked for.
    assert invoice.details["total"] == {"expected": 3000, "actual": 3500}
    assert invoice.details["lines"] == {
        "expected": [(3000, False)],
        "actual": [(500, False), (3000, False)],
    }


def test_compare_reads_the_runner_books(billing_player: Play, scenario: Make) -> None:
    s = scenario(UPGRADE_AND_RENEW)
    expected = expect(s)
    player = billing_player(s)
    assert compare(expected, take_books(player.world, {}), player.names) == []
    # The same books with one customer's balance moved behind the scenario's back.
    customer = player.world.systems["billing"].store.customers[player.names["customer:acme"]]
    customer.balance -= 1
    (found,) = compare(expected, take_books(player.world, {}), player.names)
    assert found.records == (f"billing:{customer.id}",)
    assert found.details == {"expected": 0, "actual": -1}

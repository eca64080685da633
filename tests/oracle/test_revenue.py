"""The oracle's revenue through changes, against figures worked out by hand in each test."""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction

import pytest

from harness.oracle import OracleError, figure
from harness.oracle import expect as oracle_expect
from harness.oracle.model import Expected
from harness.scenario import Scenario

Make = Callable[[str], Scenario]


def trunc(value: Fraction) -> int:
    return math.trunc(value)


def half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def expect(scenario: Make, text: str) -> Expected:
    return oracle_expect(scenario(text))


def test_a_crm_amendment_is_prospective(scenario: Make) -> None:
    # Scenario 04's figures: 10 seats at 20.00 from Mar 1, 15 from Mar 11 (21 of 31 days left).
    expected = expect(
        scenario,
        """\
        name: seat expansion
        start_at: 2026-03-01T00:00:00Z
        steps:
          - crm.create_opportunity:
              {key: land, customer: acme, lines: [{price: team_usd, quantity: 10}]}
          - crm.close_won: {opportunity: land}
          - clock.advance: P10D
          - crm.create_opportunity:
              {key: expand, customer: acme, kind: amendment, amends: land,
               lines: [{price: team_usd, quantity: 15}]}
          - crm.close_won: {opportunity: expand}
          - clock.advance: P1M
        """,
    )
    booked = 10 * 2000 * 12
    credit, debit = half_up(Fraction(10 * 2000 * 21, 31)), half_up(Fraction(15 * 2000 * 21, 31))
    paid = booked - credit + debit + 5 * 2000 * 11  # 11 periods after March
    assert paid == 356775
    # Mar 1 2026 – Mar 1 2027 is 365 days; by Mar 11, 10 of March's 31 days have ended.
    earned = trunc(Fraction(trunc(Fraction(booked * 31, 365)) * 10, 31))
    pool = booked - earned + (paid - booked)  # over the 355 days left
    march = earned + trunc(Fraction(pool * 21, 355))
    april = trunc(Fraction(pool * 30, 355))
    (line,) = expected.contracts["land"].lines
    assert (earned, march, april) == (6575, 27291, 29594)
    assert (line.schedule["2026-03"], line.schedule["2026-04"]) == (march, april)
    assert sum(line.schedule.values()) == line.allocated_minor == paid
    assert figure(expected, "allocated:expand:team_usd") == paid
    # As of Apr 11 00:00: March whole, April's first 10 days.
    assert figure(expected, "recognised:us:2026-03") == march
    assert figure(expected, "recognised:us:2026-04") == trunc(Fraction(april * 10, 30))


def test_a_price_change_without_prorations_moves_the_rest_to_the_new_line(
    scenario: Make,
) -> None:
    # Scenario 05's lifecycle: Enterprise at 500.00 from Jan 1, Pro at 100.00 from Jan 21,
    # without prorations: billing charges Pro from the Feb 1 renewal on.
    expected = expect(
        scenario,
        """\
        name: downgrade
        start_at: 2026-01-01T00:00:00Z
        steps:
          - crm.create_opportunity: {key: deal, customer: acme, lines: [{price: ent_usd}]}
          - crm.close_won: {opportunity: deal}
          - clock.advance: P20D
          - billing.update_subscription:
              {opportunity: deal, lines: [{price: pro_usd}], proration_behavior: none}
          - clock.advance: P12D
        """,
    )
    ent, pro = expected.contracts["deal"].lines
    # Enterprise ends at the change, having billed January only: 50000 in all; by Jan 21 it has
    # earned 20 of January's 31 days of trunc(600000 × 31 / 365).
    earned = trunc(Fraction(trunc(Fraction(600000 * 31, 365)) * 20, 31))
    assert (ent.terminated_at, ent.amount_minor, ent.allocated_minor) == (
        ent.service_end_at,
        50000,
        earned,
    )
    # Pro is paid for the 11 months from February; the pool — what Enterprise leaves
    # unrecognised, plus the changes in consideration — goes to it over Jan 21 – Dec 31.
    pool = (600000 - earned) + (50000 - 600000) + 10000 * 11
    assert (earned, pool) == (32876, 127124)
    # Its SSP covers the same 11 months at the product's 120.00 a month.
    assert pro.allocated_minor == pool and pro.unit_ssp_minor == 12000 * 11
    assert pro.schedule["2026-01"] == trunc(Fraction(pool * 11, 345))
    assert figure(expected, "recognised:us:2026-01") == earned + trunc(Fraction(pool * 11, 345))
    assert sum(ent.schedule.values()) + sum(pro.schedule.values()) == 50000 + 110000


def test_a_cancellation_at_the_period_end_shortens_the_service(scenario: Make) -> None:
    # Scenario 07: 4 seats at 25.00 from Feb 1, cancelled at the period end on Feb 10.
    expected = expect(
        scenario,
        """\
        name: cancel at end
        start_at: 2026-02-01T00:00:00Z
        steps:
          - crm.create_opportunity:
              {key: deal, customer: acme, lines: [{price: team25_usd, quantity: 4}]}
          - crm.close_won: {opportunity: deal}
          - clock.advance: P9D
          - billing.cancel: {opportunity: deal, at_period_end: true}
          - clock.advance: P1M
        """,
    )
    (line,) = expected.contracts["deal"].lines
    paid = 4 * 2500 * 12 - 4 * 2500 * 11  # the 11 periods after February are never billed
    # By Feb 10, 9 of February's 28 days of trunc(120000 × 28 / 365); the rest by Mar 1.
    earned = trunc(Fraction(trunc(Fraction(120000 * 28, 365)) * 9, 28))
    assert (paid, earned) == (10000, 2958)
    assert line.service_end_at == expected.subscriptions["deal"].ended_at
    assert line.schedule == {"2026-02": paid}
    assert figure(expected, "deferred:us") == 0


def test_a_change_reallocates_by_the_ssp_of_what_remains(scenario: Make) -> None:
    # Two obligations whose prices are not in proportion to their SSPs: 2 Pro seats (100.00,
    # SSP 120.00) and Premium support (25.00, SSP 50.00); a third seat on Apr 11.
    expected = expect(
        scenario,
        """\
        name: two lines
        start_at: 2026-04-01T00:00:00Z
        steps:
          - crm.create_opportunity:
              key: deal
              customer: acme
              lines: [{price: pro_usd, quantity: 2}, {price: premium_usd, quantity: 1}]
          - crm.close_won: {opportunity: deal}
          - clock.advance: P10D
          - billing.update_subscription:
              opportunity: deal
              lines: [{price: pro_usd, quantity: 3}, {price: premium_usd, quantity: 1}]
          - clock.advance: P1M
        """,
    )
    pro, premium = expected.contracts["deal"].lines
    # Booking: 270000 by SSP 2 × 12000 : 5000 (× 12 alike); the unit left goes to Premium's
    # larger remainder (46551.72 against 223448.27).
    assert (pro.segments[0].amount_minor, premium.segments[0].amount_minor) == (223448, 46552)
    # By Apr 11, 10 of April's 30 days (of 365 from Apr 1).
    earned_pro = trunc(Fraction(trunc(Fraction(223448 * 30, 365)) * 10, 30))
    earned_premium = trunc(Fraction(trunc(Fraction(46552 * 30, 365)) * 10, 30))
    assert (earned_pro, earned_premium) == (6121, 1275)
    credit, debit = half_up(Fraction(20000 * 20, 30)), half_up(Fraction(30000 * 20, 30))
    paid_pro = 240000 - credit + debit + 10000 * 11
    pool = (223448 - earned_pro) + (46552 - earned_premium) + (paid_pro - 240000)
    # Re-allocated by the SSP of what remains: 3 × 144000 and 60000, each × 355/365 alike.
    exact_pro, exact_premium = Fraction(pool * 432000, 492000), Fraction(pool * 60000, 492000)
    share_pro, share_premium = math.floor(exact_pro), math.floor(exact_premium)
    if share_pro + share_premium < pool:  # one unit left: the larger remainder takes it
        if exact_pro - share_pro >= exact_premium - share_premium:
            share_pro += 1
        else:
            share_premium += 1
    assert (pro.allocated_minor, premium.allocated_minor) == (
        earned_pro + share_pro,
        earned_premium + share_premium,
    )
    assert pro.schedule["2026-04"] == earned_pro + trunc(Fraction(share_pro * 20, 355))
    assert premium.schedule["2026-04"] == earned_premium + trunc(Fraction(share_premium * 20, 355))
    # The transaction price after the change is what the customer pays in all.
    total = sum(pro.schedule.values()) + sum(premium.schedule.values())
    assert total == paid_pro + 2500 * 12


def test_a_credit_note_credits_the_lines_by_what_each_was_billed(scenario: Make) -> None:
    expected = expect(
        scenario,
        """\
        name: credit two lines
        start_at: 2026-01-01T00:00:00Z
        steps:
          - crm.create_opportunity:
              key: deal
              customer: acme
              lines: [{price: pro_usd, quantity: 2}, {price: support_usd, quantity: 1}]
          - crm.close_won: {opportunity: deal}
          - clock.advance: P5D
          - billing.credit_note: {customer: acme, amount: 5000}
        """,
    )
    pro, support = expected.contracts["deal"].lines
    # 5000 over 20000 : 2500 is 4444.44 and 555.56: the unit left goes to support.
    assert [amount for _, amount in pro.billed] == [20000, -4444]
    assert [amount for _, amount in support.billed] == [2500, -556]
    # And it is a price concession (docs/reference-flow.md): each line's consideration falls
    # by its part, and the allocations sum to the lowered price.
    assert (pro.amount_minor, support.amount_minor) == (20000 * 12 - 4444, 2500 * 12 - 556)
    assert pro.allocated_minor + support.allocated_minor == 22500 * 12 - 5000


def test_a_crm_renewal_takes_effect_at_the_period_end(scenario: Make) -> None:
    expected = expect(
        scenario,
        """\
        name: renewal
        start_at: 2026-01-01T00:00:00Z
        steps:
          - crm.create_opportunity:
              {key: deal, customer: acme, lines: [{price: pro_usd, quantity: 5}]}
          - crm.close_won: {opportunity: deal}
          - clock.advance: P10D
          - crm.create_opportunity:
              {key: renew, customer: acme, kind: renewal, amends: deal,
               lines: [{price: pro_usd, quantity: 3}]}
          - crm.close_won: {opportunity: renew}
          - clock.advance: P1MT2H
        """,
    )
    (line,) = expected.contracts["deal"].lines
    (change,) = expected.changes
    assert (change.kind, change.at) == ("renewal", 1769904000)  # 2026-02-01T00:00:00Z
    # January keeps the 5 seats it was billed for; from Feb 1, 2 seats fewer for 11 months.
    january = trunc(Fraction(600000 * 31, 365))
    paid = 600000 - 2 * 10000 * 11
    pool = 600000 - january + (paid - 600000)  # over Feb 1 – Dec 31, 334 days
    assert line.schedule["2026-01"] == january
    assert line.schedule["2026-02"] == trunc(Fraction(pool * 28, 334))
    assert line.allocated_minor == paid == 380000


def test_usage_is_recognised_when_consumed_once_it_is_invoiced(scenario: Make) -> None:
    steps = """\
        name: usage
        start_at: 2026-01-01T00:00:00Z
        steps:
          - crm.create_opportunity:
              {key: deal, customer: acme, lines: [{price: pro_usd}, {price: api_usd}]}
          - crm.close_won: {opportunity: deal}
          - clock.advance: P5D
          - billing.report_usage: {customer: acme, price: api_usd, value: 1200}
          - clock.advance: P10D
          - billing.report_usage: {customer: acme, price: api_usd, value: 800, repeat: 3}
        """
    before = expect(scenario, steps + "  - clock.advance: P4D\n")
    after = expect(scenario, steps + "  - clock.advance: P17DT2H\n")
    # By Jan 20 the usage is not invoiced: the subledger cannot know it yet.
    assert before.contracts["deal"].lines[1].schedule == {}
    # The Feb 1 invoice bills January's 2000 calls at 3 cents: recognised in January.
    calls = after.contracts["deal"].lines[1]
    assert calls.schedule == {"2026-01": 2000 * 3}
    assert [amount for _, amount in calls.billed] == [6000]
    pro_january = trunc(Fraction(10000 * 12 * 31, 365))
    assert figure(after, "recognised:us:2026-01") == pro_january + 6000


def test_a_term_of_part_periods_leaves_its_entity_unpredicted(scenario: Make) -> None:
    expected = expect(
        scenario,
        """\
        name: eighteen months billed yearly
        start_at: 2026-01-01T00:00:00Z
        steps:
          - crm.create_opportunity:
              {key: deal, customer: acme, lines: [{price: pro_annual}], term_months: 18}
          - crm.close_won: {opportunity: deal}
          - clock.advance: P1M
        """,
    )
    assert expected.notes == ["deal: term is not whole billing periods"]
    assert not expected.contracts["deal"].predicted
    for name in ("recognised:us:2026-01", "deferred:us"):
        with pytest.raises(OracleError, match="not predicted"):
            figure(expected, name)


def test_a_cancellation_without_proration_recognises_the_period_billed(scenario: Make) -> None:
    expected = expect(
        scenario,
        """\
        name: cancel now, no credit
        start_at: 2026-01-01T00:00:00Z
        steps:
          - crm.create_opportunity:
              {key: deal, customer: acme, lines: [{price: pro_usd, quantity: 2}]}
          - crm.close_won: {opportunity: deal}
          - clock.advance: P10D
          - billing.cancel: {opportunity: deal}
          - clock.advance: P1M
        """,
    )
    (line,) = expected.contracts["deal"].lines
    # No credit: the customer paid January in full (20000) and nothing after it, so all of
    # it is recognised by the cancellation on Jan 11; 10 days had earned less than that.
    earned = trunc(Fraction(trunc(Fraction(240000 * 31, 365)) * 10, 31))
    assert earned == 6575 < 20000
    assert line.allocated_minor == 2 * 10000 * 12 - 2 * 10000 * 11 == 20000
    assert line.schedule == {"2026-01": 20000}
    assert figure(expected, "deferred:us") == 0

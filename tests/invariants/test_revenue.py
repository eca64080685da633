"""Revenue through changes: each invariant holds after a correct flow and fires on one bug, and
the oracle catches a subledger that keeps its 12-month schedule after a cancellation.

The lifecycles follow scenarios 06 (cancel now with a credit), 07 (cancel at the period end) and
04 (seat expansion), from the stack's start, Jan 15 2026: the term is Jan 15 2026 – Jan 15 2027,
365 days; the first period Jan 15 – Feb 15 has 31 days, and 11 billing periods follow it.
Expected figures are worked out here by hand from the documented rules.
"""

from __future__ import annotations

import dataclasses
import math
import textwrap
from fractions import Fraction
from pathlib import Path
from typing import Any

from harness.oracle import compare, expect
from harness.scenario import load_scenario
from harness.violations import Violation
from tests.invariants import flow
from tests.invariants.helpers import fires, holds
from tests.invariants.stack import SEED, START_AT, Stack

TERM_DAYS = 365
LATER = 11  # billing periods after the first one, Feb 15 2026 – Jan 15 2027


def trunc(value: Fraction) -> int:
    return math.trunc(value)


def half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def earned_by_day(amount: int, months: list[int], days_done: int) -> int:
    """What ``amount`` over TERM_DAYS days has earned after ``days_done`` days, with ``months``
    the days of each calendar month of the term from its start: whole months' shares
    trunc(amount × days ÷ 365), then the month under way pro rata to its days (truncated)."""
    earned = 0
    for days in months:
        share = trunc(Fraction(amount * days, TERM_DAYS))
        if days_done >= days:
            earned, days_done = earned + share, days_done - days
        else:
            return earned + trunc(Fraction(share * days_done, days))
    return earned


# January 15–31 is 17 days, then February's 28.
FIRST_MONTHS = [17, 28]


def _prorations(stack: Stack, deal: flow.Deal) -> int:
    """The net of the prorations billing made for the deal's subscription (Stripe's figures,
    which the flow reads back, as the reference integration does)."""
    return sum(
        ii.amount
        for ii in stack.books().invoice_items.values()
        if ii.proration and ii.subscription == deal.subscription
    )


def modify(stack: Stack, deal: flow.Deal, external_id: str, changes: list[dict[str, Any]]) -> None:
    """The flow's prospective modification, effective now."""
    stack.revrec(
        "POST",
        f"/v1/contracts/{deal.contract}/modifications",
        {
            "external_id": external_id,
            "effective_at": stack.world.clock.now(),
            "treatment": "prospective",
            "changes": changes,
        },
    )


def oracle(stack: Stack, tmp_path: Path, deal: flow.Deal, unit: int, steps: str) -> list[Violation]:
    """The oracle's findings for the lifecycle written as a scenario, against the stack's books."""
    key = f"pro_usd_{unit}_0"  # the flow's price lookup key
    path = tmp_path / "lifecycle.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        name: lifecycle
        start_at: 2026-01-15T00:00:00Z
        fixtures:
          entities: [{{key: us, name: US, currency: usd}}]
          products: [{{key: pro, name: Pro}}]
          prices: [{{key: {key}, product: pro, currency: usd, unit_amount: {unit}}}]
          customers: [{{key: acme, name: Acme, entity: us, currency: usd}}]
        steps:
        """)
        + textwrap.indent(textwrap.dedent(steps), "  ")
    )
    names = {"opportunity:deal": deal.subscription, "customer:acme": deal.customer}
    return compare(expect(load_scenario(path)), stack.books(), names)


# --- cancelled now with a proration credit (scenario 06) --------------------------------------
CANCEL_NOW_AT = "2026-01-25T00:00:00Z"  # 10 days used, 21 of 31 unused
# Two seats at 100.00 a month: credit round½↑(2 × 10000 × 21 / 31) = round½↑(13548.39).
CREDIT = half_up(Fraction(2 * 10000 * 21, 31))
BILLED_NOW = 2 * 10000 - CREDIT  # 6452: what the customer pays in all
CANCEL_NOW_STEPS = f"""\
- crm.create_opportunity:
    {{key: deal, customer: acme, lines: [{{price: pro_usd_10000_0, quantity: 2}}]}}
- crm.close_won: {{opportunity: deal}}
- clock.advance: {{to: "{CANCEL_NOW_AT}"}}
- billing.cancel: {{opportunity: deal, prorate: true, invoice_now: true}}
- clock.advance: {{to: "2026-02-20T00:00:00Z"}}
"""


def _cancelled_now(stack: Stack, *, mirrored: bool) -> flow.Deal:
    deal = flow.new_deal(stack, quantity=2, unit_amount=10000)
    final = flow.cancel_now(stack, deal, CANCEL_NOW_AT)
    flow.sync_credit_invoice(stack, final)
    if mirrored:
        # The line's consideration is what the customer pays: the booked 12 months, Stripe's
        # credit for the unused days, less the 11 months never billed.
        credit = stack.books().invoices[final].total
        amount = 2 * 10000 * 12 + credit - 2 * 10000 * LATER
        modify(
            stack,
            deal,
            "cancel",
            [{"line": deal.items[0], "terminate": True, "amount_minor": amount}],
        )
    stack.advance_to("2026-02-20T00:00:00Z")
    return deal


def test_inv31_holds(stack: Stack) -> None:
    _cancelled_now(stack, mirrored=True)
    holds(stack, "INV-31")


def test_inv31_violated(stack: Stack) -> None:
    # The independent integration: the subledger keeps the 12-month schedule after the
    # cancellation, so the contract will recognise the whole 240000 of 6452 billed.
    deal = _cancelled_now(stack, mirrored=False)
    (found,) = fires(stack, "INV-31", f"billing:{deal.subscription}", f"revrec:{deal.contract}")
    # By Feb 20: Jan 15 – Feb 19, all 17 days of January and 19 of February.
    so_far = earned_by_day(240000, FIRST_MONTHS, 17 + 19)
    assert found.details == {
        "billed_minor": BILLED_NOW,
        "lifetime_minor": 240000,
        "recognised_minor": so_far,
    }
    assert BILLED_NOW == 6452 and so_far == 11178 + 12492


def test_inv19_holds_after_a_cancellation(stack: Stack) -> None:
    _cancelled_now(stack, mirrored=True)
    holds(stack, "INV-19")


def test_inv19_violated_by_a_cancellation_left_out(stack: Stack) -> None:
    deal = _cancelled_now(stack, mirrored=False)
    (found,) = fires(stack, "INV-19", f"billing:{deal.subscription}", f"revrec:{deal.contract}")
    assert "still runs to" in found.message


def test_the_oracle_catches_a_cancellation_left_out(stack: Stack, tmp_path: Path) -> None:
    right = _cancelled_now(stack, mirrored=True)
    assert oracle(stack, tmp_path, right, 10000, CANCEL_NOW_STEPS) == []
    stack.world.reset(seed=SEED, start_at=START_AT)
    wrong = _cancelled_now(stack, mirrored=False)
    (found,) = oracle(stack, tmp_path, wrong, 10000, CANCEL_NOW_STEPS)
    assert found.records == (f"revrec:{wrong.contract}", f"revrec:{_line(stack, wrong)}")
    assert "revenue over its life 240000, the oracle 6452" in found.message
    # The oracle: all 6452 in January, nothing deferred or unbilled at the end of January
    # (billed 20000 − 13548 in January) or now.
    assert found.details["expected"]["schedule"] == {"2026-01": BILLED_NOW}
    assert found.details["expected"]["allocated"] == BILLED_NOW
    assert found.details["expected"]["as_of"] == {
        "recognised": BILLED_NOW,
        "billed": BILLED_NOW,
        "deferred": 0,
        "unbilled": 0,
    }
    # The books: January and February earn their days' share of 240000, and January ends
    # with 11178 recognised of 6452 billed: 4726 unbilled.
    january = trunc(Fraction(240000 * 17, TERM_DAYS))
    assert found.details["actual"]["schedule"]["2026-01"] == january == 11178
    assert found.details["actual"]["month_ends"] == {"2026-01": [0, january - BILLED_NOW]}


def _line(stack: Stack, deal: flow.Deal) -> str:
    contract = stack.books().rr_contracts[deal.contract]
    return contract.lines[0]


# --- cancelled at the period end (scenario 07) ---------------------------------------------------
PERIOD_END = "2026-02-15T00:00:00Z"
CANCEL_AT_END_STEPS = """\
- crm.create_opportunity:
    {key: deal, customer: acme, lines: [{price: pro_usd_2500_0, quantity: 4}]}
- crm.close_won: {opportunity: deal}
- clock.advance: {to: "2026-01-24T00:00:00Z"}
- billing.cancel: {opportunity: deal, at_period_end: true}
- clock.advance: {to: "2026-02-20T00:00:00Z"}
"""


def _cancelled_at_period_end(stack: Stack, *, mirrored: bool, until: str) -> flow.Deal:
    deal = flow.new_deal(stack, quantity=4, unit_amount=2500)
    stack.advance_to("2026-01-24T00:00:00Z")
    stack.billing(
        "POST",
        f"/v1/subscriptions/{deal.subscription}",
        {"cancel_at_period_end": True},
        harness=True,
    )
    if mirrored:
        # The service ends at the period end, less the 11 periods that will not be billed.
        ends = stack.books().subscriptions[deal.subscription].cancel_at
        amount = 4 * 2500 * 12 - 4 * 2500 * LATER
        modify(
            stack,
            deal,
            "cancel-at-end",
            [{"line": deal.items[0], "service_end_at": ends, "amount_minor": amount}],
        )
    stack.advance_to(until)
    return deal


def test_inv32_holds(stack: Stack) -> None:
    _cancelled_at_period_end(stack, mirrored=True, until="2026-02-20T00:00:00Z")
    holds(stack, "INV-32")
    holds(stack, "INV-31")


def test_inv32_violated(stack: Stack) -> None:
    deal = _cancelled_at_period_end(stack, mirrored=False, until="2026-02-20T00:00:00Z")
    (found,) = fires(stack, "INV-32", f"revrec:{deal.contract}", f"billing:{deal.subscription}")
    # Earned by the end of Feb 14: January's 17 days and 14 of February's 28 days, of 120000.
    by_end = earned_by_day(120000, FIRST_MONTHS, 17 + 14)
    assert found.details["after_end_minor"] == 120000 - by_end
    assert by_end == 5589 + 4602
    # And the contract recognises 120000 over its life for the 10000 billed.
    (ended,) = fires(stack, "INV-31", f"billing:{deal.subscription}")
    assert (ended.details["lifetime_minor"], ended.details["billed_minor"]) == (120000, 10000)


def test_inv19_holds_while_a_cancellation_is_scheduled(stack: Stack) -> None:
    _cancelled_at_period_end(stack, mirrored=True, until="2026-02-01T00:00:00Z")
    holds(stack, "INV-19")
    holds(stack, "INV-32")


def test_inv19_violated_by_a_scheduled_cancellation_left_out(stack: Stack) -> None:
    deal = _cancelled_at_period_end(stack, mirrored=False, until="2026-02-01T00:00:00Z")
    (found,) = fires(stack, "INV-19", f"billing:{deal.subscription}", f"revrec:{deal.contract}")
    assert "is scheduled to end" in found.message
    # Revenue scheduled past the scheduled end counts too.
    fires(stack, "INV-32", f"revrec:{deal.contract}")


def test_the_oracle_catches_a_cancellation_at_the_period_end_left_out(
    stack: Stack, tmp_path: Path
) -> None:
    right = _cancelled_at_period_end(stack, mirrored=True, until="2026-02-20T00:00:00Z")
    assert oracle(stack, tmp_path, right, 2500, CANCEL_AT_END_STEPS) == []
    stack.world.reset(seed=SEED, start_at=START_AT)
    wrong = _cancelled_at_period_end(stack, mirrored=False, until="2026-02-20T00:00:00Z")
    (found,) = oracle(stack, tmp_path, wrong, 2500, CANCEL_AT_END_STEPS)
    assert "revenue over its life 120000, the oracle 10000" in found.message
    # The oracle: by Jan 24, 9 days earned of the 120000; then the 10000 billed for the period,
    # less that, over the 22 days left of it (Jan 24 – Feb 14): 8 in January, 14 in February.
    before = earned_by_day(120000, FIRST_MONTHS, 9)
    rest = 10000 - before
    january = before + trunc(Fraction(rest * 8, 22))
    assert found.details["expected"]["schedule"] == {"2026-01": january, "2026-02": 10000 - january}


# --- seats added mid-period (scenario 04) -------------------------------------------------------
SEATS_STEPS = """\
- crm.create_opportunity:
    {key: deal, customer: acme, lines: [{price: pro_usd_2000_0, quantity: 10}]}
- crm.close_won: {opportunity: deal}
- clock.advance: {to: "2026-01-25T00:00:00Z"}
- billing.update_subscription: {opportunity: deal, lines: [{price: pro_usd_2000_0, quantity: 15}]}
- clock.advance: {to: "2026-02-20T00:00:00Z"}
"""


def _seats_added(stack: Stack, *, amount: bool) -> flow.Deal:
    deal = flow.new_deal(stack, quantity=10, unit_amount=2000)
    stack.advance_to("2026-01-25T00:00:00Z")
    stack.billing(
        "POST",
        f"/v1/subscriptions/{deal.subscription}",
        {
            "items": [{"id": deal.items[0], "quantity": 15}],
            "proration_behavior": "create_prorations",
        },
        key=f"seats-{deal.subscription}",
    )
    change: dict[str, Any] = {"line": deal.items[0], "quantity": 15}
    if amount:
        change["amount_minor"] = 10 * 2000 * 12 + _prorations(stack, deal) + 5 * 2000 * LATER
    # Without an amount, the subledger prices the line at 15 seats for the whole term.
    modify(stack, deal, "seats", [change])
    stack.advance_to("2026-02-20T00:00:00Z")
    renewal = [
        inv.id
        for inv in stack.books().invoices.values()
        if inv.subscription == deal.subscription and inv.id not in deal.invoices
    ]
    for invoice in renewal:
        _sync_netted(stack, invoice)
    return deal


def _sync_netted(stack: Stack, invoice_id: str) -> None:
    """The renewal with its prorations: one ERP line netted per item (the ERP refuses negative
    lines), and the subledger billing event."""
    inv = stack.books().invoices[invoice_id]
    assert inv.finalized_at is not None
    stack.erp_write(
        "PUT",
        f"/invoice/eid:{invoice_id}",
        {
            "entity": {"externalId": inv.customer},
            "subsidiary": {"externalId": "US"},
            "currency": {"externalId": "USD"},
            "tranDate": flow.utc_day(inv.finalized_at),
            "item": {
                "items": [{"item": {"externalId": "SUBSCRIPTION"}, "amount": flow.major(inv.total)}]
            },
        },
    )
    flow.bill(stack, invoice_id)


def test_the_oracle_follows_seats_added_mid_period(stack: Stack, tmp_path: Path) -> None:
    right = _seats_added(stack, amount=True)
    assert oracle(stack, tmp_path, right, 2000, SEATS_STEPS) == []
    holds(stack, "INV-33")
    stack.world.reset(seed=SEED, start_at=START_AT)
    wrong = _seats_added(stack, amount=False)
    (found,) = oracle(stack, tmp_path, wrong, 2000, SEATS_STEPS)
    # What the customer pays: 10 seats for the term, the prorations for Jan 25 – Feb 14 (21 of
    # 31 days), and 5 more seats for the 11 later months.
    credit = half_up(Fraction(10 * 2000 * 21, 31))
    debit = half_up(Fraction(15 * 2000 * 21, 31))
    paid = 240000 - credit + debit + 5 * 2000 * LATER
    assert (credit, debit, paid) == (13548, 20323, 356775)
    assert found.details["expected"]["allocated"] == paid
    assert found.details["actual"]["allocated"] == 15 * 2000 * 12


# --- a downgrade priced over the whole term (INV-33) ----------------------------------------
def _downgraded(stack: Stack, *, whole_term: bool) -> flow.Deal:
    """10 seats at 10.00 a month from Jan 15, cut to 1 seat on Jul 20 with prorations."""
    deal = flow.new_deal(stack, quantity=10, unit_amount=1000)
    stack.advance_to("2026-07-20T00:00:00Z")
    stack.billing(
        "POST",
        f"/v1/subscriptions/{deal.subscription}",
        {
            "items": [{"id": deal.items[0], "quantity": 1}],
            "proration_behavior": "create_prorations",
        },
        key=f"down-{deal.subscription}",
    )
    prorations = _prorations(stack, deal)
    # Right: what is paid in all (5 periods after Jul 15 – Aug 15 remain, at 9 seats fewer).
    # Wrong: the new quantity priced over the whole term, as if nothing had been billed.
    amount = 1 * 1000 * 12 if whole_term else 10 * 1000 * 12 + prorations - 9 * 1000 * 5
    modify(stack, deal, "down", [{"line": deal.items[0], "quantity": 1, "amount_minor": amount}])
    return deal


def test_inv33_holds(stack: Stack) -> None:
    _downgraded(stack, whole_term=False)
    holds(stack, "INV-33")


def test_inv33_violated(stack: Stack) -> None:
    # The wrong downgrade (the new quantity priced over the whole term) takes back more than
    # is left to recognise. The revrec simulator reverses that at once (docs/revrec.md); a
    # subledger that spread the negative pool over the rest of the term instead — what ours
    # did before — leaves the line above its allocation. Its version is written here.
    deal = _downgraded(stack, whole_term=True)
    store = stack.world.systems["revrec"].store  # type: ignore[attr-defined]
    (line,) = [ln for ln in store.lines.values() if ln.external_id == deal.items[0]]
    # By Jul 20, 186 days of 120000 are earned (Jan 15 – Jul 19).
    months = [17, 28, 31, 30, 31, 30, 31]
    earned = earned_by_day(120000, months, 17 + 28 + 31 + 30 + 31 + 30 + 19)
    booked, change = line.versions[0], line.versions[-1]
    assert change.base_minor + change.amount_minor == 12000  # reversed at once: 12000 left
    line.versions[-1] = dataclasses.replace(
        change,
        base_minor=earned,
        amount_minor=12000 - earned,
        offset_minor=0,
        start_at=change.effective_at,
        end_at=booked.end_at,
        convention=booked.convention,
    )
    found = fires(stack, "INV-33", f"revrec:{deal.contract}")
    assert found[0].details["allocated_minor"] == 12000
    assert found[0].details["recognised_minor"] > 12000
    assert "by 2026-07-20" in found[0].message  # now, the day of the change

"""The edges of the clock's range: reports and periods at 9999-12-31 answer, never 500."""

from __future__ import annotations

from simulators.common.clock import LATEST
from tests.revrec.conftest import Harness, at
from tests.revrec.test_api import book, entity, ratable


def test_the_waterfall_at_the_last_instant_counts_a_whole_contract(revrec: Harness) -> None:
    h = revrec
    entity(h)
    book(h, "opp", [ratable("sub", 36500, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")])
    # The month after the last one (10000-01) has a start instant too: no out-of-range error.
    waterfall = h.ok("GET", "/v1/reports/waterfall", params={"entity": "us", "as_of": LATEST})
    [row] = waterfall["rows"]
    # Per-day over 365 days, every month of 2026 recognised and nothing left (Stripe's example).
    assert sum(c["amount_minor"] for c in row["recognised"]) == 36500
    assert row["remaining_minor"] == 0
    balances = h.ok("GET", "/v1/reports/balances", params={"entity": "us", "as_of": LATEST})
    assert balances["as_of"] == LATEST


def test_periods_run_to_9999_12_and_the_contract_says_where_they_start(revrec: Harness) -> None:
    h = revrec
    entity(h)
    last = h.ok("GET", "/v1/periods/us/9999-12")
    assert (last["starts_at"], last["ends_at"]) == (at("9999-12-01T00:00:00Z"), LATEST + 1)
    # Before 1970 is outside the contract's pattern: a 400 naming the parameter, not a 422.
    early = h.api("GET", "/v1/periods/us/1969-12")
    assert early.status_code == 400 and early.json()["param"] == "period"

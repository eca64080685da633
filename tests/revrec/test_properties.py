"""Property tests through the revrec backend (in process, no HTTP): balances and modifications.

Hypothesis draws contracts, billing and fulfilment; expected figures come from tallies kept
here and from ``tests/revrec/oracle.py``; invariance checks compare the books before and after.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulators.common.world import World
from simulators.revrec import models
from simulators.revrec.models import Contract, Line, recognised
from simulators.revrec.simulator import RevrecSimulator
from tests.revrec import oracle
from tests.revrec.oracle import ts

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
START = ts("2026-01-01T00:00:00Z")
DAY = 86400


def world() -> RevrecSimulator:
    sim = RevrecSimulator(World(seed=3, start_at=START))
    sim.backend.upsert_entity("us", {"functional_currency": "usd"})
    return sim


def lines_of(sim: RevrecSimulator, contract: Contract) -> list[Line]:
    return [sim.store.lines[i] for i in contract.lines]


ratable_line = st.fixed_dictionaries(
    {
        "amount": st.integers(0, 10**8),
        "ssp": st.integers(1, 10**6),
        "start": st.integers(0, 200 * DAY),
        "length": st.integers(1, 400 * DAY),
    }
)


def ratable_spec(i: int, line: dict[str, int]) -> dict[str, Any]:
    return {
        "external_id": f"l{i}",
        "product": f"p{i}",
        "pattern": "ratable",
        "unit_price_minor": line["amount"],
        "unit_ssp_minor": line["ssp"],
        "service_start_at": START + line["start"],
        "service_end_at": START + line["start"] + line["length"],
    }


def month_starts(low: int, high: int) -> list[int]:
    out, month = [], models.month_index(low)
    while models.month_start(month) <= high:
        out.append(models.month_start(month))
        month += 1
    return out


# --- balances -------------------------------------------------------------------------------
operation = st.tuples(
    st.integers(1, 40 * DAY),  # wait before it
    st.sampled_from(["invoice", "credit", "usage", "deliver"]),
    st.integers(0, 3),  # which line
    st.integers(1, 10**7),  # amount or quantity
)


@PROPERTY
@given(
    ratable=st.lists(ratable_line, min_size=1, max_size=3),
    pit_quantity=st.integers(1, 5),
    ops=st.lists(operation, max_size=12),
)
def test_recognised_plus_deferred_is_billed_plus_unbilled_for_every_line_and_date(
    ratable: list[dict[str, int]], pit_quantity: int, ops: list[tuple[int, str, int, int]]
) -> None:
    sim = world()
    b = sim.backend
    specs = [ratable_spec(i, line) for i, line in enumerate(ratable)]
    specs.append(
        {
            "external_id": "pit",
            "product": "kit",
            "pattern": "point_in_time",
            "quantity": pit_quantity,
            "unit_price_minor": 1000,
        }
    )
    specs.append(
        {"external_id": "use", "product": "api", "pattern": "usage", "unit_price_minor": 7}
    )
    contract, _ = b.create_contract(
        {"external_id": "c", "customer": "cus", "entity": "us", "currency": "usd", "lines": specs}
    )
    lines = lines_of(sim, contract)
    billed: dict[str, list[tuple[int, int]]] = {ln.id: [] for ln in lines}
    probes = [START]
    for n, (wait, kind, which, amount) in enumerate(ops):
        sim.world.clock.advance(wait)
        now = sim.world.clock.now()
        line = lines[which % len(lines)]
        if kind == "invoice":
            b.create_billing_event(_billing(n, "invoice", contract.id, line.id, amount))
            billed[line.id].append((now, amount))
        elif kind == "credit":
            so_far = sum(a for _, a in billed[line.id])
            if so_far == 0:
                continue
            credit = 1 + amount % so_far
            b.create_billing_event(_billing(n, "credit_note", contract.id, line.id, credit))
            billed[line.id].append((now, -credit))
        elif kind == "usage":
            b.record_usage(contract.id, "use", {"quantity": amount % 1000 + 1})
        elif line.pattern == "point_in_time" and line.quantity > models.delivered(line, now + 1):
            b.create_delivery(contract.id, "pit", {"quantity": 1})
        probes.append(now)
    ends = [START + r["start"] + r["length"] for r in ratable]
    probes += month_starts(START, max([*ends, sim.world.clock.now()]) + 40 * DAY)
    for probe in sorted(set(probes)):
        as_of = probe - 1 if probe > START else probe
        report = b.balances(contract, as_of)
        for row in report["lines"]:
            r, bl, d, u = (
                row[k]
                for k in ("recognised_minor", "billed_minor", "deferred_minor", "unbilled_minor")
            )
            assert r + d == bl + u, row
            assert d >= 0 and u >= 0 and min(d, u) == 0, row
            assert bl == sum(a for t, a in billed[row["line"]] if t <= as_of), row
        totals = report["totals"]
        assert totals["recognised_minor"] + totals["deferred_minor"] == (
            totals["billed_minor"] + totals["unbilled_minor"]
        )
        if probe == models.month_start(models.month_index(probe)):
            # At a month boundary each ratable line has earned the oracle's months before it.
            for i, spec in enumerate(specs[: len(ratable)]):
                expected = sum(
                    a
                    for month, a in oracle.schedule(
                        lines[i].allocated_minor,
                        spec["service_start_at"],
                        spec["service_end_at"],
                        "day",
                    )
                    if oracle.ts(f"{month}-01T00:00:00Z") < probe
                )
                assert report["lines"][i]["recognised_minor"] == expected


def _billing(n: int, kind: str, contract: str, line: str, amount: int) -> dict[str, Any]:
    return {
        "external_id": f"doc{n}",
        "type": kind,
        "contract": contract,
        "currency": "usd",
        "lines": [{"line": line, "amount_minor": amount}],
    }


# --- modifications --------------------------------------------------------------------------
change = st.fixed_dictionaries(
    {
        "which": st.integers(0, 2),
        "amount_pct": st.integers(0, 300),
        "extend_days": st.one_of(st.none(), st.integers(0, 300)),
        "add_line": st.booleans(),
    }
)


@PROPERTY
@given(
    ratable=st.lists(ratable_line, min_size=1, max_size=3),
    at_days=st.integers(0, 500),
    mod=change,
    treatment=st.sampled_from(["prospective", "cumulative_catch_up"]),
)
def test_a_modification_never_changes_earlier_revenue_and_conserves_the_price(
    ratable: list[dict[str, int]], at_days: int, mod: dict[str, Any], treatment: str
) -> None:
    sim = world()
    b = sim.backend
    specs = [ratable_spec(i, line) for i, line in enumerate(ratable)]
    contract, _ = b.create_contract(
        {"external_id": "c", "customer": "cus", "entity": "us", "currency": "usd", "lines": specs}
    )
    sim.world.clock.advance(at_days * DAY + 3 * 3600)
    t = sim.world.clock.now()
    lines = lines_of(sim, contract)
    probes = [*month_starts(START - 40 * DAY, t), t]
    before = {ln.id: [recognised(ln, x) for x in probes] for ln in lines}
    earlier = {ln.id: _months_before(b.line_schedule(ln, b.entity("us")), t) for ln in lines}
    target = lines[mod["which"] % len(lines)]
    new_amount = target.amount_minor * mod["amount_pct"] // 100
    body: dict[str, Any] = {
        "treatment": treatment,
        "changes": [{"line": target.id, "amount_minor": new_amount}],
    }
    if mod["extend_days"] is not None:
        body["changes"][0]["service_end_at"] = (
            max(target.service_end_at or t, t) + mod["extend_days"] * DAY
        )
    added_amount = 0
    if mod["add_line"]:
        added_amount = 12345
        body["add_lines"] = [
            {
                "external_id": "new",
                "product": "addon",
                "pattern": "ratable",
                "unit_price_minor": added_amount,
                "service_start_at": t,
                "service_end_at": t + 90 * DAY,
            }
        ]
    price_after = (
        sum(ln.amount_minor for ln in lines) - target.amount_minor + new_amount + added_amount
    )
    b.create_modification(contract.id, body)
    after_lines = lines_of(sim, contract)
    for ln in lines:
        assert [recognised(ln, x) for x in probes] == before[ln.id], "revenue before t changed"
        rows = b.line_schedule(ln, b.entity("us"))
        assert _months_before(rows, t) == earlier[ln.id], "a month before t changed"
    assert sum(ln.allocated_minor for ln in after_lines) == price_after
    if treatment == "prospective":
        for ln in lines:
            _earns_the_rest_over_what_remains(ln, t, earned_at_t=before[ln.id][-1])
    for ln in after_lines:
        total = sum(r["amount_minor"] for r in b.line_schedule(ln, b.entity("us")))
        assert total == ln.allocated_minor


def _earns_the_rest_over_what_remains(line: Line, t: int, earned_at_t: int) -> None:
    """After a prospective change, what was not yet earned at t is spread by day over the days
    of the service left from t's day on (or earned at t when no day is left); a line whose
    allocation fell below what it had earned (a negative pool) stands at it from t on."""
    start, end = line.service_start_at, line.service_end_at
    assert start is not None and end is not None
    first = datetime.fromtimestamp(start, UTC).date()
    stop = max(datetime.fromtimestamp(end, UTC).date(), first + timedelta(days=1))
    today = datetime.fromtimestamp(t, UTC).date()
    rest = line.allocated_minor - earned_at_t
    later = [m for m in month_starts(t, max(end, t) + 40 * DAY) if m > t]
    if today >= stop or end <= start or rest < 0:
        assert all(recognised(line, m) == line.allocated_minor for m in later)
        return
    plan = oracle.schedule(rest, max(start, t), max(end, t + 1), "day")
    for m in later:
        month = models.period_name(models.month_index(m))
        expected = earned_at_t + sum(a for p, a in plan if p < month)
        assert recognised(line, m) == expected, (line.id, month)


def _months_before(rows: list[dict[str, Any]], t: int) -> list[tuple[str, int]]:
    current = models.period_name(models.month_index(t))
    return [(r["period"], r["amount_minor"]) for r in rows if r["period"] < current]

"""A 12-month lifecycle for many customers, end to end through the reference integration.

`python -m bench.lifecycle_bench` builds a scenario in memory: BENCH_CUSTOMERS customers (200
by default; 1,000, the target's size, takes about half an hour today) each close a monthly
deal in January and pay, then the clock runs twelve months with a subledger and ERP close
after each. The real runner plays it against harness.toml's integration (settling and every
invariant after each step, the oracle at the end); the wall time is set against the 5-minute
target for 1,000 customers and saved as JSON.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from harness.config import load_config
from harness.runner import run_scenario
from harness.scenario import Scenario

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "out" / "bench"
CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "200"))
TARGET_CUSTOMERS = 1000
MONTHS = int(os.environ.get("BENCH_MONTHS", "12"))
TARGET_S = 300.0


def lifecycle(customers: int, months: int) -> Scenario:
    steps: list[dict[str, Any]] = []
    for n in range(customers):
        steps.append(
            {
                "crm.create_opportunity": {
                    "key": f"deal_{n}",
                    "customer": f"c_{n}",
                    "lines": [{"price": "pro_monthly", "quantity": 1 + n % 5}],
                }
            }
        )
    steps += [{"crm.close_won": {"opportunity": f"deal_{n}"}} for n in range(customers)]
    steps += [{"billing.pay": {"customer": f"c_{n}"}} for n in range(customers)]
    for month in range(1, months + 1):
        steps.append({"clock.advance": {"duration": "P1M"}})
        period = f"2026-{month:02d}" if month <= 12 else f"2027-{month - 12:02d}"
        steps.append({"revrec.close_period": {"entity": "us", "period": period}})
        steps.append({"erp.close_period": {"entity": "us", "period": period}})
    data = {
        "name": f"{months}-month lifecycle of {customers} customers",
        "start_at": "2026-01-01T00:00:00Z",
        "seed": 12,
        "fixtures": {
            "entities": [{"key": "us", "name": "Finsim Inc.", "currency": "usd"}],
            "products": [{"key": "pro", "name": "Pro plan", "ssp_minor": 10000}],
            "prices": [
                {"key": "pro_monthly", "product": "pro", "currency": "usd", "unit_amount": 10000}
            ],
            "customers": [
                {"key": f"c_{n}", "name": f"Customer {n}", "entity": "us", "currency": "usd"}
                for n in range(customers)
            ],
        },
    }
    # Steps are parsed as the loader parses them (single-key mappings), minus the YAML lines.
    from harness.scenario import STEPS, Step

    scenario = Scenario.model_validate(data)
    scenario.steps = [
        Step(kind=kind, params=STEPS[kind].model_validate(params))
        for item in steps
        for kind, params in item.items()
    ]
    return scenario


def main() -> None:
    config = load_config(ROOT / "harness.toml")
    scenario = lifecycle(CUSTOMERS, MONTHS)
    started = time.monotonic()
    result = run_scenario(scenario, config, cwd=ROOT)
    wall = time.monotonic() - started
    invoices = sum(len(d["invoices"]) for d in result.lineage)
    settle = sorted(s.wall_s for s in result.steps if s.kind == "clock.advance")
    # Linear scaling to the target's size is a floor: the cost grows faster than that.
    at_target = wall * TARGET_CUSTOMERS / CUSTOMERS
    print(
        f"{scenario.name}: {len(scenario.steps)} steps, {invoices:,} invoices, "
        f"{'pass' if result.passed else 'FAIL ' + ', '.join(result.rules)} in {wall:.0f} s; "
        f"each month's renewals settled in {settle[0]:.1f}–{settle[-1]:.1f} s"
    )
    print(
        f"target: {TARGET_CUSTOMERS:,} customers in ≤ {TARGET_S:.0f} s — at least "
        f"{at_target:.0f} s by linear scaling: "
        f"{'met' if at_target <= TARGET_S else 'MISSED'} ({at_target / TARGET_S:.1f}× the target)"
    )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "lifecycle.json").write_text(
        json.dumps(
            {
                "customers": CUSTOMERS,
                "months": MONTHS,
                "wall_s": round(wall, 1),
                "at_target_linear_s": round(at_target, 1),
                "passed": result.passed,
                "rules": result.rules,
                "invoices": invoices,
                "month_settle_s": settle,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

"""Load before close, measured against its goals: month-end through the reference integration.

`python -m bench.load_bench` runs `harness load --profile month-end` at BENCH_LOAD_USERS users
(20) for BENCH_LOAD_SECONDS (60) against harness.toml's integration, and sets two figures
against their goals: the integration caught up within 60 s of the load ending, and invoice
finalised → ERP invoice posted under 30 s at the 99th percentile for the invoices finalised
during the load. Each is printed with its ratio to the goal (≤ 1 is met) and saved as JSON;
nothing here is a timed assertion.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.config import load_config
from harness.load import LoadOptions, run_load

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "out" / "bench"
PROFILE = os.environ.get("BENCH_LOAD_PROFILE", "month-end")
USERS = int(os.environ.get("BENCH_LOAD_USERS", "20"))
SECONDS = int(os.environ.get("BENCH_LOAD_SECONDS", "60"))
CATCH_UP_GOAL_S = 60.0
P99_GOAL_S = 30.0
# Long enough to measure a miss rather than cut it short.
SETTLE_BOUND_S = 900.0


def goals(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal with its measured figure, the ratio to the goal and whether it is met."""
    settle = summary["settle"]
    caught_up = settle.get("caught_up_after_s")
    sla = summary["sla"]
    p99 = sla["invoice_finalised_to_erp_posted_s"].get("p99")
    unposted = sla["not_posted"]
    return [
        {
            "goal": f"caught up ≤ {CATCH_UP_GOAL_S:.0f} s after the load ends",
            "figure_s": caught_up if caught_up is not None else settle["waited_s"],
            "bound_only": caught_up is None,  # not caught up: the figure is a lower bound
            "goal_s": CATCH_UP_GOAL_S,
        },
        {
            "goal": f"invoice → ERP p99 ≤ {P99_GOAL_S:.0f} s during the load",
            "figure_s": p99,
            "bound_only": unposted > 0,  # some never posted: the true p99 is higher
            "goal_s": P99_GOAL_S,
        },
    ]


def main() -> None:
    config = load_config(ROOT / "harness.toml")
    out = OUT / "load"
    options = LoadOptions(
        profile=PROFILE,
        integration=ROOT / "harness.toml",
        out=out,
        users=USERS,
        duration_s=SECONDS,
        settle_timeout_s=SETTLE_BOUND_S,
        stall_s=SETTLE_BOUND_S,
    )
    load_before = os.getloadavg()[0]
    out.mkdir(parents=True, exist_ok=True)
    with (out / "console.txt").open("w") as log:
        code, summary = run_load(options, Console(file=log, width=160), config)
    load_after = os.getloadavg()[0]
    locust = summary["locust"]
    verdict = summary["verdict"]
    print(
        f"load before close: {PROFILE} at {USERS} users for {SECONDS} s, "
        f"{locust.get('throughput_rps', 0):.0f} req/s over {locust.get('requests', 0):,} "
        f"requests; verdict {'pass' if verdict['passed'] else 'FAIL'} (exit {code}): "
        f"{verdict['posted']:,} posted during the load, {verdict['late']:,} late, "
        f"{verdict['lost']:,} lost, {verdict['backlog']:,} backlog "
        f"(machine load {load_before:.1f} → {load_after:.1f})"
    )
    results = goals(summary)
    for g in results:
        figure = g["figure_s"]
        if figure is None:
            print(f"  {g['goal']}: not measured (no invoice finalised during the load)")
            continue
        ratio = figure / g["goal_s"]
        met = ratio <= 1 and not g["bound_only"]
        g |= {"ratio": round(ratio, 2), "met": met}
        print(
            f"  {g['goal']}: {'≥ ' if g['bound_only'] else ''}{figure:.1f} s — "
            f"{ratio:.2f}× the goal, {'met' if met else 'NOT met'}"
        )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "load.json").write_text(
        json.dumps(
            {
                "profile": PROFILE,
                "users": USERS,
                "seconds": SECONDS,
                "goals": results,
                "verdict": verdict,
                "throughput_rps": locust.get("throughput_rps"),
                "settle": summary["settle"],
                "sla": summary["sla"],
                "machine_load": [load_before, load_after],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

"""The demo scenarios' scenario time, against issue #13's goal of ≤ 60 s for the 18 demo ones.

`python -m bench.scenarios_bench` runs `harness run scenarios` (BENCH_SCENARIO_WORKERS
scenarios at a time, 1 by default so one scenario's time is not another's wait) and sums the
scenario wall times its JSON report gives: the goal's figure is the sum over the 18 scenarios
the issue counted (01–18), and the note gives all of them and the elapsed time of the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.goals import NOT_MEASURED, Goal, record

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "out" / "bench" / "scenarios"
WORKERS = int(os.environ.get("BENCH_SCENARIO_WORKERS", "1"))
GOAL_S = 60.0
DEMO = 18  # the demo scenarios: 01–18


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    report = OUT / "report.json"
    report.unlink(missing_ok=True)
    load = os.getloadavg()[0]
    started = time.monotonic()
    command = [str(Path(sys.executable).parent / "harness"), "run", "scenarios", "--quiet"]
    done = subprocess.run(
        [*command, "-n", str(WORKERS), "--json", str(report)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    elapsed = time.monotonic() - started
    goal = f"demo scenarios ≤ {GOAL_S:.0f} s of scenario time"
    if not report.exists():
        tail = (done.stdout + done.stderr)[-2000:]
        print(tail)
        record("scenarios", [Goal(goal, GOAL_S, "s", how=NOT_MEASURED, note="no report")])
        return 1
    scenarios = json.loads(report.read_text())["scenarios"]
    demo = [s for s in scenarios if Path(s["source"] or "").name[:2] <= f"{DEMO:02d}"]
    failed = [s["name"] for s in scenarios if not s["passed"]]
    total = sum(s["wall_s"] for s in scenarios)
    print(
        f"harness run scenarios -n {WORKERS}: {len(scenarios)} scenarios, "
        f"{len(scenarios) - len(failed)} passed, {total:.1f} s of scenario time, "
        f"{elapsed:.0f} s elapsed (machine load {load:.1f} → {os.getloadavg()[0]:.1f})"
        + (f"; FAILED: {', '.join(failed)}" if failed else "")
    )
    record(
        "scenarios",
        [
            Goal(
                goal,
                GOAL_S,
                "s",
                figure=sum(s["wall_s"] for s in demo),
                note=f"{len(demo)} scenarios (01–{DEMO}); all {len(scenarios)}: {total:.1f} s"
                f", -n {WORKERS}, load {load:.1f}",
            )
        ],
    )
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())

"""Issue #13's goals as `make bench` measures them: one line each, and the summary table.

Each benchmark records its goals with ``record`` (out/bench/goals/<bench>.json) and prints
them with ``line``; ``python -m bench.goals`` (the last step of `make bench`) prints every goal
recorded in one table and writes out/bench/goals.json. A ratio is the figure over the goal, so
≤ 1 is met; a figure that is an extrapolation or a lower bound says so, and a goal that could
not be measured says why instead of showing a number.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "out" / "bench"
GOALS = OUT / "goals"

# How a figure was obtained: only "measured" is a plain measurement.
MEASURED = "measured"
EXTRAPOLATED = "extrapolated"
LOWER_BOUND = "lower bound"
NOT_MEASURED = "not measured"


@dataclass
class Goal:
    """One goal and what was measured against it (figure / goal: ≤ 1 is met)."""

    goal: str
    target: float
    unit: str
    figure: float | None = None
    how: str = MEASURED
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return None if self.figure is None else self.figure / self.target

    @property
    def met(self) -> bool | None:
        """True or False when measured or extrapolated; None when it cannot be said."""
        ratio = self.ratio
        if ratio is None:
            return None
        if self.how == LOWER_BOUND:
            # A lower bound above the goal misses it; below it, it says nothing.
            return False if ratio > 1 else None
        return ratio <= 1

    def as_json(self) -> dict[str, object]:
        ratio = self.ratio
        return asdict(self) | {
            "ratio": None if ratio is None else round(ratio, 3),
            "met": self.met,
        }


def _number(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:,.1f} s" if value < 100 else f"{value:,.0f} s"
    return f"{value:.2f}{unit}"


def line(g: Goal) -> str:
    """``goal: figure (how) — ratio× the goal, met | NOT met``."""
    if g.figure is None:
        return f"  {g.goal}: not measured — {g.note}"
    verdict = {True: "met", False: "NOT met", None: "undecided"}[g.met]
    how = "" if g.how == MEASURED else f" ({g.how})"
    bound = "≥ " if g.how == LOWER_BOUND else ""
    note = f"; {g.note}" if g.note else ""
    # A figure that is itself a ratio to 1 is its own ratio to the goal.
    ratio = "" if g.unit == "×" and g.target == 1 else f"{g.ratio:.2f}× the goal, "
    return f"  {g.goal}: {bound}{_number(g.figure, g.unit)}{how} — {ratio}{verdict}{note}"


def record(bench: str, goals: list[Goal]) -> None:
    """Print each goal's line and keep them for the summary table."""
    for g in goals:
        print(line(g), flush=True)
    GOALS.mkdir(parents=True, exist_ok=True)
    (GOALS / f"{bench}.json").write_text(
        json.dumps(
            {
                "bench": bench,
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "loadavg": [round(x, 2) for x in os.getloadavg()],
                "goals": [g.as_json() for g in goals],
            },
            indent=2,
        )
    )


def summary() -> int:
    """Every recorded goal in one table; out/bench/goals.json."""
    rows: list[dict[str, object]] = []
    for path in sorted(GOALS.glob("*.json")):
        data = json.loads(path.read_text())
        for g in data["goals"]:
            rows.append({"bench": data["bench"], "at": data["at"], **g})
    if not rows:
        print("no goals recorded: run the benchmarks first (make bench)")
        return 1
    print()
    print(f"issue #13's goals (load average now {os.getloadavg()[0]:.1f}; ratio = figure / goal)")
    width = max(len(str(r["goal"])) for r in rows)
    print(f"  {'goal':{width}}  {'figure':>12}  {'ratio':>6}  {'verdict':9}  how")
    for r in rows:
        figure = r["figure"]
        shown = "—" if figure is None else _number(float(figure), str(r["unit"]))  # type: ignore[arg-type]
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}"
        verdict = {True: "met", False: "NOT met", None: "undecided"}[r["met"]]  # type: ignore[index]
        how = str(r["how"]) + (f": {r['note']}" if r["note"] else "")
        print(f"  {r['goal']!s:{width}}  {shown:>12}  {ratio:>6}  {verdict:9}  {how}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "goals.json").write_text(json.dumps({"goals": rows}, indent=2))
    print(f"saved {OUT / 'goals.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(summary())

"""What a scenario run produced: steps, violations, hand-off times, lineage, what was judged."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.violations import Violation


@dataclass
class StepResult:
    index: int
    kind: str
    line: int | None
    sim_at: str
    note: str = ""
    wall_s: float = 0.0
    settle: str = ""
    settled: bool = True
    faults: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)  # first seen here, counted
    deferred: list[Violation] = field(default_factory=list)  # seen while faults were on
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "kind": self.kind,
            "line": self.line,
            "sim_at": self.sim_at,
            "note": self.note,
            "wall_s": round(self.wall_s, 3),
            "settle": self.settle,
            "settled": self.settled,
            "faults": self.faults,
            "violations": [v.as_json() for v in self.violations],
            "deferred": [v.as_json() for v in self.deferred],
            "error": self.error,
        }


@dataclass
class Sla:
    """How long a hand-off took: in sim time between the documents, and in wall time until
    the integration had settled after the step that started it."""

    name: str
    subject: str
    sim_s: int | None
    wall_s: float

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "subject": self.subject,
            "sim_s": self.sim_s,
            "wall_s": round(self.wall_s, 3),
        }


@dataclass
class ScenarioResult:
    name: str
    source: str
    seed: int
    start_at: str
    description: str = ""
    steps: list[StepResult] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    sla: list[Sla] = field(default_factory=list)
    lineage: list[dict[str, Any]] = field(default_factory=list)
    revenue: list[dict[str, Any]] = field(default_factory=list)
    faults_injected: list[dict[str, Any]] = field(default_factory=list)
    integration_output: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    fingerprint: str = ""
    wall_s: float = 0.0
    error: str | None = None
    # What the verdict covers: the hand-offs owned and played by stand-ins, rules not judged.
    judged: dict[str, Any] = field(default_factory=dict)
    standin_output: list[str] = field(default_factory=list)
    # Per entity, day and currency: billing invoiced vs ERP posted vs subledger billed.
    reconciliation: list[dict[str, Any]] = field(default_factory=list)
    # What the integration set aside, why, when replayed and how long it sat (docs/exceptions.md).
    exceptions: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.violations and self.error is None

    @property
    def rules(self) -> list[str]:
        return sorted({v.rule for v in self.violations})

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "description": self.description,
            "seed": self.seed,
            "start_at": self.start_at,
            "passed": self.passed,
            "error": self.error,
            "wall_s": round(self.wall_s, 3),
            "fingerprint": self.fingerprint,
            "violations": [v.as_json() for v in self.violations],
            "steps": [s.as_json() for s in self.steps],
            "sla": [s.as_json() for s in self.sla],
            "lineage": self.lineage,
            "revenue": self.revenue,
            "faults_injected": self.faults_injected,
            "names": self.names,
            "judged": self.judged,
            "reconciliation": self.reconciliation,
            "exceptions": self.exceptions,
            "integration_output": self.integration_output[-200:],
            "standin_output": self.standin_output[-200:],
        }

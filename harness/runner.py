"""Play a scenario through the integration under test, settle after every step, judge the books."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path

from harness import scenario as sc
from harness.actors import StepFailed
from harness.config import HarnessConfig
from harness.integration import IntegrationError
from harness.judging import Judge
from harness.lineage import fingerprint, lineage, sla
from harness.play import (
    SETTLE_TIMEOUT_S,
    SETTLE_WINDOW_S,
    Run,
    alive,
    oracle_names,
    play_step,
    revenue,
)
from harness.reconcile import reconciliation
from harness.results import ScenarioResult, Sla, StepResult
from harness.session import open_session
from harness.steps import apply_fixtures
from harness.violations import Violation

__all__ = ["Run", "ScenarioResult", "Sla", "StepResult", "Tally", "begin", "finish", "run_scenario"]


def run_scenario(
    scenario: sc.Scenario,
    config: HarnessConfig,
    *,
    cwd: Path,
    seed: int | None = None,
    on_step: Callable[[StepResult], None] | None = None,
    judge: Judge | None = None,
) -> ScenarioResult:
    """Play one scenario in a fresh world and integration (and stand-in); never raises for
    the integration's faults — they are the verdict."""
    judge = judge or Judge.from_config(config, base=str(cwd))
    effective_seed = scenario.seed if seed is None else seed
    result = ScenarioResult(
        scenario.name, scenario.source, effective_seed, scenario.start_at, scenario.description
    )
    result.judged = judge.summary()
    started = time.monotonic()
    try:
        session = open_session(
            config,
            cwd=cwd,
            seed=effective_seed,
            start_at=scenario.start_at,
            crm_custom_fields=scenario.fixtures.crm_custom_fields,
            pooled=True,
        )
    except IntegrationError as exc:
        result.error = f"{exc}\n--- last output ---\n" + "\n".join(exc.output[-40:])
        result.integration_output = exc.output
        result.violations.append(Violation("INTEGRATION", str(exc)))
        result.wall_s = time.monotonic() - started
        return result
    with session:
        run = Run(scenario, session, config, judge)
        try:
            _play(run, result, on_step)
        except Exception:
            # A harness bug must not hide the other scenarios' verdicts: report it as an error.
            result.error = "the harness failed:\n" + traceback.format_exc()
        finally:
            run.actors.close()
            if session.integration is not None:
                result.integration_output = session.integration.output()
            if session.standin is not None:
                result.standin_output = session.standin.output()
            result.names = dict(run.names)
        result.wall_s = time.monotonic() - started
    return result


def _play(run: Run, result: ScenarioResult, on_step: Callable[[StepResult], None] | None) -> None:
    tally = Tally()
    if begin(run, result, tally):
        for index, step in enumerate(run.scenario.steps, start=1):
            record = play_step(run, index, step, tally)
            result.steps.append(record)
            if on_step is not None:
                on_step(record)
            if record.error is not None:
                break
    finish(run, result, tally)


class Tally:
    """Counts each violation once (same rule, message and records), wherever it is found."""

    def __init__(self) -> None:
        self.counted: dict[tuple[str, str, tuple[str, ...]], Violation] = {}

    def __call__(self, violations: Iterable[Violation], into: list[Violation]) -> None:
        for violation in violations:
            key = (violation.rule, violation.message, violation.records)
            if key not in self.counted:
                self.counted[key] = violation
                into.append(violation)


def begin(run: Run, result: ScenarioResult, tally: Tally) -> bool:
    """The fixtures made (step 0 of the result); False when the vendors refused them."""
    setup = StepResult(0, "fixtures", None, run.now_iso())
    try:
        apply_fixtures(run)
        setup.note = f"{len(run.names)} records"
    except StepFailed as exc:
        setup.error = str(exc)
        tally([Violation("STEP", f"fixtures: {exc}")], setup.violations)
    result.steps.append(setup)
    return setup.error is None


def finish(run: Run, result: ScenarioResult, tally: Tally) -> None:
    """The final judgement: the books at the end, and the oracle's figures; the result's
    verdict, SLA figures, lineage, revenue, faults and fingerprint."""
    final = StepResult(len(result.steps), "final", None, run.now_iso())
    running = alive(run, "the last step", final, tally) and run.expect_running
    settle = run.session.settle(
        run.session.quiet_window(SETTLE_WINDOW_S), SETTLE_TIMEOUT_S, wait_for_integration=running
    )
    final.settle, final.settled = str(settle), settle.settled
    if running and not settle.settled:
        tally([Violation("SETTLE", f"the end of the scenario: {settle}")], final.violations)
    books = run.snapshot()
    run.resolve_names()
    tally(run.judge.check(books, afresh=True), final.violations)
    tally(run.judge.oracle(run.scenario, books, oracle_names(run)), final.violations)
    result.steps.append(final)
    result.violations = list(tally.counted.values())
    result.sla = sla(books, result.steps, run.won_at, run.names)
    result.lineage = lineage(books, run.names)
    result.reconciliation = reconciliation(books)
    result.exceptions = run.set_aside.as_json(tuple(run.replays))
    result.revenue = revenue(run)
    result.faults_injected = list(run.session.stack.world.faults.snapshot().get("hits", []))
    result.fingerprint = fingerprint(
        books,
        run.names,
        result.faults_injected,
        ((v.rule, v.message) for v in result.violations),
    )

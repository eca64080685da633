"""Generated lifecycles: a Hypothesis state machine with one rule per registered step kind,
each example played through the integration and judged after every step."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from hypothesis import HealthCheck, Phase, Verbosity, reject, settings
from hypothesis import seed as use_seed
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from harness import oracle
from harness.config import HarnessConfig
from harness.fuzz.life import FuzzLifecycle
from harness.integration import IntegrationError
from harness.judging import Judge
from harness.play import Run, oracle_names, play_step
from harness.results import ScenarioResult, StepResult
from harness.runner import Tally, begin, finish
from harness.scenario import Fixtures, Scenario, Step
from harness.session import open_session
from harness.steps import STEPS
from harness.steps.registry import Chooser
from harness.violations import Violation

T = TypeVar("T")
# Rules are drawn evenly; time moving is what renews, finalises and closes, so it gets more.
WEIGHTS = {"clock.advance": 3}


class Drawn:
    """A step kind's choices, drawn from Hypothesis (so a failure shrinks to simpler ones)."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def pick(self, options: Any) -> Any:
        return self.data.draw(st.sampled_from(list(options)))

    def integer(self, low: int, high: int) -> int:
        return self.data.draw(st.integers(low, high))

    def boolean(self) -> bool:
        return self.data.draw(st.booleans())


class Probe:
    """The simplest choice everywhere: asks whether a step kind can be generated at all."""

    def pick(self, options: Any) -> Any:
        return next(iter(options))

    def integer(self, low: int, high: int) -> int:
        return low

    def boolean(self) -> bool:
        return False


class CannotStart(RuntimeError):
    """The integration would not start or the fixtures were refused: not a finding."""


@dataclass
class Failure:
    """A lifecycle the judges failed: its steps (up to the finding) and what they found."""

    example: int
    steps: list[Step]
    violations: list[Violation]
    at_end: bool  # found by the final judgement, not after a step


@dataclass
class Fuzzer:
    """One fuzz run: its budget, the examples it played, the failures it found."""

    config: HarnessConfig
    cwd: Path
    judge: Judge
    fixtures: Fixtures
    start_at: str
    seed: int = 0
    examples: int = 5
    steps: int = 6
    max_time_s: float = 300.0
    on_step: Callable[[int, StepResult], None] | None = None
    results: list[ScenarioResult] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    played: int = 0  # examples started, shrinking included
    errors: list[str] = field(default_factory=list)  # the harness's own, never the verdict
    started: float = field(default_factory=time.monotonic)

    @property
    def over_budget(self) -> bool:
        return time.monotonic() - self.started >= self.max_time_s

    @property
    def smallest(self) -> Failure | None:
        """The failure with the fewest steps (the shrinker's best), earliest on a tie."""
        if not self.failures:
            return None
        return min(self.failures, key=lambda f: (len(f.steps), f.example))

    def run(self) -> None:
        """Generate, play and shrink until the examples or the time run out."""
        machine = lifecycle_machine(self)
        use_seed(self.seed)(machine)
        try:
            run_state_machine_as_test(
                machine,
                settings=settings(
                    max_examples=self.examples,
                    stateful_step_count=self.steps,
                    deadline=None,
                    database=None,
                    phases=(Phase.generate, Phase.shrink),
                    suppress_health_check=list(HealthCheck),
                    verbosity=Verbosity.quiet,
                    report_multiple_bugs=False,
                    print_blob=False,
                ),
            )
        except AssertionError:
            pass  # a failure: recorded, with its steps, as it was found
        except Unsatisfiable:
            if not self.played:
                self.errors.append("no example fitted in --max-time")
        except Exception as exc:  # Hypothesis's flakiness verdicts end shrinking: keep ours
            if not self.failures and not self.errors:
                self.errors.append(f"{type(exc).__name__}: {exc}")


class Example:
    """One generated lifecycle in its own world and integration."""

    def __init__(self, fuzzer: Fuzzer, number: int) -> None:
        self.fuzzer = fuzzer
        self.number = number
        self.scenario = Scenario(
            name=f"fuzz {fuzzer.seed}-{number}",
            start_at=fuzzer.start_at,
            seed=fuzzer.seed,
            fixtures=fuzzer.fixtures,
            source="<generated>",
        )
        self.life = FuzzLifecycle(self.scenario)
        self.result = ScenarioResult(
            self.scenario.name, "<generated>", fuzzer.seed, fuzzer.start_at
        )
        self.result.judged = fuzzer.judge.summary()
        self.tally = Tally()
        self.began = time.monotonic()
        self.failed = False
        try:
            self.session = open_session(
                fuzzer.config,
                cwd=fuzzer.cwd,
                seed=fuzzer.seed,
                start_at=fuzzer.start_at,
                crm_custom_fields=fuzzer.fixtures.crm_custom_fields,
            )
        except IntegrationError as exc:
            self._cannot_start(f"{exc}\n" + "\n".join(exc.output[-20:]))
        self.run = Run(self.scenario, self.session, fuzzer.config, fuzzer.judge)
        if not begin(self.run, self.result, self.tally):
            self.run.actors.close()
            self.session.close()
            self._cannot_start("; ".join(v.message for v in self.result.steps[0].violations))

    def _cannot_start(self, why: str) -> NoReturn:
        """No lifecycle can run here (the integration will not start, the fixtures are
        refused): a configuration problem, not a finding — the run stops and says why."""
        self.fuzzer.max_time_s = 0
        self.fuzzer.errors.append(why)
        self.failed = True
        raise CannotStart(why)

    def play(self, kind: str, params: dict[str, Any]) -> None:
        """Play one step, settle, judge it — the invariants and the oracle — and fail the
        example on anything the judges count."""
        step = Step(kind=kind, params=STEPS[kind].model_validate(params))
        self.scenario.steps.append(step)
        self.life.note(step)
        index = len(self.scenario.steps)
        record = play_step(self.run, index, step, self.tally)
        found = list(record.violations)
        running = self.run.expect_running and record.settled and not self.run.faults
        if running and record.error is None and self.run.latest is not None:
            expected = oracle.expect(self.scenario)
            compared = self.run.judge.oracle_compare(
                expected, self.run.latest, oracle_names(self.run)
            )
            before = len(record.violations)
            self.tally(compared, record.violations)
            found += record.violations[before:]
        self.result.steps.append(record)
        if self.fuzzer.on_step is not None:
            self.fuzzer.on_step(self.number, record)
        if found:
            self.fail(found, at_end=False)

    def finish(self) -> None:
        """Faults off and the integration up again, then the runner's final judgement."""
        try:
            if not self.failed:
                if self.life.ctx.faults:
                    self.play("faults.off", {})
                if self.life.ctx.stopped and not self.failed:
                    self.play("integration", {"action": "start"})
            if not self.failed:
                before = len(self.tally.counted)
                finish(self.run, self.result, self.tally)
                final = list(self.tally.counted.values())[before:]
                if final:
                    self.fail(final, at_end=True)
            else:
                stopped = StepResult(len(self.result.steps), "final", None, self.run.now_iso())
                stopped.note = "stopped at the first finding"
                self.result.steps.append(stopped)
                self.result.violations = list(self.tally.counted.values())
        finally:
            self.run.actors.close()
            if self.session.integration is not None:
                self.result.integration_output = self.session.integration.output()
            self.result.names = dict(self.run.names)
            self.session.close()
            self.result.wall_s = time.monotonic() - self.began

    def fail(self, violations: list[Violation], *, at_end: bool) -> None:
        self.failed = True
        self.fuzzer.failures.append(
            Failure(self.number, list(self.scenario.steps), list(violations), at_end)
        )
        raise AssertionError("\n".join(str(v) for v in violations))


def lifecycle_machine(fuzzer: Fuzzer) -> type[RuleBasedStateMachine]:
    """The state machine: an opening deal, then one rule per registered step kind the fuzzer
    plays (its class's ``generate``), each when it can be generated now."""

    def __init__(self: Any) -> None:
        RuleBasedStateMachine.__init__(self)
        self.example = None

    @initialize(data=st.data())
    def open_with_a_deal(self: Any, data: st.DataObject) -> None:
        if fuzzer.over_budget:
            reject()  # out of time: the remaining examples (and shrinks) are not played
        fuzzer.played += 1
        self.example = Example(fuzzer, fuzzer.played)
        fuzzer.results.append(self.example.result)
        chooser = Drawn(data)
        if chooser.boolean():
            _play_generated(self.example, "billing.create_subscription", chooser)
        else:
            _play_generated(self.example, "crm.create_opportunity", chooser)
            _play_generated(self.example, "crm.close_won", chooser)

    def teardown(self: Any) -> None:
        if self.example is not None:
            self.example.finish()

    namespace: dict[str, Any] = {
        "__init__": __init__,
        "open_with_a_deal": open_with_a_deal,
        "teardown": teardown,
    }
    for kind, cls in STEPS.items():
        if cls.not_generated is None:
            for n in range(WEIGHTS.get(kind, 1)):
                name = "play_" + kind.replace(".", "_") + (f"_{n}" if n else "")
                namespace[name] = _rule_for(kind, fuzzer)
    return type("Lifecycle", (RuleBasedStateMachine,), namespace)


def _rule_for(kind: str, fuzzer: Fuzzer) -> Any:
    cls = STEPS[kind]

    def possible(self: Any) -> bool:
        example: Example | None = self.example
        if example is None or example.failed or fuzzer.over_budget:
            return False
        if example.life.ctx.stopped and kind != "integration" and not cls.plays_while_down:
            return False  # only a start brings it back
        return cls.generate(Probe(), example.life) is not None

    @precondition(possible)
    @rule(data=st.data())
    def play(self: Any, data: st.DataObject) -> None:
        _play_generated(self.example, kind, Drawn(data))

    return play


def _play_generated(example: Example, kind: str, chooser: Chooser) -> None:
    params = STEPS[kind].generate(chooser, example.life)
    if params is None:
        reject()  # a probe said it could be generated: never reached in practice
    else:
        example.play(kind, params)

"""Play a scenario through the integration under test, settle after every step, judge the books."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from harness import oracle
from harness import scenario as sc
from harness.actors import Actors, StepFailed
from harness.books import Books, take_books
from harness.config import HarnessConfig
from harness.integration import IntegrationError
from harness.invariants import REGISTRY, check_all
from harness.session import Session, open_session
from harness.steps import EXECUTORS, apply_fixtures, entity_id
from harness.violations import Violation
from simulators.common.clock import iso

SETTLE_WINDOW_S = 0.15
SETTLE_TIMEOUT_S = 30.0
FAULTED_SETTLE_S = 3.0


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
            "integration_output": self.integration_output[-200:],
        }


class Run:
    """One scenario being played: the session, the people acting, and the names given so far."""

    def __init__(self, scenario: sc.Scenario, session: Session, config: HarnessConfig) -> None:
        self.scenario = scenario
        self.session = session
        self.config = config
        self.actors = Actors(session.context)
        self.names: dict[str, str] = {}
        self.faults: dict[str, list[str]] = {}
        self.won: list[str] = []
        self.step_index = 0
        self.expect_running = session.integration is not None  # false after stop or kill
        self._customers = {c.key: c for c in scenario.fixtures.customers}
        self._prices = {p.key: p for p in scenario.fixtures.prices}

    # the world, read in-process (the runner plays the vendors' own screens) -------------------
    def has(self, system: str) -> bool:
        return system in self.session.stack.sims

    @property
    def world(self) -> Any:
        return self.session.stack.world

    def sim(self, system: str) -> Any:
        return self.session.stack.sims[system]

    @property
    def erp(self) -> Any:
        return self.sim("erp")

    def now(self) -> int:
        return int(self.world.clock.now())

    def now_iso(self) -> str:
        return iso(self.now())

    def today(self) -> str:
        return self.now_iso()[:10]

    def customer(self, key: str) -> sc.Customer:
        return self._customers[key]

    def price(self, key: str) -> sc.Price:
        return self._prices[key]

    def subscription_of(self, opportunity: str) -> str | None:
        """The subscription the integration made for a won opportunity: its CRM write-back, or
        failing that the billing subscription tagged with the opportunity id."""
        return self._made_for(
            f"subscription:{opportunity}",
            self.names.get(f"opportunity:{opportunity}"),
            "Billing_Subscription_Id__c",
            "subscriptions",
            "crm_opportunity_id",
        )

    def stripe_customer(self, key: str) -> str:
        """The billing customer the integration made for a fixture customer's account."""
        found = self._made_for(
            f"customer:{key}",
            self.names.get(f"account:{key}"),
            "Billing_Customer_Id__c",
            "customers",
            "crm_account_id",
        )
        if found is None:
            raise StepFailed(f"customer {key} has no billing customer yet")
        return found

    def _made_for(
        self, name: str, crm_id: str | None, write_back: str, table: str, tag: str
    ) -> str | None:
        """The billing id the integration made for a CRM record, remembered under ``name``:
        the record's ``write_back`` field, or the billing row whose ``metadata[tag]`` names it."""
        if name in self.names:
            return self.names[name]
        if crm_id is None:
            return None
        found: str | None = None
        if self.has("crm"):
            record = self.sim("crm").store.get(crm_id)
            if record is not None:
                found = record.get(write_back) or None
        if found is None and self.has("billing"):
            rows = self.sim("billing").store.table(table).values()
            found = next((row.id for row in rows if row.metadata.get(tag) == crm_id), None)
        if found is not None:
            self.names[name] = found
        return found

    def resolve_names(self) -> None:
        """Learn the ids the integration made (subscriptions, billing customers)."""
        for key in self._customers:
            with contextlib.suppress(StepFailed):
                self.stripe_customer(key)
        for opportunity in self.won:
            self.subscription_of(opportunity)


def run_scenario(
    scenario: sc.Scenario,
    config: HarnessConfig,
    *,
    cwd: Path,
    seed: int | None = None,
    on_step: Callable[[StepResult], None] | None = None,
) -> ScenarioResult:
    """Play one scenario in a fresh world and integration; never raises for the integration's
    faults — they are the verdict."""
    effective_seed = scenario.seed if seed is None else seed
    result = ScenarioResult(
        scenario.name, scenario.source, effective_seed, scenario.start_at, scenario.description
    )
    started = time.monotonic()
    try:
        session = open_session(
            config,
            cwd=cwd,
            seed=effective_seed,
            start_at=scenario.start_at,
            crm_custom_fields=scenario.fixtures.crm_custom_fields,
        )
    except IntegrationError as exc:
        result.error = f"{exc}\n--- last output ---\n" + "\n".join(exc.output[-40:])
        result.integration_output = exc.output
        result.violations.append(Violation("INTEGRATION", str(exc)))
        result.wall_s = time.monotonic() - started
        return result
    with session:
        run = Run(scenario, session, config)
        try:
            _play(run, result, on_step)
        except Exception:
            # A harness bug must not hide the other scenarios' verdicts: report it as an error.
            result.error = "the harness failed:\n" + traceback.format_exc()
        finally:
            run.actors.close()
            if session.integration is not None:
                result.integration_output = session.integration.output()
            result.names = dict(run.names)
        result.wall_s = time.monotonic() - started
    return result


def _play(run: Run, result: ScenarioResult, on_step: Callable[[StepResult], None] | None) -> None:
    counted: dict[tuple[str, str, tuple[str, ...]], Violation] = {}

    def count(violations: Iterable[Violation], into: list[Violation]) -> None:
        for violation in violations:
            key = (violation.rule, violation.message, violation.records)
            if key not in counted:
                counted[key] = violation
                into.append(violation)

    setup = StepResult(0, "fixtures", None, run.now_iso())
    try:
        apply_fixtures(run)
        setup.note = f"{len(run.names)} records"
    except StepFailed as exc:
        setup.error = str(exc)
        count([Violation("STEP", f"fixtures: {exc}")], setup.violations)
    result.steps.append(setup)
    if setup.error is None:
        for index, step in enumerate(run.scenario.steps, start=1):
            record = _step(run, index, step, count)
            result.steps.append(record)
            if on_step is not None:
                on_step(record)
            if record.error is not None:
                break
    # The final judgement: the books at the end, and the oracle's figures.
    final = StepResult(len(result.steps), "final", None, run.now_iso())
    alive = _alive(run, "the last step", final, count) and run.expect_running
    run.resolve_names()
    settle = run.session.settle(SETTLE_WINDOW_S, SETTLE_TIMEOUT_S, wait_for_integration=alive)
    final.settle, final.settled = str(settle), settle.settled
    if alive and not settle.settled:
        count([Violation("SETTLE", f"the end of the scenario: {settle}")], final.violations)
    books = _books(run)
    count(_check(books), final.violations)
    count(_oracle(run, books), final.violations)
    result.steps.append(final)
    result.violations = list(counted.values())
    result.sla = _sla(run, result)
    result.lineage = lineage(run)
    result.revenue = revenue(run)
    result.faults_injected = list(run.world.faults.snapshot().get("hits", []))
    result.fingerprint = fingerprint(run, result)


def _step(
    run: Run,
    index: int,
    step: sc.Step,
    count: Callable[[Iterable[Violation], list[Violation]], None],
) -> StepResult:
    run.step_index = index
    record = StepResult(index, step.kind, step.line, run.now_iso())
    began = time.monotonic()
    process = run.session.integration
    if step.kind != "integration":
        _alive(run, f"before step {index}", record, count)
    try:
        record.note = EXECUTORS[step.kind](run, step.params)
    except (StepFailed, IntegrationError) as exc:
        record.error = str(exc)
        count(
            [Violation("STEP", f"step {index} ({step.kind}, line {step.line}): {exc}")],
            record.violations,
        )
        record.wall_s = time.monotonic() - began
        return record
    running = process is None or process.running
    # With faults on, an integration that keeps retrying is doing its job: wait less, and
    # judge the settling once the faults are off.
    timeout_s = SETTLE_TIMEOUT_S if running and not run.faults else FAULTED_SETTLE_S
    settle = run.session.settle(SETTLE_WINDOW_S, timeout_s, wait_for_integration=running)
    if step.kind != "integration" and not _alive(run, f"step {index}", record, count):
        running = False
    record.wall_s = time.monotonic() - began
    record.settle, record.settled = str(settle), settle.settled
    record.faults = sorted(run.faults)
    run.resolve_names()
    if running and not run.faults and not settle.settled:
        count([Violation("SETTLE", f"step {index} ({step.kind}): {settle}")], record.violations)
    found: list[Violation] = []
    books = _books(run)
    if isinstance(step.params, sc.Expect):
        found += _expect(run, step.params, books)
    # While faults are on or the integration is down, gaps are expected to heal later: they
    # are noted, and count only if the final check still finds them — unless an `expect`
    # step asks for the invariants to hold right now.
    violations = _check(books, step.params)
    if (run.faults or not running) and not isinstance(step.params, sc.Expect):
        record.deferred = violations
    else:
        found += violations
    count(found, record.violations)
    return record


def _alive(
    run: Run,
    when: str,
    record: StepResult,
    count: Callable[[Iterable[Violation], list[Violation]], None],
) -> bool:
    """False, reported once with its last output, when the integration died on its own."""
    process = run.session.integration
    if process is None or process.running or not run.expect_running:
        return True
    run.expect_running = False  # one report per death; a restart step revives the watch
    tail = "\n".join(process.output()[-20:])
    count([Violation("INTEGRATION", f"the integration died by {when}:\n{tail}")], record.violations)
    return False


# --- judgement ---------------------------------------------------------------------------------
def _books(run: Run) -> Books:
    return take_books(
        run.world, {str(role): number for role, number in run.config.accounts.items()}
    )


def _check(books: Books, params: Any = None) -> list[Violation]:
    only = None
    if isinstance(params, sc.Expect) and params.invariants != "all":
        only = [rule for rule in params.invariants if rule in REGISTRY]
    return check_all(books, only=only)


def _oracle(run: Run, books: Books) -> list[Violation]:
    return list(oracle.compare(oracle.expect(run.scenario), books, oracle_names(run)))


def oracle_names(run: Run) -> dict[str, str]:
    """Scenario names → the ids the run produced, as the oracle keys them."""
    names = {}
    for name, value in run.names.items():
        kind, _, key = name.partition(":")
        if kind == "subscription":
            names[f"opportunity:{key}"] = value
        elif kind == "customer":
            names[f"customer:{key}"] = value
        elif kind in ("price", "product", "entity"):
            names[name] = value
    return names


def _expect(run: Run, p: sc.Expect, books: Books) -> list[Violation]:
    found: list[Violation] = []
    if p.invariants != "all":
        unknown = [rule for rule in p.invariants if rule not in REGISTRY]
        if unknown:
            found.append(Violation("EXPECT", f"unknown invariant(s) {unknown}"))
    # The oracle predicts the end of what it is given: give it the steps up to here, and
    # compare the books with it now as at the end.
    so_far = run.scenario.model_copy(update={"steps": run.scenario.steps[: run.step_index]})
    expected = oracle.expect(so_far)
    found += oracle.compare(expected, books, oracle_names(run))
    for name, wanted in p.figures.items():
        try:
            actual = actual_figure(run, name)
        except (KeyError, IndexError, StepFailed, ValueError) as exc:
            found.append(Violation("EXPECT", f"figure {name}: cannot read it: {exc!r}"))
            continue
        if str(actual) != str(wanted):
            found.append(
                Violation(
                    "EXPECT",
                    f"figure {name}: expected {wanted}, the books say {actual}",
                    details={"expected": wanted, "actual": actual},
                )
            )
        try:
            predicted = oracle.figure(expected, name)
        except (KeyError, ValueError):
            continue
        if str(predicted) != str(wanted):
            found.append(
                Violation(
                    "ORACLE", f"figure {name}: the scenario says {wanted}, the oracle {predicted}"
                )
            )
    return found


def actual_figure(run: Run, name: str) -> int:
    """A named figure read from the systems: the documented names in docs/scenarios.md."""
    kind, _, rest = name.partition(":")
    billing = run.sim("billing").store
    if kind in ("invoice_total", "amount_due", "invoice_count"):
        opportunity, _, nth = rest.partition(":")
        sub = run.subscription_of(opportunity)
        if sub is None:
            raise KeyError(f"no subscription for {opportunity}")
        invoices = [i for i in billing.invoices.values() if i.subscription == sub]
        if kind == "invoice_count":
            return len([i for i in invoices if i.status != "draft"])
        invoice = invoices[int(nth) - 1]
        return int(invoice.total if kind == "invoice_total" else invoice.amount_due)
    if kind == "balance":
        return int(billing.customers[run.stripe_customer(rest)].balance)
    if kind in ("erp_invoice_total", "erp_ar_open"):
        opportunity, _, nth = rest.partition(":")
        sub = run.subscription_of(opportunity)
        invoices = [i for i in billing.invoices.values() if i.subscription == sub]
        invoice = invoices[int(nth) - 1]
        row = run.erp.store.by_external_id("invoice", invoice.id)
        if row is None:
            raise KeyError(f"no ERP invoice for {invoice.id}")
        total = sum(item.amount_minor + item.tax_minor for item in row.items)
        return int(total if kind == "erp_invoice_total" else total - row.paid_minor)
    if kind in ("recognised", "deferred"):
        entity, _, period = rest.partition(":")
        report = run.actors.call(
            "revrec", "GET", "/v1/reports/waterfall", params={"entity": entity_id(entity)}
        )
        if kind == "deferred":
            return sum(int(t["deferred_minor"]) for t in report["totals"])
        return sum(
            int(cell["amount_minor"])
            for row in report["rows"]
            for cell in row["recognised"]
            if cell["period"] == period
        )
    raise KeyError(f"unknown figure kind {kind!r}")


def _sla(run: Run, result: ScenarioResult) -> list[Sla]:
    """Closed-won → subscription, invoice → ERP posting, period close → revenue journal."""
    out: list[Sla] = []
    step_wall = {s.index: s.wall_s for s in result.steps}
    billing = run.sim("billing").store if run.has("billing") else None
    erp = run.erp.store if run.has("erp") else None
    closes = [(s.index, s) for s in result.steps if s.kind == "crm.close_won" and s.error is None]
    for (index, _), opportunity in zip(closes, run.won, strict=False):
        sub = run.subscription_of(opportunity)
        if billing is not None and sub in billing.subscriptions:
            created = billing.subscriptions[sub].created
            closed_at = _parse(result.steps[index].sim_at)
            if created < closed_at:
                continue  # an amendment: its subscription came from an earlier deal
            out.append(
                Sla(
                    "closed_won_to_subscription", opportunity, created - closed_at, step_wall[index]
                )
            )
    if billing is not None and erp is not None:
        for invoice in billing.invoices.values():
            if invoice.finalized_at is None:
                continue
            row = erp.by_external_id("invoice", invoice.id)
            if row is None:
                continue
            step = _step_at(result, invoice.finalized_at)
            out.append(
                Sla(
                    "invoice_to_erp_posting",
                    invoice.id,
                    int(row.created_at) - int(invoice.finalized_at),
                    step_wall.get(step, 0.0),
                )
            )
    if run.has("revrec") and erp is not None:
        for close in run.sim("revrec").store.period_closes.values():
            row = erp.by_external_id("journalEntry", close.id)
            if row is None:
                continue
            step = _step_at(result, close.closed_at)
            out.append(
                Sla(
                    "period_close_to_revenue_journal",
                    f"{close.entity} {close.period}",
                    int(row.created_at) - int(close.closed_at),
                    step_wall.get(step, 0.0),
                )
            )
    return out


def _parse(instant: str) -> int:
    return int(datetime.fromisoformat(instant.replace("Z", "+00:00")).timestamp())


def _step_at(result: ScenarioResult, sim_at: int) -> int:
    """The last step that began at or before ``sim_at``: the one whose settle covered it."""
    chosen = 0
    for step in result.steps:
        if step.kind in ("fixtures", "final"):
            continue
        if _parse(step.sim_at) <= sim_at:
            chosen = step.index
    return chosen


# --- what the report shows ---------------------------------------------------------------------
def lineage(run: Run) -> list[dict[str, Any]]:
    """Per deal: opportunity → subscription → invoices → ERP documents → revenue contract."""
    if not (run.has("billing") and run.has("erp")):
        return []
    billing = run.sim("billing").store
    erp = run.erp.store
    revrec = run.sim("revrec").store if run.has("revrec") else None
    deals = []
    shown: set[str] = set()
    for name, opp_id in run.names.items():
        if not name.startswith("opportunity:"):
            continue
        key = name.partition(":")[2]
        sub = run.subscription_of(key)
        invoices = []
        for invoice in billing.invoices.values():
            # An amendment's invoices are its subscription's: shown once, under the first deal.
            if sub is None or invoice.subscription != sub or sub in shown:
                continue
            erp_invoice = erp.by_external_id("invoice", invoice.id)
            payment = erp.by_external_id("customerPayment", f"pay_{invoice.id}")
            notes = [n for n in billing.credit_notes.values() if n.invoice == invoice.id]
            invoices.append(
                {
                    "id": invoice.id,
                    "status": invoice.status,
                    "currency": invoice.currency,
                    "total": invoice.total,
                    "billing_reason": invoice.billing_reason,
                    "erp_invoice": erp_invoice.id if erp_invoice else None,
                    "erp_subsidiary": _subsidiary(erp, erp_invoice),
                    "erp_period": _period(erp, erp_invoice),
                    "erp_payment": payment.id if payment else None,
                    "credit_notes": [
                        {
                            "id": n.id,
                            "erp_credit_memo": (
                                (memo := erp.by_external_id("creditMemo", n.id)) and memo.id
                            ),
                        }
                        for n in notes
                    ],
                }
            )
        if sub is not None:
            shown.add(sub)
        contract = None
        if revrec is not None and sub is not None:
            contract_id = revrec.contract_by_external_id.get(sub)
            if contract_id is not None:
                row = revrec.contracts[contract_id]
                contract = {"id": row.id, "entity": row.entity, "lines": list(row.lines)}
        deals.append(
            {
                "opportunity": key,
                "crm_id": opp_id,
                "subscription": sub,
                "invoices": invoices,
                "revenue_contract": contract,
            }
        )
    return deals


def _subsidiary(erp: Any, row: Any) -> str | None:
    if row is None:
        return None
    subsidiary = erp.subsidiaries.get(row.subsidiary)
    return str(subsidiary.external_id or subsidiary.id) if subsidiary else str(row.subsidiary)


def _period(erp: Any, row: Any) -> str | None:
    if row is None:
        return None
    period = erp.periods.get(row.period)
    return f"{period.year}-{period.month:02d}" if period else str(row.period)


def revenue(run: Run) -> list[dict[str, Any]]:
    """Recognised revenue per entity, currency and month, and the deferred balance at the end."""
    if not run.has("revrec"):
        return []
    out = []
    for entity in run.scenario.fixtures.entities:
        try:
            report = run.actors.call(
                "revrec", "GET", "/v1/reports/waterfall", params={"entity": entity_id(entity.key)}
            )
        except StepFailed:
            continue
        by_month: dict[tuple[str, str], int] = {}
        for row in report["rows"]:
            for cell in row["recognised"]:
                key = (row["currency"], cell["period"])
                by_month[key] = by_month.get(key, 0) + int(cell["amount_minor"])
        out.append(
            {
                "entity": entity_id(entity.key),
                "recognised": [
                    {"currency": c, "period": p, "amount_minor": a}
                    for (c, p), a in sorted(by_month.items(), key=lambda kv: (kv[0][1], kv[0][0]))
                ],
                "totals": report["totals"],
            }
        )
    return out


def fingerprint(run: Run, result: ScenarioResult) -> str:
    """A digest of what must not vary between runs of one scenario and seed: the ids, the
    amounts, the fault schedule and the verdict (wall times excluded)."""
    data = {
        "names": dict(sorted(run.names.items())),
        "documents": _documents(run),
        "faults": result.faults_injected,  # seq, rule, kind, sim time: no wall clock in them
        "verdict": sorted((v.rule, v.message) for v in result.violations),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _documents(run: Run) -> dict[str, Any]:
    docs: dict[str, Any] = {}
    if run.has("billing"):
        billing = run.sim("billing").store
        docs["invoices"] = sorted(
            (i.id, i.status, i.total, i.amount_due, i.currency) for i in billing.invoices.values()
        )
        docs["credit_notes"] = sorted((n.id, n.total) for n in billing.credit_notes.values())
    if run.has("erp"):
        docs["erp"] = sorted(
            (t.kind, t.external_id or "", t.subsidiary, t.period, t.currency)
            for t in run.erp.store.transactions.values()
        )
    return docs

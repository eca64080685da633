"""Playing a scenario: the people acting, the names they give, settling after every step."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterable
from typing import Any

from harness import oracle
from harness import scenario as sc
from harness.actors import Actors, StepFailed
from harness.books import Books
from harness.config import HarnessConfig
from harness.exceptions import Exceptions, SetAsideLog
from harness.forgery import ForgedPush
from harness.integration import IntegrationError
from harness.invariants import REGISTRY
from harness.judging import Judge
from harness.results import StepResult
from harness.session import Session
from harness.steps import Expect, entity_id
from harness.steps.batch import Batch
from harness.violations import Violation
from simulators.common.clock import iso

SETTLE_WINDOW_S = 0.15  # quiet window for an integration without an idle probe
SETTLE_TIMEOUT_S = 30.0
FAULTED_SETTLE_S = 3.0
Count = Callable[[Iterable[Violation], list[Violation]], None]


class Run:
    """One scenario being played: the session, the people acting, the names given so far.

    It reads the systems only through Books snapshots (``latest``, taken after every step has
    settled) and the vendors' own APIs (``actors``)."""

    def __init__(
        self,
        scenario: sc.Scenario,
        session: Session,
        config: HarnessConfig,
        judge: Judge | None = None,
    ) -> None:
        self.scenario = scenario
        self.session = session
        self.config = config
        self.judge = judge or Judge.from_config(config)
        self.actors = Actors(session.context)
        self.names: dict[str, str] = {}
        self.faults: dict[str, list[str]] = {}
        self.won: list[str] = []
        self.won_at: list[tuple[int, str]] = []  # (step index, opportunity key)
        self.step_index = 0
        self.expect_running = session.integration is not None  # false after stop or kill
        self.latest: Books | None = None
        self.forged: list[ForgedPush] = []  # pushes forged so far (webhook.forge), judged by INV-34
        # Master data a step broke and no step has mended yet (say `erp customer acme`), the
        # sim instants of integration.replay steps, and what the exception list showed when.
        self.broken: set[str] = set()
        self.replays: list[int] = []
        self.set_aside = SetAsideLog()
        self._customers = {c.key: c for c in scenario.fixtures.customers}
        self._prices = {p.key: p for p in scenario.fixtures.prices}

    # the world: its clock, and snapshots of its books ---------------------------------------
    def has(self, system: str) -> bool:
        return system in self.session.stack.sims

    def now(self) -> int:
        return int(self.session.stack.world.clock.now())

    def now_iso(self) -> str:
        return iso(self.now())

    def today(self) -> str:
        return self.now_iso()[:10]

    def snapshot(self) -> Books:
        """The books now, read as the judge reads them (declared links and scope)."""
        # The last snapshot lends the rows that have not changed since (most, after a step).
        books = self.judge.books(
            self.session.stack.world, self.session.standin_endpoints, self.forged, self.latest
        )
        process = self.session.integration
        probe = None if process is None else process.exceptions
        if probe is not None:
            listed = probe.read() if process is not None and process.running else None
            if listed is None:
                listed = Exceptions(error="the integration is not running", down=True)
            listed = dataclasses.replace(listed, replays=tuple(self.replays))
            self.set_aside.observe(listed, books.now)
            changed = books.changed
            if changed is not None and (self.latest is None or listed != self.latest.exceptions):
                changed |= {"exceptions"}
            books = dataclasses.replace(books, exceptions=listed, changed=changed)
        self.latest = books
        return books

    def customer(self, key: str) -> sc.Customer:
        return self._customers[key]

    def price(self, key: str) -> sc.Price:
        return self._prices[key]

    # the ids the integration made ----------------------------------------------------------
    def subscription_of(self, deal: str) -> str | None:
        """The subscription of a deal: one made in billing, or the one the integration made
        for a won opportunity (its CRM write-back, or the billing subscription linked to it)."""
        return self._made_for(
            f"subscription:{deal}",
            self.names.get(f"opportunity:{deal}"),
            "opportunity_subscription",
            "billing.subscription",
        )

    def stripe_customer(self, key: str) -> str:
        """The billing customer of a fixture customer: made in billing, or by the integration
        for the customer's CRM account."""
        found = self._made_for(
            f"customer:{key}",
            self.names.get(f"account:{key}"),
            "account_customer",
            "billing.customer",
        )
        if found is None:
            raise StepFailed(f"customer {key} has no billing customer yet")
        return found

    def _made_for(self, name: str, crm_id: str | None, writeback: str, link: str) -> str | None:
        """The billing id made for a CRM record, remembered under ``name``: the record's
        write-back field, or the billing row linked to it; a stale snapshot is read again."""
        if name in self.names:
            return self.names[name]
        if crm_id is None:
            return None
        for books in (self.latest, None):
            books = books or self.snapshot()
            record = books.crm_record(crm_id)
            found = (record.get(books.writeback(writeback)) or None) if record else None
            if found is None:
                target = books.links.target(link, crm_id)
                found = None if target is None else target.id
            if found is not None:
                self.names[name] = str(found)
                return str(found)
        return None

    def resolve_names(self) -> None:
        """Learn the ids the integration made (subscriptions, billing customers)."""
        for key in self._customers:
            with contextlib.suppress(StepFailed):
                self.stripe_customer(key)
        for opportunity in self.won:
            self.subscription_of(opportunity)


# --- playing -----------------------------------------------------------------------------------
def play_step(run: Run, index: int, step: sc.Step, count: Count) -> StepResult:
    """Run one step, settle, and judge the books as they now stand."""
    run.step_index = index
    record = StepResult(index, step.kind, step.line, run.now_iso())
    began = time.monotonic()
    won = len(run.won)
    process = run.session.integration
    if step.kind != "integration":
        alive(run, f"before step {index}", record, count)
    try:
        record.note = step.params.execute(run)
    except (StepFailed, IntegrationError) as exc:
        record.error = str(exc)
        count(
            [Violation("STEP", f"step {index} ({step.kind}, line {step.line}): {exc}")],
            record.violations,
        )
        record.wall_s = time.monotonic() - began
        return record
    run.won_at += [(index, key) for key in run.won[won:]]
    running = process is None or process.running
    # With faults on, an integration that keeps retrying is doing its job: wait less, and
    # judge the settling once the faults are off.
    timeout_s = SETTLE_TIMEOUT_S if running and not run.faults else FAULTED_SETTLE_S
    if isinstance(step.params, Batch):
        timeout_s = step.params.settle_timeout_s(timeout_s)
    settle = run.session.settle(
        run.session.quiet_window(SETTLE_WINDOW_S), timeout_s, wait_for_integration=running
    )
    if step.kind != "integration" and not alive(run, f"step {index}", record, count):
        running = False
    record.wall_s = time.monotonic() - began
    record.settle, record.settled = str(settle), settle.settled
    record.faults = sorted(run.faults)
    books = run.snapshot()
    run.resolve_names()
    if running and not run.faults and not settle.settled:
        count([Violation("SETTLE", f"step {index} ({step.kind}): {settle}")], record.violations)
    found: list[Violation] = []
    expect = step.params if isinstance(step.params, Expect) else None
    # Master data broken, or documents set aside and surfaced in the exception list: the
    # gaps they leave are the operator's to close (mend, replay) and count only at the end
    # (an `expect` step then checks its figures and rules, the oracle's figures wait too).
    waiting = bool(run.broken) or any(True for _ in (books.exceptions or Exceptions()).open())
    if expect is not None:
        found += _expect(run, books, expect, record if waiting else None)
    # While faults are on or the integration is down, gaps are expected to heal later: they
    # are noted, and count only if the final check still finds them — unless an `expect`
    # step asks for the invariants to hold right now.
    violations = run.judge.check(books, expect)
    if (run.faults or not running or waiting) and expect is None:
        record.deferred = violations
    else:
        found += violations
    count(found, record.violations)
    return record


def alive(run: Run, when: str, record: StepResult, count: Count) -> bool:
    """False, reported once with its last output, when the integration died on its own."""
    standin = run.session.standin
    if standin is not None and not standin.running:
        tail = "\n".join(standin.output()[-20:])
        count([Violation("STANDIN", f"the stand-in died by {when}:\n{tail}")], record.violations)
    process = run.session.integration
    if process is None or process.running or not run.expect_running:
        return True
    run.expect_running = False  # one report per death; a restart step revives the watch
    tail = "\n".join(process.output()[-20:])
    count([Violation("INTEGRATION", f"the integration died by {when}:\n{tail}")], record.violations)
    return False


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


def _expect(
    run: Run, books: Books, p: Expect, deferring: StepResult | None = None
) -> list[Violation]:
    found: list[Violation] = []
    if p.invariants != "all":
        unknown = [rule for rule in p.invariants if rule not in REGISTRY]
        if unknown:
            found.append(Violation("EXPECT", f"unknown invariant(s) {unknown}"))
    # The oracle predicts the end of what it is given: give it the steps up to here, and
    # compare the books with it now as at the end.
    so_far = run.scenario.model_copy(update={"steps": run.scenario.steps[: run.step_index]})
    expected = oracle.expect(so_far)
    compared = run.judge.oracle_compare(expected, books, oracle_names(run))
    if deferring is not None:
        deferring.deferred += compared
    else:
        found += compared
    for name, wanted in p.figures.items():
        try:
            actual = actual_figure(run, books, name)
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


def actual_figure(run: Run, books: Books, name: str) -> int:
    """A named figure read from the books: the documented names in docs/scenarios.md."""
    kind, _, rest = name.partition(":")
    if kind in ("invoice_total", "amount_due", "invoice_count", "erp_invoice_total", "erp_ar_open"):
        deal, _, nth = rest.partition(":")
        sub = run.subscription_of(deal)
        if sub is None:
            raise KeyError(f"no subscription for {deal}")
        invoices = books.invoices_by_subscription.get(sub, [])
        if kind == "invoice_count":
            return len([i for i in invoices if i.status != "draft"])
        invoice = invoices[int(nth) - 1]
        if kind in ("invoice_total", "amount_due"):
            return int(invoice.total if kind == "invoice_total" else invoice.amount_due)
        row = books.links.target("erp.invoice", invoice.id)
        if row is None:
            raise KeyError(f"no ERP invoice for {invoice.id}")
        return int(
            row.total_minor if kind == "erp_invoice_total" else row.total_minor - row.paid_minor
        )
    if kind == "balance":
        return int(books.customers[run.stripe_customer(rest)].balance)
    if kind == "allocated":
        return _allocated(run, books, *rest.split(":"))
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


def _allocated(run: Run, books: Books, deal: str, price: str) -> int:
    """What the subledger allocates to the deal's contract line for ``price``: its live line
    (a price removed and re-added has two), else its last."""
    sub = run.subscription_of(deal)
    found = books.links.target("revrec.contract", sub) if sub else None
    if found is None:
        raise KeyError(f"no subledger contract for {deal}")
    price_id = run.names[f"price:{price}"]
    lines = []
    for line in books.rr_contract_lines(books.rr_contracts[str(found.id)]):
        item = books.subscription_items.get(books.links.source_of_line(line.id) or "")
        if item is not None and item.price == price_id:
            lines.append(line)
    if not lines:
        raise KeyError(f"the contract of {deal} has no line for {price}")
    live = [line for line in lines if line.terminated_at is None]
    return int((live or lines)[-1].allocated_minor)


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

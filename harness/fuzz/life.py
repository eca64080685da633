"""The fuzzer's model of a lifecycle so far: what each step kind may validly do next.

It answers the step kinds' ``generate`` questions (``harness.steps.registry.Lifecycle``) from
the load-time context (names, deals won, the clock), the oracle's replay of the steps so far
(subscriptions, invoices, balances) and its own bookkeeping, and keeps generated lifecycles
inside what the oracle follows — so whatever the judges then find is the integration's doing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.oracle.arithmetic import month_of
from harness.oracle.billing import BillingReplay
from harness.oracle.model import ExpectedInvoice, ExpectedSubscription
from harness.scenario import Fixtures, Scenario, Step
from harness.steps.registry import Chooser, Context, Gives
from simulators.common.clock import parse_instant

# One rule per fault window: faults on every system's writes, and on webhook delivery.
FAULT_RULES: tuple[dict[str, Any], ...] = (
    {"system": "erp", "kind": "outage", "retry_after_s": 1},
    {"system": "erp", "operation": "create*", "kind": "error", "status": 503, "max_hits": 2},
    {"system": "erp", "operation": "createInvoice", "kind": "ambiguous_commit", "max_hits": 1},
    {"system": "revrec", "kind": "throttle", "retry_after_s": 1, "max_hits": 3},
    {"system": "billing", "operation": "update*", "kind": "reset", "max_hits": 1},
    {"system": "crm", "kind": "throttle", "probability": 0.5, "retry_after_s": 1, "max_hits": 4},
    {"system": "billing", "kind": "duplicate", "copies": 2},
    {"system": "billing", "kind": "reorder", "probability": 0.5},
)


@dataclass
class FuzzLifecycle:
    """The lifecycle being generated: ``note`` each step played, then ask what may come next."""

    scenario: Scenario
    ctx: Context = field(init=False)
    flows: dict[str, str] = field(default_factory=dict)  # customer → crm | billing
    changed_at: dict[str, int] = field(default_factory=dict)  # deal → its last change
    frozen_until: dict[str, int] = field(default_factory=dict)  # deal → a renewal's effect
    closed: set[tuple[str, str]] = field(default_factory=set)  # (system, YYYY-MM)
    _replay: tuple[int, BillingReplay] | None = None

    def __post_init__(self) -> None:
        fixtures: Fixtures = self.scenario.fixtures
        names = {e.key: "entity" for e in fixtures.entities}
        names |= {p.key: "product" for p in fixtures.products}
        names |= {p.key: "price" for p in fixtures.prices}
        names |= {c.key: "customer" for c in fixtures.customers}
        self.ctx = Context(fixtures, names, parse_instant(self.scenario.start_at))

    # --- keeping up -------------------------------------------------------------------------
    def note(self, step: Step) -> None:
        """A step was played: its names, its effect on the context and the bookkeeping."""
        p: Any = step.params
        for _, value, mark in p.references():
            if isinstance(mark, Gives):
                self.ctx.names[value] = mark.kind
        deal = getattr(p, "deal", None) if step.kind.startswith("billing.") else None
        if step.kind == "crm.create_opportunity" and p.kind == "new":
            self.flows.setdefault(p.customer, "crm")
        elif step.kind in ("billing.subscribe", "billing.create_subscription"):
            self.flows.setdefault(p.customer, "billing")
            deal = p.key  # started now: no change at the instant it starts (below)
        elif step.kind == "crm.close_won":
            opp = self._opportunity(p.opportunity)
            # A new deal's subscription starts now; a change in the same instant would leave
            # a service of no length, which no judge defines: changes wait for the clock.
            deal = p.opportunity if opp is not None and opp.kind == "new" else None
            if opp is not None and opp.kind != "new":
                deal = opp.amends
                sub = self.oracle.subscriptions.get(opp.amends)
                if opp.kind == "renewal" and sub is not None:
                    self.frozen_until[opp.amends] = sub.period_end
        elif step.kind == "crm.close_won_many":
            for member in p.members():  # new deals, each started now
                self.flows.setdefault(member.customer, "crm")
                self.changed_at[member.key] = self.ctx.now
        elif step.kind in ("erp.close_period", "revrec.close_period"):
            self.closed.add((step.kind.split(".")[0], p.period))
        if deal is not None:
            self.changed_at[deal] = self.ctx.now
        p.track(self.ctx)

    @property
    def oracle(self) -> BillingReplay:
        """The oracle's replay of the steps so far (what billing shows now)."""
        count = len(self.scenario.steps)
        if self._replay is None or self._replay[0] != count:
            replay = BillingReplay(self.scenario)
            replay.run()
            self._replay = (count, replay)
        return self._replay[1]

    # --- the Lifecycle questions --------------------------------------------------------------
    def fresh(self, prefix: str) -> str:
        n = 1
        while f"{prefix}{n}" in self.ctx.names:
            n += 1
        return f"{prefix}{n}"

    def customer(self, c: Chooser, flow: str) -> str | None:
        options = [
            k.key
            for k in self.ctx.fixtures.customers
            if self.flows.get(k.key, flow) == flow and "Declined" not in k.payment_method
        ]
        return c.pick(options) if options else None

    def lines(
        self, c: Chooser, like: str | None = None, customer: str | None = None
    ) -> list[dict[str, Any]]:
        prices = self.ctx.fixtures.prices
        cadence = None
        if like is not None:
            sub = self.oracle.subscriptions[like]
            first = self.ctx.prices[sub.items[0].price]
            cadence = (first.currency, first.interval, first.interval_count)
        groups: dict[tuple[Any, ...], list[Any]] = {}
        for price in prices:
            if price.interval is not None and not price.usage:
                groups.setdefault((price.currency, price.interval, price.interval_count), [])
                groups[(price.currency, price.interval, price.interval_count)].append(price)
        key = cadence if cadence in groups else c.pick(sorted(groups))
        licensed = groups[key]
        chosen = (
            [licensed[0]] if len(licensed) == 1 else c.pick([licensed[:1], licensed[1:2], licensed])
        )
        lines = [{"price": p.key, "quantity": c.integer(1, 20)} for p in chosen]
        usage = [
            p
            for p in prices
            if p.usage
            and (p.currency, p.interval or "month", p.interval_count) == key
            and customer is not None
            and not self._metered_for(customer)
        ]
        if usage and c.boolean():
            lines.append({"price": usage[0].key, "quantity": 1})
        return lines

    def deal(self, c: Chooser, crm: bool = False) -> str | None:
        options = [
            key
            for key, sub in self.oracle.subscriptions.items()
            if self._changeable(key, sub) and (not crm or self.ctx.names.get(key) == "opportunity")
        ]
        return c.pick(sorted(options)) if options else None

    def ref(self, deal: str) -> dict[str, str]:
        kind = "opportunity" if self.ctx.names.get(deal) == "opportunity" else "subscription"
        return {kind: deal}

    def customer_of(self, deal: str) -> str:
        return self.oracle.subscriptions[deal].customer

    def unwon(self, c: Chooser) -> str | None:
        options = []
        for key, kind in self.ctx.names.items():
            opp = self._opportunity(key) if kind == "opportunity" else None
            if opp is None or key in self.ctx.won:
                continue
            root = self.oracle.subscriptions.get(opp.amends or "")
            if opp.kind == "new" or (root is not None and self._changeable(opp.amends, root)):
                options.append(key)
        return c.pick(sorted(options)) if options else None

    def metered(self, c: Chooser) -> tuple[str, str] | None:
        options = sorted(
            {
                (sub.customer, item.price)
                for key, sub in self.oracle.subscriptions.items()
                if sub.status == "active"
                for item in sub.items
                if self.ctx.prices[item.price].usage
            }
        )
        return c.pick(options) if options else None

    def owing(self, c: Chooser) -> str | None:
        options = sorted({i.customer for i in self.oracle.invoices if i.status == "open"})
        return c.pick(options) if options else None

    def creditable(self, c: Chooser) -> tuple[str, str, int] | None:
        options = []
        for customer in sorted({i.customer for i in self.oracle.invoices}):
            final = [
                i
                for i in self.oracle.invoices
                if i.customer == customer and i.status in ("open", "paid")
            ]
            if not final or (len(final) > 1 and final[-1].created_at == final[-2].created_at):
                continue  # two invoices of one instant: which is "latest" is a tie
            inv = final[-1]
            room = _credit_room(inv)
            if room > 0:
                options.append((customer, inv.status, room))
        return c.pick(options) if options else None

    def closable(self, c: Chooser, system: str) -> tuple[str, str] | None:
        now = month_of(self.ctx.now)
        month = month_of(parse_instant(self.scenario.start_at))
        # The earliest ended month the system has not closed.
        while month < now and (system, month) in self.closed:
            month = _next_month(month)
        if month >= now:
            return None
        return self.ctx.fixtures.entities[0].key, month

    def fault_rules(self, c: Chooser) -> list[dict[str, Any]]:
        return [dict(c.pick(list(FAULT_RULES)))]

    def voidable(self, c: Chooser) -> str | None:
        options = []
        for customer in sorted({i.customer for i in self.oracle.invoices}):
            owed = [
                i for i in self.oracle.invoices if i.customer == customer and i.status == "open"
            ]
            if len(owed) > 1 and owed[-1].created_at == owed[-2].created_at:
                continue  # two invoices of one instant: which is "latest" is a tie
            if owed and not owed[-1].credit_notes:
                options.append(customer)
        return c.pick(options) if options else None

    def slipped(self, c: Chooser) -> str | None:
        options = []
        for key in sorted(self.ctx.unseen):
            opp = self._opportunity(key)
            if opp is not None and opp.kind == "new":
                options.append(key)
        return c.pick(options) if options else None

    # --- helpers --------------------------------------------------------------------------------
    def _metered_for(self, customer: str) -> bool:
        """The customer has a deal (made or only proposed) with a metered price: meter events
        are the customer's, so a second metered subscription would bill them twice."""
        for step in self.scenario.steps:
            p: Any = step.params
            if getattr(p, "customer", None) == customer and any(
                self.ctx.prices[line.price].usage for line in getattr(p, "lines", [])
            ):
                return True
        return False

    def _opportunity(self, key: str) -> Any:
        for step in self.scenario.steps:
            if step.kind == "crm.create_opportunity" and step.params.key == key:  # type: ignore[attr-defined]
                return step.params
        return None

    def _changeable(self, key: str, sub: ExpectedSubscription) -> bool:
        """Active, not ending, not changed at this instant (the oracle merges no two changes
        at one instant), and no won renewal still waiting for its period end."""
        return (
            sub.status == "active"
            and not sub.cancel_at_period_end
            and key not in self.ctx.cancelled
            and self.changed_at.get(key) != self.ctx.now
            and self.ctx.now >= self.frozen_until.get(key, 0)
        )


def _credit_room(inv: ExpectedInvoice) -> int:
    """What may still be credited on an invoice (a paid one: also what may be refunded)."""
    credited = sum(cn.total_minor for cn in inv.credit_notes)
    room = inv.total_minor - credited
    if inv.status == "paid":
        refunded = sum(cn.refund_minor for cn in inv.credit_notes)
        room = min(room, inv.amount_paid_minor - refunded)
    return max(0, room)


def _next_month(month: str) -> str:
    year, number = (int(part) for part in month.split("-"))
    return f"{year + number // 12}-{number % 12 + 1:02d}"

"""Replays a scenario's billing on the oracle's own model: subscriptions, invoices, balances."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from harness.oracle.arithmetic import instant, round_half_up, unused_share
from harness.oracle.model import (
    Change,
    Consumption,
    ExpectedCreditNote,
    ExpectedInvoice,
    ExpectedItem,
    ExpectedLine,
    ExpectedSubscription,
)

if TYPE_CHECKING:
    from harness.scenario import Coupon, Price, Scenario

FINALIZE_AFTER_S = 3600  # Stripe finalises a renewal draft about an hour after creating it
DAY_S = 86400


def declines(payment_method: str) -> bool:
    """Stripe's declining test payment methods are the ones named for a failed charge."""
    return "Declined" in payment_method or "CustomerFail" in payment_method


@dataclass(frozen=True)
class MeterEvent:
    customer: str
    price: str
    value: int
    at: int


@dataclass
class Booking:
    """A new-business subscription as the subledger sees it when the deal is won."""

    opportunity: str
    customer: str
    currency: str
    start_at: int
    interval_months: int
    term_months: int
    items: list[ExpectedItem]
    percent_off: str | None = None  # the subscription's coupon: off every period, or the first
    forever: bool = True
    inclusive_percent: Fraction = Fraction(0)  # Σ inclusive tax rates (0 for an exempt customer)
    applies_to: list[str] | None = None  # the product keys the coupon is restricted to


@dataclass
class BillingReplay:
    """Plays the steps in order on the simulated timeline and records what billing must show."""

    scenario: Scenario
    now: int = 0
    subscriptions: dict[str, ExpectedSubscription] = field(default_factory=dict)
    invoices: list[ExpectedInvoice] = field(default_factory=list)  # creation order
    balances: dict[str, int] = field(default_factory=dict)
    root: dict[str, str] = field(default_factory=dict)
    bookings: list[Booking] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)  # for the contracts to follow
    consumption: list[Consumption] = field(default_factory=list)  # metered usage, by subscription
    notes: list[str] = field(default_factory=list)
    _opportunities: dict[str, Any] = field(default_factory=dict)
    _meter_events: list[MeterEvent] = field(default_factory=list)
    # Invoices per opportunity so far (numbering them without looking through all of them).
    _invoice_count: Counter[str] = field(default_factory=Counter)
    _identifiers: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        fx = self.scenario.fixtures
        self.now = instant(self.scenario.start_at)
        self.prices: dict[str, Price] = {p.key: p for p in fx.prices}
        self.customers = {c.key: c for c in fx.customers}
        self.tax_rates = {r.key: r for r in fx.tax_rates}
        self.coupons = {c.key: c for c in fx.coupons}
        self.balances = {c.key: 0 for c in fx.customers}

    # --- driver ------------------------------------------------------------------------------
    def run(self) -> None:
        """Each step replays itself through the methods below (its kind's ``replay``): the
        step registry makes sure every step that moves money has one."""
        for index, step in enumerate(self.scenario.steps):
            step.params.replay(self, index)

    def advance(self, target: int) -> None:
        """Run what falls due up to ``target`` in time order; at one instant, renewals come
        before draft finalisations, each in creation order."""
        # A heap of (when, renewal 0 | finalisation 1, creation index). Only running an item
        # changes when it is due (a renewal moves its subscription's period, a finalisation
        # ends a draft) or adds drafts, so each is pushed again after it runs and each new
        # draft once: the same order as looking through everything after every item.
        subs = list(self.subscriptions.values())
        due = [
            (sub.period_end, 0, n)
            for n, sub in enumerate(subs)
            if sub.status == "active" and sub.period_end <= target
        ]
        due += [
            (inv.finalize_at, 1, n)
            for n, inv in enumerate(self.invoices)
            if inv.status == "draft" and inv.finalize_at <= target
        ]
        heapq.heapify(due)
        seen = len(self.invoices)
        while due:
            at, kind, n = heapq.heappop(due)
            if kind == 0:
                sub = subs[n]
                if sub.status != "active" or sub.period_end != at:
                    continue  # run already: its new period was pushed
                self.now = max(self.now, at)
                self._renew(sub, at)
                if sub.status == "active" and sub.period_end <= target:
                    heapq.heappush(due, (sub.period_end, 0, n))
            else:
                inv = self.invoices[n]
                if inv.status != "draft" or inv.finalize_at != at:
                    continue
                self.now = max(self.now, at)
                self._finalize(inv, at)
            for m in range(seen, len(self.invoices)):
                new = self.invoices[m]
                if new.status == "draft" and new.finalize_at <= target:
                    heapq.heappush(due, (new.finalize_at, 1, m))
            seen = len(self.invoices)
        self.now = max(self.now, target)

    # --- CRM steps and the integration's answers ---------------------------------------------
    def opportunity(self, opp: Any) -> None:
        """An opportunity created (its key, customer, lines, kind, amends, term_months)."""
        self._opportunities[opp.key] = opp

    def close_won(self, key: str, index: int) -> None:
        opp = self._opportunities.get(key)
        if opp is None:
            self.notes.append(f"step {index + 1}: close_won of {key}: never created")
            return
        if opp.kind == "new":
            lines = [(line.price, line.quantity) for line in opp.lines]
            self._start(opp.key, opp.customer, lines, opp.term_months, "send_invoice")
            return
        root = self.root.get(opp.amends or "")
        if root is None or root not in self.subscriptions:
            self.notes.append(
                f"step {index + 1}: {opp.key} amends {opp.amends!r}, which has no subscription"
            )
            return
        self.root[opp.key] = root
        sub = self.subscriptions[root]
        sub.amendments.append(opp.key)
        # Amendments prorate now; a renewal takes effect at the period end, so no prorations.
        behavior = "create_prorations" if opp.kind == "amendment" else "none"
        self._change(
            sub,
            opp.kind,
            [(line.price, line.quantity) for line in opp.lines],
            behavior,
            sub.period_end if opp.kind == "renewal" else self.now,
        )

    def subscribe(
        self,
        key: str,
        customer: str,
        lines: list[tuple[str, int]],
        term: int,
        collection: str,
        tax_rates: Sequence[str] = (),
        coupon: str | None = None,
        trial_days: int | None = None,
    ) -> None:
        """A subscription made in billing with no CRM deal: charged automatically (a
        self-serve sign-up) or invoiced (billing ops); after a free trial when given."""
        if collection == "charge_automatically" and declines(
            self.customers[customer].payment_method
        ):
            # Stripe leaves it incomplete, then expires it: a path the oracle does not follow.
            self.notes.append(f"{key}: its first charge is declined; not predicted")
            return
        self._start(key, customer, lines, term, collection, list(tax_rates), coupon, trial_days)

    def _start(
        self,
        key: str,
        customer: str,
        lines: list[tuple[str, int]],
        term: int,
        collection: str,
        tax_rates: list[str] | None = None,
        coupon: str | None = None,
        trial_days: int | None = None,
    ) -> None:
        """A new subscription and its contract, billed at once for the first period. A trial
        bills its period at 0 and anchors the billing cycle at its end (billing's first paid
        period starts there); the contract is booked from the sign-up all the same."""
        prices = [self.prices[price] for price, _ in lines]
        cadences = {(price.interval, price.interval_count) for price in prices}
        if any(price.interval is None for price in prices) or len(cadences) != 1:
            self.notes.append(f"{key}: lines need one recurring interval; not predicted")
            return
        first = prices[0]
        sub = ExpectedSubscription(
            key,
            customer,
            first.currency,
            (12 if first.interval == "year" else 1) * first.interval_count,
            self.now + trial_days * DAY_S if trial_days else self.now,
            [
                ExpectedItem(price, 0 if self._usage(price) else quantity)
                for price, quantity in lines
            ],
            cycles=-1 if trial_days else 0,
            collection=collection,
            tax_rates=tax_rates or [],
            coupon=coupon,
        )
        self.subscriptions[key] = sub
        self.root[key] = key
        self.bookings.append(
            Booking(
                key,
                customer,
                sub.currency,
                self.now,
                sub.interval_months,
                term,
                [ExpectedItem(i.price, i.quantity) for i in sub.items],
                *self._coupon_terms(coupon),
                self._inclusive_share(sub),
                self.coupons[coupon].applies_to if coupon else None,
            )
        )
        licensed = [
            ExpectedLine(
                "licensed",
                item.price,
                item.quantity,
                0 if trial_days else self.prices[item.price].unit_amount * item.quantity,
                self.now,
                sub.period_end,
            )
            for item in sub.items
            if not self._usage(item.price)
        ]
        inv = self._invoice(sub, "subscription_create", self.now, self.now, licensed)
        self._finalize(inv, self.now)

    # --- billing steps ------------------------------------------------------------------------
    def update(self, deal: str, lines: list[tuple[str, int]], behavior: str, index: int) -> None:
        sub = self._sub_of(deal, index)
        if sub is None:
            return
        made = self._change(sub, "update", lines, behavior, self.now)
        if behavior == "always_invoice" and made:
            inv = self._invoice(sub, "subscription_update", self.now, self.now, [])
            self._finalize(inv, self.now)

    def cancel(
        self, deal: str, at_period_end: bool, prorate: bool, invoice_now: bool, index: int
    ) -> None:
        sub = self._sub_of(deal, index)
        if sub is None:
            return
        start, end = sub.period_start, sub.period_end
        items = self._quantities(sub)
        if at_period_end:
            # The contract's service is shortened to the period end at once (point 8).
            sub.cancel_at_period_end = True
            self.changes.append(
                Change(
                    sub.opportunity, "cancel_at_period_end", self.now, items, items, {}, start, end
                )
            )
            return
        credits: dict[str, int] = {}
        if prorate:
            for item in sub.items:
                if self._usage(item.price) or not item.quantity:
                    continue
                unit = self.prices[item.price].unit_amount
                credit = unused_share(unit * item.quantity, start, end, self.now)
                if credit:
                    credits[item.price] = credits.get(item.price, 0) - credit
                    sub.pending.append(
                        ExpectedLine("proration", item.price, item.quantity, -credit, self.now, end)
                    )
        # Every line of the contract ends at the cancel instant (point 8).
        self.changes.append(
            Change(sub.opportunity, "cancel", self.now, items, {}, credits, start, end)
        )
        sub.status, sub.ended_at = "canceled", self.now
        if invoice_now:
            usage = self._usage_lines(sub, start, self.now)
            if usage or sub.pending:
                inv = self._invoice(sub, "subscription_cycle", start, min(self.now, end), usage)
                self._finalize(inv, self.now)

    def invoice_now(self, deal: str, index: int) -> None:
        """A manual invoice of the subscription's pending items, finalised at once."""
        sub = self._sub_of(deal, index)
        if sub is None:
            return
        inv = self._invoice(sub, "manual", self.now, self.now, [])
        self._finalize(inv, self.now)

    def report_usage(
        self, customer: str, price: str, value: int, identifier: str | None, index: int
    ) -> None:
        # Without an identifier the runner names the event after the step, so the step's
        # repeats are one event; Stripe counts an identifier once, whatever the repeats.
        identifier = identifier if identifier is not None else f"\0step-{index}"
        if identifier not in self._identifiers:
            self._identifiers.add(identifier)
            self._meter_events.append(MeterEvent(customer, price, value, self.now))
            # Recognised as consumed, on the usage line of the subscription that bills it.
            for sub in self.subscriptions.values():
                if (
                    sub.customer == customer
                    and sub.status == "active"
                    and any(item.price == price for item in sub.items)
                ):
                    amount = value * self.prices[price].unit_amount
                    self.consumption.append(Consumption(sub.opportunity, price, self.now, amount))
                    break

    def pay(self, customer: str, which: str, index: int) -> None:
        open_invoices = [i for i in self.invoices if i.customer == customer and i.status == "open"]
        if which == "latest":
            open_invoices = open_invoices[-1:]
        if not open_invoices:
            self.notes.append(f"step {index + 1}: {customer} has no open invoice to pay")
        if declines(self.customers[customer].payment_method):
            return
        for inv in open_invoices:
            inv.amount_paid_minor = inv.amount_due_minor
            inv.status, inv.paid_at = "paid", self.now

    def credit_note(self, customer: str, amount: int, credit_to: str, index: int) -> None:
        candidates = [
            i for i in self.invoices if i.customer == customer and i.status in ("open", "paid")
        ]
        if not candidates:
            self.notes.append(f"step {index + 1}: {customer} has no invoice to credit")
            return
        inv = candidates[-1]
        credited = sum(cn.total_minor for cn in inv.credit_notes)
        if credited + amount > inv.total_minor:
            self.notes.append(f"step {index + 1}: credit note exceeds {inv.ref}; refused")
            return
        cn = ExpectedCreditNote(len(inv.credit_notes) + 1, self.now, amount)
        if inv.status == "open":
            # Before payment a credit note lowers what is owed; any excess becomes credit.
            cn.pre_payment_minor = min(amount, inv.amount_remaining_minor)
            cn.credit_minor = amount - cn.pre_payment_minor
            inv.amount_due_minor -= cn.pre_payment_minor
        elif credit_to == "refund":
            refunded = sum(c.refund_minor for c in inv.credit_notes)
            if amount > inv.amount_paid_minor - refunded:
                self.notes.append(f"step {index + 1}: refund exceeds what {inv.ref} was paid")
                return
            cn.refund_minor = amount
        elif credit_to == "out_of_band":
            cn.out_of_band_minor = amount
        else:
            cn.credit_minor = amount
        self.balances[inv.customer] -= cn.credit_minor
        inv.credit_notes.append(cn)
        if inv.status == "open" and inv.amount_remaining_minor == 0:
            inv.status, inv.paid_at = "paid", self.now
            inv.amount_paid_minor = inv.amount_due_minor

    # --- changes made behind the integration's back ----------------------------------------
    def void(self, customer: str, index: int) -> None:
        """Billing ops void the customer's latest open invoice: it bills nothing any more, and
        the balance it used or added goes back to the customer."""
        open_invoices = [i for i in self.invoices if i.customer == customer and i.status == "open"]
        if not open_invoices:
            self.notes.append(f"step {index + 1}: {customer} has no open invoice to void")
            return
        inv = open_invoices[-1]
        self.balances[customer] += inv.applied_balance_minor - min(inv.total_minor, 0)
        inv.status, inv.voided_at = "void", self.now

    def withdraw(self, opportunity: str, index: int) -> None:
        """A deal won and reopened before the integration acted on the win: nothing was made
        for it, no subscription, no invoice, no contract."""
        if self.root.get(opportunity) != opportunity:
            self.notes.append(f"step {index + 1}: {opportunity} was not won as a new deal")
            return
        del self.root[opportunity]
        self.subscriptions.pop(opportunity, None)
        self.bookings = [b for b in self.bookings if b.opportunity != opportunity]
        self.invoices = [i for i in self.invoices if i.opportunity != opportunity]
        self._invoice_count.pop(opportunity, None)

    # --- the billing model --------------------------------------------------------------------
    def _sub_of(self, opportunity: str, index: int) -> ExpectedSubscription | None:
        sub = self.subscriptions.get(self.root.get(opportunity, ""))
        if sub is None or sub.status != "active":
            self.notes.append(f"step {index + 1}: {opportunity} has no active subscription")
            return None
        return sub

    def _usage(self, price: str) -> bool:
        return self.prices[price].usage

    def _quantities(self, sub: ExpectedSubscription) -> dict[str, int]:
        return {item.price: item.quantity for item in sub.items}

    def _change(
        self,
        sub: ExpectedSubscription,
        kind: str,
        lines: list[tuple[str, int]],
        behavior: str,
        at: int,
    ) -> list[ExpectedLine]:
        """Change the items and, when they changed, note it for the contract to follow."""
        before = self._quantities(sub)
        start, end = sub.period_start, sub.period_end
        made = self._change_items(sub, lines, behavior)
        after = self._quantities(sub)
        if after != before:
            prorations: dict[str, int] = {}
            for line in made:
                prorations[line.price] = prorations.get(line.price, 0) + line.amount_minor
            self.changes.append(
                Change(sub.opportunity, kind, at, before, after, prorations, start, end)
            )
        return made

    def _change_items(
        self, sub: ExpectedSubscription, lines: list[tuple[str, int]], behavior: str
    ) -> list[ExpectedLine]:
        """Items become the given lines, matched by price: a price no longer there is removed,
        a new one added, a changed quantity credited at the old and charged at the new."""
        wanted: dict[str, int] = {}
        for price, quantity in lines:
            wanted[price] = 0 if self._usage(price) else wanted.get(price, 0) + quantity
        credits: list[tuple[str, int]] = []
        debits: list[tuple[str, int]] = []
        kept: list[ExpectedItem] = []
        for item in sub.items:
            if item.price not in wanted:
                credits.append((item.price, item.quantity))
                continue
            new = wanted.pop(item.price)
            if new != item.quantity:
                credits.append((item.price, item.quantity))
                debits.append((item.price, new))
                item.quantity = new
            kept.append(item)
        for price, quantity in wanted.items():
            kept.append(ExpectedItem(price, quantity))
            debits.append((price, quantity))
        sub.items = kept
        if behavior == "none":
            return []
        made = []
        start, end = sub.period_start, sub.period_end
        for sign, group in ((-1, credits), (1, debits)):
            for price, quantity in group:
                if self._usage(price) or not quantity:
                    continue
                unit = self.prices[price].unit_amount
                amount = sign * unused_share(unit * quantity, start, end, self.now)
                if amount:
                    made.append(ExpectedLine("proration", price, quantity, amount, self.now, end))
        sub.pending.extend(made)
        return made

    def _usage_lines(self, sub: ExpectedSubscription, start: int, end: int) -> list[ExpectedLine]:
        lines = []
        for item in sub.items:
            if not self._usage(item.price):
                continue
            units = sum(
                e.value
                for e in self._meter_events
                if e.customer == sub.customer and e.price == item.price and start <= e.at < end
            )
            amount = self.prices[item.price].unit_amount * units
            lines.append(ExpectedLine("usage", item.price, units, amount, start, end))
        return lines

    def _renew(self, sub: ExpectedSubscription, at: int) -> None:
        start, end = sub.period_start, sub.period_end
        usage = self._usage_lines(sub, start, end)
        if sub.cancel_at_period_end:
            sub.status, sub.ended_at = "canceled", end
            if any(line.amount_minor for line in usage) or sub.pending:
                inv = self._invoice(sub, "subscription_cycle", start, end, usage)
                self._finalize(inv, at)
            return
        sub.cycles += 1
        licensed = [
            ExpectedLine(
                "licensed",
                item.price,
                item.quantity,
                self.prices[item.price].unit_amount * item.quantity,
                sub.period_start,
                sub.period_end,
            )
            for item in sub.items
            if not self._usage(item.price)
        ]
        inv = self._invoice(sub, "subscription_cycle", start, end, usage + licensed)
        inv.finalize_at = at + FINALIZE_AFTER_S

    def _invoice(
        self,
        sub: ExpectedSubscription,
        reason: str,
        start: int,
        end: int,
        lines: list[ExpectedLine],
    ) -> ExpectedInvoice:
        """A draft with the given lines and every pending item of the subscription."""
        n = 1 + self._invoice_count[sub.opportunity]
        inv = ExpectedInvoice(
            sub.opportunity,
            sub.customer,
            sub.currency,
            n,
            reason,
            self.now,
            start,
            end,
            [*lines, *sub.pending],
            self.now,
        )
        sub.pending = []
        inv.lines = self._price(sub, inv.lines)
        inv.collection = sub.collection
        # A draft shows its total as due (Stripe's and the simulator's convention);
        # finalisation then applies the customer balance.
        inv.amount_due_minor = max(0, inv.total_minor)
        self.invoices.append(inv)
        self._invoice_count[sub.opportunity] += 1
        return inv

    def _coupon_terms(self, key: str | None) -> tuple[str | None, bool]:
        coupon = self.coupons.get(key or "")
        return (
            (None, True) if coupon is None else (coupon.percent_off, coupon.duration == "forever")
        )

    def _inclusive_share(self, sub: ExpectedSubscription) -> Fraction:
        if self.customers[sub.customer].tax_exempt != "none":
            return Fraction(0)
        rates = [self.tax_rates[key] for key in sub.tax_rates]
        return sum((Fraction(Decimal(r.percentage)) for r in rates if r.inclusive), Fraction(0))

    def _applies(self, coupon: Coupon, price: str) -> bool:
        """Whether the coupon comes off lines of ``price`` (``applies_to``: its products)."""
        return coupon.applies_to is None or self.prices[price].product in coupon.applies_to

    def _price(self, sub: ExpectedSubscription, lines: list[ExpectedLine]) -> list[ExpectedLine]:
        """Discount and tax on each line (docs/tax-and-discounts.md): the coupon's percentage
        off every line of the products it applies to but prorations (their amounts are not
        discountable), rounded half-up per line; then the tax of the amount left: inclusive
        rates take ``net − round(net / (1 + Σp))``, exclusive ones ``round(taxable × p)``
        each; an exempt customer pays none."""
        coupon = self.coupons.get(sub.coupon or "") if not sub.coupon_used else None
        rates = [self.tax_rates[key] for key in sub.tax_rates]
        exempt = self.customers[sub.customer].tax_exempt != "none"
        share = sum((Fraction(Decimal(r.percentage)) for r in rates if r.inclusive), Fraction(0))
        priced = []
        for line in lines:
            off = 0
            if coupon is not None and not line.proration and self._applies(coupon, line.price):
                off = round_half_up(line.amount_minor * Fraction(Decimal(coupon.percent_off)) / 100)
            net = line.amount_minor - off
            tax = exclusive = 0
            if rates and not exempt:
                taxable = round_half_up(net / (1 + share / 100)) if share else net
                exclusive = sum(
                    round_half_up(taxable * Fraction(Decimal(r.percentage)) / 100)
                    for r in rates
                    if not r.inclusive
                )
                tax = net - taxable + exclusive
            priced.append(
                replace(line, discount_minor=off, tax_minor=tax, exclusive_tax_minor=exclusive)
            )
        if coupon is not None and coupon.duration == "once":
            sub.coupon_used = any(line.discount_minor for line in priced)
        return priced

    def _finalize(self, inv: ExpectedInvoice, at: int) -> None:
        """Draft → open: the customer balance is applied, then a zero amount due is paid, and
        one charged automatically is paid with the customer's card (unless it declines)."""
        total = inv.total_minor
        balance = self.balances[inv.customer]
        if total <= 0:
            applied = 0
            balance += total  # a credit invoice adds to what the customer holds
        elif balance < 0:
            applied = max(balance, -total)  # credit covers at most the total
            balance -= applied
        else:
            applied = balance  # a debt is added whole
            balance = 0
        self.balances[inv.customer] = balance
        inv.applied_balance_minor = applied
        inv.amount_due_minor = max(0, total + applied)
        inv.status, inv.finalized_at = "open", at
        if inv.amount_due_minor == 0:
            inv.status, inv.paid_at = "paid", at
        elif inv.collection == "charge_automatically":
            if declines(self.customers[inv.customer].payment_method):
                self.notes.append(f"{inv.ref}: the automatic charge is declined; not followed")
                return
            inv.amount_paid_minor = inv.amount_due_minor
            inv.status, inv.paid_at = "paid", at

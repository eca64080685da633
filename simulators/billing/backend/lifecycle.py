"""The lifecycle on the clock: renewals, auto-finalisation, payment retries, expiries, cancels."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from simulators.billing.backend.base import BackendBase
from simulators.billing.backend.schedules import TRIAL_WARNING_S
from simulators.billing.models import (
    FINALIZE_AFTER_S,
    Invoice,
    Subscription,
    period_end,
    proration,
)
from simulators.common.tables import Table

# Final statuses: a subscription or invoice in one of them never has a lifecycle step again.
_ENDED_SUBSCRIPTION = frozenset({"canceled", "incomplete_expired"})
_SETTLED_INVOICE = frozenset({"paid", "void", "uncollectible"})
Step = Callable[[int], None]


class Lifecycle(BackendBase):
    def _init_lifecycle(self) -> None:
        # Per table: rows that may still have a lifecycle step, the table's insertion mark, and
        # the table they were read from (a restore replaces the tables).
        self._live_rows: dict[str, tuple[dict[str, None], tuple[int, int] | None, Any]] = {}
        self.world.clock.subscribe(self._on_world_clock)

    def _on_world_clock(self, before: int, now: int) -> None:
        self.run_until(None, now)

    def run_until(self, test_clock: str | None, target: int) -> None:
        """Run every due step of objects on this clock in time order up to ``target``."""
        while True:
            step = self._next_step(test_clock, target)
            if step is None:
                break
            at, action = step
            if test_clock is not None:
                self.store.test_clocks[test_clock].frozen_time = at
            action(at)
        if test_clock is not None:
            self.store.test_clocks[test_clock].frozen_time = target

    def _next_step(self, test_clock: str | None, target: int) -> tuple[int, Step] | None:
        best: tuple[int, int, Step] | None = None
        order = 0

        def offer(at: int, action: Step) -> None:
            nonlocal best, order
            order += 1
            if at <= target and (best is None or (at, order) < best[:2]):
                best = (at, order, action)

        for sub in self._live("subscriptions", _ENDED_SUBSCRIPTION):
            if sub.test_clock != test_clock:
                continue
            if sub.status == "trialing" and not sub.trial_will_end_sent and sub.trial_end:
                warn = sub.trial_end - TRIAL_WARNING_S
                offer(warn, functools.partial(self.billing._trial_will_end, sub))
            if sub.pause_behavior is not None and sub.pause_resumes_at is not None:
                offer(sub.pause_resumes_at, functools.partial(self.billing._resume_collection, sub))
            if (
                sub.cancel_at is not None
                and sub.cancel_at <= sub.current_period_end
                and not sub.cancel_at_period_end
            ):
                offer(sub.cancel_at, functools.partial(self._cancel_due, sub))
            elif sub.status in ("active", "past_due", "trialing"):
                offer(sub.current_period_end, functools.partial(self._renew, sub))
            elif sub.status == "incomplete":
                offer(sub.created + 23 * 3600, functools.partial(self._expire, sub))
        for inv in self._live("invoices", _SETTLED_INVOICE):
            if inv.test_clock != test_clock:
                continue
            if inv.status == "draft" and inv.auto_advance:
                offer(inv.created + FINALIZE_AFTER_S, functools.partial(self._auto_finalize, inv))
            elif (
                inv.status == "open"
                and inv.next_payment_attempt is not None
                and inv.collection_method == "charge_automatically"
            ):
                offer(inv.next_payment_attempt, functools.partial(self._retry, inv))
        return None if best is None else (best[0], best[2])

    def _live(self, name: str, ended: frozenset[str]) -> list[Any]:
        """Rows of a table that may still have a step, in table order, without reading the rest.

        A row whose status is in ``ended`` never has a step again (those statuses are final),
        so it leaves the live set for good; new rows join it as they are inserted."""
        table: Table[Any] = getattr(self.store, name)
        live, mark, owner = self._live_rows.get(name, ({}, None, None))
        added, mark = table.added_since(mark if owner is table else None)
        if added is None:
            live = dict.fromkeys(table)
        else:
            for key in added:
                live.pop(key, None)  # re-inserted: its place is at the end now
                live[key] = None
        self._live_rows[name] = (live, mark, table)
        rows = []
        for key in list(live):
            row = table.get(key)
            if row is None or row.status in ended:
                del live[key]
            else:
                rows.append(row)
        return rows

    def _renew(self, sub: Subscription, at: int) -> None:
        if sub.cancel_at_period_end or (
            sub.cancel_at is not None and sub.cancel_at <= sub.current_period_end
        ):
            usage = self.billing._usage_lines(sub, sub.current_period_start, sub.current_period_end)
            self.billing._end_subscription(sub, sub.current_period_end, "cancellation_requested")
            if any(line.amount for line in usage) or self.billing._pending(sub.customer, sub.id):
                c = self.store.customers[sub.customer]
                inv = self.billing._new_invoice(
                    c,
                    sub,
                    "subscription_cycle",
                    at,
                    sub.current_period_start,
                    sub.current_period_end,
                    usage,
                )
                self.billing._finalize(inv, at)
            return
        self._renewal_invoice(sub, at, finalize=True)

    def _renewal_invoice(self, sub: Subscription, at: int, *, finalize: bool) -> Invoice:
        """Close the period: usage in arrears, licensed items in advance, pending prorations.
        A trial's end starts the first paid period (no usage is billed for the trial); a
        ``cancel_at`` inside the new period bills it only up to then."""
        before = self._sub_json(sub)
        old_start, old_end = sub.current_period_start, sub.current_period_end
        ended_trial = self.billing._end_trial(sub)
        usage = [] if ended_trial else self.billing._usage_lines(sub, old_start, old_end)
        sub.cycles += 1
        first_price = self.store.prices[self.store.subscription_items[sub.items[0]].price]
        assert first_price.recurring is not None
        sub.current_period_start = old_end
        sub.current_period_end = period_end(
            sub.billing_cycle_anchor, first_price.recurring, sub.cycles
        )
        lines = list(usage)
        start, end = sub.current_period_start, sub.current_period_end
        stop = end
        if sub.cancel_at is not None and start < sub.cancel_at < end:
            stop = sub.cancel_at
        for item_id in sub.items:
            si = self.store.subscription_items[item_id]
            price = self.store.prices[si.price]
            if price.metered:
                continue
            amount = price.amount_for(si.quantity)
            amount -= proration(amount, start, end, stop)  # the part after cancel_at, if any
            lines.append(self.billing._sub_line(sub, si, price, amount, start, stop))
        c = self.store.customers[sub.customer]
        inv = self.billing._new_invoice(c, sub, "subscription_cycle", at, old_start, old_end, lines)
        inv.auto_advance = finalize
        keys = ("items", "status") if ended_trial else ("items",)
        self._updated("customer.subscription.updated", before, self._sub_json(sub), at, keys=keys)
        if finalize:
            self.billing._collect_paused(sub, inv, at)
        return inv

    def _auto_finalize(self, inv: Invoice, at: int) -> None:
        self.billing._finalize(inv, at)
        self.billing._settle_subscription(inv, at)

    def _retry(self, inv: Invoice, at: int) -> None:
        if self.billing._attempt_payment(inv, at):
            self.billing._settle_subscription(inv, at)

    def _expire(self, sub: Subscription, at: int) -> None:
        before = self._sub_json(sub)
        sub.status = "incomplete_expired"
        sub.ended_at = at
        self._updated("customer.subscription.deleted", before, self._sub_json(sub), at)
        inv = self.store.invoices.get(sub.latest_invoice or "")
        if inv is not None and inv.status == "open":
            self.billing.void_invoice(inv.id)

    def _cancel_due(self, sub: Subscription, at: int) -> None:
        self.billing._end_subscription(sub, at, "cancellation_requested")

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
# The tables whose rows have lifecycle steps, scanned in this order, with their final statuses.
_ROWS = {"subscriptions": _ENDED_SUBSCRIPTION, "invoices": _SETTLED_INVOICE}


def _same(one: Step, other: Step) -> bool:
    """The same step of the same row (steps are partials of a bound method and the row)."""
    if isinstance(one, functools.partial) and isinstance(other, functools.partial):
        return one.func == other.func and one.args == other.args
    return one == other


class Lifecycle(BackendBase):
    def _init_lifecycle(self) -> None:
        # Per table: rows that may still have a lifecycle step, the table's insertion mark, and
        # the table they were read from (a restore replaces the tables).
        self._live_rows: dict[str, tuple[dict[str, None], tuple[int, int] | None, Any]] = {}
        self.world.clock.subscribe(self._on_world_clock)

    def _on_world_clock(self, before: int, now: int) -> None:
        self.run_until(None, now)

    def run_until(self, test_clock: str | None, target: int) -> None:
        """Run every due step of objects on this clock in time order up to ``target``.

        One scan of the live rows finds every step due at the earliest instant, and they run
        in scan order (subscriptions, then invoices, each in table order) — as one scan per
        step would run them — but each only after its row is asked again (an earlier step may
        have changed it). A row that no longer has its step, or a row added with a step by
        then, sends us back to scan. A thousand subscriptions renewing on the same day took a
        thousand scans of every subscription and invoice; now one."""
        while True:
            due = self._earliest_steps(test_clock, target)
            if not due:
                break
            at = due[0][0]
            if test_clock is not None:
                self.store.test_clocks[test_clock].frozen_time = at
            marks = {name: getattr(self.store, name).added_since(None)[1] for name in _ROWS}
            for index, (_, row, action) in enumerate(due):
                if index and (not self._still_due(row, at, action) or self._added_due(marks, at)):
                    break
                action(at)
        if test_clock is not None:
            self.store.test_clocks[test_clock].frozen_time = target

    def _earliest_steps(self, test_clock: str | None, target: int) -> list[tuple[int, Any, Step]]:
        """Every step due at the earliest instant up to ``target``, in scan order."""
        earliest: list[tuple[int, Any, Step]] = []
        for name, ended in _ROWS.items():
            for row in self._live(name, ended):
                if row.test_clock != test_clock:
                    continue
                for at, action in self._steps_of(row):
                    if at > target or (earliest and at > earliest[0][0]):
                        continue
                    if earliest and at < earliest[0][0]:
                        earliest = []
                    earliest.append((at, row, action))
        return earliest

    def _still_due(self, row: Any, at: int, action: Step) -> bool:
        return any(when == at and _same(step, action) for when, step in self._steps_of(row))

    def _added_due(self, marks: dict[str, tuple[int, int]], at: int) -> bool:
        """A row added since ``marks`` (moved on) with a step by ``at``."""
        for name in _ROWS:
            table: Table[Any] = getattr(self.store, name)
            added, marks[name] = table.added_since(marks[name])
            rows = table.values() if added is None else (table.get(key) for key in added)
            if any(
                when <= at for row in rows if row is not None for when, _ in self._steps_of(row)
            ):
                return True
        return False

    def _steps_of(self, row: Any) -> list[tuple[int, Step]]:
        """The lifecycle steps a subscription or invoice has now, each with its instant."""
        steps: list[tuple[int, Step]] = []
        if isinstance(row, Subscription):
            sub = row
            if sub.status in _ENDED_SUBSCRIPTION:
                return steps
            if sub.status == "trialing" and not sub.trial_will_end_sent and sub.trial_end:
                warn = sub.trial_end - TRIAL_WARNING_S
                steps.append((warn, functools.partial(self.billing._trial_will_end, sub)))
            if sub.pause_behavior is not None and sub.pause_resumes_at is not None:
                resume = functools.partial(self.billing._resume_collection, sub)
                steps.append((sub.pause_resumes_at, resume))
            if (
                sub.cancel_at is not None
                and sub.cancel_at <= sub.current_period_end
                and not sub.cancel_at_period_end
            ):
                steps.append((sub.cancel_at, functools.partial(self._cancel_due, sub)))
            elif sub.status in ("active", "past_due", "trialing"):
                steps.append((sub.current_period_end, functools.partial(self._renew, sub)))
            elif sub.status == "incomplete":
                steps.append((sub.created + 23 * 3600, functools.partial(self._expire, sub)))
            return steps
        inv = row
        if inv.status in _SETTLED_INVOICE:
            return steps
        if inv.status == "draft" and inv.auto_advance:
            steps.append(
                (inv.created + FINALIZE_AFTER_S, functools.partial(self._auto_finalize, inv))
            )
        elif (
            inv.status == "open"
            and inv.next_payment_attempt is not None
            and inv.collection_method == "charge_automatically"
        ):
            steps.append((inv.next_payment_attempt, functools.partial(self._retry, inv)))
        return steps

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

"""Schedule controls of a subscription: trials, ``cancel_at`` and ``pause_collection``."""

from __future__ import annotations

from simulators.billing import errors
from simulators.billing.backend.base import BackendBase
from simulators.billing.models import Invoice, InvoiceItem, Subscription, proration

TRIAL_WARNING_S = 3 * 86400  # customer.subscription.trial_will_end: three days before the end


class ScheduleOps(BackendBase):
    # trials ------------------------------------------------------------------------------
    def _trial_will_end(self, sub: Subscription, at: int, *, early: bool = False) -> None:
        """customer.subscription.trial_will_end, once: three days before the trial ends (at
        once, ``early``, when the trial is shorter than that)."""
        if sub.trial_will_end_sent or sub.trial_end is None:
            return
        if early and sub.trial_end - TRIAL_WARNING_S > at:
            return
        sub.trial_will_end_sent = True
        self.event("customer.subscription.trial_will_end", self._sub_json(sub), at)

    def _check_trial_change(self, sub: Subscription, trial_end: int | str, now: int) -> None:
        if sub.status != "trialing":
            raise errors.invalid("Only a trialing subscription's trial can change.", "trial_end")
        if trial_end != "now" and (not isinstance(trial_end, int) or trial_end <= now):
            raise errors.invalid("trial_end must be in the future, or `now`.", "trial_end")

    def _move_trial_end(self, sub: Subscription, trial_end: int | str, now: int) -> None:
        """The trial ends at ``trial_end`` (or now): the first paid period starts there."""
        ends = now if trial_end == "now" else int(trial_end)
        sub.trial_end = sub.billing_cycle_anchor = sub.current_period_end = ends
        sub.cycles = -1
        if ends == now:
            self._trial_will_end(sub, now)
            invoice = self.billing._renewal_invoice(sub, now, finalize=True)
            self.billing._auto_finalize(invoice, now)

    def _end_trial(self, sub: Subscription) -> bool:
        """At the trial's end the subscription becomes active (its first paid period starts)."""
        if sub.status != "trialing":
            return False
        sub.status = "active"
        return True

    # cancel_at -----------------------------------------------------------------------------
    def _check_cancel_at(self, cancel_at: int | None, now: int) -> None:
        if cancel_at is not None and cancel_at <= now:
            raise errors.invalid("cancel_at must be in the future.", "cancel_at")

    def _cancel_at_prorations(
        self, sub: Subscription, old: int | None, new: int | None, behavior: str, now: int
    ) -> list[InvoiceItem]:
        """Moving ``cancel_at`` inside the current (paid) period credits the time after it
        (or takes back a credit given before), per item, as Stripe prorates it."""
        start, end = sub.current_period_start, sub.current_period_end
        if behavior == "none" or sub.status == "trialing":
            return []
        old_at = old if old is not None and start <= old < end else end
        new_at = new if new is not None and start <= new < end else end
        made = []
        for item_id in sub.items:
            si = self.store.subscription_items[item_id]
            price = self.store.prices[si.price]
            if price.metered or not si.quantity or old_at == new_at:
                continue
            base = self.billing._period_amount(sub, si, price, si.quantity, now)
            credit = proration(base, start, end, new_at) - proration(base, start, end, old_at)
            if not credit:
                continue
            start_at = min(old_at, new_at)
            made.append(
                self.billing._proration_item(
                    sub, si, price, si.quantity, -credit, start_at, end, now
                )
            )
        return made

    # pause_collection ----------------------------------------------------------------------
    def _check_pause(self, pause: tuple[str, int | None] | None, now: int) -> None:
        if pause is not None and pause[1] is not None and pause[1] <= now:
            raise errors.invalid(
                "resumes_at must be in the future.", "pause_collection[resumes_at]"
            )

    def _collect_paused(self, sub: Subscription, inv: Invoice, at: int) -> bool:
        """A renewal while collection is paused: kept as a draft, voided, or marked
        uncollectible, never charged. False when collection is not paused."""
        behavior = sub.paused_at(at)
        if behavior is None:
            return False
        inv.auto_advance = False
        if behavior == "keep_as_draft":
            return True
        self.billing._finalize(inv, at, charge=False)
        if inv.status == "open":
            if behavior == "void":
                self.billing.void_invoice(inv.id)
            else:
                self.billing.mark_uncollectible(inv.id)
        return True

    def _resume_collection(self, sub: Subscription, at: int) -> None:
        before = self._sub_json(sub)
        sub.pause_behavior = sub.pause_resumes_at = None
        self._updated("customer.subscription.updated", before, self._sub_json(sub), at)

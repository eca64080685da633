"""Test clocks: frozen time for the objects attached to them, advanced forward only."""

from __future__ import annotations

from simulators.billing import errors, render
from simulators.billing.backend.base import BackendBase, Listing
from simulators.billing.models import TestClock


class TestClockOps(BackendBase):
    __test__ = False  # not a pytest class

    def create_test_clock(self, *, frozen_time: int, name: str | None = None) -> TestClock:
        now = self.world.clock.now()
        clock = TestClock(self._ids("clock"), now, frozen_time, name)
        self.store.test_clocks[clock.id] = clock
        self.event("test_helpers.test_clock.created", render.test_clock(self.store, clock), now)
        return clock

    def list_test_clocks(self) -> Listing:
        return Listing(self.store.test_clocks, lambda c: not c.deleted)

    def test_clock(self, clock_id: str) -> TestClock:
        return self._get(self.store.test_clocks, clock_id, "test_clock", "test_clock")

    def advance_test_clock(self, clock_id: str, frozen_time: int) -> TestClock:
        clock = self.test_clock(clock_id)
        if frozen_time <= clock.frozen_time:
            raise errors.invalid(
                "The test clock can only move forward: frozen_time must be "
                "after the current frozen_time.",
                "frozen_time",
            )
        self.billing.run_until(clock.id, frozen_time)
        self.event(
            "test_helpers.test_clock.ready",
            render.test_clock(self.store, clock),
            self.world.clock.now(),
        )
        return clock

    def delete_test_clock(self, clock_id: str) -> TestClock:
        clock = self.test_clock(clock_id)
        for c in self.store.customers.values():
            if c.test_clock == clock.id and not c.deleted:
                self.billing.delete_customer(c.id)
        clock.deleted = True
        self.event(
            "test_helpers.test_clock.deleted",
            render.test_clock(self.store, clock, full=True),
            self.world.clock.now(),
        )
        return clock

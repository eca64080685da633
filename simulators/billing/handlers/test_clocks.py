"""Test-clock handlers."""

from __future__ import annotations

from simulators.billing import render
from simulators.billing.handlers.base import HandlerBase
from simulators.common.app import Call, Reply


class TestClockHandlers(HandlerBase):
    def create_test_clock(self, call: Call) -> Reply:
        b = call.body
        clock = self.b.create_test_clock(frozen_time=b["frozen_time"], name=b.get("name"))
        return self._ok(call, render.test_clock(self.s, clock))

    def list_test_clocks(self, call: Call) -> Reply:
        listing = self.b.list_test_clocks()
        return self._list(
            call, listing, lambda c: render.test_clock(self.s, c), "/v1/test_helpers/test_clocks"
        )

    def retrieve_test_clock(self, call: Call) -> Reply:
        clock = self.b.test_clock(call.path["test_clock"])
        return self._ok(call, render.test_clock(self.s, clock))

    def delete_test_clock(self, call: Call) -> Reply:
        clock = self.b.delete_test_clock(call.path["test_clock"])
        return render.test_clock(self.s, clock), 200

    def advance_test_clock(self, call: Call) -> Reply:
        clock = self.b.advance_test_clock(call.path["test_clock"], call.body["frozen_time"])
        return self._ok(call, render.test_clock(self.s, clock))

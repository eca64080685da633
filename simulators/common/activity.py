"""Request activity across a world's simulators, so a runner can wait for quiet without polling."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Activity:
    """Counts requests in flight and when anything last began or ended; waiters wake on change."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._cond = threading.Condition()
        self.in_flight = 0
        self.total = 0
        self.changed_at = monotonic()

    def begin(self) -> None:
        with self._cond:
            self.in_flight += 1
            self.changed_at = self._monotonic()
            self._cond.notify_all()

    def end(self) -> None:
        with self._cond:
            self.in_flight -= 1
            self.total += 1
            self.changed_at = self._monotonic()
            self._cond.notify_all()

    def wait_quiet(self, window_s: float, timeout_s: float) -> bool:
        """True once nothing is in flight and nothing changed for ``window_s``; False at timeout.

        Sleeps only until the next moment the answer could change: a request beginning or
        ending wakes it, otherwise it wakes when the quiet window would be complete."""
        deadline = self._monotonic() + timeout_s
        with self._cond:
            while True:
                now = self._monotonic()
                quiet_for = now - self.changed_at
                if self.in_flight == 0 and quiet_for >= window_s:
                    return True
                if now >= deadline:
                    return False
                wake_in = deadline - now
                if self.in_flight == 0:
                    wake_in = min(wake_in, window_s - quiet_for)
                self._cond.wait(timeout=max(wake_in, 0.0))

"""Request activity across a world's simulators, so a runner can wait for quiet without polling."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Activity:
    """Counts requests in flight and when the integration last acted or was last told something
    (a request of its own ended, a webhook was delivered to it); waiters wake on change.

    The harness's own requests (playing the vendors' users) are counted in flight but do not
    restart the quiet window: a step that sets nothing in motion settles at once instead of
    always paying the window, and one that does is waited for from its deliveries on."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._cond = threading.Condition()
        self.in_flight = 0
        self.total = 0
        self.changed_at = monotonic()

    def begin(self) -> None:
        # No quiet window starts while anything is in flight; the window runs from its end.
        with self._cond:
            self.in_flight += 1
            self._cond.notify_all()

    def end(self, *, touch: bool = True) -> None:
        """A request ended; ``touch=False`` for the harness's own, which start no window."""
        with self._cond:
            self.in_flight -= 1
            self.total += 1
            if touch:
                self.changed_at = self._monotonic()
            self._cond.notify_all()

    def touch(self) -> None:
        """Something the integration may act on happened (a webhook delivered to it)."""
        with self._cond:
            self.changed_at = self._monotonic()
            self._cond.notify_all()

    def quiet_for(self) -> float | None:
        """Seconds since the integration last acted or was told something; None while a
        request is in flight."""
        with self._cond:
            return None if self.in_flight else self._monotonic() - self.changed_at

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

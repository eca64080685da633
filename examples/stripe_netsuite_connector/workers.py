"""A small pool of worker threads draining the work queue, one customer at a time per lane."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .setaside import reason
from .throttle import Rejected, Transient, backoff_s
from .workqueue import Claim, WorkQueue

log = logging.getLogger("connector.workers")
PRUNE_EVERY_S = 3600.0
IDLE_POLL_S = 1.0


class Workers:
    def __init__(
        self, queue: WorkQueue, run: Callable[[str, str], None], *, count: int = 2
    ) -> None:
        self.queue = queue
        self.run = run
        self.count = count
        self._busy: set[str] = set()  # lanes being worked on
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pruned_at = time.monotonic()

    def start(self) -> None:
        for n in range(self.count):
            thread = threading.Thread(target=self._loop, name=f"worker-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Let each worker finish the call it is in; unfinished jobs run again at next start."""
        self._stopping.set()
        with self.queue.wake:
            self.queue.wake.notify_all()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._prune_now_and_then()
            claim = self._take()
            if claim is None:
                self._rest()
                continue
            try:
                self._work(claim)
            finally:
                with self._lock:
                    self._busy.discard(claim.lane)
                with self.queue.wake:
                    self.queue.wake.notify_all()

    def _take(self) -> Claim | None:
        with self._lock:
            claim = self.queue.claim(self._busy)
            if claim is not None:
                self._busy.add(claim.lane)
            return claim

    def _prune_now_and_then(self) -> None:
        with self._lock:
            if time.monotonic() - self._pruned_at < PRUNE_EVERY_S:
                return
            self._pruned_at = time.monotonic()
        self.queue.prune()

    def _rest(self) -> None:
        due = self.queue.next_due_in()
        wait = IDLE_POLL_S if due is None else min(IDLE_POLL_S, max(due, 0.01))
        with self.queue.wake:
            self.queue.wake.wait(wait)

    def _work(self, claim: Claim) -> None:
        what = f"{claim.kind} {claim.object_id}"
        try:
            self.run(claim.kind, claim.object_id)
        except Transient as exc:
            if claim.attempts + 1 >= exc.max_attempts:
                log.error("set aside %s after %d attempts: %s", what, claim.attempts + 1, exc)
                self._park(claim, exc)
            else:
                delay = backoff_s(claim.attempts)
                log.warning(
                    "retrying %s in %.2f s (attempt %d): %s", what, delay, claim.attempts + 1, exc
                )
                self.queue.retry(claim, delay, str(exc))
        except Rejected as exc:
            log.error("set aside %s: %s", what, exc)
            self._park(claim, exc)
        except Exception as exc:  # a bug of ours: keep the rest of the queue moving
            log.error(
                "set aside %s: unexpected %s: %s", what, type(exc).__name__, exc, exc_info=True
            )
            self._park(claim, exc)
        else:
            log.info("synced %s", what)
            self.queue.done(claim)

    def _park(self, claim: Claim, exc: Exception) -> None:
        """Parked, and on the set-aside list with a reason for the operator to act on."""
        why = reason(claim.kind, claim.object_id, exc, claim.attempts + 1)
        self.queue.park(claim, f"{type(exc).__name__}: {exc}", why)

"""At start-up, take from Stripe's event list what arrived while the connector was down."""

from __future__ import annotations

import logging
import threading

from .stripe_source import StripeSource
from .throttle import Rejected, Transient, backoff_s
from .web import ROUTES, route
from .workqueue import QueueFull, WorkQueue

log = logging.getLogger("connector.catchup")
# Reordered deliveries can be older than the latest event received; look back this far.
LOOK_BACK_S = 86400
MAX_ATTEMPTS = 20


class CatchUp:
    """Stripe retries a delivery for three days; a connector down longer, or killed between
    a delivery's give-up and its restart, would lose those events. The event list keeps them:
    everything since the watermark (less a day) goes through the queue, which drops what it
    has already seen."""

    def __init__(self, source: StripeSource, queue: WorkQueue) -> None:
        self.source = source
        self.queue = queue
        self.done = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, name="catch-up", daemon=True).start()

    def _run(self) -> None:
        try:
            for attempt in range(MAX_ATTEMPTS):
                try:
                    self.run_once()
                    return
                except (Transient, QueueFull) as exc:
                    log.warning("catch-up attempt %d failed: %s", attempt + 1, exc)
                    self.done.wait(backoff_s(attempt))
            log.error("catch-up gave up after %d attempts", MAX_ATTEMPTS)
        except Rejected as exc:
            log.error("catch-up refused: %s", exc)
        finally:
            self.done.set()

    def run_once(self) -> None:
        watermark = self.queue.events_watermark()
        if watermark is None:
            return  # a first start: there is nothing to catch up on
        events = self.source.events_since(max(0, watermark - LOOK_BACK_S), sorted(ROUTES))
        outcomes = [self.queue.accept(str(e["id"]), route(e), int(e["created"])) for e in events]
        queued = outcomes.count("queued")
        if queued:
            log.info("caught up on %d of %d events listed since the watermark", queued, len(events))

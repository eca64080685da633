"""Outbound webhooks: the at-least-once dispatcher, its lanes and its faults."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import aiohttp

from simulators.common.deliveries import (
    TERMINAL,
    Attempt,
    Delivery,
    DeliveryStatus,
    Endpoint,
    Job,
    Lane,
    subscribed,
)
from simulators.common.jsonbytes import trimmed
from simulators.common.receivers import ReceiverRefused, check_receiver_url

if TYPE_CHECKING:
    from simulators.common.faults import FaultRule
    from simulators.common.world import World

log = logging.getLogger("simulators.webhooks")
KEEPALIVE_S = 4.0
# An event's body, or a function that makes it (called only if some endpoint takes the event).
Payload = bytes | Callable[[], bytes]


# Seconds to wait after the n-th failed attempt, shaped like Stripe's exponential backoff
# (retries for up to three days); the delivery gives up after the last entry.
DEFAULT_SCHEDULE_S: tuple[float, ...] = (
    60.0,
    300.0,
    1800.0,
    3600.0,
    3 * 3600.0,
    6 * 3600.0,
    12 * 3600.0,
    24 * 3600.0,
    24 * 3600.0,
)
# Wall seconds a reordered delivery waits for the next delivery to its endpoint. Not scaled by
# time_scale: the next event comes at the pace of the caller's requests, not of the retry
# schedule, and a scaled bound (60 us at 1e-6) would release the hold before the next publish.
DEFAULT_REORDER_HOLD_S = 2.0
# A held delivery goes as soon as the world has been this quiet (no request in flight, nothing
# delivered): no later delivery is coming to overtake it, so the rest of the hold is dead time.
REORDER_QUIET_S = 0.25
USER_AGENT = "finsim-webhooks/1.0"
# Lanes an endpoint's deliveries are spread over by their order key (billing: the customer):
# one at a time and in order within a lane, the lanes at once. Stripe promises no order at
# all; keeping one customer's events in order is stricter than it.
DEFAULT_LANES_PER_ENDPOINT = 4
# Settled delivery records kept for the log (as the request journal keeps 100,000 entries).
DEFAULT_MAX_SETTLED = 100_000


class Dispatcher:
    """At-least-once delivery of events to webhook endpoints, with the world's outbound faults.

    ``publish`` is synchronous and thread-safe; ``run`` is the runner task living in the
    server's event loop. Timing is wall time (``monotonic``), scaled by ``time_scale``; the
    business clock only stamps ``sim_at`` and selects fault windows. An endpoint has
    ``lanes_per_endpoint`` lanes and an event goes to the one its order key picks (the same key,
    the same lane; no key, the first): a lane's deliveries go one at a time in enqueue order
    among those that are due, its lanes at once. One waiting for a retry, a delay or a reorder
    does not hold back later ones (Stripe promises no order at all, and one bad event must not
    block an endpoint for the three days of its retries). A delivery is bound to the endpoint
    (URL, secret) as it was at publish. Deleting the endpoint cancels what is queued for it
    (``cancel_endpoint``, and a check before every attempt), ``reset`` cancels everything, and
    a URL that is not loopback or one of the world's ``webhook_hosts`` is refused at publish
    without a request ever being sent.
    """

    def __init__(
        self,
        world: World,
        *,
        time_scale: float = 1.0,
        schedule_s: Sequence[float] = DEFAULT_SCHEDULE_S,
        timeout_s: float = 10.0,
        max_concurrency: int = 16,
        lanes_per_endpoint: int = DEFAULT_LANES_PER_ENDPOINT,
        max_settled: int = DEFAULT_MAX_SETTLED,
        reorder_hold_s: float = DEFAULT_REORDER_HOLD_S,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        if any(s < 0 for s in schedule_s):
            raise ValueError("schedule_s delays must not be negative")
        if timeout_s <= 0 or max_concurrency < 1:
            raise ValueError("timeout_s and max_concurrency must be positive")
        if lanes_per_endpoint < 1:
            raise ValueError("lanes_per_endpoint must be positive")
        if reorder_hold_s < 0:
            raise ValueError("reorder_hold_s must not be negative")
        if max_settled < 1:
            raise ValueError("max_settled must be positive")
        self.world = world
        self.time_scale = time_scale
        self.schedule_s = tuple(float(s) for s in schedule_s)
        self.timeout_s = timeout_s
        self.max_concurrency = max_concurrency
        self.lanes_per_endpoint = lanes_per_endpoint
        self.reorder_hold_s = reorder_hold_s
        self._published_at = float("-inf")  # when anything was last published
        self.max_settled = max_settled
        self._monotonic = monotonic
        self._wall = wall
        # Our own lock, not the world's: handlers publish while holding world.lock, and since
        # nothing here takes world.lock while holding this one, there is no lock-order cycle.
        self._lock = threading.RLock()
        self._drained_cond = threading.Condition(self._lock)
        self._deliveries: dict[str, Delivery] = {}
        # Settled records, oldest first: beyond max_settled the oldest are forgotten, so the
        # log of a long soak stays bounded (pending deliveries are always kept).
        self._settled: collections.deque[str] = collections.deque()
        self._jobs: dict[str, Job] = {}
        self._lanes: dict[Lane, list[Job]] = {}
        self._busy: set[Lane] = set()
        self._pending: Counter[str] = Counter()
        self._next_id = 0
        self._next_seq = 0
        # Bumped by reset/restore so attempts started before them are not recorded after.
        self._epoch = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_event: asyncio.Event | None = None
        self._wake_scheduled = False
        self._drain_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[bool]]] = []

    # publishing --------------------------------------------------------------------------
    def publish(
        self, system: str, event_id: str, event_type: str, payload: Payload, order_key: str = ""
    ) -> list[Delivery]:
        """Enqueue ``payload`` for every matching endpoint of ``system``; returns the records.
        Events with the same ``order_key`` reach an endpoint in the order they were published.
        ``payload`` may be a function that makes the bytes: it is called (once) only when an
        endpoint takes the event, so an event nobody listens to is never serialised."""
        if not isinstance(payload, bytes) and not callable(payload):
            raise TypeError("payload must be bytes, or a function that makes them")
        sim = self.world.systems.get(system)
        if sim is None:
            raise KeyError(f"no {system!r} simulator in this world")
        # Outside our lock: a simulator may consult its own state (under world.lock) here.
        endpoints = [
            e
            for e in sim.webhook_endpoints()
            if e.enabled and subscribed(tuple(e.events), event_type)
        ]
        if not endpoints:
            return []
        made = payload if isinstance(payload, bytes) else payload()
        if not isinstance(made, bytes):
            raise TypeError("the payload function must return bytes")
        body = trimmed(made)  # kept while the deliveries are pending
        sim_at = self.world.clock.now()
        created: list[Delivery] = []
        with self._lock:
            self._published_at = self._monotonic()
            # Decisions and ids under one lock so one publish is atomic against another.
            for endpoint in endpoints:
                refusal = _refusal(endpoint.url, self.world.webhook_hosts)
                if refusal is not None:
                    created.append(self._refuse(system, endpoint, event_id, event_type, refusal))
                    continue
                rules = self.world.faults.decide(
                    system, event_type, sim_at, inbound=False, detail=f"{event_id} -> {endpoint.id}"
                )
                created.extend(
                    self._enqueue(
                        system, endpoint, event_id, event_type, body, sim_at, rules, order_key
                    )
                )
            result = [d.copy() for d in created]
        self.wake()
        return result

    def _enqueue(
        self,
        system: str,
        endpoint: Endpoint,
        event_id: str,
        event_type: str,
        payload: bytes,
        sim_at: int,
        rules: list[FaultRule],
        order_key: str,
    ) -> list[Delivery]:
        first: dict[str, FaultRule] = {}
        for rule in rules:
            # The first fired rule of a kind applies; every fired rule is listed on the record.
            first.setdefault(rule.kind, rule)
        fault_ids = [r.id for r in rules]
        endpoint = endpoint.copy()

        def record() -> Delivery:
            return self._record(system, endpoint, event_id, event_type, sim_at, fault_ids)

        if "drop" in first:
            # One record whatever else fired: the event never leaves, pollers still see it.
            dropped = record()
            self._keep_settled(dropped, "dropped")
            return [dropped]
        now = self._monotonic()
        copies = first["duplicate"].copies if "duplicate" in first else 1
        delay = first["delay"].delay_s * self.time_scale if "delay" in first else 0.0
        fail_first = first.get("fail_first")
        # crc32, not hash(): the same lane in every process and run (seeded runs).
        lane = zlib.crc32(order_key.encode()) % self.lanes_per_endpoint if order_key else 0
        created: list[Delivery] = []
        for _ in range(copies):
            delivery = record()
            delivery.lane = lane
            self._next_seq += 1
            job = Job(
                delivery,
                self._next_seq,
                endpoint,
                payload,
                due=now + delay,
                injected_left=fail_first.attempts if fail_first else 0,
                inject_rule=fail_first.id if fail_first else None,
                held_until=now + self.reorder_hold_s if "reorder" in first else None,
            )
            self._add_job(job)
            created.append(delivery)
        return created

    def _refuse(
        self, system: str, endpoint: Endpoint, event_id: str, event_type: str, reason: str
    ) -> Delivery:
        log.warning("webhook %s to %s refused: %s", event_id, endpoint.url, reason)
        now = self.world.clock.now()
        refused = self._record(system, endpoint, event_id, event_type, now, [])
        refused.attempts.append(Attempt(self._wall(), now, None, f"refused: {reason}", 0.0))
        self._keep_settled(refused, "refused")
        return refused

    def _record(
        self,
        system: str,
        endpoint: Endpoint,
        event_id: str,
        event_type: str,
        sim_at: int,
        faults: list[str],
    ) -> Delivery:
        self._next_id += 1
        return Delivery(
            id=f"dlv_{self._next_id}",
            system=system,
            endpoint_id=endpoint.id,
            url=endpoint.url,
            event_id=event_id,
            event_type=event_type,
            created_sim_at=sim_at,
            faults=list(faults),
        )

    def _keep_settled(self, delivery: Delivery, status: DeliveryStatus) -> None:
        """Record a delivery that never queues (dropped, refused)."""
        delivery.status = status
        self._deliveries[delivery.id] = delivery
        self._remember_settled(delivery.id)

    def cancel_endpoint(self, system: str, endpoint_id: str) -> int:
        """Cancel every delivery still queued for an endpoint (it was deleted); how many.

        An attempt in flight is not recorded when it ends."""
        with self._lock:
            lanes = self._lanes_of(system, endpoint_id)
            jobs = [job for lane in lanes for job in self._lanes[lane]]
            for job in jobs:
                self._settle(job, "cancelled")
            self._busy.difference_update(lanes)
        if jobs:
            self.wake()
        return len(jobs)

    def _lanes_of(self, system: str, endpoint_id: str) -> list[Lane]:
        """The endpoint's lanes with something queued (the lock is held)."""
        return [lane for lane in self._lanes if lane[:2] == (system, endpoint_id)]

    def _endpoint_gone(self, job: Job) -> bool:
        sim = self.world.systems.get(job.delivery.system)
        if sim is None:
            return True
        with self.world.lock:
            return all(e.id != job.endpoint.id for e in sim.webhook_endpoints())

    def _add_job(self, job: Job) -> None:
        self._deliveries[job.delivery.id] = job.delivery
        self._jobs[job.delivery.id] = job
        lane = self._lanes.setdefault(job.lane, [])
        lane.append(job)
        if len(lane) > 1 and lane[-2].seq > job.seq:
            lane.sort(key=lambda j: j.seq)
        self._pending[job.delivery.system] += 1

    def wake(self) -> None:
        """Make the runner rescan now, from any thread (e.g. after moving an injected clock)."""
        with self._lock:
            loop, event = self._loop, self._wake_event
            if loop is None or event is None or self._wake_scheduled:
                return
            self._wake_scheduled = True
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:
            with contextlib.suppress(RuntimeError):  # loop closed: the runner is gone
                loop.call_soon_threadsafe(event.set)

    # the runner --------------------------------------------------------------------------
    async def run(self) -> None:
        """Deliver forever; start as a background task of the server loop, cancel to stop.

        The client skips TLS verification (receivers are loopback test apps, often with
        self-signed certificates) and ignores proxy environment variables, so a CI proxy never
        intercepts deliveries to 127.0.0.1.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._loop is not None:
                raise RuntimeError("the dispatcher is already running")
            self._loop = loop
            self._wake_event = asyncio.Event()
            self._wake_scheduled = False
        tasks: set[asyncio.Task[None]] = set()
        try:
            # aiohttp, not httpx: a delivery cost ~3.3 ms of the simulators' CPU through httpx's
            # async client and ~0.3 ms through aiohttp's (a POST to a local receiver here).
            async with aiohttp.ClientSession(
                # Idle connections are let go before a receiver would close them (uvicorn
                # after 5 s): reusing one it is closing fails the delivery.
                connector=aiohttp.TCPConnector(
                    limit=self.max_concurrency, ssl=False, keepalive_timeout=KEEPALIVE_S
                ),
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                trust_env=False,
            ) as client:
                try:
                    await self._serve(client, tasks)
                finally:
                    for task in tasks:
                        task.cancel()
                    if tasks:
                        await asyncio.wait(tasks)
        finally:
            with self._lock:
                # Interrupted attempts stay pending and are sent again by the next runner.
                for job in self._jobs.values():
                    job.in_flight = False
                self._busy.clear()
                self._loop = None
                self._wake_event = None

    async def _serve(self, client: aiohttp.ClientSession, tasks: set[asyncio.Task[None]]) -> None:
        event = self._wake_event
        assert event is not None
        loop = asyncio.get_running_loop()
        while True:
            event.clear()
            with self._lock:
                self._wake_scheduled = False
                epoch = self._epoch
                jobs, next_at = self._take_due(self.max_concurrency - len(tasks))
            for job in jobs:
                task = asyncio.create_task(self._attempt(client, job, epoch))
                tasks.add(task)
                task.add_done_callback(functools.partial(_free_slot, tasks, event))
            wait = None if next_at is None else next_at - self._monotonic()
            if wait is not None and wait <= 0:
                continue
            # A timer setting the event rather than wait_for: on 3.11, wait_for swallows a
            # cancel that lands while the event is being set (a publish racing server stop),
            # which left the runner looping after stop.
            timer = None if wait is None else loop.call_later(wait, event.set)
            try:
                await event.wait()
            finally:
                if timer is not None:
                    timer.cancel()

    def _quiet_enough(self) -> bool:
        """Nothing published, delivered, in delivery or in flight for REORDER_QUIET_S (the
        lock is held)."""
        if self._busy or self._monotonic() - self._published_at < REORDER_QUIET_S:
            return False
        quiet_for = self.world.activity.quiet_for()
        return quiet_for is not None and quiet_for >= REORDER_QUIET_S

    def _take_due(self, capacity: int) -> tuple[list[Job], float | None]:
        """Due jobs to start now (one per idle lane) and when the next waiting one is due.

        Jobs that are ready but blocked by a busy lane or by capacity add no deadline: the
        attempt that blocks them wakes the runner when it ends.
        """
        now = self._monotonic()
        ready: list[Job] = []
        next_at: float | None = None
        quiet = self._quiet_enough()
        for lane, jobs in self._lanes.items():
            if lane in self._busy:
                continue
            job, at = self._first_ready(jobs, now, quiet)
            if job is not None:
                ready.append(job)
            elif at is not None:
                next_at = at if next_at is None else min(next_at, at)
        ready.sort(key=lambda j: j.seq)
        started = ready[: max(capacity, 0)]
        for job in started:
            job.in_flight = True
            self._busy.add(job.lane)
        return started, next_at

    @staticmethod
    def _first_ready(jobs: list[Job], now: float, quiet: bool) -> tuple[Job | None, float | None]:
        """A lane's first job that is due now, else when its soonest one will be (the lock
        is held)."""
        next_at: float | None = None
        for job in jobs:
            at = job.ready_at()
            if at > now and job.due <= now and job.held_until is not None:
                if quiet:
                    job.held_until = None
                    at = now
                else:  # look again once the world may have gone quiet
                    at = min(at, now + REORDER_QUIET_S)
            if at <= now:
                return job, None
            next_at = at if next_at is None else min(next_at, at)
        return None, next_at

    def _next_in_lane(self, lane: Lane, epoch: int) -> Job | None:
        """The lane's next due job, taken at once by the attempt that just ended: going back
        through the runner cost a delivery two more turns of a loop that is serving every
        simulator (about a quarter of each delivery's time under load). Only while a slot is
        left for the other lanes: with none, the runner picks among all of them, oldest
        first."""
        with self._lock:
            jobs = self._lanes.get(lane)
            if epoch != self._epoch or lane in self._busy or not jobs:
                return None
            if len(self._busy) + 1 >= self.max_concurrency:  # + 1: this attempt's own slot
                return None
            job, _ = self._first_ready(jobs, self._monotonic(), self._quiet_enough())
            if job is not None:
                job.in_flight = True
                self._busy.add(lane)
            return job

    async def _attempt(self, client: aiohttp.ClientSession, job: Job, epoch: int) -> None:
        """Deliver ``job``, then each next due job of its lane in turn."""
        next_job: Job | None = job
        while next_job is not None:
            job = next_job
            try:
                if self._endpoint_gone(job):
                    # Deleted by a path that did not cancel (a vendor API's own delete).
                    self.cancel_endpoint(job.delivery.system, job.endpoint.id)
                    return
                attempt = await self._send(client, job)
            except Exception as exc:  # a bug in signing, say: record it, keep the runner
                log.exception("webhook delivery %s failed inside the dispatcher", job.delivery.id)
                attempt = Attempt(
                    self._wall(), self.world.clock.now(), None, f"internal: {exc!r}", 0.0
                )
            # A runner waiting for quiet gives the receiver its window from here: acknowledged
            # work may still be on its way to the receiver's first request.
            self.world.activity.touch()
            self._finish(job, attempt, epoch)
            next_job = self._next_in_lane(job.lane, epoch)

    async def _send(self, client: aiohttp.ClientSession, job: Job) -> Attempt:
        at_wall, sim_at = self._wall(), self.world.clock.now()
        if job.injected_left > 0:
            return Attempt(at_wall, sim_at, None, "injected", 0.0, job.inject_rule)
        delivery = job.delivery
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "X-Sim-Delivery-Id": delivery.id,
            "X-Sim-Event-Id": delivery.event_id,
            "X-Sim-Event-Type": delivery.event_type,
        }
        # Real unix time, signed per attempt: receivers check the timestamp against their own
        # clock (Stripe's construct_event allows 300 s), which the simulated clock is not.
        sim = self.world.systems[delivery.system]
        headers.update(sim.sign_webhook(job.endpoint, job.payload, int(self._wall())))
        started = self._monotonic()
        status_code: int | None = None
        error: str | None = None
        try:
            # The whole attempt, its answer read, within the timeout: a receiver that trickles
            # its answer is timed out too.
            async with (
                asyncio.timeout(self.timeout_s),
                client.post(
                    job.endpoint.url, data=job.payload, headers=headers, allow_redirects=False
                ) as response,
            ):
                await response.read()
            status_code = response.status
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except TimeoutError:
            error = "timeout"
        except (aiohttp.ClientError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}".rstrip(": ")
        duration_ms = round((self._monotonic() - started) * 1000, 3)
        return Attempt(at_wall, sim_at, status_code, error, duration_ms)

    def _finish(self, job: Job, attempt: Attempt, epoch: int) -> None:
        with self._lock:
            if epoch != self._epoch or self._jobs.get(job.delivery.id) is not job:
                return
            job.in_flight = False
            self._busy.discard(job.lane)
            delivery = job.delivery
            delivery.attempts.append(attempt)
            if attempt.fault is not None:
                job.injected_left -= 1
            # A later delivery to the endpoint was attempted: what was held to let one
            # overtake it goes now, whichever lane it waits in.
            for lane in self._lanes_of(*job.lane[:2]):
                for other in self._lanes[lane]:
                    if other.seq >= job.seq:
                        break
                    other.held_until = None
            if attempt.ok:
                self._settle(job, "delivered")
            elif len(delivery.attempts) > len(self.schedule_s):
                log.info("webhook %s to %s gave up", delivery.id, delivery.url)
                self._settle(job, "gave_up")
            else:
                backoff = self.schedule_s[len(delivery.attempts) - 1] * self.time_scale
                job.due = self._monotonic() + backoff
        self.wake()

    def _remember_settled(self, delivery_id: str) -> None:
        self._settled.append(delivery_id)
        while len(self._settled) > self.max_settled:
            self._deliveries.pop(self._settled.popleft(), None)

    def _settle(self, job: Job, status: DeliveryStatus) -> None:
        job.delivery.status = status
        self._remember_settled(job.delivery.id)
        del self._jobs[job.delivery.id]
        lane = self._lanes[job.lane]
        lane.remove(job)
        if not lane:
            del self._lanes[job.lane]
        self._pending[job.delivery.system] -= 1
        if self._pending[job.delivery.system] <= 0:
            del self._pending[job.delivery.system]
        if not self._pending:
            self._notify_drained()

    # draining ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether a runner (``run``) is active in some event loop."""
        with self._lock:
            return self._loop is not None

    def pending(self, system: str | None = None) -> int:
        """Deliveries not yet delivered, dropped or given up (in flight and held included)."""
        with self._lock:
            return self._pending[system] if system is not None else sum(self._pending.values())

    def drained(self) -> bool:
        return self.pending() == 0

    def _notify_drained(self) -> None:
        self._drained_cond.notify_all()
        waiters, self._drain_waiters = self._drain_waiters, []
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # the waiter's loop is closed
                loop.call_soon_threadsafe(_resolve, future)

    async def wait_drained(self, timeout_s: float | None = None) -> bool:
        """True once nothing is pending; False if ``timeout_s`` passes first.

        Needs a runner (the server's, or ``run_until_drained``) to make progress.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            if not self._pending:
                return True
            future: asyncio.Future[bool] = loop.create_future()
            self._drain_waiters.append((loop, future))
        try:
            # asyncio.timeout, not wait_for, which on 3.11 can swallow a concurrent cancel.
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            return self.drained()
        finally:
            with self._lock, contextlib.suppress(ValueError):
                self._drain_waiters.remove((loop, future))

    def wait_drained_threadsafe(self, timeout_s: float | None = None) -> bool:
        """``wait_drained`` for a thread other than the runner's (it would block the runner)."""
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None and running is self._loop:
            raise RuntimeError("on the dispatcher's loop, await wait_drained() instead")
        with self._drained_cond:
            return self._drained_cond.wait_for(lambda: not self._pending, timeout_s)

    async def run_until_drained(self, timeout_s: float | None = None) -> bool:
        """Deliver in this loop until nothing is pending or ``timeout_s`` passes (no server)."""
        if self.running:
            return await self.wait_drained(timeout_s)
        runner = asyncio.create_task(self.run())
        try:
            return await self.wait_drained(timeout_s)
        finally:
            runner.cancel()
            await asyncio.wait([runner])
            if not runner.cancelled() and runner.exception() is not None:
                raise RuntimeError("the webhook runner failed") from runner.exception()

    # records -----------------------------------------------------------------------------
    def delivery(self, delivery_id: str) -> Delivery | None:
        with self._lock:
            found = self._deliveries.get(delivery_id)
            return found.copy() if found is not None else None

    def deliveries(
        self,
        *,
        system: str | None = None,
        event_id: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        unchanged: Mapping[str, Delivery] | None = None,
    ) -> list[Delivery]:
        """Copies of the matching records, oldest first; ``limit`` keeps the newest ``limit``.
        A copy in ``unchanged`` (by id, from an earlier call) is given again for a record that
        still equals it: copies are never edited, so sharing them is safe."""
        with self._lock:
            found = [
                d
                for d in self._deliveries.values()
                if (system is None or d.system == system)
                and (event_id is None or d.event_id == event_id)
                and (status is None or d.status == status)
            ]
            if limit is not None:
                found = found[-limit:] if limit > 0 else []
            if not unchanged:
                return [d.copy() for d in found]
            out = []
            for d in found:
                kept = unchanged.get(d.id)
                out.append(kept if kept is not None and vars(kept) == vars(d) else d.copy())
            return out

    def reset(self) -> None:
        """Forget every delivery, pending ones included; attempts in flight are not recorded."""
        with self._lock:
            self._clear()
            self._next_id = 0
            self._next_seq = 0
            self._notify_drained()
        self.wake()

    def _clear(self) -> None:
        self._epoch += 1
        self._deliveries.clear()
        self._settled.clear()
        self._jobs.clear()
        self._lanes.clear()
        self._busy.clear()
        self._pending.clear()

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready state; pending deliveries carry their payload and remaining wait."""
        with self._lock:
            now = self._monotonic()
            items: list[dict[str, Any]] = []
            for delivery in self._deliveries.values():
                item = delivery.as_json()
                job = self._jobs.get(delivery.id)
                if job is not None:
                    item["job"] = job.as_json(now)
                items.append(item)
            return {"next_id": self._next_id, "next_seq": self._next_seq, "deliveries": items}

    def restore(self, data: dict[str, Any]) -> None:
        """Replace all state; pending deliveries resume, due after the wait they had left."""
        with self._lock:
            self._clear()
            now = self._monotonic()
            self._next_id = int(data.get("next_id", 0))
            self._next_seq = int(data.get("next_seq", 0))
            for item in data.get("deliveries", []):
                delivery = Delivery.from_json(item)
                job_data = item.get("job")
                if delivery.status in TERMINAL or job_data is None:
                    if delivery.status not in TERMINAL:
                        # A pending record without its payload cannot be sent again.
                        delivery.status = "gave_up"
                    self._deliveries[delivery.id] = delivery
                    self._remember_settled(delivery.id)
                    continue
                self._add_job(Job.from_json(delivery, job_data, now))
            if not self._pending:
                self._notify_drained()
        self.wake()


def _refusal(url: str, allowed_hosts: frozenset[str]) -> str | None:
    try:
        check_receiver_url(url, allowed_hosts)
    except ReceiverRefused as exc:
        return str(exc)
    return None


def _free_slot(
    tasks: set[asyncio.Task[None]], event: asyncio.Event, task: asyncio.Task[None]
) -> None:
    # The attempt wakes the runner before its task is done, so the runner may rescan while the
    # slot still looks taken; waking again here keeps a full pool from stalling.
    tasks.discard(task)
    event.set()


def _resolve(future: asyncio.Future[bool]) -> None:
    if not future.done():
        future.set_result(True)

"""The webhook dispatcher against real loopback receivers: delivery, retries, faults, draining."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from simulators.common.deliveries import Endpoint, hmac_signature
from simulators.common.faults import FaultRule
from simulators.common.server import Site, ThreadedServer
from simulators.common.simulator import Simulator
from simulators.common.tls import LocalCA
from simulators.common.webhooks import Dispatcher
from simulators.common.world import World
from tests.conftest import SessionApps

SECRET = "whsec_test"
FAST = (0.02, 0.02, 0.02)


class Crm(Simulator):
    name = "crm"
    contract_file = "crm.yaml"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """A loopback webhook receiver; ``plan[path]`` lists the statuses to answer, then 200."""

    requests: list[Received] = field(default_factory=list)
    plan: dict[str, list[int]] = field(default_factory=dict)
    hang_s: float = 0.0
    jitter_s: float = 0.0
    in_flight: dict[str, int] = field(default_factory=dict)
    max_in_flight: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            path = request.url.path
            body = await request.body()
            with self.lock:
                self.in_flight[path] = self.in_flight.get(path, 0) + 1
                self.max_in_flight[path] = max(
                    self.max_in_flight.get(path, 0), self.in_flight[path]
                )
                self.requests.append(Received(path, dict(request.headers), body, time.monotonic()))
                statuses = self.plan.get(path) or []
                status = statuses.pop(0) if statuses else 200
            try:
                if path.endswith("/hang"):
                    await asyncio.sleep(self.hang_s)
                if self.jitter_s:
                    await asyncio.sleep(random.uniform(0, self.jitter_s))
            finally:
                with self.lock:
                    self.in_flight[path] -= 1
            return PlainTextResponse("ok" if status < 300 else "no", status_code=status)

        return Starlette(routes=[Route("/{path:path}", hook, methods=["POST"])])

    def event_ids(self, path: str | None = None) -> list[str]:
        with self.lock:
            return [
                r.headers["x-sim-event-id"] for r in self.requests if path is None or r.path == path
            ]


@dataclass
class Env:
    world: World
    sim: Crm
    dispatcher: Dispatcher
    receiver: Receiver
    server: ThreadedServer
    base_url: str

    def endpoint(self, path: str = "/hook", **kwargs: Any) -> Endpoint:
        endpoint_id = kwargs.pop("id", f"we_{len(self.sim.endpoints) + 1}")
        url = kwargs.pop("url", f"{self.base_url}{path}")
        endpoint = Endpoint(id=endpoint_id, system="crm", url=url, secret=SECRET, **kwargs)
        self.sim.endpoints[endpoint.id] = endpoint
        return endpoint

    def publish(
        self, event_id: str, event_type: str = "account.updated", order_key: str = ""
    ) -> list[Any]:
        payload = json.dumps({"id": event_id, "type": event_type}).encode()
        return self.dispatcher.publish("crm", event_id, event_type, payload, order_key)

    def drain(self, timeout_s: float = 5.0) -> bool:
        return self.dispatcher.wait_drained_threadsafe(timeout_s)


def make_world(seed: int = 7) -> tuple[World, Crm]:
    world = World(seed=seed)
    return world, Crm(world)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Env]]:
    servers: list[ThreadedServer] = []
    envs: list[Env] = []

    def _start(*, tls: bool = False, seed: int = 7, **kwargs: Any) -> Env:
        world, sim = make_world(seed)
        kwargs.setdefault("schedule_s", FAST)
        dispatcher = Dispatcher(world, **kwargs)
        world.dispatcher = dispatcher
        receiver = Receiver()
        ca = LocalCA.create(tmp_path / "ca") if tls else None
        server = ThreadedServer(
            [Site("recv", receiver.app(), tls=tls)], ca=ca, background=[dispatcher.run]
        )
        server.start()
        servers.append(server)
        envs.append(Env(world, sim, dispatcher, receiver, server, server.urls["recv"]))
        return envs[-1]

    yield _start
    for server in servers:
        server.stop()
    for env in envs:
        assert not env.dispatcher.running, "the runner outlived the server"


def unreachable_url() -> tuple[socket.socket, str]:
    """A bound port nobody listens on: connections are refused at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}/hook"


def add_rule(world: World, **kwargs: Any) -> FaultRule:
    return world.faults.add(FaultRule.model_validate(kwargs))


# delivery ------------------------------------------------------------------------------------
def test_delivers_signed_payload_with_headers(start: Callable[..., Env]) -> None:
    env = start()
    env.endpoint()
    [delivery] = env.publish("evt_1", "account.created")
    assert delivery.id == "dlv_1" and delivery.status == "pending"
    assert delivery.created_sim_at == env.world.clock.now()
    assert env.drain()

    [req] = env.receiver.requests
    assert json.loads(req.body) == {"id": "evt_1", "type": "account.created"}
    assert req.headers["content-type"] == "application/json; charset=utf-8"
    assert req.headers["user-agent"] == "finsim-webhooks/1.0"
    assert req.headers["x-sim-delivery-id"] == "dlv_1"
    assert req.headers["x-sim-event-id"] == "evt_1"
    assert req.headers["x-sim-event-type"] == "account.created"
    parts = dict(p.split("=", 1) for p in req.headers["x-sim-signature"].split(","))
    timestamp = int(parts["t"])
    assert abs(timestamp - time.time()) < 60, "signed with wall-clock time, not the sim clock"
    assert parts["v1"] == hmac_signature(SECRET, req.body, timestamp)

    [record] = env.dispatcher.deliveries(event_id="evt_1")
    assert record.status == "delivered"
    [attempt] = record.attempts
    assert attempt.status_code == 200 and attempt.error is None and attempt.fault is None
    assert attempt.sim_at == env.world.clock.now() and attempt.duration_ms >= 0
    assert json.loads(json.dumps(record.as_json()))["attempts"][0]["status_code"] == 200


def test_tls_receiver_with_self_signed_certificate(start: Callable[..., Env]) -> None:
    env = start(tls=True)
    env.endpoint()
    env.publish("evt_tls")
    assert env.drain()
    assert env.receiver.event_ids() == ["evt_tls"]


def test_event_globs_and_disabled_endpoints(start: Callable[..., Env]) -> None:
    env = start()
    env.endpoint("/invoices", events=["invoice.*"])
    env.endpoint("/all")
    env.endpoint("/off", enabled=False)
    assert len(env.publish("evt_a", "account.updated")) == 1
    assert len(env.publish("evt_i", "invoice.paid")) == 2
    assert env.drain()
    assert env.receiver.event_ids("/invoices") == ["evt_i"]
    assert sorted(env.receiver.event_ids("/all")) == ["evt_a", "evt_i"]
    assert env.receiver.event_ids("/off") == []


def test_a_payload_function_is_called_only_when_an_endpoint_takes_the_event(
    start: Callable[..., Env],
) -> None:
    env = start()
    env.endpoint("/invoices", events=["invoice.*"])
    env.endpoint("/also-invoices", events=["invoice.paid"])
    made: list[str] = []

    def payload(event_id: str) -> Callable[[], bytes]:
        def make() -> bytes:
            made.append(event_id)
            return json.dumps({"id": event_id}).encode()

        return make

    assert env.dispatcher.publish("crm", "evt_none", "account.updated", payload("evt_none")) == []
    assert len(env.dispatcher.publish("crm", "evt_two", "invoice.paid", payload("evt_two"))) == 2
    assert made == ["evt_two"]  # not for the event nobody takes; once for two endpoints
    assert env.drain()
    bodies = {r.path: json.loads(r.body) for r in env.receiver.requests}
    assert bodies == {"/invoices": {"id": "evt_two"}, "/also-invoices": {"id": "evt_two"}}
    with pytest.raises(TypeError):
        env.dispatcher.publish("crm", "evt_bad", "invoice.paid", "not bytes")  # type: ignore[arg-type]


def test_retries_after_500_then_succeeds(start: Callable[..., Env]) -> None:
    env = start(schedule_s=(0.05, 0.05, 0.05))
    env.endpoint()
    env.receiver.plan["/hook"] = [500, 503]
    env.publish("evt_r")
    assert env.drain()
    [record] = env.dispatcher.deliveries()
    assert record.status == "delivered"
    assert [a.status_code for a in record.attempts] == [500, 503, 200]
    assert [a.error for a in record.attempts] == ["HTTP 500", "HTTP 503", None]
    gaps = [
        b.at_wall - a.at_wall for a, b in zip(record.attempts, record.attempts[1:], strict=False)
    ]
    assert all(gap >= 0.04 for gap in gaps), gaps
    # Each attempt is signed afresh and carries the same delivery id.
    assert {r.headers["x-sim-delivery-id"] for r in env.receiver.requests} == {record.id}


def test_copies_of_unchanged_deliveries_are_given_again(start: Callable[..., Env]) -> None:
    env = start(schedule_s=(0.05,))
    env.endpoint()
    env.receiver.plan["/hook"] = [500]
    env.publish("evt_1")
    env.publish("evt_2")
    assert env.drain()
    first = {d.event_id: d for d in env.dispatcher.deliveries()}
    env.publish("evt_3")
    assert env.drain()
    lent = {d.id: d for d in first.values()}
    again = {d.event_id: d for d in env.dispatcher.deliveries(unchanged=lent)}
    assert again["evt_1"] is first["evt_1"] and again["evt_2"] is first["evt_2"]
    assert "evt_3" not in first and again["evt_3"].status == "delivered"
    # A copy that no longer matches its record is not given again.
    first["evt_1"].attempts.pop()
    [one, *_] = env.dispatcher.deliveries(unchanged=lent)
    assert one is not first["evt_1"] and one == env.dispatcher.deliveries()[0]
    assert len(one.attempts) == 2


def test_gives_up_after_schedule_scaled_by_time_scale(start: Callable[..., Env]) -> None:
    env = start(schedule_s=(10, 20), time_scale=0.001)
    env.endpoint()
    env.receiver.plan["/hook"] = [500] * 10
    env.publish("evt_g")
    assert env.drain()
    [record] = env.dispatcher.deliveries()
    assert record.status == "gave_up"
    assert [a.status_code for a in record.attempts] == [500, 500, 500]
    assert record.attempts[2].at_wall - record.attempts[1].at_wall >= 0.018
    assert len(env.receiver.requests) == 3
    assert env.dispatcher.deliveries(status="gave_up") == [record]


def test_timeout_is_a_failed_attempt(start: Callable[..., Env]) -> None:
    env = start(schedule_s=(), timeout_s=0.15)
    env.receiver.hang_s = 0.6
    env.endpoint("/hang")
    env.publish("evt_t")
    assert env.drain()
    [record] = env.dispatcher.deliveries()
    assert record.status == "gave_up"
    [attempt] = record.attempts
    assert attempt.error == "timeout" and attempt.status_code is None
    assert attempt.duration_ms >= 100


# outbound faults -----------------------------------------------------------------------------
def test_duplicate_delivers_copies_of_one_event(start: Callable[..., Env]) -> None:
    env = start()
    env.endpoint()
    rule = add_rule(env.world, kind="duplicate", copies=3, max_hits=1)
    records = env.publish("evt_d")
    env.publish("evt_plain")
    assert env.drain()
    assert len(records) == 3 and len({r.id for r in records}) == 3
    assert all(r.faults == [rule.id] for r in records)
    assert env.receiver.event_ids() == ["evt_d", "evt_d", "evt_d", "evt_plain"]
    delivery_ids = [r.headers["x-sim-delivery-id"] for r in env.receiver.requests[:3]]
    assert delivery_ids == [r.id for r in records]
    assert [h.kind for h in env.world.faults.hits()] == ["duplicate"]


def test_drop_is_recorded_and_never_sent(start: Callable[..., Env]) -> None:
    env = start()
    env.endpoint()
    rule = add_rule(env.world, kind="drop", operation="invoice.*")
    [dropped] = env.publish("evt_x", "invoice.paid")
    assert dropped.status == "dropped" and dropped.attempts == [] and dropped.faults == [rule.id]
    assert env.dispatcher.pending() == 0
    env.publish("evt_ok", "account.updated")
    assert env.drain()
    assert env.receiver.event_ids() == ["evt_ok"]
    assert [d.id for d in env.dispatcher.deliveries(status="dropped")] == [dropped.id]
    [hit] = env.world.faults.hits()
    assert hit.rule_id == rule.id and "evt_x" in hit.detail


def test_delay_holds_then_delivers(start: Callable[..., Env]) -> None:
    env = start(time_scale=0.5)
    env.endpoint()
    rule = add_rule(env.world, kind="delay", delay_s=1.0, max_hits=1)
    published = time.monotonic()
    env.publish("evt_late")
    env.publish("evt_early")
    assert env.dispatcher.wait_drained_threadsafe(0.25) is False
    assert env.receiver.event_ids() == ["evt_early"]
    assert env.dispatcher.pending() == 1
    assert env.drain()
    assert env.receiver.event_ids() == ["evt_early", "evt_late"]
    assert env.receiver.requests[1].at - published >= 0.48  # 1 s x time_scale 0.5
    [late] = env.dispatcher.deliveries(event_id="evt_late")
    assert late.faults == [rule.id] and len(late.attempts) == 1


def test_reorder_swaps_with_next_delivery(start: Callable[..., Env]) -> None:
    env = start(reorder_hold_s=30.0)
    env.endpoint()
    rule = add_rule(env.world, kind="reorder", operation="first.*")
    env.publish("evt_1", "first.event")
    env.publish("evt_2", "second.event")
    # Well inside the hold bound: the held delivery goes once the next one was attempted.
    assert env.drain(3.0)
    assert env.receiver.event_ids() == ["evt_2", "evt_1"]
    [held] = env.dispatcher.deliveries(event_id="evt_1")
    assert held.faults == [rule.id] and held.status == "delivered"


@pytest.mark.parametrize(
    ("hold_s", "least_s", "most_s"),
    [
        (0.2, 0.18, 3.0),  # bounded by the hold
        # Nothing else published, nothing in flight: no later delivery can come to overtake
        # it, so it goes once the world has been quiet (0.25 s), not after the 30 s hold.
        (30.0, 0.2, 5.0),
    ],
)
def test_a_lone_held_delivery_goes_at_the_bound_or_once_quiet(
    start: Callable[..., Env], hold_s: float, least_s: float, most_s: float
) -> None:
    env = start(reorder_hold_s=hold_s)
    env.endpoint()
    add_rule(env.world, kind="reorder")
    published = time.monotonic()
    env.publish("evt_alone")
    assert env.drain(most_s)
    assert least_s <= env.receiver.requests[0].at - published < most_s


def test_fail_first_records_injected_failures(start: Callable[..., Env]) -> None:
    env = start()
    env.endpoint()
    rule = add_rule(env.world, kind="fail_first", attempts=2)
    env.publish("evt_f")
    assert env.drain()
    [record] = env.dispatcher.deliveries()
    assert record.status == "delivered"
    assert [(a.status_code, a.error, a.fault) for a in record.attempts] == [
        (None, "injected", rule.id),
        (None, "injected", rule.id),
        (200, None, None),
    ]
    assert len(env.receiver.requests) == 1


def test_fail_first_beyond_schedule_gives_up_without_sending(start: Callable[..., Env]) -> None:
    env = start(schedule_s=(0.01,))
    env.endpoint()
    add_rule(env.world, kind="fail_first", attempts=5)
    env.publish("evt_f")
    assert env.drain()
    [record] = env.dispatcher.deliveries()
    assert record.status == "gave_up" and len(record.attempts) == 2
    assert env.receiver.requests == []


def test_duplicate_pattern_is_deterministic_per_seed() -> None:
    def pattern(seed: int) -> list[int]:
        world, sim = make_world(seed)
        sim.endpoints["we_1"] = Endpoint("we_1", "crm", "http://127.0.0.1:9/hook", SECRET)
        world.faults.add(FaultRule(kind="duplicate", probability=0.5))
        counts = []
        for n in range(20):
            counts.append(len(world.dispatcher.publish("crm", f"evt_{n}", "x.y", b"{}")))
        world.dispatcher.reset()
        return counts

    first = pattern(11)
    assert first == pattern(11)
    assert set(first) == {1, 2}
    assert first != pattern(12)


# ordering, draining, threads -----------------------------------------------------------------
def test_per_endpoint_order_and_one_at_a_time(start: Callable[..., Env]) -> None:
    env = start(max_concurrency=8)
    env.receiver.jitter_s = 0.004
    env.endpoint("/a")
    env.endpoint("/b")
    expected = [f"evt_{n}" for n in range(30)]
    for event_id in expected:
        env.publish(event_id)
    assert env.drain(10.0)
    assert env.receiver.event_ids("/a") == expected
    assert env.receiver.event_ids("/b") == expected
    assert env.receiver.max_in_flight == {"/a": 1, "/b": 1}


def keys_in_separate_lanes(count: int, lanes: int) -> list[str]:
    """``count`` order keys that fall in different lanes of an endpoint with ``lanes`` lanes,
    found by the documented rule (crc32 of the key, modulo the lanes)."""
    found: dict[int, str] = {}
    for n in range(1000):
        found.setdefault(zlib.crc32(f"cus_{n}".encode()) % lanes, f"cus_{n}")
        if len(found) == count:
            return list(found.values())
    raise AssertionError("no such keys")


def test_an_endpoints_lanes_go_at_once_and_each_keys_events_in_order(
    start: Callable[..., Env],
) -> None:
    env = start(max_concurrency=8, lanes_per_endpoint=4)
    env.receiver.hang_s = 0.05
    env.endpoint("/hang")
    keys = keys_in_separate_lanes(4, 4)
    expected = {key: [f"evt_{key}_{n}" for n in range(5)] for key in keys}
    for n in range(5):
        for key in keys:
            env.publish(expected[key][n], order_key=key)
    assert env.drain(10.0)
    # Four customers' events at once …
    assert env.receiver.max_in_flight == {"/hang": 4}
    got = env.receiver.event_ids()
    # … and each one's in the order they were published.
    for key in keys:
        assert [e for e in got if e.startswith(f"evt_{key}_")] == expected[key]


def test_events_of_one_key_or_of_none_go_one_at_a_time(start: Callable[..., Env]) -> None:
    env = start(max_concurrency=8, lanes_per_endpoint=4)
    env.receiver.jitter_s = 0.004
    env.endpoint("/a")
    env.endpoint("/b")
    same = [f"evt_{n}" for n in range(12)]
    for event_id in same:
        env.publish(event_id, order_key="cus_same")
    assert env.drain(10.0)
    unkeyed = [f"evt_u{n}" for n in range(12)]
    for event_id in unkeyed:
        env.publish(event_id)
    assert env.drain(10.0)
    assert env.receiver.event_ids("/a") == same + unkeyed
    assert env.receiver.max_in_flight == {"/a": 1, "/b": 1}


def test_deleting_an_endpoint_cancels_what_waits_in_every_lane(start: Callable[..., Env]) -> None:
    env = start(schedule_s=(0.2, 3600), lanes_per_endpoint=4)
    endpoint = env.endpoint()
    env.receiver.plan["/hook"] = [500] * 20
    keys = keys_in_separate_lanes(4, 4)
    for key in keys:
        env.publish(f"evt_{key}", order_key=key)
    deadline = time.monotonic() + 5
    while len(env.receiver.requests) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert env.sim.unregister_webhook(endpoint.id)
    assert env.dispatcher.pending() == 0
    assert {d.status for d in env.dispatcher.deliveries()} == {"cancelled"}
    time.sleep(0.4)  # past the retries that would have come
    assert len(env.receiver.requests) == 4


def test_a_reorder_hold_ends_when_a_later_delivery_in_another_lane_went(
    start: Callable[..., Env],
) -> None:
    env = start(reorder_hold_s=30.0, lanes_per_endpoint=4)
    env.endpoint()
    add_rule(env.world, kind="reorder", operation="first.*")
    first, second = keys_in_separate_lanes(2, 4)
    env.publish("evt_1", "first.event", order_key=first)
    env.publish("evt_2", "second.event", order_key=second)
    assert env.drain(3.0)  # not the 30 s hold
    assert env.receiver.event_ids() == ["evt_2", "evt_1"]
    # Released by the later delivery, not by the world going quiet (0.25 s) after it.
    later, held = env.receiver.requests
    assert held.at - later.at < 0.2


def test_a_snapshot_keeps_each_deliverys_lane() -> None:
    world, sim = make_world()
    sim.endpoints["we_1"] = Endpoint("we_1", "crm", "http://127.0.0.1:9/hook", SECRET)
    dispatcher = Dispatcher(world, schedule_s=FAST, lanes_per_endpoint=4)
    keys = keys_in_separate_lanes(3, 4)
    for key in keys:
        dispatcher.publish("crm", f"evt_{key}", "a.b", b"{}", key)
    state = json.loads(json.dumps(dispatcher.snapshot()))
    restored = Dispatcher(make_world()[0], schedule_s=FAST, lanes_per_endpoint=4)
    restored.restore(state)
    lanes = {d.event_id: d.lane for d in restored.deliveries()}
    assert lanes == {f"evt_{k}": zlib.crc32(k.encode()) % 4 for k in keys}
    assert len(set(lanes.values())) == 3


def test_lanes_per_endpoint_must_be_positive() -> None:
    with pytest.raises(ValueError, match="lanes_per_endpoint"):
        Dispatcher(make_world()[0], lanes_per_endpoint=0)


def test_wait_drained_true_when_delivered_false_on_timeout(start: Callable[..., Env]) -> None:
    env = start(schedule_s=(0.05,) * 20)
    env.endpoint("/hang")
    env.receiver.hang_s = 0.1
    for waiter in ("async", "thread"):
        env.publish(f"evt_{waiter}")
        started = time.monotonic()
        if waiter == "async":
            assert env.server.run(env.dispatcher.wait_drained(5.0), timeout=6) is True
        else:
            assert env.dispatcher.wait_drained_threadsafe(5.0) is True
        # Woken by the last delivery, not by the timeout.
        assert time.monotonic() - started < 1.5
        assert env.dispatcher.drained()

    sock, url = unreachable_url()
    with sock:
        env.endpoint(url=url, id="we_dead")
        env.publish("evt_dead")
        started = time.monotonic()
        assert env.server.run(env.dispatcher.wait_drained(0.3), timeout=5) is False
        assert env.dispatcher.wait_drained_threadsafe(0.1) is False
        assert time.monotonic() - started < 2.0
    assert env.dispatcher.pending() == 1 and env.dispatcher.pending("crm") == 1
    [dead] = env.dispatcher.deliveries(status="pending")
    assert dead.endpoint_id == "we_dead" and dead.attempts
    assert all(a.status_code is None and a.error for a in dead.attempts)
    env.dispatcher.reset()
    assert env.dispatcher.drained() and env.dispatcher.deliveries() == []


def test_publish_from_foreign_thread_wakes_idle_runner(start: Callable[..., Env]) -> None:
    env = start()
    env.endpoint()
    time.sleep(0.05)  # let the runner go idle with no deadline to wake it
    threads = [threading.Thread(target=env.publish, args=(f"evt_{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert env.drain(2.0)
    assert sorted(env.receiver.event_ids()) == [f"evt_{n}" for n in range(4)]


def test_run_until_drained_in_process_and_publish_on_loop() -> None:
    receiver = Receiver()
    with ThreadedServer([Site("recv", receiver.app())]) as server:
        world, sim = make_world()
        sim.endpoints["we_1"] = Endpoint("we_1", "crm", f"{server.urls['recv']}/hook", SECRET)
        dispatcher = Dispatcher(world, schedule_s=FAST)
        dispatcher.publish("crm", "evt_1", "a.b", b'{"n": 1}')

        async def scenario() -> tuple[bool, bool]:
            first = await dispatcher.run_until_drained(5.0)
            runner = asyncio.create_task(dispatcher.run())
            await asyncio.sleep(0)
            dispatcher.publish("crm", "evt_2", "a.b", b'{"n": 2}')  # on the runner's loop
            second = await dispatcher.wait_drained(5.0)
            runner.cancel()
            await asyncio.wait([runner])
            return first, second

        assert asyncio.run(scenario()) == (True, True)
        assert receiver.event_ids() == ["evt_1", "evt_2"]


def test_snapshot_restore_resumes_pending_deliveries() -> None:
    receiver = Receiver()
    with ThreadedServer([Site("recv", receiver.app())]) as server:
        world, sim = make_world()
        sim.endpoints["we_1"] = Endpoint("we_1", "crm", f"{server.urls['recv']}/hook", SECRET)
        dispatcher = Dispatcher(world, schedule_s=FAST)
        dispatcher.publish("crm", "evt_text", "a.b", b'{"caf\xc3\xa9": 1}')
        dispatcher.publish("crm", "evt_bin", "a.b", b"\xff\x00binary")
        state = json.loads(json.dumps(dispatcher.snapshot()))
        assert {d["job"]["payload_encoding"] for d in state["deliveries"]} == {"utf-8", "base64"}

        world2, sim2 = make_world()
        sim2.endpoints["we_1"] = sim.endpoints["we_1"]
        restored = Dispatcher(world2, schedule_s=FAST)
        restored.restore(state)
        assert restored.pending() == 2
        assert asyncio.run(restored.run_until_drained(5.0))
        assert [r.body for r in receiver.requests] == [b'{"caf\xc3\xa9": 1}', b"\xff\x00binary"]
        assert [d.status for d in restored.deliveries()] == ["delivered", "delivered"]
        # Ids continue after the restored ones.
        assert restored.publish("crm", "evt_3", "a.b", b"{}")[0].id == "dlv_3"


def test_cancel_racing_a_wake_stops_the_runner() -> None:
    world, sim = make_world()
    sim.endpoints["we_1"] = Endpoint("we_1", "crm", "http://127.0.0.1:9/hook", SECRET)
    world.faults.add(FaultRule(kind="delay", delay_s=100))
    dispatcher = Dispatcher(world)
    dispatcher.publish("crm", "evt_1", "a.b", b"{}")

    async def scenario() -> bool:
        runner = asyncio.create_task(dispatcher.run())
        await asyncio.sleep(0.05)  # the runner now sleeps until the delayed delivery is due
        dispatcher.reset()  # sets the wake event ...
        runner.cancel()  # ... in the same loop iteration as the cancel
        done, _ = await asyncio.wait([runner], timeout=2.0)
        return runner in done

    assert asyncio.run(scenario()) is True
    assert not dispatcher.running


def test_single_slot_serves_every_endpoint(start: Callable[..., Env]) -> None:
    env = start(max_concurrency=1)
    env.endpoint("/a")
    env.endpoint("/b")
    for n in range(5):
        env.publish(f"evt_{n}")
    assert env.drain(5.0)
    assert len(env.receiver.requests) == 10
    assert max(env.receiver.max_in_flight.values()) == 1


def test_retry_timing_follows_wall_clock_not_sim_clock(start: Callable[..., Env]) -> None:
    now = [1000.0]
    env = start(schedule_s=(60,), monotonic=lambda: now[0])
    env.endpoint()
    env.receiver.plan["/hook"] = [500]
    env.publish("evt_w")
    assert env.dispatcher.wait_drained_threadsafe(0.3) is False
    env.world.clock.advance(3 * 86400)  # business time does not make a retry due
    env.dispatcher.wake()
    assert env.dispatcher.wait_drained_threadsafe(0.2) is False
    now[0] += 60
    env.dispatcher.wake()
    assert env.drain(3.0)
    [record] = env.dispatcher.deliveries()
    assert [a.status_code for a in record.attempts] == [500, 200]
    assert record.attempts[1].sim_at - record.attempts[0].sim_at == 3 * 86400


# where webhooks may go, and what deleting an endpoint does ------------------------------------
def test_a_refused_url_is_never_sent_even_if_stored(start: Callable[..., Env]) -> None:
    env = start()
    # Stored behind the checks' back (a restored snapshot, a simulator's own path).
    env.endpoint(url="http://169.254.169.254/latest/meta-data")
    env.endpoint("/hook")
    refused, sent = env.publish("evt_x")
    assert env.drain()
    assert refused.status == "refused" and "169.254.169.254" in (refused.attempts[0].error or "")
    assert env.dispatcher.delivery(sent.id).status == "delivered"  # type: ignore[union-attr]
    assert [r.path for r in env.receiver.requests] == ["/hook"]


def test_a_listed_host_is_allowed(start: Callable[..., Env]) -> None:
    env = start()
    env.world.webhook_hosts = frozenset({"127.0.0.2", "hooks.example"})
    env.endpoint(url="http://hooks.example:9/nowhere")
    [delivery] = env.publish("evt_listed")
    assert delivery.status == "pending"  # tried (and failing: nobody is there), not refused


def test_deleting_an_endpoint_cancels_its_pending_deliveries(start: Callable[..., Env]) -> None:
    env = start(schedule_s=(0.2, 3600))
    endpoint = env.endpoint()
    env.receiver.plan["/hook"] = [500] * 5
    env.publish("evt_del")
    deadline = time.monotonic() + 5
    while not env.receiver.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert env.sim.unregister_webhook(endpoint.id)
    assert env.dispatcher.pending() == 0
    [record] = env.dispatcher.deliveries()
    assert record.status == "cancelled"
    time.sleep(0.4)  # past the retry that would have come
    assert len(env.receiver.requests) == 1


def test_an_endpoint_gone_without_a_cancel_is_cancelled_before_its_next_attempt(
    start: Callable[..., Env],
) -> None:
    env = start(schedule_s=(0.1, 0.1))
    env.endpoint()
    env.receiver.plan["/hook"] = [500] * 5
    env.publish("evt_gone")
    deadline = time.monotonic() + 5
    while not env.receiver.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    env.sim.endpoints.clear()  # as a vendor API's own delete would, without telling us
    assert env.drain()
    [record] = env.dispatcher.deliveries()
    assert record.status == "cancelled" and len(env.receiver.requests) == 1


@pytest.mark.parametrize("system", ["crm", "erp", "revrec", "billing"])
async def test_the_control_plane_refuses_receivers_outside_loopback(
    session_apps: SessionApps, system: str
) -> None:
    served = session_apps.fresh(system, 1, "2026-01-15T00:00:00Z")
    headers = {"X-Sim-Control-Token": served.world.control_token}
    async with served.client() as client:
        for url in ("http://169.254.169.254/latest/meta-data", "https://hooks.example/x"):
            r = await client.post("/_sim/webhooks/endpoints", json={"url": url}, headers=headers)
            assert r.status_code == 400, (url, r.text)
            assert "not loopback" in r.text and "--webhook-host" in r.text
        r = await client.post(
            "/_sim/webhooks/endpoints", json={"url": "http://127.0.0.1:9/h"}, headers=headers
        )
        assert r.status_code == 201, r.text
        served.world.webhook_hosts = frozenset({"hooks.example"})
        try:
            r = await client.post(
                "/_sim/webhooks/endpoints",
                json={"url": "https://hooks.example/x"},
                headers=headers,
            )
            assert r.status_code == 201, r.text
        finally:
            served.world.webhook_hosts = frozenset()


def test_the_delivery_log_keeps_the_newest_settled_records(start: Callable[..., Env]) -> None:
    env = start(max_settled=3)
    env.endpoint()
    add_rule(env.world, kind="drop", operation="account.*")
    for n in range(5):
        env.publish(f"evt_{n}")
    assert [d.event_id for d in env.dispatcher.deliveries()] == ["evt_2", "evt_3", "evt_4"]


def test_a_lanes_queued_deliveries_follow_each_other_without_the_runner() -> None:
    # Each delivery that went back through the runner waited two more turns of the loop that
    # serves every simulator; one attempt now carries the lane's queue while slots are left.
    receiver = Receiver()
    with ThreadedServer([Site("recv", receiver.app())]) as server:
        world, sim = make_world()
        sim.endpoints["we_1"] = Endpoint("we_1", "crm", f"{server.urls['recv']}/hook", SECRET)
        dispatcher = Dispatcher(world, schedule_s=FAST, max_concurrency=2)
        expected = [f"evt_{n}" for n in range(12)]
        for event_id in expected:
            dispatcher.publish("crm", event_id, "a.b", b"{}")
        attempt = dispatcher._attempt
        started: list[str] = []

        async def counted(client: Any, job: Any, epoch: int) -> None:
            started.append(job.delivery.event_id)
            await attempt(client, job, epoch)

        dispatcher._attempt = counted  # type: ignore[method-assign]
        assert asyncio.run(dispatcher.run_until_drained(5.0))
    assert receiver.event_ids() == expected  # in order, one at a time
    assert receiver.max_in_flight == {"/hook": 1}
    assert started == ["evt_0"], started


def test_a_full_pool_goes_back_to_the_runner_so_no_lane_waits_behind_another() -> None:
    receiver = Receiver()
    with ThreadedServer([Site("recv", receiver.app())]) as server:
        world, sim = make_world()
        for name in ("a", "b"):
            url = f"{server.urls['recv']}/{name}"
            sim.endpoints[f"we_{name}"] = Endpoint(f"we_{name}", "crm", url, SECRET)
        dispatcher = Dispatcher(world, schedule_s=FAST, max_concurrency=1)
        for n in range(4):
            dispatcher.publish("crm", f"evt_{n}", "a.b", b"{}")
        assert asyncio.run(dispatcher.run_until_drained(5.0))
    # One slot: oldest first across the endpoints, never one endpoint's whole queue first.
    paths = [r.path for r in receiver.requests]
    assert paths == ["/a", "/b"] * 4, paths

"""Served worlds are built once per process and reset between scenarios: the second scenario
of a kind reuses the first one's apps, starts from its own seed, and sees nothing of it."""

from __future__ import annotations

from harness import pool
from harness.up import UpOptions


def _options(seed: int) -> UpOptions:
    return UpOptions(
        seed=seed,
        start_at="2026-03-01T00:00:00Z",
        ports={"billing": 0},
        systems=["billing"],
        webhook_time_scale=1e-5,
    )


def test_a_released_world_is_reused_reset_to_the_next_seed() -> None:
    first = pool.acquire(_options(1))
    sim = first.stack.sims["billing"]
    with first.stack.world.lock:
        sim.store.customers.clear()  # noqa: the test peeks at the world it was handed
    first.stack.world.clock.advance(86_400)
    urls = dict(first.server.urls)
    first.release()
    second = pool.acquire(_options(2))
    try:
        assert second is first  # the same apps and server
        assert second.server.urls == urls
        assert second.stack.world.seed == 2
        assert second.stack.world.clock.now() == 1772323200  # 2026-03-01, not a day later
        assert second.stack.sims["billing"].journal.snapshot() == []
    finally:
        second.release()


def test_a_world_in_use_is_never_handed_out_twice() -> None:
    held = pool.acquire(_options(3))
    other = pool.acquire(_options(4))
    try:
        assert other is not held
        assert held.stack.world.seed == 3 and other.stack.world.seed == 4
    finally:
        other.release()
        held.release()

"""The idempotency store is bounded: keys expire after 24 h of simulated time (Stripe's rule)
whether or not they are looked up again, and past a key or byte cap the oldest go first."""

from __future__ import annotations

from simulators.common.idempotency import IdempotencyCache, Outcome, StoredResponse
from tests.conftest import InProcess

DAY = 24 * 3600


def _store(cache: IdempotencyCache, key: str, now: int, body: bytes = b"{}") -> None:
    outcome, _ = cache.begin(key, f"fp-{key}", now)
    assert outcome is Outcome.PROCEED
    cache.finish(key, StoredResponse(f"fp-{key}", 200, (), body, now))


def test_expired_keys_go_when_any_key_is_next_used() -> None:
    cache = IdempotencyCache()
    for n in range(100):
        _store(cache, f"k{n}", now=n)
    assert len(cache) == 100
    _store(cache, "late", now=DAY + 49)  # k0..k49 are 24 h old by now; k50.. are not
    assert len(cache) == 51
    assert cache.begin("k50", "fp-k50", DAY + 49)[0] is Outcome.REPLAY
    assert cache.begin("k49", "other", DAY + 49)[0] is Outcome.PROCEED  # a new key again


def test_the_oldest_keys_go_past_the_key_cap_and_the_byte_cap() -> None:
    cache = IdempotencyCache(max_keys=3)
    for n in range(5):
        _store(cache, f"k{n}", now=n)
    assert [item["key"] for item in cache.snapshot()] == ["k2", "k3", "k4"]
    small = IdempotencyCache(max_bytes=1100)
    for n in range(5):
        _store(small, f"k{n}", now=n, body=b"x" * 300)
    # 300 bytes of body plus 64 of bookkeeping each: three fit in 1100, four do not.
    assert [item["key"] for item in small.snapshot()] == ["k2", "k3", "k4"]
    assert small.stored_bytes == 3 * 364


def test_restore_keeps_expiry_in_order_whatever_the_snapshot_order() -> None:
    cache = IdempotencyCache()
    _store(cache, "young", now=DAY)
    _store(cache, "old", now=0)
    copy = IdempotencyCache()
    copy.restore(list(reversed(cache.snapshot())))
    _store(copy, "now", now=DAY + 10)
    assert [item["key"] for item in copy.snapshot()] == ["young", "now"]


async def test_keys_from_requests_are_swept_after_a_day_of_sim_time(billing: InProcess) -> None:
    headers = dict(billing.auth)
    for n in range(30):
        r = await billing.client.post(
            "/v1/customers/cus_nowhere",
            data={"name": "x"},
            headers={**headers, "Idempotency-Key": f"key-{n}"},
        )
        assert r.status_code == 404  # executed, so stored (and replayed) as Stripe does
    assert len(billing.sim.idempotency) == 30
    await billing.client.post("/_sim/clock/advance", json={"seconds": DAY}, headers=billing.control)
    await billing.client.post(
        "/v1/customers", data={"name": "y"}, headers={**headers, "Idempotency-Key": "fresh"}
    )
    assert len(billing.sim.idempotency) == 1

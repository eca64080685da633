"""What a simulator keeps holds its own size: an event's object, a pending webhook's payload and
an idempotent reply are not orjson's 32 KiB working buffer (ten times a 3 KiB invoice), so
memory and the stores' byte bounds mean what they say."""

from __future__ import annotations

import ctypes
import ctypes.util

import orjson
import pytest

from simulators.common.deliveries import Endpoint
from simulators.common.jsonbytes import trimmed
from simulators.common.webhooks import Dispatcher
from simulators.common.world import World
from tests.common.test_webhooks import Crm
from tests.conftest import InProcess

_LIBC = ctypes.CDLL(ctypes.util.find_library("c"))
if not hasattr(_LIBC, "malloc_usable_size"):  # pragma: no cover - glibc only
    pytest.skip("needs glibc's malloc_usable_size", allow_module_level=True)
_LIBC.malloc_usable_size.restype = ctypes.c_size_t
_LIBC.malloc_usable_size.argtypes = [ctypes.c_void_p]


def held(data: bytes) -> int:
    """The bytes ``data`` takes from the allocator (beyond 512 bytes CPython asks malloc for
    a bytes object directly, so its address is the block's)."""
    assert len(data) > 512, "small bytes come from CPython's own pools"
    size: int = _LIBC.malloc_usable_size(id(data))
    return size


def fits(data: bytes) -> bool:
    return held(data) < len(data) + 256


BIG = {f"field_{n}": "x" * 24 for n in range(100)}  # about 3.5 KB of JSON


def test_trimmed_keeps_the_bytes_in_a_block_of_their_size() -> None:
    raw = orjson.dumps(BIG)
    kept = trimmed(raw)
    assert kept == raw
    assert fits(kept)


async def test_an_event_keeps_its_object_at_its_own_size(billing: InProcess) -> None:
    r = await billing.client.post(
        "/v1/customers", data={"name": "Kept", "description": "d" * 1000}, headers=billing.auth
    )
    assert r.status_code == 200
    [event] = [e for e in billing.sim.store.events if e.type == "customer.created"]
    assert event.data["id"] == r.json()["id"]
    assert fits(event.object_json)


async def test_an_idempotent_reply_is_stored_at_its_own_size(billing: InProcess) -> None:
    r = await billing.client.post(
        "/v1/customers",
        data={"name": "Stored", "description": "d" * 1000},
        headers={**billing.auth, "Idempotency-Key": "kept-1"},
    )
    assert r.status_code == 200
    stored = billing.sim.idempotency._done["kept-1"]
    assert stored.body == r.content
    assert fits(stored.body)


def test_a_pending_delivery_keeps_its_payload_at_its_own_size() -> None:
    world = World(seed=3)
    sim = Crm(world)
    dispatcher = Dispatcher(world)  # not running: the delivery stays pending
    world.dispatcher = dispatcher
    sim.endpoints["we_1"] = Endpoint(
        id="we_1", system="crm", url="http://127.0.0.1:9/hook", secret="whsec_x"
    )
    [delivery] = dispatcher.publish("crm", "evt_1", "account.updated", orjson.dumps(BIG))
    job = dispatcher._jobs[delivery.id]
    assert job.payload == orjson.dumps(BIG)
    assert fits(job.payload)


async def test_two_events_about_one_rendering_share_one_copy(billing: InProcess) -> None:
    """invoice.paid and invoice.payment_succeeded carry the same invoice: kept once."""
    h = billing.auth
    customer = (
        await billing.client.post(
            "/v1/customers",
            data={
                "payment_method": "pm_card_visa",
                "invoice_settings[default_payment_method]": "pm_card_visa",
            },
            headers=h,
        )
    ).json()["id"]
    product = (await billing.client.post("/v1/products", data={"name": "P"}, headers=h)).json()
    price = (
        await billing.client.post(
            "/v1/prices",
            data={
                "product": product["id"],
                "unit_amount": "1500",
                "currency": "usd",
                "recurring[interval]": "month",
            },
            headers=h,
        )
    ).json()["id"]
    r = await billing.client.post(
        "/v1/subscriptions",
        data={"customer": customer, "items[0][price]": price},
        headers=h,
    )
    assert r.status_code == 200, r.text
    by_type = {e.type: e for e in billing.sim.store.events}
    paid, succeeded = by_type["invoice.paid"], by_type["invoice.payment_succeeded"]
    assert paid.data == succeeded.data and paid.data["status"] == "paid"
    assert paid.object_json is succeeded.object_json
    assert by_type["invoice.finalized"].data["status"] == "open"  # not shared: another state

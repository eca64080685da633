"""Billing's limits, in Stripe's terms, through the real ``stripe`` SDK: metadata (50 keys,
keys of 40 characters, values of 500; https://docs.stripe.com/api/metadata), webhook URLs
(loopback receivers and the hosts the user allowed, nothing else), and a deleted endpoint
getting nothing more."""

from __future__ import annotations

import time

import pytest
import stripe

from tests.billing.conftest import Harness


def test_metadata_keys_values_and_count_are_bounded_as_stripe_bounds_them(
    billing: Harness,
) -> None:
    client = billing.client
    fifty = {f"k{n}": "v" for n in range(50)}
    customer = client.v1.customers.create(params={"metadata": fifty})
    assert len(customer.metadata.to_dict()) == 50
    with pytest.raises(stripe.InvalidRequestError) as too_many:
        client.v1.customers.create(params={"metadata": {**fifty, "one_more": "v"}})
    assert too_many.value.param == "metadata"
    assert "up to 50 keys, but you've set 51" in str(too_many.value.user_message)
    with pytest.raises(stripe.InvalidRequestError) as long_key:
        client.v1.products.create(params={"name": "P", "metadata": {"k" * 41: "v"}})
    assert long_key.value.param == "metadata"
    assert "under 40 characters" in str(long_key.value.user_message)
    client.v1.products.create(params={"name": "P", "metadata": {"k" * 40: "v" * 500}})
    with pytest.raises(stripe.InvalidRequestError) as long_value:
        client.v1.products.create(params={"name": "P", "metadata": {"k": "v" * 501}})
    assert long_value.value.param == "metadata[k]"
    # An update that would leave 51 keys changes nothing, not even the fields beside it.
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.update(customer.id, params={"name": "X", "metadata": {"new": "v"}})
    unchanged = client.v1.customers.retrieve(customer.id)
    assert (unchanged.name, len(unchanged.metadata.to_dict())) == (None, 50)
    # Removing keys and adding others in one update is counted after the merge.
    swapped = client.v1.customers.update(
        customer.id, params={"metadata": {"k0": "", "new": "v"}, "name": "Y"}
    )
    kept = swapped.metadata.to_dict()
    assert (swapped.name, len(kept), "new" in kept) == ("Y", 50, True)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",  # a cloud metadata address
        "http://10.0.0.8/hook",
        "https://hooks.example.com/stripe",
        "ftp://127.0.0.1/hook",
        "http://user:secret@127.0.0.1/hook",
    ],
)
def test_webhook_urls_outside_loopback_are_refused(billing: Harness, url: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        billing.client.v1.webhook_endpoints.create(params={"url": url, "enabled_events": ["*"]})
    assert (refused.value.code, refused.value.param) == ("url_invalid", "url")
    assert billing.client.v1.webhook_endpoints.list().data == []


def test_webhook_urls_on_loopback_or_an_allowed_host_are_taken(billing: Harness) -> None:
    client = billing.client
    local = client.v1.webhook_endpoints.create(
        params={"url": "http://127.0.0.1:9/hook", "enabled_events": ["*"]}
    )
    with pytest.raises(stripe.InvalidRequestError) as moved:
        client.v1.webhook_endpoints.update(local.id, params={"url": "http://192.0.2.1/x"})
    assert moved.value.code == "url_invalid"
    # The hosts the user listed when serving (World.webhook_hosts) are allowed too.
    billing.world.webhook_hosts = frozenset({"hooks.example.com"})  # type: ignore[attr-defined]
    listed = client.v1.webhook_endpoints.create(
        params={"url": "https://hooks.example.com/stripe", "enabled_events": ["*"]}
    )
    assert listed.url == "https://hooks.example.com/stripe"


def test_a_deleted_endpoint_gets_nothing_more(billing: Harness) -> None:
    dispatcher = billing.world.dispatcher
    if not hasattr(dispatcher, "cancel_endpoint"):
        pytest.skip("this dispatcher cannot cancel queued deliveries (no cancel_endpoint)")
    client = billing.client
    # Nothing listens on port 9: every attempt fails, so deliveries stay queued for retries.
    dead = client.v1.webhook_endpoints.create(
        params={"url": "http://127.0.0.1:9/hook", "enabled_events": ["customer.created"]}
    )
    client.v1.customers.create(params={"name": "Queued"})
    client.v1.webhook_endpoints.delete(dead.id)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        mine = [d for d in dispatcher.deliveries() if d.endpoint_id == dead.id]
        if mine and all(d.status == "cancelled" for d in mine):
            break
        time.sleep(0.05)
    assert mine and {d.status for d in mine} == {"cancelled"}, mine

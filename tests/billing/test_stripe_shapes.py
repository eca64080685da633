"""Billing objects and events shaped as Stripe's published specification shapes them.

Every SDK test in this folder already validates each response it receives (the ``billing``
fixture, ``tests/billing/shapes.py``); these tests pin what that check cannot see on its own:
the extract is what its script builds, the check itself can fail, and the behaviours Stripe
documents around shapes (absent ``previous_attributes``, whole objects in ``*.deleted``
events, no automatic charge when ``auto_advance`` is off).
"""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import stripe

from tests.billing.conftest import Harness, monthly_price, paying_customer
from tests.billing.shapes import EXTRACT, check

BUILDER = EXTRACT.parent / "build_extract.py"


def _builder() -> Any:
    spec = importlib.util.spec_from_file_location("build_extract", BUILDER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_extract_is_what_the_script_builds() -> None:
    builder = _builder()
    if not Path(builder.SPEC).exists():
        pytest.skip(f"Stripe's published spec is not on this machine ({builder.SPEC})")
    assert json.loads(EXTRACT.read_text(encoding="utf-8")) == builder.build(), (
        "contracts/vendor/stripe/schemas.json is stale: run build_extract.py"
    )


def test_the_extract_records_the_drift_it_reconciled() -> None:
    extract = json.loads(EXTRACT.read_text(encoding="utf-8"))
    invoice = extract["drift"]["invoice"]
    # Removed since 2023-08-16 (the SDK model no longer has them) and added since.
    assert {"paid", "subscription", "total_tax_amounts"} <= set(invoice["removed"])
    assert {"parent", "total_taxes", "issuer"} <= set(invoice["added"])
    assert "paid" not in extract["$defs"]["invoice"]["properties"]
    assert extract["$defs"]["invoice"]["additionalProperties"] is False


def test_the_check_finds_a_missing_property_a_stray_one_and_a_null_where_stripe_omits() -> None:
    counts: Counter[tuple[str, bool]] = Counter()
    clock = {
        "id": "clock_1",
        "object": "test_helpers.test_clock",
        "created": 1,
        "deletes_after": 2,
        "frozen_time": 1,
        "livemode": False,
        "name": None,
        "status": "ready",
        "status_details": {},
    }
    assert check(clock, "ok", counts) == []
    missing = {k: v for k, v in clock.items() if k != "frozen_time"}
    assert any("'frozen_time' is a required property" in p for p in check(missing, "m", counts))
    assert check({**clock, "paid": True}, "stray", counts)
    event = {
        "id": "evt_1",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": 1,
        "data": {"object": clock, "previous_attributes": None},
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None},
        "type": "test_helpers.test_clock.created",
    }
    found = check(event, "evt", counts)
    assert any("previous_attributes" in p for p in found), found
    assert counts[("test_helpers.test_clock", False)] == 2


def _events(client: stripe.StripeClient, kind: str) -> list[Any]:
    return list(client.v1.events.list(params={"type": kind, "limit": 100}).data)


def test_previous_attributes_only_on_update_events(billing: Harness) -> None:
    client = billing.client
    customer = client.v1.customers.create(params={"name": "Before"})
    client.v1.customers.update(customer.id, params={"name": "After"})
    created = billing.raw("GET", "/v1/events", params={"type": "customer.created"}).json()
    updated = billing.raw("GET", "/v1/events", params={"type": "customer.updated"}).json()
    assert "previous_attributes" not in created["data"][0]["data"]
    assert updated["data"][0]["data"]["previous_attributes"] == {"name": "Before"}


def test_deleted_events_carry_the_whole_object(billing: Harness) -> None:
    client = billing.client
    clock = client.v1.test_helpers.test_clocks.create(params={"frozen_time": 1_770_000_000})
    customer = client.v1.customers.create(params={"name": "Gone", "test_clock": clock.id})
    item = client.v1.invoice_items.create(
        params={"customer": customer.id, "amount": 700, "currency": "usd"}
    )
    client.v1.invoice_items.delete(item.id)
    client.v1.test_helpers.test_clocks.delete(clock.id)
    for kind, object_id, field in (
        ("invoiceitem.deleted", item.id, "amount"),
        ("customer.deleted", customer.id, "name"),
        ("test_helpers.test_clock.deleted", clock.id, "frozen_time"),
    ):
        (event,) = _events(client, kind)
        data = event.data.object
        assert data.id == object_id and field in data, (kind, data)


def test_finalising_with_auto_advance_off_does_not_charge(billing: Harness) -> None:
    client = billing.client
    customer = paying_customer(client)
    client.v1.invoice_items.create(
        params={"customer": customer.id, "amount": 4200, "currency": "usd"}
    )
    draft = client.v1.invoices.create(
        params={"customer": customer.id, "pending_invoice_items_behavior": "include"}
    )
    opened = client.v1.invoices.finalize_invoice(draft.id, params={"auto_advance": False})
    assert (opened.status, opened.amount_remaining, opened.attempted) == ("open", 4200, False)
    paid = client.v1.invoices.pay(opened.id)
    assert (paid.status, paid.amount_paid) == ("paid", 4200)
    # With auto_advance on, finalising collects at once (the default of subscription invoices).
    price = monthly_price(client, "Auto", 1500)
    sub = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    assert client.v1.invoices.retrieve(sub.latest_invoice).status == "paid"

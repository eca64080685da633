"""Seed data: the default multi-entity world, and a replacement given as configuration."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
import pytest

from simulators.common.app import build_app
from simulators.common.world import World
from simulators.erp.seed import SeedData, default_seed
from simulators.erp.simulator import ErpSimulator
from tests.erp.conftest import RECORD, Erp

ROLES = {"ar", "unbilled_ar", "cash", "deferred_revenue", "tax", "fx", "rounding"}


def test_default_world_has_three_entities_in_three_base_currencies(erp: Erp) -> None:
    rows = erp.suiteql(
        "SELECT s.externalid, c.symbol FROM subsidiary s "
        "JOIN currency c ON c.id = s.currency ORDER BY s.id"
    )
    assert [(r["externalid"], r["symbol"]) for r in rows] == [
        ("US", "USD"),
        ("UK", "GBP"),
        ("DE", "EUR"),
    ]
    types = {
        r["acctnumber"]: r["accttype"]
        for r in erp.suiteql("SELECT acctnumber, accttype FROM account")
    }
    assert types["1100"] == "AcctRec" and types["1150"] == "UnbilledRec" and types["1000"] == "Bank"
    assert types["2400"] == "DeferRevenue" and types["2200"] == "OthCurrLiab"
    assert {types[n] for n in ("4000", "4100", "4200")} == {"Income"}
    assert {"7100", "7900"} <= set(types)
    roles = erp.snapshot()["store"]["roles"]
    assert set(roles) == ROLES
    items = erp.suiteql("SELECT itemid, deferredrevenueaccount FROM item ORDER BY id")
    assert [i["itemid"] for i in items] == ["SUBSCRIPTION", "USAGE", "SERVICES"]
    assert "deferredrevenueaccount" in items[0] and "deferredrevenueaccount" not in items[1]
    usd = erp.get("currency", "eid:USD")
    assert (usd["isBaseCurrency"], usd["currencyPrecision"]) == (True, 2)
    assert erp.get("currency", "eid:JPY")["currencyPrecision"] == 0


def test_a_configured_seed_replaces_the_default() -> None:
    data: dict[str, Any] = {
        "currencies": [
            {"symbol": "CHF", "name": "Swiss Franc"},
            {"symbol": "USD", "name": "US Dollar"},
        ],
        "subsidiaries": [
            {"external_id": "CH", "name": "Alpen AG", "currency": "CHF", "country": "CH"}
        ],
        "accounts": [
            {"number": "100", "name": "Bank", "type": "Bank"},
            {"number": "110", "name": "Debtors", "type": "AcctRec"},
            {"number": "120", "name": "Accrued", "type": "UnbilledRec"},
            {"number": "200", "name": "VAT", "type": "OthCurrLiab"},
            {"number": "210", "name": "Deferred", "type": "DeferRevenue"},
            {"number": "300", "name": "Sales", "type": "Income"},
            {"number": "900", "name": "FX", "type": "OthIncome"},
        ],
        "items": [{"external_id": "LICENCE", "name": "Licence", "income_account": "300"}],
        "rates": [{"base": "CHF", "currency": "USD", "rate": "0.9", "effective_on": "2025-01-01"}],
        "roles": {
            "ar": "110",
            "unbilled_ar": "120",
            "cash": "100",
            "deferred_revenue": "210",
            "tax": "200",
            "fx": "900",
            "rounding": "900",
        },
        "first_period": "2025-07",
        "periods_ahead": 2,
    }
    world = World(seed=1, start_at="2025-09-10T00:00:00Z")
    sim = ErpSimulator(world, seed_data=data, concurrency_cap=4)
    store = sim.store
    assert [s.name for s in store.subsidiaries.values()] == ["Alpen AG"]
    assert sorted(p.name for p in store.periods.values()) == sorted(
        ["Jul 2025", "Aug 2025", "Sep 2025", "Oct 2025", "Nov 2025"]
    )
    assert sim.concurrency_cap == 4
    world.reset()
    assert [s.name for s in store.subsidiaries.values()] == ["Alpen AG"]  # a reset reseeds the same

    async def post_invoice() -> httpx.Response:
        transport = httpx.ASGITransport(app=build_app(sim))
        async with httpx.AsyncClient(transport=transport, base_url="http://erp.test") as client:
            auth = {"Authorization": f"Bearer {sim.token}"}
            customer = {
                "companyName": "Acme",
                "subsidiary": {"externalId": "CH"},
                "currency": {"externalId": "USD"},
            }
            created = await client.post(f"{RECORD}/customer", json=customer, headers=auth)
            assert created.status_code == 204
            invoice = {
                "entity": {"id": "1"},
                "tranDate": "2025-08-01",
                "item": {"items": [{"item": {"id": "1"}, "amount": 10}]},
            }
            return await client.post(f"{RECORD}/invoice", json=invoice, headers=auth)

    assert asyncio.run(post_invoice()).status_code == 204
    ar = [line for line in store.gl_lines() if line.role == "ar"]
    assert (ar[0].debit_minor, ar[0].debit_base_minor, ar[0].base_currency) == (
        1000,
        int(Decimal(10) * Decimal("0.9") * 100),
        "CHF",
    )


def test_an_inconsistent_seed_is_refused() -> None:
    seed = default_seed()
    with pytest.raises(ValueError, match="role rounding"):
        SeedData(
            seed.currencies,
            seed.subsidiaries,
            seed.accounts,
            seed.items,
            seed.rates,
            {**seed.roles, "rounding": "9999"},
        )
    with pytest.raises(ValueError, match="concurrency_cap"):
        ErpSimulator(World(), concurrency_cap=0)

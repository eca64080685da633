"""Fill a world's stores with many objects fast: copies of records its own backends created.

Going through HTTP would take an hour for a million objects; copying a real record (deeply,
through its constructors) and giving it a fresh id takes microseconds, and the stores then hold
what they would hold after real traffic of the same mix.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

from bench.ops import RECORD, SOBJECTS, World4, _contract, auth_headers

# The mix, as shares of the objects asked for; each share is one kind of stored row.
MIX = {
    "billing.customer": 0.30,
    "billing.invoice": 0.15,
    "crm.Account": 0.15,
    "erp.customer": 0.10,
    "erp.journalEntry (transaction + 2 ledger lines)": 0.20,
    "revrec.contract (contract + 1 line)": 0.10,
}


async def _templates(w: World4) -> dict[str, Any]:
    """One real record of each kind, made through the apps (validation, backends, events)."""
    h = auth_headers(w.credentials)
    clients = w.clients()
    b, crm, erp, rr = clients["billing"], clients["crm"], clients["erp"], clients["revrec"]
    bh = {"Authorization": h["billing"]["Authorization"]}
    cus = (
        await b.post(
            "/v1/customers",
            headers=bh,
            data={"name": "Template", "email": "t@x.io", "metadata[crm_id]": "001x"},
        )
    ).json()["id"]
    prod = (await b.post("/v1/products", headers=bh, data={"name": "P"})).json()["id"]
    price = (
        await b.post(
            "/v1/prices",
            headers=bh,
            data={"product": prod, "currency": "usd", "unit_amount": "1000"},
        )
    ).json()["id"]
    await b.post("/v1/invoiceitems", headers=bh, data={"customer": cus, "price": price})
    inv = (await b.post("/v1/invoices", headers=bh, data={"customer": cus})).json()["id"]
    acct = await crm.post(f"{SOBJECTS}/Account/", json={"Name": "Template"}, headers=h["crm"])
    acct.raise_for_status()
    r = await erp.post(
        f"{RECORD}/customer",
        json={"companyName": "Template", "subsidiary": {"externalId": "US"}},
        headers=h["erp"],
    )
    r.raise_for_status()
    erp_customer = r.headers["location"].rsplit("/", 1)[-1]
    r = await erp.post(
        f"{RECORD}/journalEntry",
        json={
            "subsidiary": {"externalId": "US"},
            "line": {
                "items": [
                    {"account": {"externalId": "1000"}, "debit": 10.01},
                    {"account": {"externalId": "4000"}, "credit": 10.01},
                ]
            },
        },
        headers=h["erp"],
    )
    r.raise_for_status()
    journal = r.headers["location"].rsplit("/", 1)[-1]
    await rr.put("/v1/entities/pre", json={"functional_currency": "usd"}, headers=h["revrec"])
    r = await rr.post(
        "/v1/contracts",
        headers=h["revrec"],
        content=_contract("template").replace('"entity": "us"', '"entity": "pre"').encode(),
    )
    r.raise_for_status()
    contract = r.json()["id"]
    for client in clients.values():
        await client.aclose()
    return {
        "customer": cus,
        "invoice": inv,
        "account": acct.json()["id"],
        "erp_customer": erp_customer,
        "journal": journal,
        "contract": contract,
    }


_FIELDS: dict[type[Any], tuple[list[str], list[str]]] = {}


def _clone(value: Any) -> Any:
    """A deep copy built through the constructors, as the backends build rows: instance dicts
    share their keys as real rows do, and dict keys stay the same string objects. Immutable
    leaves (str, int) are shared; a fresh id is given by the caller."""
    kind = type(value)
    if kind is list or kind is tuple:
        return kind(_clone(v) for v in value)
    if kind is dict:
        return {k: _clone(v) for k, v in value.items()}
    names = _FIELDS.get(kind)
    if names is None:
        if not dataclasses.is_dataclass(value):
            return value
        fields = dataclasses.fields(value)
        names = _FIELDS[kind] = (
            [f.name for f in fields if f.init],
            [f.name for f in fields if not f.init],
        )
    row = kind(**{name: _clone(getattr(value, name)) for name in names[0]})
    for name in names[1]:
        object.__setattr__(row, name, _clone(getattr(value, name)))
    return row


def preload(w: World4, total: int) -> dict[str, int]:
    """Add about ``total`` stored objects in the MIX; returns how many of each kind."""
    ids = asyncio.run(_templates(w))
    sims: dict[str, Any] = w.sims
    billing, crm, erp, rr = sims["billing"], sims["crm"], sims["erp"], sims["revrec"]
    counts = {kind: int(total * share) for kind, share in MIX.items()}

    def clones(template: Any, n: int, fix: Callable[[Any, int], None]) -> None:
        for i in range(n):
            fix(_clone(template), i)

    bs = billing.store

    def billing_customer(row: Any, i: int) -> None:
        row.id = f"cus_pre{i:09d}"
        bs.customers[row.id] = row

    clones(bs.customers[ids["customer"]], counts["billing.customer"], billing_customer)

    def billing_invoice(row: Any, i: int) -> None:
        row.id = f"in_pre{i:09d}"
        row.number = f"PRE-{i:09d}"
        bs.invoices[row.id] = row

    clones(bs.invoices[ids["invoice"]], counts["billing.invoice"], billing_invoice)

    cs = crm.store
    account = cs.get(ids["account"])
    prefix = account.id[:3]

    def crm_account(row: Any, i: int) -> None:
        row.id = f"{prefix}{i:015d}"
        cs.put(row)

    clones(account, counts["crm.Account"], crm_account)

    es, eb = erp.store, erp.backend

    def erp_customer(row: Any, i: int) -> None:
        row.id = eb._next_id("customer")
        row.entity_id = f"PRE{i:09d}"
        row.external_id = None
        es.add("customer", row)

    clones(es.customers[ids["erp_customer"]], counts["erp.customer"], erp_customer)
    journal = es.transactions[ids["journal"]]
    lines = es.gl[journal.id]

    def erp_journal(pair: Any, i: int) -> None:
        txn, gl = pair
        txn.id = eb._next_id("transaction")
        txn.tran_id = f"JEPRE{i:09d}"
        txn.external_id = None
        for line in gl:
            line.transaction = txn.id
        es.add("journalEntry", txn)
        es.gl[txn.id] = gl

    journals = counts["erp.journalEntry (transaction + 2 ledger lines)"] // (1 + len(lines))
    clones((journal, lines), journals, erp_journal)

    rs = rr.store
    contract = rs.contracts[ids["contract"]]
    line = rs.lines[contract.lines[0]]

    def revrec_contract(pair: Any, i: int) -> None:
        c, ln = pair
        c.id = f"rc_pre{i:09d}"
        c.external_id = f"pre{i}"
        ln.id = f"rcl_pre{i:09d}"
        ln.contract = c.id
        c.lines = [ln.id]
        rs.contracts[c.id] = c
        rs.lines[ln.id] = ln
        rs.contract_by_external_id[c.external_id] = c.id

    contracts = counts["revrec.contract (contract + 1 line)"] // 2
    clones((contract, line), contracts, revrec_contract)
    counts["erp.journalEntry (transaction + 2 ledger lines)"] = journals * (1 + len(lines))
    counts["revrec.contract (contract + 1 line)"] = contracts * 2
    return counts

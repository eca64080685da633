"""The hot operations `make bench` drives, the world they run in, and the data they need."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import httpx
from starlette.types import ASGIApp

from simulators.billing.simulator import BillingSimulator
from simulators.common.app import build_app
from simulators.common.simulator import Simulator
from simulators.common.world import World
from simulators.crm.simulator import CrmSimulator
from simulators.erp.simulator import ErpSimulator
from simulators.revrec.simulator import RevrecSimulator

SYSTEMS: dict[str, type[Simulator]] = {
    "billing": BillingSimulator,
    "crm": CrmSimulator,
    "erp": ErpSimulator,
    "revrec": RevrecSimulator,
}
SOBJECTS = "/services/data/v60.0/sobjects"
RECORD = "/services/rest/record/v1"
# A fault rule that matches no bench operation: the fault layer's matching cost is measured.
IDLE_FAULT = {"system": "billing", "operation": "deleteTestClock", "kind": "outage"}


@dataclass
class Operation:
    """One hot operation: a request template; ``{n}`` in the body becomes a per-request counter."""

    name: str
    system: str
    method: str
    path: str
    body: str
    headers: dict[str, str]
    bare: str | None = None  # the bare Starlette app's route for the same operation

    @property
    def target(self) -> int:
        return 2000 if self.method == "POST" else 2500

    def payload(self, n: int) -> bytes:
        return self.body.replace("{n}", str(n)).encode()


@dataclass
class World4:
    """A world with all four simulators and their apps, for in-process runs."""

    world: World
    sims: dict[str, Simulator]
    apps: dict[str, ASGIApp] = field(default_factory=dict)

    @property
    def credentials(self) -> dict[str, dict[str, str]]:
        return {name: sim.credentials() for name, sim in self.sims.items()}

    def clients(self) -> dict[str, httpx.AsyncClient]:
        return {
            name: httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=f"http://{name}.bench"
            )
            for name, app in self.apps.items()
        }


def build_world(*, validate_responses: bool = False, seed: int = 1) -> World4:
    world = World(seed=seed)
    sims = {name: cls(world) for name, cls in SYSTEMS.items()}
    apps = {
        name: build_app(sim, validate_responses=validate_responses) for name, sim in sims.items()
    }
    return World4(world, sims, apps)


def auth_headers(credentials: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Each system's credentials as request headers, with its body's content type."""
    return {
        "billing": {
            "Authorization": f"Bearer {credentials['billing']['api_key']}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        "crm": {
            "Authorization": f"Bearer {credentials['crm']['session_id']}",
            "Content-Type": "application/json",
        },
        "erp": {
            "Authorization": f"Bearer {credentials['erp']['token']}",
            "Content-Type": "application/json",
        },
        "revrec": {
            "Authorization": f"Bearer {credentials['revrec']['token']}",
            "Content-Type": "application/json",
        },
    }


async def seed_world(
    clients: dict[str, httpx.AsyncClient],
    credentials: dict[str, dict[str, str]],
    control_token: str | None,
    *,
    fillers: int = 30,
) -> dict[str, str]:
    """The records the operations refer to; ``fillers`` customers so pages have a page 2."""
    h = auth_headers(credentials)
    b, crm, erp, rr = clients["billing"], clients["crm"], clients["erp"], clients["revrec"]
    if control_token is not None:  # None: the bare app, which has no control plane
        # The fault layer on, with a rule that never fires for the measured operations.
        control = {"X-Sim-Control-Token": control_token}
        r = await b.post("/_sim/faults", json=IDLE_FAULT, headers=control)
        r.raise_for_status()
    bh = {"Authorization": h["billing"]["Authorization"]}
    cus = await b.post(
        "/v1/customers",
        headers=bh,
        data={
            "name": "Bench",
            "payment_method": "pm_card_visa",
            "invoice_settings[default_payment_method]": "pm_card_visa",
        },
    )
    cus.raise_for_status()
    customer = cus.json()["id"]
    prod = (await b.post("/v1/products", headers=bh, data={"name": "Seats"})).json()["id"]
    price = (
        await b.post(
            "/v1/prices",
            headers=bh,
            data={
                "product": prod,
                "currency": "usd",
                "unit_amount": "1000",
                "recurring[interval]": "month",
            },
        )
    ).json()["id"]
    await b.post(
        "/v1/billing/meters",
        headers=bh,
        data={
            "display_name": "API calls",
            "event_name": "api_call",
            "default_aggregation[formula]": "sum",
        },
    )
    sub = (
        await b.post(
            "/v1/subscriptions",
            headers=bh,
            data={"customer": customer, "items[0][price]": price, "items[0][quantity]": "2"},
        )
    ).json()
    for n in range(fillers):
        await b.post("/v1/customers", headers=bh, data={"name": f"Filler {n}"})

    r = await crm.post(f"{SOBJECTS}/Account/", json={"Name": "Seed"}, headers=h["crm"])
    r.raise_for_status()

    r = await erp.post(
        f"{RECORD}/customer",
        json={"companyName": "Bench", "subsidiary": {"externalId": "US"}},
        headers=h["erp"],
    )
    r.raise_for_status()
    erp_customer = r.headers["location"].rsplit("/", 1)[-1]

    r = await rr.put("/v1/entities/us", json={"functional_currency": "usd"}, headers=h["revrec"])
    r.raise_for_status()
    r = await rr.post(
        "/v1/contracts",
        headers=h["revrec"],
        content=_contract("seed").encode(),
    )
    r.raise_for_status()
    for client in clients.values():
        await client.aclose()
    return {
        "customer": customer,
        "price": price,
        "invoice": sub["latest_invoice"],
        "erp_customer": erp_customer,
        "contract": r.json()["id"],
    }


def _contract(external_id: str) -> str:
    line = {
        "external_id": "l1",
        "product": "pro",
        "pattern": "ratable",
        "unit_price_minor": 120000,
        "service_start_at": 1767225600,
        "service_end_at": 1798761600,
    }
    return json.dumps(
        {
            "external_id": external_id,
            "customer": "cus_1",
            "entity": "us",
            "currency": "usd",
            "lines": [line],
        }
    )


def operations(credentials: dict[str, dict[str, str]], ids: dict[str, str]) -> list[Operation]:
    """The issue's hot operations, in the order they run (each store grows by the ones before)."""
    h = auth_headers(credentials)
    bill, crm, erp, rr = h["billing"], h["crm"], h["erp"], h["revrec"]
    get_bill = {"Authorization": bill["Authorization"]}
    journal = json.dumps(
        {
            "subsidiary": {"externalId": "US"},
            "line": {
                "items": [
                    {"account": {"externalId": "1000"}, "debit": 10.01},
                    {"account": {"externalId": "4000"}, "credit": 10.01},
                ]
            },
        }
    )
    invoice = json.dumps(
        {
            "entity": {"id": ids["erp_customer"]},
            "item": {"items": [{"item": {"externalId": "SERVICES"}, "amount": 10}]},
        }
    )
    return [
        Operation(
            "billing: create customer",
            "billing",
            "POST",
            "/v1/customers",
            "name=Load&email=l%40x.io",
            bill,
            bare="/v1/customers",
        ),
        Operation(
            "billing: retrieve customer",
            "billing",
            "GET",
            f"/v1/customers/{ids['customer']}",
            "",
            get_bill,
            bare="/v1/customers/{customer}",
        ),
        Operation(
            "billing: retrieve invoice",
            "billing",
            "GET",
            f"/v1/invoices/{ids['invoice']}",
            "",
            get_bill,
            bare="/v1/invoices/{invoice}",
        ),
        Operation(
            "billing: list customers, page 2",
            "billing",
            "GET",
            f"/v1/customers?limit=10&starting_after={ids['customer']}",
            "",
            get_bill,
            bare="/v1/customers?limit=10&starting_after={customer}",
        ),
        Operation(
            "billing: meter event",
            "billing",
            "POST",
            "/v1/billing/meter_events",
            f"event_name=api_call&payload[stripe_customer_id]={ids['customer']}&payload[value]=1",
            bill,
            bare="/v1/billing/meter_events",
        ),
        Operation(
            "billing: create subscription",
            "billing",
            "POST",
            "/v1/subscriptions",
            f"customer={ids['customer']}&items[0][price]={ids['price']}",
            bill,
            bare="/v1/subscriptions",
        ),
        Operation(
            "crm: create Account",
            "crm",
            "POST",
            f"{SOBJECTS}/Account/",
            '{"Name": "Load {n}"}',
            crm,
        ),
        Operation(
            "crm: SOQL query",
            "crm",
            "GET",
            "/services/data/v60.0/query/?q=SELECT+Id,Name+FROM+Account+LIMIT+10",
            "",
            {"Authorization": crm["Authorization"]},
        ),
        Operation(
            "erp: create customer",
            "erp",
            "POST",
            f"{RECORD}/customer",
            '{"companyName": "Load {n}", "subsidiary": {"externalId": "US"}}',
            erp,
        ),
        Operation("erp: create invoice", "erp", "POST", f"{RECORD}/invoice", invoice, erp),
        Operation("erp: journal entry", "erp", "POST", f"{RECORD}/journalEntry", journal, erp),
        Operation(
            "erp: SuiteQL",
            "erp",
            "POST",
            "/services/rest/query/v1/suiteql",
            '{"q": "SELECT id, companyname FROM customer WHERE id < 11"}',
            {**erp, "Prefer": "transient"},
        ),
        Operation(
            "revrec: create contract",
            "revrec",
            "POST",
            "/v1/contracts",
            _contract("c{n}"),
            rr,
        ),
        Operation(
            "revrec: schedule",
            "revrec",
            "GET",
            f"/v1/contracts/{ids['contract']}/schedule",
            "",
            {"Authorization": rr["Authorization"]},
        ),
    ]

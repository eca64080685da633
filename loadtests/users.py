"""Locust users: the vendors' own people (sales ops, customers, finance) and the calendar."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import time
from typing import Any

from locust import HttpUser, between, constant, task

from loadtests import builders as b
from loadtests.target import from_environment
from simulators.common.formcodec import encode_form

TARGET = from_environment()
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
TIMEOUT_S = 60.0  # a clock advance renews every subscription in one request
# Keys unique across users, Locust worker processes and runs of one seed.
_serial = itertools.count(1)


def new_key(kind: str) -> str:
    return f"{kind}-s{TARGET.seed}-p{os.getpid()}-{next(_serial)}"


class _SystemUser(HttpUser):
    """One vendor system; every request names its operation so Locust reports per operation."""

    abstract = True
    system = ""

    def on_start(self) -> None:
        self.client.trust_env = False  # load runs target loopback only, never a proxy
        self.client.verify = TARGET.verify()
        self.client.headers.update(TARGET.headers(self.system))

    def call(self, method: str, path: str, operation: str, **kwargs: Any) -> Any:
        """The decoded JSON body, or None when the request failed (Locust counts the failure)."""
        with self.client.request(
            method,
            path,
            name=f"{self.system} {operation}",
            timeout=TIMEOUT_S,
            catch_response=True,
            **kwargs,
        ) as response:
            if not response.ok:
                response.failure(f"{response.status_code} {response.text[:200]}")
                return None
            return response.json() if response.content else {}


class _BillingUser(_SystemUser):
    abstract = True
    system = "billing"
    host = TARGET.urls.get("billing", "")

    def stripe(self, path: str, operation: str, body: dict[str, Any]) -> Any:
        return self.call("POST", path, operation, data=encode_form(body), headers=FORM)

    def subscribe(self, price_id: str, *, quantity: int | None, send_invoice: bool) -> str | None:
        """A new customer on a monthly subscription; returns the customer id."""
        key = new_key("cus")
        customer = self.stripe(
            "/v1/customers", "createCustomer", b.customer(key, TARGET.entity, pays_by_card=True)
        )
        if customer is None:
            return None
        self.stripe(
            "/v1/subscriptions",
            "createSubscription",
            b.subscription(customer["id"], price_id, quantity=quantity, send_invoice=send_invoice),
        )
        return str(customer["id"])


class BillingSubscriberUser(_BillingUser):
    """New customers subscribing and paying by card: the book the renewal storm renews."""

    wait_time = between(0.05, 0.2)

    @task
    def subscribe_by_card(self) -> None:
        self.subscribe(TARGET.catalog.price_id, quantity=2, send_invoice=False)


class BillingUsageUser(_BillingUser):
    """A metered customer's application reporting usage as fast as it can."""

    wait_time = constant(0)

    def on_start(self) -> None:
        super().on_start()
        self.customer_id = self.subscribe(
            TARGET.catalog.usage_price_id, quantity=None, send_invoice=False
        )

    @task
    def report_usage(self) -> None:
        if self.customer_id is None:
            return
        body = b.meter_event(TARGET.catalog.meter_event_name, self.customer_id, 3, new_key("mev"))
        self.stripe("/v1/billing/meter_events", "createBillingMeterEvent", body)


class BillingPayerUser(_BillingUser):
    """Customers on invoiced terms paying whatever is open, in bulk, each only their own."""

    wait_time = between(0.2, 0.5)
    accounts = 3

    def on_start(self) -> None:
        super().on_start()
        self.customers = [
            c
            for c in (
                self.subscribe(TARGET.catalog.price_id, quantity=1, send_invoice=True)
                for _ in range(self.accounts)
            )
            if c is not None
        ]

    @task
    def pay_open_invoices(self) -> None:
        for customer_id in self.customers:
            listed = self.call(
                "GET",
                "/v1/invoices",
                "listInvoices",
                params={"customer": customer_id, "status": "open", "limit": 10},
            )
            for invoice in (listed or {}).get("data", []):
                self.stripe(f"/v1/invoices/{invoice['id']}/pay", "payInvoice", b.payment())


class CrmSalesOpsUser(_SystemUser):
    """Sales ops closing new business: account, opportunity, a line, then Closed Won."""

    system = "crm"
    host = TARGET.urls.get("crm", "")
    wait_time = between(0.1, 0.3)

    def sobject(self, kind: str, body: dict[str, Any]) -> str | None:
        created = self.call("POST", f"{b.API}/sobjects/{kind}/", f"create{kind}", json=body)
        return None if created is None else str(created["id"])

    @task
    def close_new_business(self) -> None:
        key = new_key("acct")
        account_id = self.sobject("Account", b.account(key, TARGET.entity))
        if account_id is None:
            return
        close_on = sim_date(self)
        opportunity = b.opportunity(key, account_id, close_on, TARGET.entity, TARGET.catalog)
        opportunity_id = self.sobject("Opportunity", opportunity)
        if opportunity_id is None:
            return
        line = b.opportunity_line(opportunity_id, TARGET.catalog, 5)
        if self.sobject("OpportunityLineItem", line) is None:
            return
        self.call(
            "PATCH",
            f"{b.API}/sobjects/Opportunity/{opportunity_id}",
            "closeWonOpportunity",
            json=b.close_won(),
        )


class CalendarUser(_SystemUser):
    """The one clock of the world: moves sim time on (renewals, finalisation, usage invoices)
    and, when the profile says so, closes each ended month in the subledger as finance does."""

    system = "revrec" if "revrec" in TARGET.urls else "billing"
    host = TARGET.urls.get(system, "")
    fixed_count = 1
    wait_time = constant(TARGET.calendar.every_s)

    def on_start(self) -> None:
        super().on_start()
        self.to_close = {entity: b.month_of(TARGET.start_at) for entity in TARGET.entities}
        # Give the other users a first beat of business before time moves (Locust has
        # patched time.sleep to yield to the other users).
        time.sleep(TARGET.calendar.every_s)

    @task
    def turn_the_page(self) -> None:
        moved = self.call(
            "POST",
            "/_sim/clock/advance",
            "simAdvanceClock",
            json={"duration": TARGET.calendar.step},
            headers=TARGET.control_headers(),
        )
        if moved is None or not TARGET.calendar.close_periods or "revrec" not in TARGET.urls:
            return
        now = dt.datetime.fromtimestamp(int(moved["now"]), dt.UTC)
        for entity, period in self.to_close.items():
            while b.next_month(period) <= now.strftime("%Y-%m"):
                closed = self.call("POST", f"/v1/periods/{entity}/{period}/close", "closePeriod")
                if closed is None:
                    break
                period = b.next_month(period)
            self.to_close[entity] = period


def sim_date(user: _SystemUser) -> dt.date:
    """Today on the sim clock (a CRM CloseDate is a business date, never the wall date)."""
    clock = user.call(
        "GET",
        f"{TARGET.urls[user.system]}/_sim/clock",
        "simGetClock",
        headers=TARGET.control_headers(),
    )
    at = int(clock["now"]) if clock else TARGET.start_at
    return dt.datetime.fromtimestamp(at, dt.UTC).date()

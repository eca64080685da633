"""What each scenario step does to the world: fixtures and one executor per registered step."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from harness import scenario as sc
from harness.actors import StepFailed
from simulators.common.money import to_decimal

if TYPE_CHECKING:
    from harness.books import Books
    from harness.play import Run

Executor = Callable[["Run", Any], str]
EXECUTORS: dict[str, Executor] = {}


def executor(kind: str) -> Callable[[Executor], Executor]:
    def register(fn: Executor) -> Executor:
        EXECUTORS[kind] = fn
        return fn

    return register


def entity_id(key: str) -> str:
    """Scenario entity keys are lower case; the ERP subsidiary and revrec entity are upper."""
    return key.upper()


def major(minor: int, currency: str) -> float:
    """Minor units as the decimal amount Salesforce stores (a JSON number)."""
    return float(to_decimal(minor, currency))


# --- fixtures --------------------------------------------------------------------------------
def apply_fixtures(run: Run) -> None:
    """The world the scenario starts from, created as each vendor's admin would."""
    f = run.scenario.fixtures
    a = run.actors
    books = run.snapshot()
    for entity in f.entities:
        eid = entity_id(entity.key)
        run.names[f"entity:{entity.key}"] = eid
        if run.has("erp") and eid not in books.subsidiary_by_external_id:
            raise StepFailed(
                f"entity {entity.key}: the ERP has no subsidiary with external id {eid} "
                "(the seeded ones are US, UK and DE)"
            )
        if run.has("revrec"):
            a.call(
                "revrec",
                "PUT",
                f"/v1/entities/{eid}",
                json={"functional_currency": entity.currency, "name": entity.name},
            )
    for rate in f.rates:
        if run.has("erp"):
            on = rate.effective_on or run.scenario.start_at[:10]
            rate_body = {
                "baseCurrency": {"externalId": rate.quote.upper()},
                "transactionCurrency": {"externalId": rate.base.upper()},
                "exchangeRate": float(rate.rate),
                "effectiveDate": on,
            }
            existing = _rate_on(books, rate.quote.upper(), rate.base.upper(), on)
            if existing is None:
                a.netsuite("POST", "/currencyRate", rate_body)
            else:  # the ERP holds one rate per pair and day: the fixture's replaces the seed's
                a.netsuite(
                    "PATCH",
                    f"/currencyRate/{existing}",
                    {"exchangeRate": rate_body["exchangeRate"]},
                )
    for product in f.products:
        metadata = {"key": product.key, "recognition": product.recognition}
        if product.ssp_minor is not None:
            metadata["ssp_minor"] = str(product.ssp_minor)
        created = a.stripe("POST", "/v1/products", {"name": product.name, "metadata": metadata})
        run.names[f"product:{product.key}"] = created["id"]
        if run.has("crm"):
            row = a.salesforce(
                "POST",
                "/sobjects/Product2/",
                {
                    "Name": product.name,
                    "ProductCode": product.key,
                    "Billing_Product_Id__c": created["id"],
                },
            )
            run.names[f"product2:{product.key}"] = row["id"]
    for price in f.prices:
        body: dict[str, Any] = {
            "product": run.names[f"product:{price.product}"],
            "currency": price.currency,
            "unit_amount": price.unit_amount,
            "lookup_key": price.key,
            "metadata": {"key": price.key},
        }
        if price.interval is not None:
            body["recurring"] = {"interval": price.interval}
        if price.usage:
            meter = a.stripe(
                "POST",
                "/v1/billing/meters",
                {
                    "display_name": price.key,
                    "event_name": price.key,
                    "default_aggregation": {"formula": "sum"},
                },
            )
            run.names[f"meter:{price.key}"] = meter["id"]
            body["recurring"] = {
                "interval": price.interval or "month",
                "usage_type": "metered",
                "meter": meter["id"],
            }
        created = a.stripe("POST", "/v1/prices", body)
        run.names[f"price:{price.key}"] = created["id"]
        if run.has("crm"):
            entry = a.salesforce(
                "POST",
                "/sobjects/PricebookEntry/",
                {
                    "Pricebook2Id": standard_pricebook(run),
                    "Product2Id": run.names[f"product2:{price.product}"],
                    "UnitPrice": major(price.unit_amount, price.currency),
                    "CurrencyIsoCode": price.currency.upper(),
                    "IsActive": True,
                },
            )
            run.names[f"pricebook_entry:{price.key}"] = entry["id"]


def _rate_on(books: Books, base: str, currency: str, on: str) -> str | None:
    codes = {c.id: c.symbol for c in books.erp_currencies.values()}
    for row in books.erp_rates.values():
        if (codes.get(row.base), codes.get(row.currency), row.effective_on) == (base, currency, on):
            return str(row.id)
    return None


def standard_pricebook(run: Run) -> str:
    name = "pricebook:standard"
    if name not in run.names:
        found = run.actors.salesforce(
            "GET", "/query/", params={"q": "SELECT Id FROM Pricebook2 WHERE IsStandard = true"}
        )
        run.names[name] = found["records"][0]["Id"]
    return run.names[name]


# --- CRM -------------------------------------------------------------------------------------
@executor("crm.create_account")
def create_account(run: Run, p: sc.CreateAccount) -> str:
    customer = run.customer(p.customer)
    row = run.actors.salesforce(
        "POST",
        "/sobjects/Account/",
        {
            "Name": customer.name,
            "External_Id__c": customer.key,
            "Contracting_Entity__c": entity_id(customer.entity),
            **p.fields,
        },
    )
    run.names[f"account:{customer.key}"] = row["id"]
    return f"Account {row['id']}"


@executor("crm.create_opportunity")
def create_opportunity(run: Run, p: sc.CreateOpportunity) -> str:
    customer = run.customer(p.customer)
    account = run.names.get(f"account:{customer.key}")
    if account is None:
        account = create_account_for(run, customer.key)
    kinds = {"new": "New Business", "amendment": "Amendment", "renewal": "Renewal"}
    body: dict[str, Any] = {
        "Name": f"{customer.name} — {p.key}",
        "AccountId": account,
        "StageName": "Prospecting",
        "CloseDate": run.today(),
        "Type": kinds[p.kind],
        "Contracting_Entity__c": entity_id(customer.entity),
        "Term_Months__c": p.term_months,
        "CurrencyIsoCode": customer.currency.upper(),
        "External_Id__c": p.key,
        **p.fields,
    }
    if p.amends is not None:
        subscription = run.subscription_of(p.amends)
        if subscription is None:
            raise StepFailed(f"{p.key} amends {p.amends}, which has no subscription yet")
        body["Billing_Subscription_Id__c"] = subscription
    row = run.actors.salesforce("POST", "/sobjects/Opportunity/", body)
    opportunity = row["id"]
    run.names[f"opportunity:{p.key}"] = opportunity
    total = Decimal(0)
    for line in p.lines:
        price = run.price(line.price)
        unit = to_decimal(price.unit_amount, price.currency)
        run.actors.salesforce(
            "POST",
            "/sobjects/OpportunityLineItem/",
            {
                "OpportunityId": opportunity,
                "PricebookEntryId": run.names[f"pricebook_entry:{line.price}"],
                "Quantity": line.quantity,
                "UnitPrice": float(unit),
                "Billing_Price_Id__c": run.names[f"price:{line.price}"],
            },
        )
        total += unit * line.quantity
    run.actors.salesforce("PATCH", f"/sobjects/Opportunity/{opportunity}", {"Amount": float(total)})
    return f"Opportunity {opportunity} ({len(p.lines)} lines, amount {total})"


def create_account_for(run: Run, customer: str) -> str:
    create_account(run, sc.CreateAccount(customer=customer))
    return run.names[f"account:{customer}"]


@executor("crm.close_won")
def close_won(run: Run, p: sc.CloseWon) -> str:
    opportunity = run.names[f"opportunity:{p.opportunity}"]
    run.actors.salesforce(
        "PATCH", f"/sobjects/Opportunity/{opportunity}", {"StageName": "Closed Won"}
    )
    run.won.append(p.opportunity)
    return f"Opportunity {opportunity} Closed Won"


# --- billing ---------------------------------------------------------------------------------
def _subscription(run: Run, deal: str) -> str:
    subscription = run.subscription_of(deal)
    if subscription is None:
        raise StepFailed(f"{deal} has no billing subscription")
    return subscription


@executor("billing.update_subscription")
def update_subscription(run: Run, p: sc.UpdateSubscription) -> str:
    sub_id = _subscription(run, p.deal)
    current = run.actors.stripe("GET", f"/v1/subscriptions/{sub_id}")
    wanted = {run.names[f"price:{line.price}"]: line.quantity for line in p.lines}
    items: list[dict[str, Any]] = []
    for item in current["items"]["data"]:
        price = item["price"]["id"]
        if price in wanted:
            items.append({"id": item["id"], "quantity": wanted.pop(price)})
        else:
            items.append({"id": item["id"], "deleted": True})
    items += [{"price": price, "quantity": quantity} for price, quantity in wanted.items()]
    run.actors.stripe(
        "POST",
        f"/v1/subscriptions/{sub_id}",
        {"items": items, "proration_behavior": p.proration_behavior},
    )
    return f"subscription {sub_id} updated ({p.proration_behavior})"


@executor("billing.cancel")
def cancel(run: Run, p: sc.Cancel) -> str:
    sub_id = _subscription(run, p.deal)
    if p.at_period_end:
        run.actors.stripe("POST", f"/v1/subscriptions/{sub_id}", {"cancel_at_period_end": True})
        return f"subscription {sub_id} cancels at period end"
    # Stripe's SDKs send a DELETE's parameters in the query string.
    run.actors.stripe(
        "DELETE",
        f"/v1/subscriptions/{sub_id}",
        params={"prorate": str(p.prorate).lower(), "invoice_now": str(p.invoice_now).lower()},
    )
    return f"subscription {sub_id} cancelled now"


@executor("billing.report_usage")
def report_usage(run: Run, p: sc.ReportUsage) -> str:
    customer = run.stripe_customer(p.customer)
    identifier = p.identifier or f"{run.scenario.name[:40]}-{run.step_index}"
    accepted = 0
    for _ in range(p.repeat):
        # A repeated identifier is the vendor's own de-duplication at work: 400, not a failure.
        body = run.actors.stripe(
            "POST",
            "/v1/billing/meter_events",
            {
                "event_name": p.price,
                "identifier": identifier,
                "payload": {"stripe_customer_id": customer, "value": str(p.value)},
                "timestamp": run.now(),
            },
            ok=(400,),
        )
        accepted += 0 if "error" in (body or {}) else 1
    return f"{p.value} units of {p.price} for {customer}, sent {p.repeat}×, accepted {accepted}"


def _open_invoices(run: Run, customer: str, which: str) -> list[dict[str, Any]]:
    listed = run.actors.stripe(
        "GET", "/v1/invoices", params={"customer": customer, "status": "open", "limit": 100}
    )
    invoices: list[dict[str, Any]] = listed["data"]  # newest first
    return invoices[:1] if which == "latest" else list(reversed(invoices))


@executor("billing.pay")
def pay(run: Run, p: sc.Pay) -> str:
    customer = run.stripe_customer(p.customer)
    method = run.customer(p.customer).payment_method
    paid = []
    for invoice in _open_invoices(run, customer, p.invoice):
        run.actors.stripe("POST", f"/v1/invoices/{invoice['id']}/pay", {"payment_method": method})
        paid.append(invoice["id"])
    if not paid:
        raise StepFailed(f"{p.customer} has no open invoice to pay")
    return f"paid {', '.join(paid)}"


@executor("billing.decline")
def decline(run: Run, p: sc.Decline) -> str:
    customer = run.stripe_customer(p.customer)
    invoices = _open_invoices(run, customer, "latest")
    if not invoices:
        raise StepFailed(f"{p.customer} has no open invoice to attempt")
    invoice = invoices[0]["id"]
    run.actors.stripe(
        "POST", f"/v1/invoices/{invoice}/pay", {"payment_method": p.payment_method}, ok=(402,)
    )
    return f"payment of {invoice} declined"


@executor("billing.credit_note")
def credit_note(run: Run, p: sc.CreditNote) -> str:
    customer = run.stripe_customer(p.customer)
    listed = run.actors.stripe("GET", "/v1/invoices", params={"customer": customer, "limit": 10})
    finalised = [i for i in listed["data"] if i["status"] in ("open", "paid")]
    if not finalised:
        raise StepFailed(f"{p.customer} has no finalised invoice to credit")
    invoice = finalised[0]
    body: dict[str, Any] = {"invoice": invoice["id"], "amount": p.amount}
    if invoice["status"] == "paid":
        body[f"{p.credit_to}_amount" if p.credit_to != "balance" else "credit_amount"] = p.amount
    note = run.actors.stripe("POST", "/v1/credit_notes", body)
    return f"credit note {note['id']} of {p.amount} on {invoice['id']}"


def billing_customer(run: Run, key: str) -> str:
    """The billing customer of a fixture customer, made in billing (as a self-serve sign-up or
    billing ops would) when it has none yet: routed by ``metadata.entity``."""
    name = f"customer:{key}"
    if name not in run.names:
        fixture = run.customer(key)
        body: dict[str, Any] = {
            "name": fixture.name,
            "metadata": {"entity": entity_id(fixture.entity)},
            "payment_method": fixture.payment_method,
            "invoice_settings": {"default_payment_method": fixture.payment_method},
        }
        if fixture.email:
            body["email"] = fixture.email
        created = run.actors.stripe("POST", "/v1/customers", body)
        run.names[name] = created["id"]
    return run.names[name]


def _create_subscription(run: Run, p: sc.BillingSubscription, body: dict[str, Any]) -> str:
    customer = billing_customer(run, p.customer)
    items = []
    for line in p.lines:
        price = run.price(line.price)
        item: dict[str, Any] = {"price": run.names[f"price:{line.price}"]}
        if not price.usage:
            item["quantity"] = line.quantity
        items.append(item)
    created = run.actors.stripe(
        "POST",
        "/v1/subscriptions",
        {
            "customer": customer,
            "items": items,
            "metadata": {"term_months": str(p.term_months)},
            **body,
        },
    )
    run.names[f"subscription:{p.key}"] = created["id"]
    run.names[f"deal:{p.key}"] = "billing"
    return f"subscription {created['id']} for {customer}"


@executor("billing.subscribe")
def subscribe(run: Run, p: sc.BillingSubscription) -> str:
    # A customer signing up self-serve: charged automatically on its card.
    return _create_subscription(run, p, {"collection_method": "charge_automatically"})


@executor("billing.create_subscription")
def create_subscription(run: Run, p: sc.BillingSubscription) -> str:
    # Billing ops setting up a contract by hand: invoiced, due in 30 days.
    return _create_subscription(run, p, {"collection_method": "send_invoice", "days_until_due": 30})


# --- clock, periods, faults, integration --------------------------------------------------------
@executor("clock.advance")
def clock_advance(run: Run, p: sc.ClockAdvance) -> str:
    if p.to is not None:
        run.actors.control("POST", "/clock/set", {"to": p.to})
    else:
        run.actors.control("POST", "/clock/advance", {"duration": p.duration})
    return f"clock at {run.now_iso()}"


@executor("erp.close_period")
def erp_close_period(run: Run, p: sc.ClosePeriod) -> str:
    return _set_period(run, "erp", p)


@executor("revrec.close_period")
def revrec_close_period(run: Run, p: sc.ClosePeriod) -> str:
    if p.action == "close":
        # The finance team closes the subledger month in its own API: the close journal
        # is published as `period.closed` for the integration to post.
        eid = entity_id(p.entity)
        run.actors.call("revrec", "POST", f"/v1/periods/{eid}/{p.period}/close", json={})
        return f"revrec {eid} {p.period} closed"
    return _set_period(run, "revrec", p)


def _set_period(run: Run, system: str, p: sc.ClosePeriod) -> str:
    eid = entity_id(p.entity)
    state = {"close": "closed", "lock": "locked"}[p.action]
    run.actors.control("POST", f"/periods/{eid}/{p.period}", {"state": state}, system=system)
    return f"{system} {eid} {p.period} {state}"


@executor("faults.on")
def faults_on(run: Run, p: sc.FaultsOn) -> str:
    ids = []
    for rule in p.rules:
        stored = run.actors.control("POST", "/faults", rule)
        ids.append(stored["id"])
    run.faults[p.name] = ids
    return f"faults {p.name}: {len(ids)} rule(s)"


@executor("faults.off")
def faults_off(run: Run, p: sc.FaultsOff) -> str:
    names = [p.name] if p.name is not None else list(run.faults)
    for name in names:
        for rule_id in run.faults.pop(name, []):
            run.actors.control("DELETE", f"/faults/{rule_id}")
    return f"faults off: {', '.join(names) or 'none were on'}"


@executor("integration")
def integration(run: Run, p: sc.IntegrationControl) -> str:
    process = run.session.integration
    if process is None:
        raise StepFailed("no integration is configured in this run")
    run.expect_running = p.action in ("restart", "start")
    if p.action == "kill":
        code = process.kill()
    elif p.action == "stop":
        code = process.stop()
    elif p.action == "restart":
        process.restart()
        code = None
    else:
        process.start()
        code = None
    return f"integration {p.action}" + (f" (exit {code})" if code is not None else "")


@executor("expect")
def expect(run: Run, p: sc.Expect) -> str:
    # Judged by the runner once the step has settled, like every step (runner._expect).
    return f"expect {len(p.figures)} figure(s), invariants {p.invariants}"

"""Billing steps: the finance team and the customer acting on billing directly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from harness.actors import StepFailed
from harness.steps.fixtures import entity_id, must_be_live, one_billing_cadence
from harness.steps.registry import (
    Chooser,
    Context,
    CustomerName,
    Lifecycle,
    Line,
    NewSubscription,
    OpportunityName,
    PriceName,
    Problem,
    StepKind,
    SubscriptionName,
    register,
)

if TYPE_CHECKING:
    from harness.oracle.billing import BillingReplay
    from harness.play import Run


def _pairs(lines: list[Line]) -> list[tuple[str, int]]:
    return [(line.price, line.quantity) for line in lines]


def _tax_and_discounts(run: Run, tax_rates: list[str], coupon: str | None) -> dict[str, Any]:
    """A new subscription's ``default_tax_rates`` and ``discounts`` from fixture keys."""
    found: dict[str, Any] = {}
    if tax_rates:
        found["default_tax_rates"] = [run.names[f"tax_rate:{key}"] for key in tax_rates]
    if coupon is not None:
        found["discounts"] = [{"coupon": run.names[f"coupon:{coupon}"]}]
    return found


class OnDeal(StepKind):
    """A step on a deal's subscription: a won opportunity's, or one made in billing."""

    opportunity: OpportunityName | None = None
    subscription: SubscriptionName | None = Field(
        None, description="a billing.subscribe or billing.create_subscription key"
    )

    @model_validator(mode="after")
    def _one(self) -> OnDeal:
        if (self.opportunity is None) == (self.subscription is None):
            raise ValueError("name exactly one of opportunity or subscription")
        return self

    @property
    def deal(self) -> str:
        return str(self.opportunity or self.subscription)

    def check(self, ctx: Context) -> Iterator[Problem]:
        at = "opportunity" if self.opportunity else "subscription"
        yield from must_be_live(ctx, self.deal, (at,))

    def subscription_id(self, run: Run) -> str:
        found = run.subscription_of(self.deal)
        if found is None:
            raise StepFailed(f"{self.deal} has no billing subscription")
        return found


class NewSubscriptionStep(StepKind):
    """A subscription made in billing, with no CRM deal."""

    moves_money: ClassVar[bool] = True
    collection: ClassVar[dict[str, Any]] = {}
    key: NewSubscription
    customer: CustomerName
    lines: list[Line] = Field(min_length=1)
    term_months: int = Field(12, ge=1, le=120, description="the contract term, in metadata")
    tax_rates: list[str] = Field(
        default_factory=list, max_length=5, description="fixture tax rates: default_tax_rates"
    )
    coupon: str | None = Field(None, description="a fixture coupon, as the subscription's discount")
    trial_days: int | None = Field(
        None, ge=1, le=730, description="a free trial first (trial_period_days)"
    )

    def execute(self, run: Run) -> str:
        customer = billing_customer(run, self.customer)
        items = []
        for line in self.lines:
            item: dict[str, Any] = {"price": run.names[f"price:{line.price}"]}
            if not run.price(line.price).usage:
                item["quantity"] = line.quantity
            items.append(item)
        created = run.actors.stripe(
            "POST",
            "/v1/subscriptions",
            {
                "customer": customer,
                "items": items,
                "metadata": {"term_months": str(self.term_months)},
                **self.collection,
                **_tax_and_discounts(run, self.tax_rates, self.coupon),
                **({"trial_period_days": self.trial_days} if self.trial_days else {}),
            },
        )
        run.names[f"subscription:{self.key}"] = created["id"]
        run.names[f"deal:{self.key}"] = "billing"
        return f"subscription {created['id']} for {customer}"

    def replay(self, oracle: BillingReplay, index: int) -> None:
        method = str(self.collection["collection_method"])
        oracle.subscribe(
            self.key,
            self.customer,
            _pairs(self.lines),
            self.term_months,
            method,
            self.tax_rates,
            self.coupon,
            self.trial_days,
        )

    def check(self, ctx: Context) -> Iterator[Problem]:
        yield from one_billing_cadence(ctx, self.lines)
        rates = {r.key for r in ctx.fixtures.tax_rates}
        for n, key in enumerate(self.tax_rates):
            if key not in rates:
                yield Problem(("tax_rates", n), f"no tax rate {key!r} in the fixtures")
        if self.coupon is not None and self.coupon not in {c.key for c in ctx.fixtures.coupons}:
            yield Problem(("coupon",), f"no coupon {self.coupon!r} in the fixtures")

    @classmethod
    def generate(cls, c: Chooser, life: Lifecycle) -> dict[str, Any] | None:
        customer = life.customer(c, "billing")
        if customer is None:
            return None
        lines = life.lines(c, customer=customer)
        return {"key": life.fresh("sub"), "customer": customer, "lines": lines}


@register("billing.subscribe")
class Subscribe(NewSubscriptionStep):
    """A self-serve sign-up with no CRM deal: the billing customer (routed by
    `metadata.entity`, the fixture's card) and a subscription charged automatically."""

    collection: ClassVar[dict[str, Any]] = {"collection_method": "charge_automatically"}


@register("billing.create_subscription")
class CreateSubscription(NewSubscriptionStep):
    """Billing ops set a subscription up by hand: invoiced (`send_invoice`, due in 30 days)."""

    collection: ClassVar[dict[str, Any]] = {
        "collection_method": "send_invoice",
        "days_until_due": 30,
    }


@register("billing.update_subscription")
class UpdateSubscription(OnDeal):
    """Items replaced to match `lines`."""

    moves_money: ClassVar[bool] = True
    lines: list[Line] = Field(min_length=1)
    proration_behavior: Literal["create_prorations", "always_invoice", "none"] = "create_prorations"

    def execute(self, run: Run) -> str:
        sub_id = self.subscription_id(run)
        current = run.actors.stripe("GET", f"/v1/subscriptions/{sub_id}")
        wanted = {run.names[f"price:{line.price}"]: line.quantity for line in self.lines}
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
            {"items": items, "proration_behavior": self.proration_behavior},
        )
        return f"subscription {sub_id} updated ({self.proration_behavior})"

    def replay(self, oracle: BillingReplay, index: int) -> None:
        oracle.update(self.deal, _pairs(self.lines), self.proration_behavior, index)

    def check(self, ctx: Context) -> Iterator[Problem]:
        yield from super().check(ctx)
        yield from one_billing_cadence(ctx, self.lines)

    @classmethod
    def generate(cls, c: Chooser, life: Lifecycle) -> dict[str, Any] | None:
        deal = life.deal(c)
        if deal is None:
            return None
        behavior = c.pick(["create_prorations", "always_invoice", "none"])
        return {**life.ref(deal), "lines": life.lines(c, like=deal), "proration_behavior": behavior}


@register("billing.cancel")
class Cancel(OnDeal):
    """Cancel now or at period end."""

    moves_money: ClassVar[bool] = True
    at_period_end: bool = False
    prorate: bool = False
    invoice_now: bool = False

    def execute(self, run: Run) -> str:
        sub_id = self.subscription_id(run)
        if self.at_period_end:
            run.actors.stripe("POST", f"/v1/subscriptions/{sub_id}", {"cancel_at_period_end": True})
            return f"subscription {sub_id} cancels at period end"
        # Stripe's SDKs send a DELETE's parameters in the query string.
        run.actors.stripe(
            "DELETE",
            f"/v1/subscriptions/{sub_id}",
            params={
                "prorate": str(self.prorate).lower(),
                "invoice_now": str(self.invoice_now).lower(),
            },
        )
        return f"subscription {sub_id} cancelled now"

    def replay(self, oracle: BillingReplay, index: int) -> None:
        oracle.cancel(self.deal, self.at_period_end, self.prorate, self.invoice_now, index)

    def track(self, ctx: Context) -> None:
        if not self.at_period_end:
            ctx.cancelled.add(self.deal)

    @classmethod
    def generate(cls, c: Chooser, life: Lifecycle) -> dict[str, Any] | None:
        deal = life.deal(c)
        if deal is None:
            return None
        if c.boolean():
            return {**life.ref(deal), "at_period_end": True}
        return {**life.ref(deal), "prorate": c.boolean(), "invoice_now": c.boolean()}


@register("billing.invoice_now")
class InvoiceNow(OnDeal):
    """Billing ops invoice the subscription's pending prorations at once (Stripe's "invoice
    now": a draft with its pending items, finalised)."""

    moves_money: ClassVar[bool] = True

    def execute(self, run: Run) -> str:
        sub_id = self.subscription_id(run)
        subscription = run.actors.stripe("GET", f"/v1/subscriptions/{sub_id}")
        draft = run.actors.stripe(
            "POST",
            "/v1/invoices",
            {
                "customer": subscription["customer"],
                "subscription": sub_id,
                "pending_invoice_items_behavior": "include",
            },
        )
        invoice = run.actors.stripe("POST", f"/v1/invoices/{draft['id']}/finalize", {})
        return f"invoice {invoice['id']} of {invoice['total']} for {sub_id} ({invoice['status']})"

    def replay(self, oracle: BillingReplay, index: int) -> None:
        oracle.invoice_now(self.deal, index)

    @classmethod
    def generate(cls, c: Chooser, life: Lifecycle) -> dict[str, Any] | None:
        deal = life.deal(c)
        return None if deal is None else life.ref(deal)


@register("billing.report_usage")
class ReportUsage(StepKind):
    """Meter events; repeats of one identifier are the meter's to drop."""

    moves_money: ClassVar[bool] = True
    customer: CustomerName
    price: PriceName
    value: int = Field(ge=0)
    identifier: str | None = None
    repeat: int = Field(1, ge=1, le=100, description="send the same event this many times")

    def execute(self, run: Run) -> str:
        customer = run.stripe_customer(self.customer)
        identifier = self.identifier or f"{run.scenario.name[:40]}-{run.step_index}"
        accepted = 0
        for _ in range(self.repeat):
            # A repeated identifier is the vendor's own de-duplication at work: 400, not a failure.
            body = run.actors.stripe(
                "POST",
                "/v1/billing/meter_events",
                {
                    "event_name": self.price,
                    "identifier": identifier,
                    "payload": {"stripe_customer_id": customer, "value": str(self.value)},
                    "timestamp": run.now(),
                },
                ok=(400,),
            )
            accepted += 0 if "error" in (body or {}) else 1
        return (
            f"{self.value} units of {self.price} for {customer}, "
            f"sent {self.repeat}×, accepted {accepted}"
        )

    def replay(self, oracle: BillingReplay, index: int) -> None:
        oracle.report_usage(self.customer, self.price, self.value, self.identifier, index)

    @classmethod
    def generate(cls, c: Chooser, life: Lifecycle) -> dict[str, Any] | None:
        found = life.metered(c)
        if found is None:
            return None
        customer, price = found
        return {"customer": customer, "price": price, "value": c.integer(0, 500)}

    def check(self, ctx: Context) -> Iterator[Problem]:
        price = ctx.prices.get(self.price)
        if price is not None and not price.usage:
            yield Problem(("price",), f"price {self.price!r} is not metered (usage: true)")


def _open_invoices(run: Run, customer: str, which: str) -> list[dict[str, Any]]:
    listed = run.actors.stripe(
        "GET", "/v1/invoices", params={"customer": customer, "status": "open", "limit": 100}
    )
    invoices: list[dict[str, Any]] = listed["data"]  # newest first
    return invoices[:1] if which == "latest" else list(reversed(invoices))


@register("billing.pay")
class Pay(StepKind):
    """Pays with the fixture's payment method."""

    moves_money: ClassVar[bool] = True
    customer: CustomerName
    invoice: Literal["latest", "all_open"] = "latest"

    def execute(self, run: Run) -> str:
        customer = run.stripe_customer(self.customer)
        method = run.customer(self.customer).payment_method
        paid = []
        for invoice in _open_invoices(run, customer, self.invoice):
            run.actors.stripe(
                "POST", f"/v1/invoices/{invoice['id']}/pay", {"payment_method": method}
            )
            paid.append(invoice["id"])
        if not paid:
            raise StepFailed(f"{self.customer} has no open invoice to pay")
        return f"paid {', '.join(paid)}"

    def replay(self, oracle: BillingReplay, index: int) -> None:
        oracle.pay(self.customer, self.invoice, index)

    @classmethod
    def generate(cls, c: Chooser, life: Lifecycle) -> dict[str, Any] | None:
        customer = life.owing(c)
        return (
            None
            if customer is None
            else {"customer": customer, "invoice": c.pick(["latest", "all_open"])}
        )


@register("billing.decline")
class Decline(StepKind):
    """A declined attempt on the latest open invoice."""

    not_generated: ClassVar[str | None] = (
        "a declined first invoice ends its subscription in dunning, which the oracle does not "
        "follow"
    )

    customer: CustomerName
    payment_method: str = "pm_card_chargeDeclined"

    def execute(self, run: Run) -> str:
        customer = run.stripe_customer(self.customer)
        invoices = _open_invoices(run, customer, "latest")
        if not invoices:
            raise StepFailed(f"{self.customer} has no open invoice to attempt")
        invoice = invoices[0]["id"]
        run.actors.stripe(
            "POST",
            f"/v1/invoices/{invoice}/pay",
            {"payment_method": self.payment_method},
            ok=(402,),
        )
        return f"payment of {invoice} declined"


@register("billing.credit_note")
class CreditNote(StepKind):
    """On the latest finalised invoice."""

    moves_money: ClassVar[bool] = True
    customer: CustomerName
    invoice: Literal["latest"] = "latest"
    amount: int = Field(gt=0)
    credit_to: Literal["balance", "refund", "out_of_band"] = "balance"

    def execute(self, run: Run) -> str:
        customer = run.stripe_customer(self.customer)
        listed = run.actors.stripe(
            "GET", "/v1/invoices", params={"customer": customer, "limit": 10}
        )
        finalised = [i for i in listed["data"] if i["status"] in ("open", "paid")]
        if not finalised:
            raise StepFailed(f"{self.customer} has no finalised invoice to credit")
        invoice = finalised[0]
        body: dict[str, Any] = {"invoice": invoice["id"], "amount": self.amount}
        if invoice["status"] == "paid":
            key = "credit_amount" if self.credit_to == "balance" else f"{self.credit_to}_amount"
            body[key] = self.amount
        note = run.actors.stripe("POST", "/v1/credit_notes", body)
        return f"credit note {note['id']} of {self.amount} on {invoice['id']}"

    def replay(self, oracle: BillingReplay, index: int) -> None:
        oracle.credit_note(self.customer, self.amount, self.credit_to, index)

    @classmethod
    def generate(cls, c: Chooser, life: Lifecycle) -> dict[str, Any] | None:
        found = life.creditable(c)
        if found is None:
            return None
        customer, status, room = found
        to = c.pick(["balance", "refund", "out_of_band"]) if status == "paid" else "balance"
        return {"customer": customer, "amount": c.integer(1, room), "credit_to": to}


@register("billing.void_invoice")
class VoidInvoice(StepKind):
    """Billing ops void the customer's latest open invoice behind the integration's back: it
    bills nothing any more, its ERP invoice must be voided and the subledger credited."""

    moves_money: ClassVar[bool] = True
    customer: CustomerName

    def execute(self, run: Run) -> str:
        customer = run.stripe_customer(self.customer)
        invoices = _open_invoices(run, customer, "latest")
        if not invoices:
            raise StepFailed(f"{self.customer} has no open invoice to void")
        invoice = invoices[0]["id"]
        run.actors.stripe("POST", f"/v1/invoices/{invoice}/void")
        return f"voided {invoice}"

    def replay(self, oracle: BillingReplay, index: int) -> None:
        oracle.void(self.customer, index)

    @classmethod
    def generate(cls, c: Chooser, life: Lifecycle) -> dict[str, Any] | None:
        customer = life.voidable(c)
        return None if customer is None else {"customer": customer}


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
        if fixture.tax_exempt != "none":
            body["tax_exempt"] = fixture.tax_exempt
        created = run.actors.stripe("POST", "/v1/customers", body)
        run.names[name] = created["id"]
    return run.names[name]

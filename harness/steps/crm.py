"""CRM steps: sales ops creating accounts and opportunities and winning them."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from harness.actors import StepFailed
from harness.steps.fixtures import crm_currencies, entity_id, must_be_live, one_billing_cadence
from harness.steps.registry import (
    Chooser,
    Context,
    CustomerName,
    Lifecycle,
    Line,
    NewOpportunity,
    OpportunityName,
    Problem,
    StepKind,
    register,
)
from simulators.common.money import to_decimal

if TYPE_CHECKING:
    from harness.oracle.billing import BillingReplay
    from harness.play import Run

CrmValue = str | int | float | bool


@register("crm.create_account")
class CreateAccount(StepKind):
    """CRM Account (`External_Id__c`, `Contracting_Entity__c`)."""

    not_generated: ClassVar[str | None] = "an opportunity makes its account when it needs one"
    customer: CustomerName
    fields: dict[str, CrmValue] = Field(
        default_factory=dict, description="custom field values, of crm_custom_fields"
    )

    def execute(self, run: Run) -> str:
        customer = run.customer(self.customer)
        row = run.actors.salesforce(
            "POST",
            "/sobjects/Account/",
            {
                "Name": customer.name,
                "External_Id__c": customer.key,
                "Contracting_Entity__c": entity_id(customer.entity),
                **self.fields,
            },
        )
        run.names[f"account:{customer.key}"] = row["id"]
        return f"Account {row['id']}"


@register("crm.create_opportunity")
class CreateOpportunity(StepKind):
    """Opportunity + line items + Amount; creates the account if needed."""

    key: NewOpportunity
    customer: CustomerName
    lines: list[Line] = Field(min_length=1)
    kind: Literal["new", "amendment", "renewal"] = "new"
    amends: OpportunityName | None = Field(None, description="the opportunity this one changes")
    term_months: int = Field(12, ge=1, le=120, description="the contract term, `Term_Months__c`")
    fields: dict[str, CrmValue] = Field(
        default_factory=dict, description="custom field values, of crm_custom_fields"
    )

    def execute(self, run: Run) -> str:
        customer = run.customer(self.customer)
        account = run.names.get(f"account:{customer.key}")
        if account is None:
            CreateAccount(customer=customer.key).execute(run)
            account = run.names[f"account:{customer.key}"]
        kinds = {"new": "New Business", "amendment": "Amendment", "renewal": "Renewal"}
        body: dict[str, Any] = {
            "Name": f"{customer.name} — {self.key}",
            "AccountId": account,
            "StageName": "Prospecting",
            "CloseDate": run.today(),
            "Type": kinds[self.kind],
            "Contracting_Entity__c": entity_id(customer.entity),
            "Term_Months__c": self.term_months,
            "CurrencyIsoCode": customer.currency.upper(),
            "External_Id__c": self.key,
            **self.fields,
        }
        if self.amends is not None:
            subscription = run.subscription_of(self.amends)
            if subscription is None:
                raise StepFailed(f"{self.key} amends {self.amends}, which has no subscription yet")
            body["Billing_Subscription_Id__c"] = subscription
        row = run.actors.salesforce("POST", "/sobjects/Opportunity/", body)
        opportunity = row["id"]
        run.names[f"opportunity:{self.key}"] = opportunity
        total = Decimal(0)
        for line in self.lines:
            price = run.price(line.price)
            unit = to_decimal(price.unit_amount, price.currency)
            entry = run.names.get(f"pricebook_entry:{line.price}")
            if entry is None:
                raise StepFailed(
                    f"{line.price} is in {price.currency.upper()}, which the CRM org does not "
                    f"sell in ({', '.join(sorted(crm_currencies(run)))}): sell it through billing"
                )
            run.actors.salesforce(
                "POST",
                "/sobjects/OpportunityLineItem/",
                {
                    "OpportunityId": opportunity,
                    "PricebookEntryId": entry,
                    "Quantity": line.quantity,
                    "UnitPrice": float(unit),
                    "Billing_Price_Id__c": run.names[f"price:{line.price}"],
                },
            )
            total += unit * line.quantity
        run.actors.salesforce(
            "PATCH", f"/sobjects/Opportunity/{opportunity}", {"Amount": float(total)}
        )
        return f"Opportunity {opportunity} ({len(self.lines)} lines, amount {total})"

    def replay(self, oracle: BillingReplay, index: int) -> None:
        oracle.opportunity(self)

    @classmethod
    def generate(cls, c: Chooser, life: Lifecycle) -> dict[str, Any] | None:
        kinds = [k for k in ("new", "amendment", "renewal") if k == "new" or life.deal(c, crm=True)]
        customer = life.customer(c, "crm")
        if customer is None:
            kinds.remove("new")
        if not kinds:
            return None
        kind = c.pick(kinds)
        key = life.fresh("opp")
        if kind == "new":
            return {"key": key, "customer": customer, "lines": life.lines(c, customer=customer)}
        deal = life.deal(c, crm=True)
        assert deal is not None
        lines = life.lines(c, like=deal)
        return {
            "key": key,
            "customer": life.customer_of(deal),
            "kind": kind,
            "amends": deal,
            "lines": lines,
        }

    def check(self, ctx: Context) -> Iterator[Problem]:
        if (self.kind == "new") != (self.amends is None):
            yield Problem(
                ("amends",),
                "an amendment or renewal names the deal it `amends`; a new deal names none",
            )
        elif self.amends is not None:
            yield from must_be_live(ctx, self.amends, ("amends",))
        yield from one_billing_cadence(ctx, self.lines)


@register("crm.close_won")
class CloseWon(StepKind):
    """StageName → Closed Won (the CRM pushes `opportunity.closed`)."""

    moves_money: ClassVar[bool] = True
    plays_while_down: ClassVar[bool] = True
    opportunity: OpportunityName

    def execute(self, run: Run) -> str:
        opportunity = run.names[f"opportunity:{self.opportunity}"]
        run.actors.salesforce(
            "PATCH", f"/sobjects/Opportunity/{opportunity}", {"StageName": "Closed Won"}
        )
        run.won.append(self.opportunity)
        return f"Opportunity {opportunity} Closed Won"

    def replay(self, oracle: BillingReplay, index: int) -> None:
        oracle.close_won(self.opportunity, index)

    @classmethod
    def generate(cls, c: Chooser, life: Lifecycle) -> dict[str, Any] | None:
        opportunity = life.unwon(c)
        return None if opportunity is None else {"opportunity": opportunity}

    def check(self, ctx: Context) -> Iterator[Problem]:
        if self.opportunity in ctx.won:
            yield Problem(("opportunity",), f"{self.opportunity!r} is won already")

    def track(self, ctx: Context) -> None:
        ctx.won.add(self.opportunity)
        if ctx.stopped:
            ctx.unseen.add(self.opportunity)


@register("crm.reopen")
class Reopen(StepKind):
    """Sales reopens a deal won while the integration was down (it slipped), before the
    integration is back: the CRM's late push says Closed Won, the record no longer does."""

    moves_money: ClassVar[bool] = True
    plays_while_down: ClassVar[bool] = True
    opportunity: OpportunityName
    stage: str = Field("Negotiation/Review", min_length=1, description="the stage it goes back to")

    def execute(self, run: Run) -> str:
        opportunity = run.names[f"opportunity:{self.opportunity}"]
        run.actors.salesforce(
            "PATCH", f"/sobjects/Opportunity/{opportunity}", {"StageName": self.stage}
        )
        run.won.remove(self.opportunity)
        return f"Opportunity {opportunity} back to {self.stage}"

    def replay(self, oracle: BillingReplay, index: int) -> None:
        oracle.withdraw(self.opportunity, index)

    def check(self, ctx: Context) -> Iterator[Problem]:
        if self.opportunity not in ctx.unseen:
            yield Problem(
                ("opportunity",),
                f"{self.opportunity!r} is not won while the integration is down: reopen only a "
                "win it has not acted on (once it has, the subscription it made stays)",
            )
        if self.stage.startswith("Closed"):
            yield Problem(("stage",), f"{self.stage!r} does not reopen the deal")

    def track(self, ctx: Context) -> None:
        ctx.won.discard(self.opportunity)
        ctx.unseen.discard(self.opportunity)

    @classmethod
    def generate(cls, c: Chooser, life: Lifecycle) -> dict[str, Any] | None:
        opportunity = life.slipped(c)
        return None if opportunity is None else {"opportunity": opportunity}


@register("crm.update_opportunity")
class UpdateOpportunity(StepKind):
    """Sales ops correct an opportunity's fields in the CRM (say a wrong `Contracting_Entity__c`
    the integration refused): a PATCH, no push of its own."""

    not_generated: ClassVar[str | None] = "a correction after a refusal, played by scenarios"
    opportunity: OpportunityName
    fields: dict[str, CrmValue] = Field(min_length=1, description="field values to set")

    def execute(self, run: Run) -> str:
        opportunity = run.names[f"opportunity:{self.opportunity}"]
        run.actors.salesforce("PATCH", f"/sobjects/Opportunity/{opportunity}", self.fields)
        return f"Opportunity {opportunity}: {', '.join(sorted(self.fields))} set"

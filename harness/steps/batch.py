"""Batch steps: many customers acting in one step, settled once and judged once."""

from __future__ import annotations

import string
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field, model_validator

from harness.steps.billing import Pay
from harness.steps.crm import CloseWon, CreateOpportunity
from harness.steps.fixtures import one_billing_cadence
from harness.steps.registry import (
    Chooser,
    Context,
    Gives,
    Lifecycle,
    Line,
    Path,
    Problem,
    StepKind,
    Uses,
    register,
)

if TYPE_CHECKING:
    from harness.oracle.billing import BillingReplay
    from harness.play import Run

MAX_BATCH = 10_000
# Per member, on top of a single step's settle timeout: the integration works through the
# whole batch's events before the step can settle.
SETTLE_S_PER_MEMBER = 0.5
_TEMPLATE = Field(min_length=1, max_length=64)


class Batch(StepKind):
    """What every batch step has: ``count`` members, numbered ``start``, ``start + 1``, …"""

    templates: ClassVar[tuple[str, ...]] = ()  # the fields that name members
    count: int = Field(ge=1, le=MAX_BATCH, description="how many members act")
    start: int = Field(1, ge=0, description="the first member's `{n}`")

    @model_validator(mode="after")
    def _each_named(self) -> Batch:
        # A plain name (no `{n}`) names one member only.
        for field, value in self:
            if field in self.templates and self.count > 1 and not _fills_n(str(value)):
                raise ValueError(f"{field} {value!r} must name each member with `{{n}}`")
        return self

    def numbers(self) -> range:
        return range(self.start, self.start + self.count)

    def settle_timeout_s(self, single_s: float) -> float:
        """How long the step may take to settle: a single step's bound, and more per member."""
        return single_s + SETTLE_S_PER_MEMBER * self.count

    def _at(self, field: str, template: str) -> Iterator[tuple[Path, str]]:
        for n in self.numbers():
            yield (field, n), template.format(n=n)


def _fills(value: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}


def _fills_n(value: str) -> bool:
    return _fills(value) == {"n"}


def _numbered(value: str) -> str:
    """A member's name template: `{n}` and nothing else to fill in (or a plain name)."""
    try:
        if _fills(value) <= {"n"}:
            value.format(n=0)
            return value
    except (ValueError, IndexError, KeyError):
        pass
    raise ValueError(f"{value!r} must name each member with `{{n}}`, and fill in nothing else")


Template = Annotated[str, _TEMPLATE, AfterValidator(_numbered)]
# Marked for the doc table; ``references`` gives the numbered names, never the template.
NewOpportunities = Annotated[Template, Gives("opportunity")]
Customers = Annotated[Template, Uses(("customer",))]


@register("crm.close_won_many")
class CloseWonMany(Batch):
    """`count` new deals at once: for each member `{n}`, opportunity `key` for customer
    `customer` with `lines` (its account made if needed), then Closed Won — as
    `crm.create_opportunity` and `crm.close_won` would, settled and judged once."""

    moves_money: ClassVar[bool] = True
    templates: ClassVar[tuple[str, ...]] = ("key", "customer")
    key: NewOpportunities = Field(description="the opportunity's name, with `{n}` when `count` > 1")
    customer: Customers = Field(description="the customer's name, with `{n}` when `count` > 1")
    lines: list[Line] = Field(min_length=1)
    term_months: int = Field(12, ge=1, le=120, description="the contract term, `Term_Months__c`")

    def members(self) -> Iterator[CreateOpportunity]:
        for n in self.numbers():
            yield CreateOpportunity(
                key=self.key.format(n=n),
                customer=self.customer.format(n=n),
                lines=self.lines,
                term_months=self.term_months,
            )

    def execute(self, run: Run) -> str:
        for deal in self.members():
            deal.execute(run)
        for deal in self.members():
            CloseWon(opportunity=deal.key).execute(run)
        return f"{self.count} opportunities created and Closed Won"

    def replay(self, oracle: BillingReplay, index: int) -> None:
        for deal in self.members():
            deal.replay(oracle, index)
        for deal in self.members():
            CloseWon(opportunity=deal.key).replay(oracle, index)

    def references(self) -> Iterator[tuple[Path, str, Uses | Gives]]:
        for at, name in self._at("key", self.key):
            yield at, name, Gives("opportunity")
        for at, name in self._at("customer", self.customer):
            yield at, name, Uses(("customer",))
        for path, value, mark in super().references():
            if path[0] == "lines":
                yield path, value, mark

    def check(self, ctx: Context) -> Iterator[Problem]:
        yield from one_billing_cadence(ctx, self.lines)

    def track(self, ctx: Context) -> None:
        ctx.won.update(deal.key for deal in self.members())

    @classmethod
    def generate(cls, c: Chooser, life: Lifecycle) -> dict[str, Any] | None:
        # A batch of one: the fuzzer's customers are not numbered.
        customer = life.customer(c, "crm")
        if customer is None:
            return None
        lines = life.lines(c, customer=customer)
        return {"count": 1, "key": life.fresh("opp"), "customer": customer, "lines": lines}


@register("billing.pay_many")
class PayMany(Batch):
    """For each member `{n}`, customer `customer` pays its latest (or every) open invoice with
    its fixture's payment method, as `billing.pay` would; settled and judged once."""

    moves_money: ClassVar[bool] = True
    templates: ClassVar[tuple[str, ...]] = ("customer",)
    customer: Customers = Field(description="the customer's name, with `{n}` when `count` > 1")
    invoice: Literal["latest", "all_open"] = "latest"

    def members(self) -> Iterator[Pay]:
        for n in self.numbers():
            yield Pay(customer=self.customer.format(n=n), invoice=self.invoice)

    def execute(self, run: Run) -> str:
        paid = sum(len(pay.execute(run).split(", ")) for pay in self.members())
        return f"paid {paid} invoice(s) of {self.count} customer(s)"

    def replay(self, oracle: BillingReplay, index: int) -> None:
        for pay in self.members():
            pay.replay(oracle, index)

    def references(self) -> Iterator[tuple[Path, str, Uses | Gives]]:
        for at, name in self._at("customer", self.customer):
            yield at, name, Uses(("customer",))

    @classmethod
    def generate(cls, c: Chooser, life: Lifecycle) -> dict[str, Any] | None:
        customer = life.owing(c)
        if customer is None:
            return None
        return {"count": 1, "customer": customer, "invoice": c.pick(["latest", "all_open"])}

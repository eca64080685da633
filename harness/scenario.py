"""Scenario files: YAML lifecycle scripts validated on load, errors with file and line."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness import yamlines
from simulators.common.clock import ClockError, after_duration, parse_instant
from simulators.common.world import DEFAULT_START

Name = str  # a name given by a fixture or an earlier step, used by later steps
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_CUSTOM = re.compile(r"^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*__c$")
_SOBJECTS = ("Account", "Opportunity", "OpportunityLineItem", "Product2")
CrmValue = str | int | float | bool


class ScenarioError(ValueError):
    """A scenario that cannot be played: every problem with file and line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- fixtures --------------------------------------------------------------------------------
class Entity(_Strict):
    key: Name
    name: str
    currency: str = Field(pattern=r"^[a-z]{3}$")


class Rate(_Strict):
    base: str = Field(pattern=r"^[a-z]{3}$")
    quote: str = Field(pattern=r"^[a-z]{3}$")
    rate: str = Field(pattern=r"^\d+(\.\d+)?$", description="quote per base, as a decimal")
    effective_on: str | None = Field(
        None,
        pattern=r"^\d{4}-\d{2}-\d{2}$",
        description="YYYY-MM-DD it applies from (default: start)",
    )


class Product(_Strict):
    key: Name
    name: str
    ssp_minor: int | None = Field(None, ge=0, description="standalone selling price per unit")
    recognition: Literal["ratable", "point_in_time", "usage"] = "ratable"


class Price(_Strict):
    key: Name
    product: Name
    currency: str = Field(pattern=r"^[a-z]{3}$")
    unit_amount: int = Field(ge=0, description="minor units")
    interval: Literal["month", "year"] | None = "month"
    usage: bool = False


class Customer(_Strict):
    key: Name
    name: str
    entity: Name
    currency: str = Field(pattern=r"^[a-z]{3}$")
    payment_method: str = "pm_card_visa"
    email: str | None = None


class Fixtures(_Strict):
    entities: list[Entity] = Field(default_factory=list)
    rates: list[Rate] = Field(default_factory=list)
    products: list[Product] = Field(default_factory=list)
    prices: list[Price] = Field(default_factory=list)
    customers: list[Customer] = Field(default_factory=list)
    crm_custom_fields: dict[str, list[str]] = Field(
        default_factory=dict,
        description="extra CRM text fields per sObject, e.g. {Opportunity: [Region__c]}",
    )

    @field_validator("crm_custom_fields")
    @classmethod
    def _custom_names(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for sobject, names in value.items():
            if sobject not in _SOBJECTS:
                raise ValueError(f"custom fields go on {', '.join(_SOBJECTS)}, not {sobject!r}")
            bad = [n for n in names if not _CUSTOM.match(n)]
            if bad:
                raise ValueError(f"custom field names look like Name__c: {bad}")
        return value


# --- steps -----------------------------------------------------------------------------------
class Line(_Strict):
    price: Name
    quantity: int = Field(1, ge=0)


class CreateAccount(_Strict):
    customer: Name
    fields: dict[str, CrmValue] = Field(
        default_factory=dict, description="custom field values (crm_custom_fields)"
    )


class CreateOpportunity(_Strict):
    key: Name
    customer: Name
    lines: list[Line] = Field(min_length=1)
    kind: Literal["new", "amendment", "renewal"] = "new"
    amends: Name | None = Field(None, description="the opportunity this one changes")
    term_months: int = Field(12, ge=1, le=120, description="the contract term (Term_Months__c)")
    fields: dict[str, CrmValue] = Field(
        default_factory=dict, description="custom field values (crm_custom_fields)"
    )


class CloseWon(_Strict):
    opportunity: Name


class _OnDeal(_Strict):
    """A step on a deal's subscription: a won opportunity's, or one made in billing."""

    opportunity: Name | None = None
    subscription: Name | None = Field(None, description="a billing.subscribe key")

    @model_validator(mode="after")
    def _one(self) -> _OnDeal:
        if (self.opportunity is None) == (self.subscription is None):
            raise ValueError("name exactly one of opportunity or subscription")
        return self

    @property
    def deal(self) -> str:
        return str(self.opportunity or self.subscription)


class UpdateSubscription(_OnDeal):
    lines: list[Line] = Field(min_length=1)
    proration_behavior: Literal["create_prorations", "always_invoice", "none"] = "create_prorations"


class Cancel(_OnDeal):
    at_period_end: bool = False
    prorate: bool = False
    invoice_now: bool = False


class BillingSubscription(_Strict):
    """A subscription made in billing, with no CRM deal: a self-serve sign-up
    (``billing.subscribe``, charged to the card) or billing ops (``billing.create_subscription``,
    invoiced)."""

    key: Name
    customer: Name
    lines: list[Line] = Field(min_length=1)
    term_months: int = Field(12, ge=1, le=120, description="the contract term (metadata)")


class ReportUsage(_Strict):
    customer: Name
    price: Name
    value: int = Field(ge=0)
    identifier: str | None = None
    repeat: int = Field(1, ge=1, le=100, description="send the same event this many times")


class Pay(_Strict):
    customer: Name
    invoice: Literal["latest", "all_open"] = "latest"


class Decline(_Strict):
    customer: Name
    payment_method: str = "pm_card_chargeDeclined"


class CreditNote(_Strict):
    customer: Name
    invoice: Literal["latest"] = "latest"
    amount: int = Field(gt=0)
    credit_to: Literal["balance", "refund", "out_of_band"] = "balance"


class ClockAdvance(_Strict):
    duration: str | None = None
    to: str | None = None

    @field_validator("to", mode="before")
    @classmethod
    def _datetime(cls, value: Any) -> Any:
        return value.isoformat() if isinstance(value, datetime) else value

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                after_duration(0, value)
            except ClockError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("to")
    @classmethod
    def _instant(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_instant(value)
            except ClockError as exc:
                raise ValueError(str(exc)) from None
        return value


class ClosePeriod(_Strict):
    entity: Name
    period: str = Field(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")
    action: Literal["close", "lock"] = "close"


class FaultsOn(_Strict):
    name: Name
    rules: list[dict[str, Any]] = Field(min_length=1)


class FaultsOff(_Strict):
    name: Name | None = None


class IntegrationControl(_Strict):
    action: Literal["stop", "kill", "restart", "start"]


class Expect(_Strict):
    invariants: Literal["all"] | list[str] = "all"
    figures: dict[str, int | str] = Field(default_factory=dict)


# The closed, registered set: a new step is one model here and one executor in the runner.
STEPS: dict[str, type[_Strict]] = {
    "crm.create_account": CreateAccount,
    "crm.create_opportunity": CreateOpportunity,
    "crm.close_won": CloseWon,
    "billing.subscribe": BillingSubscription,
    "billing.create_subscription": BillingSubscription,
    "billing.update_subscription": UpdateSubscription,
    "billing.cancel": Cancel,
    "billing.report_usage": ReportUsage,
    "billing.pay": Pay,
    "billing.decline": Decline,
    "billing.credit_note": CreditNote,
    "clock.advance": ClockAdvance,
    "erp.close_period": ClosePeriod,
    "revrec.close_period": ClosePeriod,
    "faults.on": FaultsOn,
    "faults.off": FaultsOff,
    "integration": IntegrationControl,
    "expect": Expect,
}
# Shorthands: `clock.advance: P14D` and `integration: kill`.
_SCALAR = {"clock.advance": "duration", "integration": "action"}


class Step(BaseModel):
    kind: str
    params: _Strict
    line: int | None = None


class Scenario(_Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    start_at: str = DEFAULT_START
    seed: int = 0
    fixtures: Fixtures = Field(default_factory=Fixtures)
    steps: list[Step] = Field(default_factory=list)
    source: str = ""

    @field_validator("start_at", mode="before")
    @classmethod
    def _start(cls, value: Any) -> Any:
        # YAML reads an unquoted timestamp as a datetime; keep it as the instant it names.
        if isinstance(value, datetime):
            value = value.isoformat()
        try:
            parse_instant(value)
        except (ClockError, TypeError) as exc:
            raise ValueError(f"not an ISO-8601 instant: {value!r}") from exc
        return value


def load_scenario(path: Path) -> Scenario:
    """Load and check a scenario; all problems are reported together, each as file:line."""
    data, lines = yamlines.load(path)
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}:1: a scenario is a mapping with name, fixtures and steps")
    problems: list[str] = []

    def problem(at: tuple[str | int, ...], message: str) -> None:
        line = yamlines.line_of(lines, at)
        problems.append(f"{path}:{line or 1}: {message}")

    raw_steps = data.pop("steps", []) or []
    try:
        scenario = Scenario.model_validate({**data, "source": str(path)})
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(map(str, error["loc"]))
            problem(tuple(error["loc"]), f"{where}: {_message(error)}")
        scenario = None
    steps = _steps(raw_steps, problem, lines)
    if scenario is not None and not problems:
        scenario.steps = steps
        _check_names(scenario, problem)
    if problems:
        raise ScenarioError("\n".join(problems))
    assert scenario is not None
    return scenario


def _steps(raw: Any, problem: Any, lines: dict[Any, int]) -> list[Step]:
    if not isinstance(raw, list):
        problem(("steps",), "steps is a list of single-key mappings such as `- clock.advance: P1D`")
        return []
    steps = []
    for index, item in enumerate(raw):
        at: tuple[str | int, ...] = ("steps", index)
        if not isinstance(item, dict) or len(item) != 1:
            problem(at, "each step is one mapping with one key, the step's name")
            continue
        ((kind, params),) = item.items()
        model = STEPS.get(kind)
        if model is None:
            problem((*at, kind), f"unknown step {kind!r}; known steps: {', '.join(STEPS)}")
            continue
        if kind in _SCALAR and not isinstance(params, dict):
            params = {_SCALAR[kind]: params}
        try:
            steps.append(
                Step(
                    kind=kind,
                    params=model.model_validate(params or {}),
                    line=yamlines.line_of(lines, at),
                )
            )
        except ValidationError as exc:
            for error in exc.errors():
                where = ".".join(map(str, error["loc"]))
                problem(
                    (*at, kind, *error["loc"]), f"{kind}: {where or 'value'}: {_message(error)}"
                )
    return steps


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    return str(error["msg"])


def _check_names(scenario: Scenario, problem: Any) -> None:
    """Every name a step uses was given by a fixture or an earlier step."""
    f = scenario.fixtures
    known: dict[str, str] = {}
    for kind, items in (
        ("entity", f.entities),
        ("product", f.products),
        ("price", f.prices),
        ("customer", f.customers),
    ):
        for item in items:
            if item.key in known:
                problem(("fixtures",), f"name {item.key!r} is given twice")
            known[item.key] = kind
    for price in f.prices:
        if known.get(price.product) != "product":
            problem(
                ("fixtures", "prices"), f"price {price.key}: no product named {price.product!r}"
            )
    for customer in f.customers:
        if known.get(customer.entity) != "entity":
            problem(
                ("fixtures", "customers"),
                f"customer {customer.key}: no entity named {customer.entity!r}",
            )
    for index, step in enumerate(scenario.steps):
        at = ("steps", index)
        for field, value in step.params:
            wanted = _REFERENCES.get(field)
            if wanted is None or value is None:
                continue
            if known.get(value) != wanted:
                problem(at, f"{step.kind}: {field} {value!r} is not a {wanted} named earlier")
        for line in getattr(step.params, "lines", []) or []:
            if known.get(line.price) != "price":
                problem(at, f"{step.kind}: no price named {line.price!r}")
        if step.kind in (
            "crm.create_opportunity",
            "billing.subscribe",
            "billing.create_subscription",
        ):
            known[step.params.key] = "opportunity"  # type: ignore[attr-defined]


_REFERENCES = {
    "customer": "customer",
    "opportunity": "opportunity",
    "subscription": "opportunity",
    "amends": "opportunity",
    "entity": "entity",
    "price": "price",
}

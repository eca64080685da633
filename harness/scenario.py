"""Scenario files: YAML lifecycle scripts validated whole on load — every reference checked
before anything runs, every problem reported at once with file:line and a "did you mean"."""

from __future__ import annotations

import re
import typing
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from harness import yamlines
from harness.steps import STEPS, Context, Gives, StepKind, Strict, Uses
from harness.steps.expect import did_you_mean
from harness.steps.registry import (
    EntityName,
    NewCustomer,
    NewEntity,
    NewPrice,
    NewProduct,
    ProductName,
    given_by_raw,
    marked_names,
)
from simulators.common.clock import ClockError, parse_instant
from simulators.common.world import DEFAULT_START

_CUSTOM = re.compile(r"^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*__c$")
_SOBJECTS = ("Account", "Opportunity", "OpportunityLineItem", "Product2")
Where = tuple[str | int, ...]
Report = Callable[[Where, str], None]


class ScenarioError(ValueError):
    """A scenario that cannot be played: every problem with file and line."""


# --- fixtures --------------------------------------------------------------------------------
class Entity(Strict):
    key: NewEntity
    name: str
    currency: str = Field(pattern=r"^[a-z]{3}$")


class Rate(Strict):
    base: str = Field(pattern=r"^[a-z]{3}$")
    quote: str = Field(pattern=r"^[a-z]{3}$")
    rate: str = Field(pattern=r"^\d+(\.\d+)?$", description="quote per base, as a decimal")
    effective_on: str | None = Field(
        None,
        pattern=r"^\d{4}-\d{2}-\d{2}$",
        description="YYYY-MM-DD it applies from (default: start)",
    )


class Product(Strict):
    key: NewProduct
    name: str
    ssp_minor: int | None = Field(None, ge=0, description="standalone selling price per unit")
    recognition: Literal["ratable", "point_in_time", "usage"] = "ratable"


class Price(Strict):
    key: NewPrice
    product: ProductName
    currency: str = Field(pattern=r"^[a-z]{3}$")
    unit_amount: int = Field(ge=0, description="minor units")
    interval: Literal["month", "year"] | None = "month"
    interval_count: int = Field(1, ge=1, le=36, description="intervals per billing period")
    usage: bool = False

    @model_validator(mode="after")
    def _at_most_three_years(self) -> Price:
        # Stripe's limit on a recurring price: at most three years between billings.
        if self.interval == "year" and self.interval_count > 3:
            raise ValueError("a price recurs at most every 3 years (interval_count ≤ 3)")
        return self

    @property
    def interval_months(self) -> int:
        """Months in one billing period (a one-off price counts as one)."""
        return (12 if self.interval == "year" else 1) * self.interval_count


class Customer(Strict):
    key: NewCustomer
    name: str
    entity: EntityName
    currency: str = Field(pattern=r"^[a-z]{3}$")
    payment_method: str = "pm_card_visa"
    email: str | None = None
    tax_exempt: Literal["none", "exempt", "reverse"] = Field(
        "none", description="billing's tax exemption: exempt and reverse pay no tax"
    )


_KEY = r"^[a-z][a-z0-9_]{0,39}$"


class TaxRate(Strict):
    """A billing tax rate (``/v1/tax_rates``) subscriptions name by ``key``."""

    key: str = Field(pattern=_KEY)
    percentage: str = Field(pattern=r"^\d{1,2}(\.\d{1,4})?$", description="e.g. 19 or 7.25")
    inclusive: bool = False
    display_name: str = Field("Tax", min_length=1, max_length=50)
    jurisdiction: str | None = Field(None, max_length=50)


class Coupon(Strict):
    """A billing percentage coupon subscriptions name by ``key``."""

    key: str = Field(pattern=_KEY)
    percent_off: str = Field(pattern=r"^\d{1,2}(\.\d{1,2})?$|^100$")
    duration: Literal["forever", "once"] = "forever"
    applies_to: list[str] | None = Field(
        None, min_length=1, max_length=20, description="fixture product keys it is restricted to"
    )


class Fixtures(Strict):
    entities: list[Entity] = Field(default_factory=list)
    rates: list[Rate] = Field(default_factory=list)
    products: list[Product] = Field(default_factory=list)
    prices: list[Price] = Field(default_factory=list)
    customers: list[Customer] = Field(default_factory=list)
    tax_rates: list[TaxRate] = Field(default_factory=list)
    coupons: list[Coupon] = Field(default_factory=list)
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


class Step(BaseModel):
    kind: str
    params: StepKind
    line: int | None = None


class Scenario(Strict):
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
    try:
        data, lines = yamlines.load(path)
    except yamlines.YamlError as exc:
        raise ScenarioError(str(exc)) from None
    return scenario_from_data(data, lines, str(path))


def scenario_from_data(
    data: Any, lines: dict[Where, int] | None = None, source: str = "<scenario>"
) -> Scenario:
    """A scenario from its parsed document (``lines``: where each value is, when read from a
    file); raises ScenarioError with every problem found, fixtures, steps and names alike."""
    lines = lines or {}
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}:1: a scenario is a mapping with name, fixtures and steps")
    problems: list[tuple[int, str]] = []

    def problem(at: Where, message: str) -> None:
        line = yamlines.line_of(lines, at) or 1
        problems.append((line, f"{source}:{line}: {message}"))

    data = dict(data)
    raw_steps = data.pop("steps", []) or []
    scenario: Scenario | None = None
    try:
        scenario = Scenario.model_validate({**data, "source": source})
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(map(str, error["loc"]))
            problem(tuple(error["loc"]), f"{where}: {_message(error, Scenario)}")
    steps = _steps(raw_steps, problem, lines)
    if scenario is not None:
        scenario.steps = [step for step in steps if step is not None]
        _check_references(scenario.fixtures, scenario.start_at, steps, raw_steps, problem)
    else:
        # Still check every reference, against the fixtures that are valid (and the names
        # the others give), so one pass reports everything.
        fixtures, given = _valid_fixtures(data.get("fixtures"))
        start = data.get("start_at") or DEFAULT_START
        start = start.isoformat() if isinstance(start, datetime) else str(start)
        try:
            parse_instant(start)
        except ValueError:  # reported above
            start = DEFAULT_START
        _check_references(fixtures, str(start), steps, raw_steps, problem, given)
    if problems:
        # In file order: a reader fixes them top to bottom.
        raise ScenarioError("\n".join(text for _, text in sorted(problems, key=lambda p: p[0])))
    assert scenario is not None
    return scenario


def _steps(raw: Any, problem: Report, lines: dict[Where, int]) -> list[Step | None]:
    """Every step validated by its kind's model; None where one is not valid."""
    if not isinstance(raw, list):
        problem(("steps",), "steps is a list of single-key mappings such as `- clock.advance: P1D`")
        return []
    steps: list[Step | None] = []
    for index, item in enumerate(raw):
        at: Where = ("steps", index)
        steps.append(None)
        if not isinstance(item, dict) or len(item) != 1:
            problem(at, "each step is one mapping with one key, the step's name")
            continue
        ((kind, params),) = item.items()
        model = STEPS.get(kind)
        if model is None:
            problem(
                (*at, kind),
                f"unknown step {kind!r}{did_you_mean(str(kind), list(STEPS))}; "
                f"known steps: {', '.join(STEPS)}",
            )
            continue
        if model.scalar_field is not None and not isinstance(params, dict):
            params = {model.scalar_field: params}
        try:
            steps[-1] = Step(
                kind=kind,
                params=model.model_validate(params or {}),
                line=yamlines.line_of(lines, at),
            )
        except ValidationError as exc:
            for error in exc.errors():
                where = ".".join(map(str, error["loc"]))
                problem(
                    (*at, kind, *error["loc"]),
                    f"{kind}: {where or 'value'}: {_message(error, model)}",
                )
    return steps


def _message(error: Any, model: type[BaseModel]) -> str:
    if error["type"] != "extra_forbidden":
        return str(error["msg"])
    # The keys the model takes where the unknown one is, for a "did you mean".
    for part in error["loc"][:-1]:
        info = model.model_fields.get(str(part)) if isinstance(part, str) else None
        if info is None:
            continue
        nested = [a for a in (info.annotation, *typing.get_args(info.annotation)) if _is_model(a)]
        if not nested:
            return "unknown key"
        model = nested[0]
    return "unknown key" + did_you_mean(str(error["loc"][-1]), list(model.model_fields))


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _valid_fixtures(raw: Any) -> tuple[Fixtures, dict[str, str]]:
    """The fixtures that are valid one by one, and the names the invalid ones give."""
    given: dict[str, str] = {}
    valid: dict[str, Any] = {}
    for field, info in Fixtures.model_fields.items():
        items = raw.get(field) if isinstance(raw, dict) else None
        (model, *_) = typing.get_args(info.annotation) or (None,)
        if not isinstance(items, list) or not (
            isinstance(model, type) and issubclass(model, BaseModel)
        ):
            continue
        valid[field] = []
        for item in items:
            try:
                valid[field].append(model.model_validate(item))
            except ValidationError:
                given.update(given_by_raw(model, item))
    return Fixtures.model_construct(**valid), given


def _check_references(
    fixtures: Fixtures,
    start_at: str,
    steps: list[Step | None],
    raw: list[Any],
    problem: Report,
    given: dict[str, str] | None = None,
) -> None:
    """Every name a fixture or step uses was given by a fixture or an earlier step (of the
    kind it needs), and each step's own checks hold, with the clock as the steps move it."""
    ctx = Context(fixtures, dict(given or {}), parse_instant(start_at))
    fixture_names = list(marked_names(fixtures, ("fixtures",)))
    for where, value, mark in fixture_names:
        if isinstance(mark, Gives):
            _give(ctx, where, value, mark.kind, problem)
    for where, value, mark in fixture_names:
        if isinstance(mark, Uses):
            _use(ctx, where, value, mark, _dotted(where) + ": ", problem)
    listed: dict[tuple[str, str], str] = {}
    for n, price in enumerate(fixtures.prices):
        first = listed.setdefault((price.product, price.currency), price.key)
        if first != price.key:
            problem(
                ("fixtures", "prices", n),
                f"prices {first} and {price.key} are both {price.product} in {price.currency}: "
                "the CRM price book holds one entry per product and currency",
            )
    products = {p.key for p in fixtures.products}
    for n, coupon in enumerate(fixtures.coupons):
        for k, key in enumerate(coupon.applies_to or []):
            if key not in products:
                problem(
                    ("fixtures", "coupons", n, "applies_to", k),
                    f"coupon {coupon.key} applies to {key!r}, which is not a fixture product",
                )
    for index, step in enumerate(steps):
        if step is None:
            # Not valid: still, later steps may use the names it gives without a second report.
            item = raw[index] if isinstance(raw[index], dict) else {}
            for name, params in item.items():
                if name in STEPS:
                    for value, kind in given_by_raw(STEPS[name], params):
                        ctx.names.setdefault(value, kind)
            continue
        at: Where = ("steps", index, step.kind)
        gives: list[tuple[Where, str, str]] = []
        for path, value, mark in step.params.references():
            if isinstance(mark, Uses):
                _use(ctx, (*at, *path), value, mark, f"{step.kind}: {_dotted(path)}: ", problem)
            else:
                gives.append(((*at, *path), value, mark.kind))
        for found in step.params.check(ctx):
            problem((*at, *found.at), f"{step.kind}: {found.message}")
        for where, value, kind in gives:
            _give(ctx, where, value, kind, problem)
        step.params.track(ctx)


def _give(ctx: Context, at: Where, value: str, kind: str, problem: Report) -> None:
    before = ctx.names.get(value)
    if before is not None and not (before == kind == "faults"):
        problem(at, f"name {value!r} is given twice (first to a {before})")
    ctx.names[value] = kind


def _use(ctx: Context, at: Where, value: str, mark: Uses, prefix: str, problem: Report) -> None:
    if ctx.names.get(value) in mark.kinds:
        return
    problem(
        at,
        f"{prefix}no {' or '.join(mark.kinds)} named {value!r}"
        + (" before this step" if at[0] == "steps" else "")
        + did_you_mean(value, ctx.named(*mark.kinds)),
    )


def _dotted(at: Where) -> str:
    """``lines[0].price`` for a path inside a document."""
    out = ""
    for part in at:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + part
    return out


def dump_scenario(scenario: Scenario) -> str:
    """The scenario as a YAML file ``load_scenario`` reads back to the same scenario."""
    data: dict[str, Any] = {"name": scenario.name}
    if scenario.description:
        data["description"] = scenario.description
    data |= {
        "start_at": scenario.start_at,
        "seed": scenario.seed,
        "fixtures": scenario.fixtures.model_dump(mode="json", exclude_defaults=True),
        "steps": [_dump_step(step) for step in scenario.steps],
    }
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def _dump_step(step: Step) -> dict[str, Any]:
    params = step.params.model_dump(mode="json", exclude_defaults=True)
    field = step.params.scalar_field
    if field is not None and set(params) == {field}:
        return {step.kind: params[field]}  # `clock.advance: P1D`, `integration: kill`
    return {step.kind: params}

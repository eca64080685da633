"""The step registry: one class per step kind — its parameters, executor, oracle replay, names
and doc row — registered in one place."""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    ClassVar,
    Literal,
    Protocol,
    TypeVar,
    get_args,
    get_origin,
)

from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo

if TYPE_CHECKING:
    from harness.oracle.billing import BillingReplay
    from harness.play import Run
    from harness.scenario import Fixtures

# What scenario names name: fixtures give the first four, steps the others.
NAME_KINDS = ("entity", "product", "price", "customer", "opportunity", "subscription", "faults")
DEAL = ("opportunity", "subscription")  # a deal: a CRM opportunity or a billing-made subscription
_SYSTEM_ORDER = (
    "crm",
    "billing",
    "clock",
    "erp",
    "revrec",
    "faults",
    "webhook",
    "integration",
    "expect",
)
_KIND = re.compile(r"^[a-z]+(\.[a-z_]+)?$")

Path = tuple[str | int, ...]
T = TypeVar("T")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Uses:
    """Marks a parameter that names something a fixture or an earlier step gave."""

    kinds: tuple[str, ...]


@dataclass(frozen=True)
class Gives:
    """Marks a parameter that gives a new name later steps may use."""

    kind: str


@dataclass(frozen=True)
class Problem:
    """Something wrong with a step's parameters, at a path inside them."""

    at: Path
    message: str


# Parameter types that name things: the loader checks each was given earlier.
EntityName = Annotated[str, Uses(("entity",))]
ProductName = Annotated[str, Uses(("product",))]
PriceName = Annotated[str, Uses(("price",))]
CustomerName = Annotated[str, Uses(("customer",))]
OpportunityName = Annotated[str, Uses(("opportunity",))]
SubscriptionName = Annotated[str, Uses(("subscription",))]
FaultsName = Annotated[str, Uses(("faults",))]
_KEY = Field(min_length=1, max_length=64)
# And the ones that give a name later steps may use.
NewEntity = Annotated[str, Gives("entity"), _KEY]
NewProduct = Annotated[str, Gives("product"), _KEY]
NewPrice = Annotated[str, Gives("price"), _KEY]
NewCustomer = Annotated[str, Gives("customer"), _KEY]
NewOpportunity = Annotated[str, Gives("opportunity"), _KEY]
NewSubscription = Annotated[str, Gives("subscription"), _KEY]
NewFaults = Annotated[str, Gives("faults"), _KEY]


class Line(Strict):
    price: PriceName
    quantity: int = Field(1, ge=0)


class Chooser(Protocol):
    """What a step kind draws its generated parameters with (the fuzzer's Hypothesis data)."""

    def pick(self, options: Sequence[T]) -> T: ...

    def integer(self, low: int, high: int) -> int: ...

    def boolean(self) -> bool: ...


class Lifecycle(Protocol):
    """What a step kind generating its parameters may ask of the lifecycle played so far (the
    fuzzer's model of it: the load-time context, the oracle's replay, its own bookkeeping).
    Each question answers with something valid now, or None when there is none."""

    @property
    def ctx(self) -> Context: ...

    def fresh(self, prefix: str) -> str:
        """A name not given yet."""
        ...

    def customer(self, c: Chooser, flow: str) -> str | None:
        """A customer for a new deal of ``flow`` (crm | billing): each keeps to one."""
        ...

    def lines(
        self, c: Chooser, like: str | None = None, customer: str | None = None
    ) -> list[dict[str, Any]]:
        """Lines for a subscription: one currency and cadence (those of deal ``like``); a
        metered price only on a new deal of a ``customer`` metered nowhere else."""
        ...

    def deal(self, c: Chooser, crm: bool = False) -> str | None:
        """A deal with an active subscription that may change now (``crm``: a won opportunity)."""
        ...

    def ref(self, deal: str) -> dict[str, str]:
        """How a billing step names the deal: ``{opportunity: …}`` or ``{subscription: …}``."""
        ...

    def customer_of(self, deal: str) -> str: ...

    def unwon(self, c: Chooser) -> str | None:
        """An opportunity created and not won, whose deal (if it amends one) may change now."""
        ...

    def metered(self, c: Chooser) -> tuple[str, str] | None:
        """(customer, price) of a live subscription's metered item."""
        ...

    def owing(self, c: Chooser) -> str | None:
        """A customer with an open invoice."""
        ...

    def creditable(self, c: Chooser) -> tuple[str, str, int] | None:
        """(customer, status, room) of the latest finalised invoice that can be credited."""
        ...

    def closable(self, c: Chooser, system: str) -> tuple[str, str] | None:
        """(entity, YYYY-MM) of an ended month ``system`` may close now."""
        ...

    def fault_rules(self, c: Chooser) -> list[dict[str, Any]]:
        """A fault window's rules."""
        ...

    def voidable(self, c: Chooser) -> str | None:
        """A customer whose latest open invoice no credit note touched."""
        ...

    def slipped(self, c: Chooser) -> str | None:
        """A new deal won while the integration is down, not acted on yet."""
        ...


@dataclass
class Context:
    """What a step is checked against at load, and generated from when fuzzing: the fixtures,
    every name given so far (name → kind) and the simulated clock as the steps move it."""

    fixtures: Fixtures
    names: dict[str, str]
    now: int = 0  # unix seconds, as the scenario's clock stands before the step
    won: set[str] = dataclasses.field(default_factory=set)  # opportunities closed won so far
    cancelled: set[str] = dataclasses.field(default_factory=set)  # deals cancelled at once so far
    faults: set[str] = dataclasses.field(default_factory=set)  # fault windows on now
    stopped: bool = False  # the integration stopped or killed, not started again
    # Opportunities won while it was down: it has not acted on them yet.
    unseen: set[str] = dataclasses.field(default_factory=set)

    def named(self, *kinds: str) -> list[str]:
        return [name for name, kind in self.names.items() if kind in kinds]

    @property
    def prices(self) -> dict[str, Any]:
        return {p.key: p for p in self.fixtures.prices}

    @property
    def customers(self) -> dict[str, Any]:
        return {c.key: c for c in self.fixtures.customers}


class StepKind(Strict):
    """A step: its fields are its parameters. A subclass registered with ``@register`` is one
    step kind; the class docstring is what the runner does (its row in docs/scenarios.md)."""

    step_kind: ClassVar[str] = ""
    # It changes what billing invoices, credits or collects, or what the books recognise: the
    # oracle must follow it (``replay``), or its predictions would silently go stale.
    moves_money: ClassVar[bool] = False
    scalar_field: ClassVar[str | None] = None  # `clock.advance: P1D` fills this field
    # Why the fuzzer never generates it (None: ``generate`` is defined).
    not_generated: ClassVar[str | None] = None
    # People do it on the vendors while the integration is down too: the fuzzer plays it then.
    plays_while_down: ClassVar[bool] = False

    def execute(self, run: Run) -> str:
        """Act it out on the served world; the note the report shows."""
        raise NotImplementedError

    def replay(self, oracle: BillingReplay, index: int) -> None:
        """What the oracle follows of it (``index`` is 0-based): nothing by default."""

    def check(self, ctx: Context) -> Iterator[Problem]:
        """Problems beyond the model and the names (a currency mix, an unknown rule, …)."""
        return iter(())

    def track(self, ctx: Context) -> None:
        """What the step changes of the context later steps are checked against (the clock,
        the deals won, the fault windows on): nothing by default."""

    @classmethod
    def generate(cls, c: Chooser, life: Lifecycle) -> dict[str, Any] | None:
        """Valid parameters for a step now, or None when none fits (e.g. no deal yet): what
        the fuzzer plays. A kind it must not play says why in ``not_generated``."""
        return None

    # --- names --------------------------------------------------------------------------------
    def references(self) -> Iterator[tuple[Path, str, Uses | Gives]]:
        """Every (path, value, mark) of the names it uses and gives, nested lines included."""
        yield from marked_names(self)


S = TypeVar("S", bound=type[StepKind])
STEPS: dict[str, type[StepKind]] = {}


def register(kind: str) -> Callable[[S], S]:
    """Register a step kind under its scenario name; refuses an incomplete one at import."""

    def add(cls: S) -> S:
        if not _KIND.match(kind) or kind.split(".")[0] not in _SYSTEM_ORDER:
            raise ValueError(
                f"step kind {kind!r} is not `system.action` with system in {_SYSTEM_ORDER}"
            )
        if kind in STEPS:
            raise ValueError(f"step kind {kind} is registered twice")
        if not inspect.getdoc(cls) or cls.__doc__ is None:
            raise TypeError(f"step {kind} ({cls.__name__}) needs a docstring: its doc row")
        if cls.execute is StepKind.execute:
            raise TypeError(f"step {kind} ({cls.__name__}) has no executor")
        if cls.moves_money and cls.replay is StepKind.replay:
            raise TypeError(
                f"step {kind} ({cls.__name__}) moves money but has no oracle replay: "
                "the oracle would silently stop predicting"
            )
        fields: dict[str, FieldInfo] = getattr(cls, "model_fields")  # noqa: B009
        if cls.scalar_field is not None and cls.scalar_field not in fields:
            raise TypeError(f"step {kind}: scalar_field {cls.scalar_field!r} is not a field")
        generated = cls.generate.__func__ is not StepKind.generate.__func__  # type: ignore[attr-defined]
        if generated == (cls.not_generated is not None):
            raise TypeError(
                f"step {kind} ({cls.__name__}): give it a generator for the fuzzer, or say in "
                "not_generated why it has none (not both)"
            )
        cls.step_kind = kind
        # Kept in the flow's order (CRM, billing, clock, periods, faults, …) for docs and errors.
        every: dict[str, type[StepKind]] = {**STEPS, kind: cls}
        ordered = sorted(every.items(), key=lambda kv: _rank(kv[0]))
        STEPS.clear()
        STEPS.update(ordered)
        return cls

    return add


def _rank(kind: str) -> int:
    return _SYSTEM_ORDER.index(kind.split(".")[0])


# --- names in a model ----------------------------------------------------------------------
def marked_names(model: BaseModel, at: Path = ()) -> Iterator[tuple[Path, str, Uses | Gives]]:
    """The Uses/Gives-marked string fields of a model and of the models nested in it."""
    for field, info in type(model).model_fields.items():
        value = getattr(model, field)
        if isinstance(value, str):
            for mark in marks(info):
                yield (*at, field), value, mark
        yield from _nested(value, (*at, field))


def marks(info: FieldInfo) -> list[Uses | Gives]:
    """A field's name marks: on the field, or on a member of its optional type."""
    found = [m for m in info.metadata if isinstance(m, Uses | Gives)]
    for arg in get_args(info.annotation):
        found += [m for m in getattr(arg, "__metadata__", ()) if isinstance(m, Uses | Gives)]
    return found


def _nested(value: Any, at: Path) -> Iterator[tuple[Path, str, Uses | Gives]]:
    if isinstance(value, BaseModel):
        yield from marked_names(value, at)
    elif isinstance(value, list):
        for n, item in enumerate(value):
            yield from _nested(item, (*at, n))


def given_by_raw(cls: type[BaseModel], raw: Any) -> Iterator[tuple[str, str]]:
    """The names a step (or fixture) that failed validation would have given, so later
    steps that use them are not reported too."""
    if not isinstance(raw, Mapping):
        return
    for field, info in cls.model_fields.items():
        for mark in marks(info):
            if isinstance(mark, Gives) and isinstance(raw.get(field), str):
                yield raw[field], mark.kind


# --- the doc table ---------------------------------------------------------------------------
def steps_markdown() -> str:
    """The step table of docs/scenarios.md, one row per registered kind."""
    rows = [
        "| step | parameters | names | what the runner does |",
        "|---|---|---|---|",
    ]
    for kind, cls in STEPS.items():
        rows.append(f"| `{kind}` | {_parameters(cls)} | {_names(cls)} | {_doc(cls)} |")
    return "\n".join(rows) + "\n"


def _doc(cls: type[StepKind]) -> str:
    text = " ".join((inspect.getdoc(cls) or "").split())
    money = "" if not cls.moves_money else " *(the oracle follows it)*"
    return text.replace("|", "\\|") + money


def _parameters(cls: type[StepKind]) -> str:
    parts = []
    for field, info in cls.model_fields.items():
        part = f"`{field}{_shape(info.annotation)}`"
        choices = _choices(info.annotation)
        if choices:
            part += " " + "/".join(choices)
        notes = [info.description] if info.description else []
        if cls.scalar_field == field:
            notes.append(f"also `{cls.step_kind}: <{field}>`")
        if notes:
            part += f" ({'; '.join(str(n) for n in notes)})"
        parts.append(part)
    return ", ".join(parts).replace("|", "\\|") or "—"


def _shape(annotation: Any) -> str:
    """`lines[{price, quantity}]` for a list of models."""
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        if isinstance(item, type) and issubclass(item, Strict):
            return "[{" + ", ".join(item.model_fields) + "}]"
    return ""


def _choices(annotation: Any) -> list[str]:
    for arg in (annotation, *get_args(annotation)):
        if get_origin(arg) is Literal:
            return [str(a) for a in get_args(arg)]
    return []


def _names(cls: type[StepKind]) -> str:
    gives, uses = [], []
    for field, info in _all_fields(cls):
        for mark in marks(info):
            if isinstance(mark, Gives):
                gives.append(f"gives {mark.kind} (`{field}`)")
            elif isinstance(mark, Uses):
                uses.append(f"`{field}`: {' or '.join(mark.kinds)}")
    return "; ".join(gives + uses) or "—"


def _all_fields(cls: type[BaseModel]) -> Iterator[tuple[str, FieldInfo]]:
    for field, info in cls.model_fields.items():
        yield field, info
        annotation = info.annotation
        if get_origin(annotation) is list:
            (item,) = get_args(annotation)
            if isinstance(item, type) and issubclass(item, BaseModel):
                for sub, sub_info in _all_fields(item):
                    yield f"{field}[].{sub}", sub_info

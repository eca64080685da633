"""The `expect` step and the figures it may name, each checked against the scenario at load."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from harness.steps.registry import DEAL, Context, Problem, StepKind, register

if TYPE_CHECKING:
    from harness.play import Run


@dataclass(frozen=True)
class Figure:
    """A figure an `expect` step compares: ``kind:<part>:<part>`` read from the books."""

    kind: str
    parts: tuple[str, ...]  # deal | customer | entity | price | n | month
    means: str

    @property
    def pattern(self) -> str:
        return ":".join([self.kind, *(f"<{part}>" for part in self.parts)])


FIGURES = {
    f.kind: f
    for f in (
        Figure(
            "invoice_total",
            ("deal", "n"),
            "total of the n-th invoice (1-based, creation order) of the deal's subscription",
        ),
        Figure("amount_due", ("deal", "n"), "its amount due"),
        Figure("invoice_count", ("deal",), "finalised invoices of the subscription"),
        Figure(
            "erp_invoice_total",
            ("deal", "n"),
            "the ERP invoice posted for it (Σ item amounts + tax)",
        ),
        Figure(
            "erp_ar_open",
            ("deal", "n"),
            "that ERP invoice's total less what payments and credit memos applied",
        ),
        Figure("balance", ("customer",), "the billing customer balance (negative = credit)"),
        Figure(
            "allocated",
            ("deal", "price"),
            "the transaction price the subledger allocates to the deal's contract line for "
            "that price (its live line, else its last)",
        ),
        Figure("recognised", ("entity", "month"), "revenue the subledger recognised in that month"),
        Figure("deferred", ("entity",), "the subledger's deferred revenue balance now"),
    )
}
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def figures_markdown() -> str:
    """The figure table of docs/scenarios.md."""
    rows = ["| figure | value |", "|---|---|"]
    rows += [f"| `{f.pattern}` | {f.means} |" for f in FIGURES.values()]
    return "\n".join(rows) + "\n"


def did_you_mean(word: str, known: list[str]) -> str:
    matches = difflib.get_close_matches(word, known, n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(map(repr, matches))}?" if matches else ""


def figure_problems(name: str, ctx: Context) -> Iterator[str]:
    """What is wrong with a figure name in this scenario, each part named."""
    kind, *parts = name.split(":")
    figure = FIGURES.get(kind)
    if figure is None:
        yield f"unknown figure {kind!r}{did_you_mean(kind, list(FIGURES))}; known: " + ", ".join(
            f.pattern for f in FIGURES.values()
        )
        return
    if len(parts) != len(figure.parts):
        yield f"figure {name!r} is {figure.pattern}"
        return
    for part, value in zip(figure.parts, parts, strict=True):
        if part == "n":
            if not value.isdigit() or int(value) < 1:
                yield f"figure {name!r}: <n> is a 1-based invoice number, not {value!r}"
        elif part == "month":
            if not _MONTH.match(value):
                yield f"figure {name!r}: <month> is YYYY-MM, not {value!r}"
        else:
            kinds = DEAL if part == "deal" else (part,)
            if ctx.names.get(value) not in kinds:
                known = ctx.named(*kinds)
                yield (
                    f"figure {name!r}: no {' or '.join(kinds)} named {value!r} before this step"
                    + did_you_mean(value, known)
                )


@register("expect")
class Expect(StepKind):
    """Judged at that point: the invariants and the oracle, and each figure against the books
    (and the oracle's prediction of it)."""

    not_generated: ClassVar[str | None] = "the fuzzer judges after every step itself"
    invariants: Literal["all"] | list[str] = Field("all", description="all or rule ids")
    figures: dict[str, int | str] = Field(default_factory=dict, description="{name: value}")

    def execute(self, run: Run) -> str:
        # Judged by the runner once the step has settled, like every step (play._expect).
        return f"expect {len(self.figures)} figure(s), invariants {self.invariants}"

    def check(self, ctx: Context) -> Iterator[Problem]:
        for name, value in self.figures.items():
            for message in figure_problems(name, ctx):
                yield Problem(("figures", name), message)
            if isinstance(value, str) and not re.fullmatch(r"-?\d+", value.strip()):
                yield Problem(("figures", name), f"figure {name!r}: {value!r} is not an amount")
        if self.invariants != "all":
            from harness.invariants import REGISTRY  # the judge's rules, loaded when named

            for n, rule in enumerate(self.invariants):
                if rule not in REGISTRY:
                    yield Problem(
                        ("invariants", n),
                        f"unknown invariant {rule!r}{did_you_mean(rule, list(REGISTRY))}",
                    )

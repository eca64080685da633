"""The invariant registry: one decorator, one table, one function that runs them all."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass

from harness.books import Books, gc_paused
from harness.handoffs import HANDOFFS
from harness.violations import Violation

Check = Callable[[Books], Iterable[Violation]]
GROUPS = (
    "ledger",
    "billing_ar",
    "lifecycle",
    "subledger",
    "fx",
    "crm_billing",
    "delivery",
    "contract",
    "exceptions",
)


@dataclass(frozen=True)
class Invariant:
    """A registered check: its catalogue id, group, function name, business rule and the
    hand-offs it judges (none: it judges the integration's own traffic, or guards a rule the
    simulators enforce, and always runs)."""

    id: str
    group: str
    name: str
    rule: str
    check: Check
    handoffs: tuple[str, ...] = ()

    def judged(self, scope: Collection[str]) -> bool:
        """Whether the integration under test owns anything this rule judges."""
        return not self.handoffs or any(h in scope for h in self.handoffs)


REGISTRY: dict[str, Invariant] = {}


def invariant(
    rule_id: str, *, group: str, handoffs: Sequence[str] = ()
) -> Callable[[Check], Check]:
    """Register ``fn`` under ``rule_id``; its docstring is the business rule it states, and
    ``handoffs`` what it judges (it runs only when the integration owns one of them)."""
    if group not in GROUPS:
        raise ValueError(f"unknown invariant group {group!r}; known: {', '.join(GROUPS)}")
    unknown = [h for h in handoffs if h not in HANDOFFS]
    if unknown:
        raise ValueError(f"invariant {rule_id}: unknown hand-off(s) {unknown}")

    def register(fn: Check) -> Check:
        if rule_id in REGISTRY:
            raise ValueError(f"invariant {rule_id} is registered twice")
        doc = inspect.getdoc(fn)
        if not doc:
            raise ValueError(f"invariant {rule_id} ({fn.__name__}) needs its rule as docstring")
        REGISTRY[rule_id] = Invariant(rule_id, group, fn.__name__, doc, fn, tuple(handoffs))
        return fn

    return register


def check_all(
    books: Books, only: Collection[str] | None = None, skip: Collection[str] = ()
) -> list[Violation]:
    """Every violation of every registered invariant the books' scope judges (or of ``only``,
    less ``skip``), in registry order.

    No invariant stops the others: one that raises is reported as a violation of its rule.
    """
    unknown = (set(only or ()) | set(skip)) - set(REGISTRY)
    if unknown:
        raise ValueError(f"unknown invariant(s): {', '.join(sorted(unknown))}")
    # The checks build indexes over a snapshot and free nothing while they run (seconds of
    # collections at a million ledger lines otherwise).
    with gc_paused():
        return _check(books, only, skip)


def _check(books: Books, only: Collection[str] | None, skip: Collection[str]) -> list[Violation]:
    found: list[Violation] = []
    for inv in REGISTRY.values():
        if (only is not None and inv.id not in only) or inv.id in skip:
            continue
        if not inv.judged(books.scope):
            continue
        try:
            for v in inv.check(books):
                found.append(v if v.rule == inv.id else dataclasses.replace(v, rule=inv.id))
        except Exception as exc:  # a broken check must not hide the other checks' findings
            found.append(
                Violation(
                    inv.id,
                    f"the check {inv.name} failed: {exc!r}",
                    details={"error": repr(exc)},
                )
            )
    return found

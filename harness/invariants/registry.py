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


# What most rules read: every store's documents and the figures as of now — not the ERP's
# accounting periods, the request journals, the deliveries, the exception list or forged
# pushes (each named apart: ``erp_periods``, ``journal.*``, ``deliveries``, ``exceptions``,
# ``forged``; ``harness.books.resource`` names the rest).
DOCUMENTS = ("billing.*", "crm.*", "erp.*", "revrec.*", "now")


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
    # What of the books it reads (``system.attribute``, ``system.*``, ``journal.*``,
    # ``deliveries``, ``now``, ``exceptions``, ``forged``); None: anything. A rule that says
    # is not run again on books in which none of it changed: its last findings stand.
    reads: tuple[str, ...] | None = None

    def judged(self, scope: Collection[str]) -> bool:
        """Whether the integration under test owns anything this rule judges."""
        return not self.handoffs or any(h in scope for h in self.handoffs)

    def unmoved(self, changed: Iterable[str]) -> bool:
        """True when none of what this rule reads is among ``changed``."""
        if self.reads is None:
            return False
        exact = {r for r in self.reads if not r.endswith("*")}
        prefixes = tuple(r[:-1] for r in self.reads if r.endswith("*"))
        return not any(c in exact or c.startswith(prefixes) for c in changed)


REGISTRY: dict[str, Invariant] = {}


def invariant(
    rule_id: str,
    *,
    group: str,
    handoffs: Sequence[str] = (),
    reads: Sequence[str] | None = None,
) -> Callable[[Check], Check]:
    """Register ``fn`` under ``rule_id``; its docstring is the business rule it states,
    ``handoffs`` what it judges (it runs only when the integration owns one of them) and
    ``reads`` what of the books it reads (tests/invariants/test_reads.py holds it to that)."""
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
        REGISTRY[rule_id] = Invariant(
            rule_id,
            group,
            fn.__name__,
            doc,
            fn,
            tuple(handoffs),
            None if reads is None else tuple(reads),
        )
        return fn

    return register


# Each rule's findings on the books it last ran on: (their generation, the findings).
Memo = dict[str, tuple[int, list[Violation]]]


def check_all(
    books: Books,
    only: Collection[str] | None = None,
    skip: Collection[str] = (),
    memo: Memo | None = None,
) -> list[Violation]:
    """Every violation of every registered invariant the books' scope judges (or of ``only``,
    less ``skip``), in registry order.

    No invariant stops the others: one that raises is reported as a violation of its rule.
    With a ``memo`` (kept across the steps of one run), a rule whose reads did not change
    since the books it last ran on (the snapshot these were taken after) is not run again:
    judging a step costs what the step changed, not the whole world again.
    """
    unknown = (set(only or ()) | set(skip)) - set(REGISTRY)
    if unknown:
        raise ValueError(f"unknown invariant(s): {', '.join(sorted(unknown))}")
    # The checks build indexes over a snapshot and free nothing while they run (seconds of
    # collections at a million ledger lines otherwise).
    with gc_paused():
        return _check(books, only, skip, {} if memo is None else memo)


def _check(
    books: Books, only: Collection[str] | None, skip: Collection[str], memo: Memo
) -> list[Violation]:
    found: list[Violation] = []
    for inv in REGISTRY.values():
        if (only is not None and inv.id not in only) or inv.id in skip:
            continue
        if not inv.judged(books.scope):
            continue
        last = memo.get(inv.id)
        if (
            last is not None
            and books.changed is not None
            and last[0] == books.since
            and inv.unmoved(books.changed)
        ):
            mine = last[1]
        else:
            mine = _run(inv, books)
        memo[inv.id] = (books.generation, mine)
        found += mine
    return found


def _run(inv: Invariant, books: Books) -> list[Violation]:
    found: list[Violation] = []
    try:
        for v in inv.check(books):
            found.append(v if v.rule == inv.id else dataclasses.replace(v, rule=inv.id))
    except Exception as exc:  # a broken check must not hide the other checks' findings
        found.append(
            Violation(inv.id, f"the check {inv.name} failed: {exc!r}", details={"error": repr(exc)})
        )
    return found

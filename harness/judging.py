"""What is judged and how: the scope, the declared links, the rules selected and skipped."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness import oracle
from harness.books import Books, take_books
from harness.config import ConfigError, HarnessConfig, LinksConfig
from harness.forgery import ForgedPush
from harness.handoffs import HANDOFFS
from harness.invariants import REGISTRY, check_all
from harness.invariants.registry import Memo
from harness.oracle.model import Expected
from harness.scenario import Scenario
from harness.steps import Expect
from harness.violations import Violation
from simulators.common.world import World

# Rules beyond the invariant registry that a user may select or skip.
ORACLE = "ORACLE"


def known_rules() -> list[str]:
    return [*REGISTRY, ORACLE]


@dataclass(frozen=True)
class Judge:
    """One run's judgement: which hand-offs the integration owns (the rest are stand-ins'),
    how its documents link, and which rules run."""

    scope: frozenset[str] = frozenset(HANDOFFS)
    links: LinksConfig = field(default_factory=LinksConfig)
    accounts: Mapping[str, str] = field(default_factory=dict)
    base: str = "."
    only: frozenset[str] | None = None
    skip: Mapping[str, str] = field(default_factory=dict)  # rule → why it is not judged
    standins: bool = True
    # Each rule's last findings, so a step is judged on what it changed (see check_all).
    memo: Memo = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_config(
        cls,
        config: HarnessConfig,
        *,
        base: str = ".",
        only: Iterable[str] | None = None,
        skip: Iterable[str] = (),
    ) -> Judge:
        """From ``harness.toml`` ([scope], [links], [judge], [accounts]) and the command line's
        ``--only`` / ``--skip``; an unknown rule id is a ConfigError listing the known ones."""
        known = known_rules()
        skipped = dict(config.judge.skip)
        for rule in skip:
            skipped.setdefault(rule, "skipped with --skip")
        chosen = None if only is None else frozenset(only)
        unknown = sorted((set(skipped) | set(chosen or ())) - set(known))
        if unknown:
            raise ConfigError(
                f"unknown rule(s) {', '.join(unknown)} in --only/--skip or [judge] skip; "
                f"known: {', '.join(known)}"
            )
        return cls(
            scope=frozenset(config.scope.owns),
            links=config.links,
            accounts={str(role): number for role, number in config.accounts.items()},
            base=base,
            only=chosen,
            skip=skipped,
            standins=config.scope.standin,
        )

    def runs(self, rule: str) -> bool:
        return (self.only is None or rule in self.only) and rule not in self.skip

    # --- judging ---------------------------------------------------------------------------
    def books(
        self,
        world: World,
        standin_endpoints: Collection[str] = (),
        forged: Collection[ForgedPush] = (),
        before: Books | None = None,
    ) -> Books:
        return take_books(
            world,
            self.accounts,
            links=self.links,
            scope=self.scope,
            standin_endpoints=standin_endpoints,
            base=self.base,
            forged=forged,
            before=before,
        )

    def check(
        self, books: Books, expect: Expect | None = None, *, afresh: bool = False
    ) -> list[Violation]:
        """The selected invariants the scope judges; an ``expect`` step may narrow them.
        A rule whose reads did not change since the last step keeps its findings, unless
        ``afresh`` (the final judgement runs every rule on the whole world)."""
        only: set[str] | None = None if self.only is None else set(self.only)
        if expect is not None and expect.invariants != "all":
            asked = {rule for rule in expect.invariants if rule in REGISTRY}
            only = asked if only is None else only & asked
        memo = None if afresh else self.memo
        return check_all(books, only=only, skip=set(self.skip) & set(REGISTRY), memo=memo)

    def oracle(self, scenario: Scenario, books: Books, names: Mapping[str, str]) -> list[Violation]:
        return self.oracle_compare(oracle.expect(scenario), books, names)

    def oracle_compare(
        self, expected: Expected, books: Books, names: Mapping[str, str]
    ) -> list[Violation]:
        """The oracle's figures against the books, when ORACLE is judged."""
        if not self.runs(ORACLE):
            return []
        return list(oracle.compare(expected, books, names))

    # --- what the report says was not judged ------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """The hand-offs owned, those played by stand-ins, and every rule not judged, why."""
        not_owned = [h for h in HANDOFFS if h not in self.scope]
        played = [h for h in not_owned if HANDOFFS[h].standin and self.standins]
        not_judged = []
        for rule in known_rules():
            why = self._why_not(rule)
            if why is not None:
                not_judged.append({"rule": rule, "why": why})
        return {
            "owned": [h for h in HANDOFFS if h in self.scope],
            "standins": played,
            "not_played": [h for h in not_owned if h not in played],
            "not_judged": not_judged,
        }

    def _why_not(self, rule: str) -> str | None:
        if rule in self.skip:
            return f"skipped: {self.skip[rule]}"
        if self.only is not None and rule not in self.only:
            return "not selected (--only)"
        inv = REGISTRY.get(rule)
        if inv is not None and not inv.judged(self.scope):
            played = all(HANDOFFS[h].standin and self.standins for h in inv.handoffs)
            who = "stand-ins play them" if played else "nobody plays them"
            return f"judges {', '.join(inv.handoffs)}: none owned ({who})"
        return None

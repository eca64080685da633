"""Assertions shared by the invariant tests."""

from __future__ import annotations

from harness.config import LinksConfig
from harness.violations import Violation
from tests.invariants.stack import Stack


def holds(stack: Stack, rule: str, links: LinksConfig | None = None) -> None:
    found = stack.check(rule, links)
    assert found == [], "\n".join(map(str, found))


def fires(
    stack: Stack, rule: str, *records: str, links: LinksConfig | None = None
) -> list[Violation]:
    """The rule fires, and some violation of it names every one of ``records``."""
    found = stack.check(rule, links)
    assert found, f"{rule} did not fire"
    assert all(v.rule == rule for v in found)
    named = {r for v in found for r in v.records}
    missing = [r for r in records if r not in named]
    assert not missing, f"{rule} does not name {missing}: {[str(v) for v in found]}"
    return found

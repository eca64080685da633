"""The rule registry: stable ids, the direction principle, examples that fire, docs in sync."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.contracts.diff import Document, diff_documents
from harness.contracts.diff_rules import (
    FAMILIES,
    REQUEST_PROPERTY,
    RESPONSE_PROPERTY,
    RULES,
    Level,
    example_document,
    rules_markdown,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "contract-diff.md"
BEGIN, END = "<!-- rules:begin -->", "<!-- rules:end -->"


def test_there_are_at_least_80_rules_with_readable_ids() -> None:
    assert len(RULES) >= 80
    for rule_id in RULES:
        assert re.fullmatch(r"[a-z]+(\.[a-z0-9]+(-[a-z0-9]+)*)+", rule_id), rule_id


@pytest.mark.parametrize("rule_id", list(RULES))
def test_the_example_fires_its_rule_and_nothing_else(rule_id: str) -> None:
    rule = RULES[rule_id]
    old = Document("old", example_document(rule.example.scope, rule.example.old))
    new = Document("new", example_document(rule.example.scope, rule.example.new))
    changes = diff_documents(old, new)
    assert [c.rule for c in changes] == [rule_id]
    assert changes[0].level is rule.level


def test_requests_may_only_widen_and_responses_only_narrow() -> None:
    """Each schema family is breaking in exactly one direction, except incompatible changes
    (breaking both ways) and the ones graded as warnings."""
    both_ways = {"type-changed", "format-changed", "wrapped-in-one-of"}
    graded_as_warning = {"pattern-changed", "additional-properties-allowed"}
    # Graded as oasdiff's published catalogue grades them, not by the direction principle.
    graded_as_oasdiff = {"all-of-removed", "any-of-branch-added", "default-changed"}
    graded_as_oasdiff |= {"default-added", "default-removed"}
    for family in FAMILIES:
        req, resp = family.levels.get(REQUEST_PROPERTY), family.levels.get(RESPONSE_PROPERTY)
        if req is None or resp is None:
            continue
        if family.name in both_ways:
            assert req is resp is Level.BREAKING, family.name
        elif family.name not in graded_as_warning | graded_as_oasdiff:
            assert (req is Level.BREAKING) != (resp is Level.BREAKING), family.name


def test_the_docs_list_every_rule_as_generated_from_the_registry() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert BEGIN in text and END in text, f"{DOC} lacks the {BEGIN} / {END} markers"
    block = text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"
    assert block == rules_markdown(), (
        "docs/contract-diff.md is out of date: replace the block between the markers with "
        "the output of `harness contracts diff --list-rules --format markdown`"
    )
    for rule_id in RULES:
        assert f"`{rule_id}`" in block

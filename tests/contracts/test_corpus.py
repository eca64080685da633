"""The labelled corpus: every pair gets the reviewer's verdict and fires the expected rules."""

from __future__ import annotations

from typing import Any

import pytest

from tests.contracts.corpus import accuracy_line, labels, run_corpus, run_pair
from tests.contracts.summary import ACCURACY_KEY


def test_the_corpus_has_at_least_60_pairs_both_ways() -> None:
    verdicts = [label["verdict"] for label in labels().values()]
    assert len(verdicts) >= 60
    assert set(verdicts) == {"breaking", "non-breaking"}
    assert verdicts.count("breaking") >= 20 and verdicts.count("non-breaking") >= 20


@pytest.mark.parametrize("name", list(labels()))
def test_pair(name: str) -> None:
    outcome = run_pair(name)
    assert outcome.ok, outcome.explain()


def test_corpus_accuracy(record_property: Any) -> None:
    outcomes = run_corpus()
    line = accuracy_line(outcomes)
    record_property(ACCURACY_KEY, line)
    wrong = "\n".join(o.explain() for o in outcomes if not o.ok)
    assert all(o.ok for o in outcomes), f"{line}\n{wrong}"

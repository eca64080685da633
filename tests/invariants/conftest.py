"""Fixtures: one four-system world per worker, reset to its seed before every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.invariants.stack import SEED, START_AT, Stack, serve


@pytest.fixture(scope="session")
def served() -> Iterator[Stack]:
    # Building four apps from their contracts takes seconds: once per worker, reset per test.
    yield from serve()


@pytest.fixture
def stack(served: Stack) -> Stack:
    served.world.reset(seed=SEED, start_at=START_AT)
    served.receiver.count = 0
    return served

"""Scenario steps: the registry, and every step kind registered by importing its module."""

from __future__ import annotations

from harness.steps import (  # noqa: F401  (importing registers them)
    batch,
    billing,
    control,
    crm,
    expect,
    masterdata,
    webhook,
)
from harness.steps.expect import FIGURES, Expect, figures_markdown
from harness.steps.fixtures import apply_fixtures, entity_id, major
from harness.steps.registry import (
    STEPS,
    Context,
    Gives,
    Line,
    Problem,
    StepKind,
    Strict,
    Uses,
    register,
    steps_markdown,
)

__all__ = [
    "FIGURES",
    "STEPS",
    "Context",
    "Expect",
    "Gives",
    "Line",
    "Problem",
    "StepKind",
    "Strict",
    "Uses",
    "apply_fixtures",
    "entity_id",
    "figures_markdown",
    "major",
    "register",
    "steps_markdown",
]

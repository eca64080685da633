"""Invariants over Books: the registry, and every check registered by importing its module."""

from __future__ import annotations

from harness.invariants import (  # noqa: F401  (importing registers the checks)
    authenticity,
    backpressure,
    billing_ar,
    crm_billing,
    delivery,
    exceptions,
    fx,
    ledger,
    lifecycle,
    revenue,
    subledger,
    tax,
)
from harness.invariants.registry import GROUPS, REGISTRY, Invariant, check_all, invariant

__all__ = ["GROUPS", "REGISTRY", "Invariant", "check_all", "invariant"]

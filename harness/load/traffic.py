"""Responses by kind per actor, from the simulators' request journals and the fault plan."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.session import Session
    from simulators.common.journal import JournalEntry

INJECTED = ("error", "hang", "reset", "malformed", "truncated", "ambiguous_commit")


def journal_errors(
    session: Session, until_seq: dict[str, int], fault_kinds: dict[str, str]
) -> dict[str, Any]:
    """The integration's traffic (what faults hit) apart from the load users' (the vendors'
    staff): requests, throttled, outage, injected faults, server and client errors, contract
    violations — up to ``until_seq`` of each journal."""
    by_actor: dict[str, Counter[str]] = {"integration": Counter(), "harness": Counter()}
    violations: dict[str, Counter[str]] = {"integration": Counter(), "harness": Counter()}
    truncated = []
    for name, sim in session.stack.sims.items():
        journal = sim.journal
        kept = journal.snapshot()  # one consistent copy: the integration may still be writing
        if journal.total > len(kept):
            truncated.append(name)
        for entry in kept:
            if entry.seq > until_seq[name] or entry.control:
                continue
            kinds = by_actor.setdefault(entry.actor, Counter())
            kinds["requests"] += 1
            kinds[error_kind(entry, fault_kinds)] += 1
            for message in entry.violations:
                violations.setdefault(entry.actor, Counter())[f"{name}: {message}"[:200]] += 1
    return {
        actor: {
            **{k: v for k, v in sorted(kinds.items()) if k != "ok"},
            "ok": kinds.get("ok", 0),
            "contract_violations": sum(violations.get(actor, Counter()).values()),
            "violation_kinds": dict(violations.get(actor, Counter()).most_common(10)),
        }
        for actor, kinds in by_actor.items()
    } | {"journal_truncated": truncated}


def error_kind(entry: JournalEntry, fault_kinds: dict[str, str]) -> str:
    for rule_id in entry.faults:
        kind = fault_kinds.get(rule_id)
        if kind in ("throttle", "outage"):
            return "throttled" if kind == "throttle" else "outage"
        if kind in INJECTED:
            return f"fault_{kind}"
    status = entry.status
    if status == 429:
        return "throttled"
    if status == 503:
        return "outage"
    if status >= 500 or status == 0:
        return "server_error"
    if status >= 400:
        return "client_error"
    return "ok"


def fault_kinds(state: Any) -> dict[str, str]:
    rules = state.get("rules", []) if isinstance(state, dict) else []
    return {str(r["id"]): str(r["kind"]) for r in rules if "id" in r and "kind" in r}


def fault_hits(state: Any) -> dict[str, int]:
    hits = state.get("hits", []) if isinstance(state, dict) else []
    return dict(Counter(str(hit.get("kind")) for hit in hits))

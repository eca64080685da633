"""The load verdict: each owed document posted, late or lost, backlog apart from loss."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from harness.links import target_key
from harness.load.checks import RuleResult

SHOWN_IDS = 20
Outcome = Literal["posted", "late", "lost", "backlog"]
# Exit codes: a pass, a loss (or duplicate, invariant, crash), usage errors (argparse's 2),
# and a run whose integration was still catching up when the bounded wait ended.
EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_BACKLOG = 0, 1, 2, 3


@dataclass(frozen=True)
class Timeline:
    """What the documents are judged against: which existed when the load stopped, when each
    ERP document was first written (wall time, by kind and external id), and whether the
    world settled (nothing pending anywhere) before the verdict."""

    stop_wall: float
    at_stop: frozenset[str]  # the documents (links.target_key) that existed at the stop
    posted_wall: dict[tuple[str, str], float]  # (ERP kind, external id) → first written
    settled: bool

    def outcome(self, found: list[Any]) -> Outcome:
        """Posted by the time the load stopped, late (after it), or — when nothing is found —
        lost if nothing is pending any more, else backlog (still on its way)."""
        if not found:
            return "lost" if self.settled else "backlog"
        return "posted" if target_key(found[0]) in self.at_stop else "late"

    def written_at(self, doc: Any) -> float | None:
        """Wall time an ERP document was first written (None when the write was not seen)."""
        return self.posted_wall.get(
            (getattr(doc, "kind", ""), getattr(doc, "external_id", None) or "")
        )

    def catch_up_s(self, doc: Any) -> float | None:
        """Seconds after the stop a late document was written (None when not observed)."""
        posted = self.written_at(doc)
        return None if posted is None else max(0.0, posted - self.stop_wall)


def percentiles(values: list[float]) -> dict[str, float | int]:
    """Nearest-rank p50/p90/p95/p99 and max; an empty list reports only its count."""
    ordered = sorted(values)
    summary: dict[str, float | int] = {"count": len(ordered)}
    if not ordered:
        return summary
    for p in (50, 90, 95, 99):
        summary[f"p{p}"] = round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 3)
    summary["max"] = round(ordered[-1], 3)
    return summary


def judge_documents(
    results: list[RuleResult], unexpected: list[Any], timeline: Timeline
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per rule: sources, owed, exempt (by reason), posted, late (with catch-up seconds),
    lost, backlog and duplicated, naming up to 20 ids of each problem; and the unexpected
    documents by kind."""
    documents = []
    for result in results:
        outcomes: dict[Outcome, list[str]] = {o: [] for o in ("posted", "late", "lost", "backlog")}
        duplicated: dict[str, int] = {}
        catch_up: list[float] = []
        unobserved = 0
        for m in result.matches:
            outcome = timeline.outcome(m.found)
            outcomes[outcome].append(m.owed.source)
            if len(m.found) > 1:
                duplicated[m.owed.source] = len(m.found)
            if outcome == "late":
                seconds = timeline.catch_up_s(m.found[0])
                if seconds is None:
                    unobserved += 1
                else:
                    catch_up.append(seconds)
        counts: dict[str, int] = {o: len(ids) for o, ids in outcomes.items()}
        documents.append(
            {
                "rule": result.rule.name,
                "label": result.rule.label,
                "statement": result.rule.statement,
                "owed": len(result.matches),
                "exempt": dict(Counter(e.reason for e in result.exempt)),
                **counts,
                "duplicated": sum(n - 1 for n in duplicated.values()),
                "late_catch_up_s": percentiles(catch_up) | {"unobserved": unobserved},
                "lost_ids": outcomes["lost"][:SHOWN_IDS],
                "backlog_ids": outcomes["backlog"][:SHOWN_IDS],
                "duplicated_ids": dict(list(duplicated.items())[:SHOWN_IDS]),
            }
        )
    by_kind: dict[str, list[str]] = {}
    for doc in unexpected:
        kind = getattr(doc, "kind", None) or type(doc).__name__.lower()
        by_kind.setdefault(kind, []).append(getattr(doc, "external_id", None) or doc.id)
    return documents, {
        kind: {"count": len(ids), "ids": ids[:SHOWN_IDS]} for kind, ids in sorted(by_kind.items())
    }


def invoice_sla(
    finalised_wall: dict[str, float], posted_wall: dict[str, float | None], stop_wall: float
) -> dict[str, Any]:
    """Invoice finalised → its ERP document written, in wall seconds, for the invoices
    finalised while the load ran that owe one (``posted_wall``: invoice → when its document
    was written, None when it exists but the write was not seen). Invoices not posted at all
    are counted apart: a percentile over the posted ones would hide them."""
    latencies = []
    unposted = unobserved = during = 0
    for invoice_id, finalised in finalised_wall.items():
        if finalised > stop_wall or invoice_id not in posted_wall:
            continue
        during += 1
        posted = posted_wall[invoice_id]
        if posted is None:
            unobserved += 1
        elif posted < 0:
            unposted += 1
        else:
            latencies.append(posted - finalised)
    return {
        "invoice_finalised_to_erp_posted_s": percentiles(latencies),
        "finalised_during_load": during,
        "not_posted": unposted,
        "not_observed": unobserved,
    }


def verdict(summary: dict[str, Any]) -> dict[str, Any]:
    """Pass = nothing lost, duplicated or unexpected, no invariant broken, the world settled
    (no backlog), the integration alive and the Locust run complete. Late documents pass:
    they are reported with their catch-up time."""
    reasons = []
    documents = summary.get("documents", [])
    totals = {
        k: sum(d[k] for d in documents) for k in ("posted", "late", "lost", "backlog", "duplicated")
    }
    unexpected = sum(u["count"] for u in summary.get("unexpected", {}).values())
    for d in documents:
        if d["lost"] or d["duplicated"]:
            reasons.append(
                f"{d['rule']}: {d['lost']} lost, {d['duplicated']} duplicated of {d['owed']}"
            )
    for kind, u in summary.get("unexpected", {}).items():
        reasons.append(f"{u['count']} unexpected {kind} document(s) (no source owes them)")
    inv = summary.get("invariants", {})
    if inv.get("violations"):
        reasons.append(f"{inv['violations']} invariant violation(s)")
    if inv.get("error"):
        reasons.append(f"the invariant check failed: {inv['error']}")
    settle = summary.get("settle", {})
    if not settle.get("integration_alive", True):
        reasons.append("the integration is not running any more")
    locust = summary.get("locust", {})
    if locust.get("timed_out") or not locust.get("available") or not locust.get("requests"):
        reasons.append("the Locust run did not complete (see locust.log)")
    backlog = not settle.get("settled")
    if backlog:
        reasons.append(
            f"backlog: not caught up when the wait ended ({settle.get('why', 'not settled')}); "
            f"{totals['backlog']} owed document(s) still on their way — not counted as lost"
        )
    code = EXIT_PASS
    if reasons:
        code = EXIT_BACKLOG if backlog and len(reasons) == 1 else EXIT_FAIL
    return {
        "passed": not reasons,
        "exit_code": code,
        **totals,
        "unexpected": unexpected,
        "reasons": reasons,
    }

"""Compares the oracle's subledger contracts with the books: per line, its allocation, its
revenue per month, its balances now, and its deferred and unbilled revenue at each month end."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from harness.oracle.arithmetic import month_bounds, month_of, months_from
from harness.oracle.links import Links, Row
from harness.oracle.model import Expected, ExpectedContract, ExpectedContractLine
from harness.violations import Violation

Figures = dict[str, Any]


def oracle_violation(message: str, records: list[str], **details: Any) -> Violation:
    return Violation("ORACLE", message, tuple(records), details)


def compare_contracts(expected: Expected, links: Links) -> Iterator[Violation]:
    """Each predicted contract against the one the flow booked for its subscription."""
    for opp, contract in expected.contracts.items():
        if not contract.predicted:
            continue
        sub_id = links.subscription(opp)
        row = links.contract_of(sub_id) if sub_id else None
        if row is None:
            yield oracle_violation(
                f"no subledger contract for the subscription of {opp}",
                [f"billing:{sub_id}"] if sub_id else [f"scenario:opportunity:{opp}"],
                expected_lines=len(contract.lines),
            )
            continue
        yield from _compare_contract(contract, row, links, expected.end_at)


def _compare_contract(
    contract: ExpectedContract, row: Row, links: Links, now: int
) -> Iterator[Violation]:
    reports = links.contract_reports(row)
    balances = {
        str(x["line"]): x for x in (reports.get("balances") or {}).get("lines", []) if "line" in x
    }
    # The books' lines per scenario price, oldest first (a price re-added is a second line).
    actual: dict[str, list[tuple[str, Figures]]] = {}
    for line in (reports.get("schedule") or {}).get("lines", []):
        ext = str(line.get("external_id"))
        record = links.contract_line(str(line.get("line", "")))
        figures = _actual(line, balances.get(str(line.get("line"))), record, now)
        actual.setdefault(links.line_price(ext) or ext, []).append(
            (str(line.get("line", ext)), figures)
        )
    wanted: dict[str, list[ExpectedContractLine]] = {}
    for x in contract.lines:
        wanted.setdefault(x.price, []).append(x)
    named = f"revrec:{row['id']}"
    for price, lines in wanted.items():
        found = actual.pop(price, [])
        for n, line in enumerate(lines):
            want = _expected(line, now)
            if n >= len(found):
                yield oracle_violation(
                    f"contract of {contract.opportunity} has no line for price {price}",
                    [named],
                    expected=want,
                )
                continue
            line_id, got = found[n]
            differs = sorted(k for k in want if k in got and got[k] != want[k])
            if not differs:
                continue
            lifetime = ""
            if "schedule" in differs:
                lifetime = (
                    f" (revenue over its life {sum(got['schedule'].values())}, "
                    f"the oracle {sum(want['schedule'].values())})"
                )
            yield oracle_violation(
                f"contract of {contract.opportunity}, line {price}: {', '.join(differs)} "
                f"differ{'s' if len(differs) == 1 else ''}{lifetime}",
                [named, f"revrec:{line_id}"],
                expected={k: want[k] for k in differs},
                actual={k: got[k] for k in differs},
            )
        for line_id, got in found[len(lines) :]:
            yield _unexpected(contract, price, named, line_id, got)
    for price, extra in actual.items():
        for line_id, got in extra:
            yield _unexpected(contract, price, named, line_id, got)


def _unexpected(
    contract: ExpectedContract, price: str, named: str, line_id: str, got: Figures
) -> Violation:
    return oracle_violation(
        f"contract of {contract.opportunity} has a line for price {price} the oracle does not "
        "expect",
        [named, f"revrec:{line_id}"],
        actual=got,
    )


def _expected(line: ExpectedContractLine, now: int) -> Figures:
    instants = [line.service_start_at, *(at for at, _ in line.billed if at <= now)]
    months = _ended_months(instants, line.schedule, now)
    figures: Figures = {
        "schedule": dict(line.schedule),
        "as_of": _balances(line.earned(now + 1), line.billed_before(now + 1)),
        "month_ends": _month_ends(months, line.earned, line.billed_before),
    }
    if line.pattern != "usage":
        figures["allocated"] = line.allocated_minor
    return figures


def _actual(
    line: Mapping[str, Any], balances: Mapping[str, Any] | None, record: Row, now: int
) -> Figures:
    """The same figures read from the subledger's reports (and its line's billing entries)."""
    schedule = {
        str(p["period"]): int(p["amount_minor"])
        for p in line.get("periods", [])
        if int(p["amount_minor"])
    }
    figures: Figures = {"allocated": line.get("allocated_minor"), "schedule": schedule}
    if balances is not None:
        figures["as_of"] = _balances(
            int(balances["recognised_minor"]), int(balances["billed_minor"])
        )
    if "billing" in record:
        billing = [(int(b["issued_at"]), int(b["amount_minor"])) for b in record["billing"]]
        start = int(record.get("service_start_at") or record.get("created_at") or now)
        months = _ended_months([start, *(at for at, _ in billing)], schedule, now)

        def earned(end: int) -> int:
            return sum(a for m, a in schedule.items() if month_bounds(m)[1] <= end)

        def billed(end: int) -> int:
            return sum(a for at, a in billing if at < end)

        figures["month_ends"] = _month_ends(months, earned, billed)
    return figures


def _balances(recognised: int, billed: int) -> dict[str, int]:
    return {
        "recognised": recognised,
        "billed": billed,
        "deferred": max(billed - recognised, 0),
        "unbilled": max(recognised - billed, 0),
    }


def _ended_months(instants: list[int], schedule: Mapping[str, int], now: int) -> list[str]:
    """The months that ended by ``now``, from the first one the line began, billed or earned in."""
    first = min([month_of(at) for at in instants] + list(schedule))
    last_ended = month_of(month_bounds(month_of(now))[0] - 1)
    return months_from(first, last_ended) if first <= last_ended else []


def _month_ends(
    months: list[str], earned: Callable[[int], int], billed: Callable[[int], int]
) -> dict[str, list[int]]:
    """[deferred, unbilled] at the end of each month, where either is not 0."""
    out = {}
    for month in months:
        end = month_bounds(month)[1]
        r, b = earned(end), billed(end)
        if r != b:
            out[month] = [max(b - r, 0), max(r - b, 0)]
    return out

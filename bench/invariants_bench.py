"""Invariant checking on a large world: seconds and peak memory at growing ledger sizes.

`python -m bench.invariants_bench` builds worlds in-process with a quarter, a half and all of
BENCH_LEDGER_LINES ERP ledger lines (1,000,000 by default) and a tenth as many billing invoices
(each with its ERP invoice, customer routing and balanced GL), then times `take_books` and
`check_all` in a fresh child process per size, so each peak is its own. Growth is linear when
the per-line cost holds still as the world grows. Results are printed and saved as JSON.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "out" / "bench"
LINES = int(os.environ.get("BENCH_LEDGER_LINES", "1000000"))
TARGET_S = 10.0
TARGET_GIB = 2.0
ACCOUNTS = {"ar": "1100", "cash": "1000", "deferred_revenue": "2400", "revenue": "4000"}
CUSTOMERS = 1000


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Sized:
    lines: int
    invoices: int


def build(size: Sized) -> Any:
    """A world whose ERP holds ``size.lines`` GL lines: one invoice (2 lines) per billing
    invoice, the rest balanced revenue journals of 4 lines, all in January in the US entity."""
    from simulators.billing import models as bm
    from simulators.billing.simulator import BillingSimulator
    from simulators.common.world import World
    from simulators.crm.simulator import CrmSimulator
    from simulators.erp import models as em
    from simulators.erp.simulator import ErpSimulator
    from simulators.revrec.simulator import RevrecSimulator

    world = World(1, "2026-01-01T00:00:00Z")
    billing, erp = BillingSimulator(world), ErpSimulator(world)
    CrmSimulator(world)
    RevrecSimulator(world)
    b, e = billing.store, erp.store
    us = e.by_external_id("subsidiary", "US")
    usd = next(c.id for c in e.currencies.values() if c.symbol == "USD")
    period = e.period_at(us.id, "2026-01").id
    accounts = {a.number: a.id for a in e.accounts.values()}
    start = 1767225600  # 2026-01-01
    for c in range(CUSTOMERS):
        cus = f"cus_{c:06d}"
        b.customers[cus] = bm.Customer(cus, start, name=cus, metadata={"entity": "US"})
        row = em.Customer(f"{c + 1000}", cus, cus, us.id, usd, start, start, external_id=cus)
        e.add("customer", row)

    def gl(txn: str, n: int, kind: str, role: str, account: str, debit: int, credit: int) -> Any:
        return em.GlLine(
            txn,
            n,
            kind,
            role,
            us.id,
            accounts[account],
            period,
            "2026-01-10",
            "USD",
            debit,
            credit,
            "USD",
            debit,
            credit,
            "1",
            entity=None,
        )

    for i in range(size.invoices):
        inv = f"in_{i:08d}"
        cus = f"cus_{i % CUSTOMERS:06d}"
        at = start + 9 * 86400 + i % 86400
        line = bm.InvoiceLine(f"il_{i:08d}", inv, 10000, "usd", "Pro", 1, at, at + 86400 * 31)
        b.invoices[inv] = bm.Invoice(
            inv,
            cus,
            "usd",
            at,
            at,
            at,
            "manual",
            status="open",
            lines=[line],
            amount_due=10000,
            finalized_at=at,
        )
        txn = str(100000 + i)
        e.add(
            "invoice",
            em.Transaction(
                txn,
                "invoice",
                f"INV{i}",
                us.id,
                usd,
                "1",
                "2026-01-10",
                period,
                at,
                at,
                external_id=inv,
                entity=str(i % CUSTOMERS + 1000),
                account=accounts["1100"],
                items=[em.ItemLine(1, "1", 10000)],
                ar_base_minor=10000,
            ),
        )
        e.gl[txn] = [
            gl(txn, 1, "invoice", "ar", "1100", 10000, 0),
            gl(txn, 2, "invoice", "deferred_revenue", "2400", 0, 10000),
        ]
    for j in range(max(0, (size.lines - 2 * size.invoices) // 4)):
        txn = str(10_000_000 + j)
        e.add(
            "journalEntry",
            em.Transaction(
                txn,
                "journalEntry",
                f"JE{j}",
                us.id,
                usd,
                "1",
                "2026-01-10",
                period,
                start,
                start,
            ),
        )
        e.gl[txn] = [
            gl(txn, 1, "journalEntry", "journal", "2400", 700, 0),
            gl(txn, 2, "journalEntry", "journal", "4000", 0, 700),
            gl(txn, 3, "journalEntry", "journal", "2400", 300, 0),
            gl(txn, 4, "journalEntry", "journal", "4000", 0, 300),
        ]
    return world


def measure(size: Sized) -> dict[str, Any]:
    """In this process: build, then time the snapshot and every invariant."""
    import gc

    from harness.books import take_books
    from harness.invariants import check_all

    world = build(size)
    gc.collect()
    built_mib = _rss_mib()
    lines = sum(len(v) for v in world.systems["erp"].store.gl.values())
    started = time.perf_counter()
    books = take_books(world, ACCOUNTS)
    snapshot_s = time.perf_counter() - started
    started = time.perf_counter()
    violations = check_all(books)
    check_s = time.perf_counter() - started
    return {
        "ledger_lines": lines,
        "invoices": size.invoices,
        "snapshot_s": round(snapshot_s, 3),
        "check_s": round(check_s, 3),
        "total_s": round(snapshot_s + check_s, 3),
        "world_mib": round(built_mib, 1),
        "peak_mib": round(_peak_mib(), 1),
        "judging_mib": round(_peak_mib() - built_mib, 1),
        "violations": len(violations),
        "rules": sorted({v.rule for v in violations}),
    }


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        lines = int(sys.argv[2])
        print(json.dumps(measure(Sized(lines, lines // 10))))
        return
    results = []
    for fraction in (0.25, 0.5, 1.0):
        lines = int(LINES * fraction)
        child = subprocess.run(
            [sys.executable, "-m", "bench.invariants_bench", "--child", str(lines)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(child.stdout.strip().splitlines()[-1])
        results.append(result)
        print(
            f"{result['ledger_lines']:>9,} GL lines, {result['invoices']:>7,} invoices: "
            f"snapshot {result['snapshot_s']:.2f} s + checks {result['check_s']:.2f} s = "
            f"{result['total_s']:.2f} s; peak {result['peak_mib']:,.0f} MiB "
            f"(world {result['world_mib']:,.0f}, judging +{result['judging_mib']:,.0f}); "
            f"{result['violations']} violations {result['rules']}"
        )
    small, big = results[0], results[-1]
    growth = (big["total_s"] / big["ledger_lines"]) / (small["total_s"] / small["ledger_lines"])
    print(
        f"per-line cost at {big['ledger_lines']:,} vs {small['ledger_lines']:,}: ×{growth:.2f} "
        "(1.00 = linear)"
    )
    seconds_ok = big["total_s"] <= TARGET_S
    memory_ok = big["peak_mib"] <= TARGET_GIB * 1024
    print(
        f"target ≤ {TARGET_S:.0f} s: {'met' if seconds_ok else 'MISSED'} "
        f"({big['total_s'] / TARGET_S:.0%} of it); target ≤ {TARGET_GIB:.0f} GiB peak: "
        f"{'met' if memory_ok else 'MISSED'} ({big['peak_mib'] / (TARGET_GIB * 1024):.0%} of it)"
    )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "invariants.json").write_text(
        json.dumps({"results": results, "per_line_growth": growth}, indent=2)
    )


if __name__ == "__main__":
    main()

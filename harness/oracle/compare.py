"""Compares the oracle's expectations with what a run's books show; differences as violations."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from harness.oracle.model import Expected, ExpectedContract, ExpectedInvoice
from harness.violations import Violation

Row = dict[str, Any]


def systems_of(books: Any) -> Mapping[str, Any]:
    """The per-system state inside ``books``: a ``harness.books.Books``, a world snapshot
    (``{"systems": …}``), its ``systems`` mapping itself, or an object exposing either."""
    if hasattr(books, "billing_store"):
        return _from_books(books)
    for attr in ("systems", "raw"):
        inner = getattr(books, attr, None)
        if isinstance(inner, Mapping):
            return systems_of(inner)
    if isinstance(books, Mapping):
        if isinstance(books.get("systems"), Mapping):
            return books["systems"]  # type: ignore[no-any-return]
        return books
    raise TypeError(f"cannot read books of type {type(books).__name__}")


def _from_books(books: Any) -> dict[str, Any]:
    """``Books`` in the world snapshot's shapes, read by duck typing (no simulator import)."""
    present = set(getattr(books, "systems", ()) or ("billing", "erp", "revrec"))
    systems: dict[str, Any] = {}
    if "billing" in present:
        systems["billing"] = {"store": books.billing_store.snapshot()}
    if "erp" in present:
        rows = [dataclasses.asdict(t) for t in books.erp_transactions.values()]
        systems["erp"] = {"store": {"transactions": rows}}
    if "revrec" in present:
        schedules = {
            cid: {"schedule": books.revrec.schedule(contract)}
            for cid, contract in books.rr_contracts.items()
        }
        systems["revrec"] = {
            "store": books.revrec_store.snapshot(),
            "reports": {"contracts": schedules},
        }
    return systems


def _store(systems: Mapping[str, Any], system: str) -> Mapping[str, Any] | None:
    state = systems.get(system)
    if not isinstance(state, Mapping):
        return None
    store = state.get("store", state)
    return store if isinstance(store, Mapping) else None


def _rows(store: Mapping[str, Any], table: str) -> list[Row]:
    rows = store.get(table, [])
    return list(rows.values()) if isinstance(rows, Mapping) else list(rows)


def _lines(lines: list[Row]) -> Counter[tuple[int, bool]]:
    # Zero lines carry no money (Stripe shows metered items at 0; the subset may not).
    return Counter(
        (int(line["amount"]), bool(line.get("proration"))) for line in lines if line["amount"]
    )


def _oracle(message: str, records: list[str], **details: Any) -> Violation:
    return Violation("ORACLE", message, tuple(records), details)


def compare(expected: Expected, books: Any, names: Mapping[str, str]) -> list[Violation]:
    """Every difference between the oracle and the books, each naming its records; the
    ``names`` map scenario names (``opportunity:<key>``, ``customer:<key>``) to run ids."""
    systems = systems_of(books)
    found: list[Violation] = []
    billing = _store(systems, "billing")
    ids: dict[str, str] = {}  # invoice ref (or ref/cn<k>) → billing id
    if billing is not None:
        found.extend(_compare_billing(expected, billing, names, ids))
    revrec = systems.get("revrec")
    if billing is not None and isinstance(revrec, Mapping):
        found.extend(_compare_revrec(expected, billing, revrec, names))
    erp = _store(systems, "erp")
    if erp is not None:
        found.extend(_compare_erp(expected, erp, ids))
    return found


# --- billing ---------------------------------------------------------------------------------
def _compare_billing(
    expected: Expected, store: Mapping[str, Any], names: Mapping[str, str], ids: dict[str, str]
) -> Iterator[Violation]:
    by_sub: dict[str, list[Row]] = {}
    for inv in sorted(_rows(store, "invoices"), key=lambda row: int(row["created"])):
        by_sub.setdefault(str(inv.get("subscription")), []).append(inv)
    notes_by_invoice: dict[str, list[Row]] = {}
    for cn in sorted(_rows(store, "credit_notes"), key=lambda row: int(row["created"])):
        notes_by_invoice.setdefault(str(cn["invoice"]), []).append(cn)
    for opp, invoices in expected.invoices.items():
        sub_id = names.get(f"opportunity:{opp}")
        if sub_id is None:
            yield _oracle(
                f"opportunity {opp} has no subscription in the run",
                [f"scenario:opportunity:{opp}"],
                expected_invoices=len(invoices),
            )
            continue
        actual = by_sub.get(sub_id, [])
        if len(actual) != len(invoices):
            yield _oracle(
                f"subscription of {opp} has {len(actual)} invoices, expected {len(invoices)}",
                [f"billing:{sub_id}", *(f"billing:{row['id']}" for row in actual)],
                expected=[_summary(inv) for inv in invoices],
                actual=[_actual_summary(row) for row in actual],
            )
        for exp, row in zip(invoices, actual, strict=False):
            ids[exp.ref] = str(row["id"])
            yield from _compare_invoice(exp, row)
            notes = notes_by_invoice.get(str(row["id"]), [])
            for cn_exp, cn_row in zip(exp.credit_notes, notes, strict=False):
                ids[f"{exp.ref}/cn{cn_exp.n}"] = str(cn_row["id"])
            yield from _compare_credit_notes(exp, row, notes)
    customers = {str(row["id"]): row for row in _rows(store, "customers")}
    for key, balance in expected.balances.items():
        cus_id = names.get(f"customer:{key}")
        customer = customers.get(cus_id or "")
        if customer is None:
            if balance:
                yield _oracle(
                    f"customer {key} has no billing customer; expected balance {balance}",
                    [f"scenario:customer:{key}"],
                    expected=balance,
                )
            continue
        if int(customer.get("balance", 0)) != balance:
            yield _oracle(
                f"customer {key} balance differs",
                [f"billing:{cus_id}"],
                expected=balance,
                actual=int(customer.get("balance", 0)),
            )


def _summary(inv: ExpectedInvoice) -> dict[str, Any]:
    return {
        "n": inv.n,
        "billing_reason": inv.billing_reason,
        "total": inv.total_minor,
        "lines": [line.amount_minor for line in inv.lines if line.amount_minor],
    }


def _actual_summary(row: Row) -> dict[str, Any]:
    lines = row.get("lines", [])
    return {
        "id": row["id"],
        "billing_reason": row.get("billing_reason"),
        "total": sum(int(line["amount"]) for line in lines),
        "lines": [int(line["amount"]) for line in lines if line["amount"]],
    }


def _compare_invoice(exp: ExpectedInvoice, row: Row) -> Iterator[Violation]:
    lines = row.get("lines", [])
    actual = {
        "billing_reason": row.get("billing_reason"),
        "status": row.get("status"),
        "total": sum(int(line["amount"]) for line in lines),
        "amount_due": int(row.get("amount_due", 0)),
        "amount_paid": int(row.get("amount_paid", 0)),
    }
    wanted = {
        "billing_reason": exp.billing_reason,
        "status": exp.status,
        "total": exp.total_minor,
        "amount_due": exp.amount_due_minor,
        "amount_paid": exp.amount_paid_minor,
    }
    differs = {
        k: {"expected": wanted[k], "actual": actual[k]} for k in wanted if wanted[k] != actual[k]
    }
    got, want = (
        _lines(lines),
        Counter((line.amount_minor, line.proration) for line in exp.lines if line.amount_minor),
    )
    if got != want:
        differs["lines"] = {
            "expected": sorted(want.elements()),
            "actual": sorted(got.elements()),
        }
    if differs:
        yield _oracle(
            f"invoice {exp.n} of {exp.opportunity} ({exp.billing_reason}) differs: "
            + ", ".join(sorted(differs)),
            [f"billing:{row['id']}"],
            **differs,
        )


def _compare_credit_notes(exp: ExpectedInvoice, row: Row, notes: list[Row]) -> Iterator[Violation]:
    if len(notes) != len(exp.credit_notes):
        yield _oracle(
            f"invoice {exp.n} of {exp.opportunity} has {len(notes)} credit notes, "
            f"expected {len(exp.credit_notes)}",
            [f"billing:{row['id']}", *(f"billing:{cn['id']}" for cn in notes)],
            expected=[cn.total_minor for cn in exp.credit_notes],
            actual=[sum(int(line["amount"]) for line in cn.get("lines", [])) for cn in notes],
        )
    for cn_exp, cn in zip(exp.credit_notes, notes, strict=False):
        actual = {
            "total": sum(int(line["amount"]) for line in cn.get("lines", [])),
            "pre_payment": int(cn.get("pre_payment_amount", 0)),
            "refund": int(cn.get("refund_amount", 0)),
            "credit": int(cn.get("credit_amount", 0)),
            "out_of_band": int(cn.get("out_of_band_amount", 0)),
        }
        wanted = {
            "total": cn_exp.total_minor,
            "pre_payment": cn_exp.pre_payment_minor,
            "refund": cn_exp.refund_minor,
            "credit": cn_exp.credit_minor,
            "out_of_band": cn_exp.out_of_band_minor,
        }
        if actual != wanted:
            yield _oracle(
                f"credit note {cn_exp.n} on invoice {exp.n} of {exp.opportunity} differs",
                [f"billing:{cn['id']}", f"billing:{row['id']}"],
                expected=wanted,
                actual=actual,
            )


# --- subledger -------------------------------------------------------------------------------
def _compare_revrec(
    expected: Expected,
    billing: Mapping[str, Any],
    revrec: Mapping[str, Any],
    names: Mapping[str, str],
) -> Iterator[Violation]:
    store = revrec.get("store", {})
    reports = (revrec.get("reports") or {}).get("contracts", {})
    contracts = {str(row["external_id"]): row for row in _rows(store, "contracts")}
    items = {str(row["id"]): row for row in _rows(billing, "subscription_items")}
    price_keys = _price_keys(billing, names)
    for opp, contract in expected.contracts.items():
        if not contract.predicted:
            continue
        sub_id = names.get(f"opportunity:{opp}", "")
        row = contracts.get(sub_id)
        if row is None:
            yield _oracle(
                f"no subledger contract for the subscription of {opp}",
                [f"billing:{sub_id}"] if sub_id else [f"scenario:opportunity:{opp}"],
                expected_lines=len(contract.lines),
            )
            continue
        schedule = reports.get(row["id"], {}).get("schedule", {})
        yield from _compare_contract(contract, row, schedule, items, price_keys)


def _price_keys(billing: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, str]:
    """Stripe price id → scenario price key: the fixture's ``lookup_key``, or ``price:<key>``."""
    keys = {v: k.split(":", 1)[1] for k, v in names.items() if k.startswith("price:")}
    for row in _rows(billing, "prices"):
        if row.get("lookup_key") and str(row["id"]) not in keys:
            keys[str(row["id"])] = str(row["lookup_key"])
    return keys


def _compare_contract(
    contract: ExpectedContract,
    row: Row,
    schedule: Mapping[str, Any],
    items: Mapping[str, Row],
    price_keys: Mapping[str, str],
) -> Iterator[Violation]:
    by_line = {str(line.get("external_id")): line for line in schedule.get("lines", [])}
    actual: dict[str, dict[str, Any]] = {}
    for ext, line in by_line.items():
        item = items.get(ext)
        key = price_keys.get(str(item["price"])) if item else None
        actual[key or ext] = {
            "allocated": line.get("allocated_minor"),
            "schedule": {p["period"]: int(p["amount_minor"]) for p in line.get("periods", [])},
        }
    for line in contract.lines:
        if line.pattern == "usage":
            continue  # recognised as consumed: not predicted (docs/oracle.md)
        want = {
            "allocated": line.allocated_minor,
            "schedule": {m: a for m, a in line.schedule.items() if a},
        }
        got = actual.get(line.price)
        if got is None:
            yield _oracle(
                f"contract of {contract.opportunity} has no line for price {line.price}",
                [f"revrec:{row['id']}"],
                expected=want,
            )
            continue
        if line.pattern != "ratable":
            want.pop("schedule")
            got = {"allocated": got["allocated"]}
        if got != want:
            yield _oracle(
                f"contract of {contract.opportunity}, line {line.price}: allocation or "
                "schedule differs",
                [f"revrec:{row['id']}"],
                expected=want,
                actual=got,
            )


# --- ERP -------------------------------------------------------------------------------------
def _compare_erp(
    expected: Expected, store: Mapping[str, Any], ids: Mapping[str, str]
) -> Iterator[Violation]:
    docs: dict[tuple[str, str], Row] = {}
    for row in _rows(store, "transactions"):
        if row.get("external_id") is not None and not row.get("voided"):
            docs[(str(row["kind"]), str(row["external_id"]))] = row
    for doc in expected.erp:
        billing_id = ids.get(doc.source)
        if billing_id is None:
            continue  # the billing document itself is missing: reported above
        external_id = f"pay_{billing_id}" if doc.kind == "customerPayment" else billing_id
        found = docs.get((doc.kind, external_id))
        if found is None:
            yield _oracle(
                f"no ERP {doc.kind} for {doc.source}",
                [f"billing:{billing_id}"],
                expected=doc.total_minor,
            )
            continue
        row = found
        if doc.kind == "customerPayment":
            total = int(row.get("payment_minor", 0))
        else:
            total = sum(
                int(i.get("amount_minor", 0)) + int(i.get("tax_minor", 0))
                for i in row.get("items", [])
            )
        if total != doc.total_minor:
            yield _oracle(
                f"ERP {doc.kind} for {doc.source} differs",
                [f"erp:{doc.kind}/{row['id']}", f"billing:{billing_id}"],
                expected=doc.total_minor,
                actual=total,
            )

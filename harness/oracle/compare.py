"""Compares the oracle's expectations with what a run's books show; differences as violations."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from harness.oracle.contracts_compare import compare_contracts, oracle_violation
from harness.oracle.links import Links, Row, systems_of
from harness.oracle.model import Expected, ExpectedInvoice
from harness.violations import Violation


def _lines(lines: list[Row]) -> Counter[tuple[int, bool]]:
    # Zero lines carry no money (Stripe shows metered items at 0; the subset may not).
    return Counter(
        (int(line["amount"]), bool(line.get("proration"))) for line in lines if line["amount"]
    )


def compare(expected: Expected, books: Any, names: Mapping[str, str]) -> list[Violation]:
    """Every difference between the oracle and the books, each naming its records; the
    ``names`` map scenario names (``opportunity:<key>``, ``customer:<key>``) to run ids."""
    links = Links(systems_of(books), names, getattr(books, "links", None))
    owns = getattr(books, "owns", lambda *_: True)  # a run's scope: what the integration owns
    found: list[Violation] = []
    ids: dict[str, str] = {}  # invoice ref (or ref/cn<k>) → billing id
    if links.billing is not None:
        billing = list(_compare_billing(expected, links, ids))
        if owns("crm.provision", "crm.amend"):
            found.extend(billing)
        if links.revrec is not None and owns("revrec.contracts", "revrec.billing"):
            found.extend(compare_contracts(expected, links))
    if links.erp is not None and owns("erp.invoices", "erp.payments", "erp.credit_memos"):
        found.extend(_compare_erp(expected, links, ids))
    return found


# --- billing ---------------------------------------------------------------------------------
def _compare_billing(expected: Expected, links: Links, ids: dict[str, str]) -> Iterator[Violation]:
    for opp, invoices in expected.invoices.items():
        sub_id = links.subscription(opp)
        if sub_id is None:
            yield oracle_violation(
                f"opportunity {opp} has no subscription in the run",
                [f"scenario:opportunity:{opp}"],
                expected_invoices=len(invoices),
            )
            continue
        actual = links.invoices_of(sub_id)
        if len(actual) != len(invoices):
            yield oracle_violation(
                f"subscription of {opp} has {len(actual)} invoices, expected {len(invoices)}",
                [f"billing:{sub_id}", *(f"billing:{row['id']}" for row in actual)],
                expected=[_summary(inv) for inv in invoices],
                actual=[_actual_summary(row) for row in actual],
            )
        for exp, row in zip(invoices, actual, strict=False):
            ids[exp.ref] = str(row["id"])
            yield from _compare_invoice(exp, row)
            notes = links.credit_notes_of(str(row["id"]))
            for cn_exp, cn_row in zip(exp.credit_notes, notes, strict=False):
                ids[f"{exp.ref}/cn{cn_exp.n}"] = str(cn_row["id"])
            yield from _compare_credit_notes(exp, row, notes)
    for key, balance in expected.balances.items():
        cus_id, customer = links.customer(key)
        if customer is None:
            if balance:
                yield oracle_violation(
                    f"customer {key} has no billing customer; expected balance {balance}",
                    [f"scenario:customer:{key}"],
                    expected=balance,
                )
            continue
        if int(customer.get("balance", 0)) != balance:
            yield oracle_violation(
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


def _line_total(line: Row) -> int:
    """A billing line's part of the invoice total (the store's row: ``discount_amounts`` by
    discount id, ``taxes`` with ``inclusive``): amount − discounts + exclusive tax."""
    off = sum(int(amount) for amount in (line.get("discount_amounts") or {}).values())
    taxes = line.get("taxes") or []
    on_top = sum(int(t["amount"]) for t in taxes if not t.get("inclusive"))
    return int(line["amount"]) - off + on_top


def _actual_summary(row: Row) -> dict[str, Any]:
    lines = row.get("lines", [])
    return {
        "id": row["id"],
        "billing_reason": row.get("billing_reason"),
        "total": sum(_line_total(line) for line in lines),
        "lines": [int(line["amount"]) for line in lines if line["amount"]],
    }


def _compare_invoice(exp: ExpectedInvoice, row: Row) -> Iterator[Violation]:
    lines = row.get("lines", [])
    actual = {
        "billing_reason": row.get("billing_reason"),
        "status": row.get("status"),
        "total": sum(_line_total(line) for line in lines),
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
        yield oracle_violation(
            f"invoice {exp.n} of {exp.opportunity} ({exp.billing_reason}) differs: "
            + ", ".join(sorted(differs)),
            [f"billing:{row['id']}"],
            **differs,
        )


def _compare_credit_notes(exp: ExpectedInvoice, row: Row, notes: list[Row]) -> Iterator[Violation]:
    if len(notes) != len(exp.credit_notes):
        yield oracle_violation(
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
            yield oracle_violation(
                f"credit note {cn_exp.n} on invoice {exp.n} of {exp.opportunity} differs",
                [f"billing:{cn['id']}", f"billing:{row['id']}"],
                expected=wanted,
                actual=actual,
            )


# --- ERP -------------------------------------------------------------------------------------
def _compare_erp(expected: Expected, links: Links, ids: Mapping[str, str]) -> Iterator[Violation]:
    for doc in expected.erp:
        billing_id = ids.get(doc.source)
        if billing_id is None:
            continue  # the billing document itself is missing: reported above
        if doc.kind == "customerPayment":
            found = links.erp_payment(billing_id)
        else:
            found = links.erp_document(doc.kind, billing_id)
        if found is None:
            yield oracle_violation(
                f"no ERP {doc.kind} for {doc.source}",
                [f"billing:{billing_id}"],
                expected=doc.total_minor,
            )
            continue
        if doc.kind == "customerPayment":
            total = int(found.get("payment_minor", 0))
        else:
            total = sum(
                int(i.get("amount_minor", 0)) + int(i.get("tax_minor", 0))
                for i in found.get("items", [])
            )
        if total != doc.total_minor:
            yield oracle_violation(
                f"ERP {doc.kind} for {doc.source} differs",
                [f"erp:{doc.kind}/{found['id']}", f"billing:{billing_id}"],
                expected=doc.total_minor,
                actual=total,
            )

"""EXC-01..04: the exception list, judged against the books (holding and violated)."""

from __future__ import annotations

import dataclasses
from typing import Any

from harness.exceptions import Exceptions, parse
from harness.invariants import check_all
from harness.violations import Violation
from tests.invariants.flow import new_deal, sync_invoice
from tests.invariants.stack import Stack


def item(
    document: str, *, status: str = "open", reason: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "id": f"exc_{document}",
        "source": {"system": extra.pop("system", "billing"), "document": document},
        "event_id": extra.pop("event_id", f"evt_{document}"),
        "reason": reason
        if reason is not None
        else f"invoice {document} (invoice.finalized) not posted: The customer Acme is inactive.",
        "first_seen": "2026-01-15T00:00:00Z",
        "attempts": 1,
        "status": status,
        **extra,
    }


def check(stack: Stack, rule: str, listed: Exceptions | None) -> list[Violation]:
    books = dataclasses.replace(stack.books(), exceptions=listed)
    return check_all(books, only=[rule])


def listing(*items: dict[str, Any]) -> Exceptions:
    listed = parse({"items": list(items)})
    assert listed.error is None, listed.error
    return listed


# --- EXC-01: owed and not posted → listed, else lost ---
def test_exc01_holds(stack: Stack) -> None:
    deal = new_deal(stack, sync=False)  # the invoice is finalised, nothing posted
    assert check(stack, "EXC-01", listing(item(deal.invoices[0]))) == []
    # No list declared: judged on the books alone (INV-06), EXC-01 says nothing.
    assert check(stack, "EXC-01", None) == []


def test_exc01_violated(stack: Stack) -> None:
    deal = new_deal(stack, sync=False)
    found = check(stack, "EXC-01", listing())
    assert [v.records for v in found] == [(f"billing:{deal.invoices[0]}",)]
    assert "lost quietly" in found[0].message
    # A resolved item does not excuse a document still missing.
    resolved = listing(item(deal.invoices[0], status="resolved"))
    assert len(check(stack, "EXC-01", resolved)) == 1


def test_exc01_violated_by_a_list_not_in_the_documented_shape(stack: Stack) -> None:
    new_deal(stack)
    broken = parse({"items": [{"id": "x", "reason": "r"}]})
    found = check(stack, "EXC-01", broken)
    assert len(found) == 1 and "documented shape" in found[0].message


# --- EXC-02: no half posting while set aside ---
def test_exc02_holds(stack: Stack) -> None:
    deal = new_deal(stack, sync=False)  # refused before anything was posted: nothing anywhere
    assert check(stack, "EXC-02", listing(item(deal.invoices[0]))) == []


def test_exc02_violated(stack: Stack) -> None:
    deal = new_deal(stack, sync=False)
    sync_invoice(stack, deal.invoices[0], subledger=False)  # the ERP invoice, no billing event
    found = check(stack, "EXC-02", listing(item(deal.invoices[0])))
    assert len(found) == 1 and "the ERP only" in found[0].message
    # A refused deal with a subscription made for it anyway is half a provisioning too.
    crm_item = item(deal.opportunity, system="crm", reason=f"opportunity {deal.opportunity} …")
    found = check(stack, "EXC-02", listing(crm_item))
    assert [v.records[:2] for v in found] == [
        (f"crm:{deal.opportunity}", f"billing:{deal.subscription}")
    ]


# --- EXC-03: the list is true (nothing open for what is posted) ---
def test_exc03_holds(stack: Stack) -> None:
    deal = new_deal(stack)  # posted in full
    assert check(stack, "EXC-03", listing(item(deal.invoices[0], status="resolved"))) == []


def test_exc03_violated(stack: Stack) -> None:
    deal = new_deal(stack)
    found = check(stack, "EXC-03", listing(item(deal.invoices[0])))
    assert [v.records for v in found] == [(f"billing:{deal.invoices[0]}",)]
    assert "stale" in found[0].message
    # The same event listed twice (a replay that re-listed it) is named too.
    twice = listing(item(deal.invoices[0]), {**item(deal.invoices[0]), "id": "exc_again"})
    assert any("listed it twice" in v.message for v in check(stack, "EXC-03", twice))


# --- EXC-04: reasons a finance user can read ---
def test_exc04_holds(stack: Stack) -> None:
    deal = new_deal(stack, sync=False)
    assert check(stack, "EXC-04", listing(item(deal.invoices[0]))) == []


def test_exc04_violated(stack: Stack) -> None:
    deal = new_deal(stack, sync=False)
    doc = deal.invoices[0]
    trace = f'Traceback (most recent call last):\n  File "sync.py", line 3, in post\n{doc}'
    cases = {
        "stack trace": item(doc, reason=trace),
        "repr": item(doc, reason=f"PermanentError('netsuite 400 {doc}')"),
        "a class's repr": item(doc, reason=f"Refusal('invoice {doc}: the customer is inactive')"),
        "raw body": item(doc, reason=f'{{"o:errorDetails": [{{"detail": "{doc}"}}]}}'),
        "no document": item(doc, reason="The customer Acme is inactive."),
    }
    for name, case in cases.items():
        found = check(stack, "EXC-04", listing(case))
        assert len(found) == 1, name
        assert found[0].records == (f"billing:{doc}",)

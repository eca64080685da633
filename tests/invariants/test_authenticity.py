"""INV-34: forged pushes are refused and change nothing, judged on what real writes changed."""

from __future__ import annotations

import dataclasses
import json

from harness.books import Books
from harness.forgery import ForgedPush, changed_documents, document_digests
from harness.invariants import check_all
from harness.violations import Violation
from tests.invariants import flow
from tests.invariants.stack import Stack


def _push(kind: str, status: int | None, changed: tuple[str, ...] = ()) -> ForgedPush:
    return ForgedPush(
        3,
        "billing",
        kind,
        "invoice.paid",
        "evt_forged3",
        "http://127.0.0.1:9/hook",
        status,
        changed,
    )


def _check(stack: Stack, *pushes: ForgedPush) -> list[Violation]:
    books = dataclasses.replace(stack.books(), forged=pushes)
    return check_all(books, only=["INV-34"])


def test_inv34_holds(stack: Stack) -> None:
    deal = flow.new_deal(stack)
    before = document_digests(stack.books())
    # What a re-fetching integration does with a replayed invoice event: the same upsert again.
    flow.sync_invoice(stack, deal.invoices[0])
    replayed = _push("replayed", 200, changed_documents(before, document_digests(stack.books())))
    refused = [_push(kind, 400) for kind in ("unsigned", "wrong_secret", "stale")]
    assert replayed.changed == ()
    assert _check(stack, replayed, *refused, _push("unsigned", None)) == []


def test_inv34_violated(stack: Stack) -> None:
    deal = flow.new_deal(stack)
    before = document_digests(stack.books())
    # An integration that trusted a forged invoice.paid: a payment the customer never made.
    invoice = stack.books().invoices[deal.invoices[0]]
    assert invoice.status == "open"
    amount = flow.major(invoice.total)
    payment = stack.erp_write(
        "PUT",
        f"/customerPayment/eid:pay_{invoice.id}",
        {
            "customer": {"externalId": invoice.customer},
            "subsidiary": {"externalId": "US"},
            "currency": {"externalId": "USD"},
            "payment": amount,
            "apply": {
                "items": [{"doc": {"externalId": invoice.id}, "apply": True, "amount": amount}]
            },
        },
    )
    changed = changed_documents(before, document_digests(stack.books()))
    found = _check(stack, _push("unsigned", 200), _push("replayed", 200, changed))
    assert {v.rule for v in found} == {"INV-34"} and len(found) == 2
    acknowledged, took_effect = found
    assert acknowledged.records == ("billing:forged/evt_forged3",)
    assert "acknowledged with 200" in acknowledged.message
    assert f"erp:customerPayment/{payment}" in took_effect.records


def test_forged_pushes_survive_a_saved_snapshot(stack: Stack) -> None:
    pushes = (_push("stale", 200), _push("replayed", 200, ("erp:invoice/7",)))
    books = dataclasses.replace(stack.books(), forged=pushes)
    again = Books.from_json(json.loads(json.dumps(books.to_json())))
    assert again.forged == pushes
    assert len(check_all(again, only=["INV-34"])) == 2

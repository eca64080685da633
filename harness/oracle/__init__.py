"""The independent oracle: expected figures from a scenario alone, compared with a run's books.

Nothing here imports ``simulators``: the oracle re-derives prorations, periods, balances,
allocations and schedules from the domain rules (docs/oracle.md), so a simulator bug and an
oracle bug would have to agree to go unnoticed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.oracle.billing import BillingReplay
from harness.oracle.compare import compare
from harness.oracle.model import (
    Expected,
    ExpectedContract,
    ExpectedContractLine,
    ExpectedCreditNote,
    ExpectedErpDocument,
    ExpectedInvoice,
    ExpectedLine,
    ExpectedSubscription,
)
from harness.oracle.revrec import Contracts, deferred_by_entity, recognised_by_month

if TYPE_CHECKING:
    from harness.scenario import Scenario

__all__ = [
    "FIGURES",
    "Expected",
    "ExpectedContract",
    "ExpectedContractLine",
    "ExpectedCreditNote",
    "ExpectedErpDocument",
    "ExpectedInvoice",
    "ExpectedLine",
    "ExpectedSubscription",
    "OracleError",
    "compare",
    "expect",
    "figure",
]

# The figure names `expect: figures:` may use; each is documented in docs/oracle.md.
FIGURES = {
    "invoice_total:<opportunity>:<n>": "total of the n-th invoice (1-based) of its subscription",
    "amount_due:<opportunity>:<n>": "amount due of that invoice after customer balance and "
    "pre-payment credit notes",
    "invoice_count:<opportunity>": "how many of its subscription's invoices are finalised",
    "erp_invoice_total:<opportunity>:<n>": "total of the ERP invoice mirroring that invoice",
    "balance:<customer>": "the customer's billing balance (negative: credit held)",
    "allocated:<opportunity>:<price>": "transaction price allocated to that contract line",
    "recognised:<entity>:<YYYY-MM>": "revenue the entity recognised in that month, as of the end",
    "deferred:<entity>": "the entity's deferred revenue balance at the end",
}


class OracleError(KeyError):
    """A figure name the oracle does not know or cannot predict for this scenario."""


def expect(scenario: Scenario) -> Expected:
    """Every figure the oracle predicts for ``scenario``, as at the end of its last step."""
    replay = BillingReplay(scenario)
    replay.run()
    expected = Expected(scenario.name, replay.now, notes=list(replay.notes))
    expected.subscriptions = dict(replay.subscriptions)
    expected.root = dict(replay.root)
    expected.balances = dict(replay.balances)
    for inv in replay.invoices:
        expected.invoices.setdefault(inv.opportunity, []).append(inv)
    expected.changes = list(replay.changes)
    contracts = Contracts(scenario)
    expected.contracts = contracts.replay(
        replay.bookings, replay.changes, replay.invoices, replay.consumption, replay.now
    )
    expected.notes += contracts.notes
    books = list(expected.contracts.values())
    expected.recognised = recognised_by_month(books, replay.now)
    expected.deferred = deferred_by_entity(books, replay.now)
    for inv in replay.invoices:
        if inv.finalized_at is None or inv.status == "void":
            continue  # a voided invoice's ERP document is voided too: nothing live to compare
        # A positive invoice is an ERP invoice, a negative one a credit memo under the invoice
        # id for the negated total, a zero one nothing (docs/reference-flow.md).
        if inv.total_minor > 0:
            expected.erp.append(
                ExpectedErpDocument("invoice", inv.ref, inv.total_minor, inv.currency)
            )
        elif inv.total_minor < 0:
            expected.erp.append(
                ExpectedErpDocument("creditMemo", inv.ref, -inv.total_minor, inv.currency)
            )
        for cn in inv.credit_notes:
            expected.erp.append(
                ExpectedErpDocument(
                    "creditMemo", f"{inv.ref}/cn{cn.n}", cn.total_minor, inv.currency
                )
            )
        if inv.amount_paid_minor > 0:
            expected.erp.append(
                ExpectedErpDocument("customerPayment", inv.ref, inv.amount_paid_minor, inv.currency)
            )
    return expected


def figure(expected: Expected, name: str) -> int:
    """One named figure (see ``FIGURES``); ``OracleError`` names the problem otherwise."""
    kind, _, rest = name.partition(":")
    parts = rest.split(":")
    if kind in ("invoice_total", "amount_due", "erp_invoice_total") and len(parts) == 2:
        invoices = _invoices(expected, parts[0])
        if not parts[1].isdigit() or not 1 <= int(parts[1]) <= len(invoices):
            raise OracleError(f"{name}: {parts[0]} has {len(invoices)} invoices")
        inv = invoices[int(parts[1]) - 1]
        if kind == "erp_invoice_total" and inv.finalized_at is None:
            raise OracleError(f"{name}: the invoice is still a draft; the ERP has none")
        if kind == "erp_invoice_total" and inv.total_minor <= 0:
            raise OracleError(
                f"{name}: the invoice totals {inv.total_minor}; the ERP has no invoice for it"
            )
        return inv.amount_due_minor if kind == "amount_due" else inv.total_minor
    if kind == "invoice_count" and len(parts) == 1:
        return sum(1 for inv in _invoices(expected, parts[0]) if inv.finalized_at is not None)
    if kind == "balance" and len(parts) == 1:
        if parts[0] not in expected.balances:
            raise OracleError(f"{name}: no customer {parts[0]!r}")
        return expected.balances[parts[0]]
    if kind == "allocated" and len(parts) == 2:
        contract = expected.contracts.get(expected.root.get(parts[0], parts[0]))
        found = [x for x in contract.lines if x.price == parts[1]] if contract else []
        if contract is None or not found:
            raise OracleError(f"{name}: no contract line for price {parts[1]!r}")
        return (contract.live(parts[1]) or found[-1]).allocated_minor
    if kind in ("recognised", "deferred") and len(parts) == (2 if kind == "recognised" else 1):
        entity = parts[0].upper()
        unpredicted = [
            c.opportunity
            for c in expected.contracts.values()
            if c.entity == entity and not c.predicted
        ]
        if unpredicted:
            raise OracleError(f"{name}: not predicted ({', '.join(unpredicted)})")
        if kind == "deferred":
            return expected.deferred.get(entity, 0)
        return expected.recognised.get((entity, parts[1]), 0)
    raise OracleError(f"unknown figure {name!r}; known: {', '.join(FIGURES)}")


def _invoices(expected: Expected, opportunity: str) -> list[ExpectedInvoice]:
    root = expected.root.get(opportunity)
    if root is None:
        raise OracleError(f"opportunity {opportunity!r} has no subscription")
    return expected.invoices.get(root, [])

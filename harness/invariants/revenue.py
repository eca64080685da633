"""Revenue invariants needing no prediction: revenue stops with the service and matches billing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from harness.books import Books
from harness.invariants import refs
from harness.invariants.registry import DOCUMENTS, invariant
from harness.invariants.tax import earned
from harness.violations import Violation
from simulators.billing import models as bm
from simulators.revrec.models import (
    DAY,
    Contract,
    Line,
    allocated,
    month_index,
    month_start,
    recognised,
)

FAR = 253402300799  # 9999-12-31T23:59:59Z: "over the contract's whole life"


def _day(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).date().isoformat()


def billed_net(books: Books, sub: bm.Subscription) -> int:
    """What billing invoiced a subscription for its items, net of credit notes: its finalised
    invoices' lines on subscription items (voided invoices reversed), less live credit notes."""
    total = 0
    for inv in books.invoices_by_subscription.get(sub.id, []):
        if inv.status == "void" or inv.finalized_at is None:
            continue
        total += sum(earned(line) for line in inv.lines if line.subscription_item)
        for cn in books.credit_notes_by_invoice.get(inv.id, []):
            if cn.status != "void":
                total -= sum(earned(x) for x in cn.lines)
    return total


def _final(books: Books, sub: bm.Subscription) -> bool:
    """Its last invoice is final: no draft invoice and no pending item left to invoice."""
    if any(inv.status == "draft" for inv in books.invoices_by_subscription.get(sub.id, [])):
        return False
    return not any(
        ii.subscription == sub.id and ii.invoice is None and not ii.deleted
        for ii in books.invoice_items.values()
    )


@invariant(
    "INV-31", group="subledger", handoffs=("revrec.contracts", "revrec.billing"), reads=DOCUMENTS
)
def ended_contracts_recognise_what_was_billed(books: Books) -> Iterator[Violation]:
    """When a subscription's service has ended (``ended_at`` passed) and its last invoice is
    final (no draft, no pending item), its contract recognises over its whole life exactly
    what billing invoiced for its items net of credit notes (less discounts, without tax), and
    has recognised all of it by now: nothing deferred and nothing unbilled on balance."""
    for sub in books.subscriptions.values():
        if sub.ended_at is None or sub.ended_at > books.now or not _final(books, sub):
            continue
        contract = books.links.target("revrec.contract", sub.id)
        if contract is None:
            continue
        lines = books.rr_contract_lines(contract)
        lifetime = sum(recognised(line, FAR) for line in lines)
        so_far = sum(recognised(line, books.now + 1) for line in lines)
        billed = billed_net(books, sub)
        if lifetime != billed or so_far != billed:
            # The figure so far moves with the clock: it stays out of the message, so the
            # runner counts one finding per contract.
            how = (
                f"recognises {lifetime} over its life"
                if lifetime != billed
                else f"has not recognised all of it by {_day(books.now)}"
            )
            yield Violation(
                "INV-31",
                f"subscription {sub.id} ended on {_day(sub.ended_at)} after billing {billed} net "
                f"of credits; its contract {contract.id} {how}",
                (refs.billing(sub.id), refs.revrec(contract.id)),
                {"billed_minor": billed, "lifetime_minor": lifetime, "recognised_minor": so_far},
            )


def service_end(books: Books, contract: Contract) -> int | None:
    """When the contract's subscription stops serving: it ended, or is scheduled to end."""
    sub = books.subscriptions.get(books.links.source("revrec.contract", contract) or "")
    if sub is None:
        return None
    return sub.ended_at if sub.ended_at is not None else sub.cancel_at


def _unit_end(at: int, convention: str) -> int:
    """Just past ``at``, and past the whole unit holding the instant before it: revenue due by
    a service end is all recognised by then, whatever unit the schedule earns by."""
    if convention == "day":
        return max(at + 1, ((at - 1) // DAY + 1) * DAY)
    if convention == "even_months":
        return max(at + 1, month_start(month_index(at - 1) + 1))
    return at + 1


@invariant("INV-32", group="subledger", handoffs=("revrec.contracts",), reads=DOCUMENTS)
def no_revenue_after_the_service_ended(books: Books) -> Iterator[Violation]:
    """Nothing is recognised for service after it ended: no contract line earns anything after
    its own end (``service_end_at``, or its termination), nor after its subscription ended or
    is scheduled to end (``ended_at`` / ``cancel_at``) — counted past the unit of the
    contract's convention that holds the end."""
    for contract in books.rr_contracts.values():
        ended = service_end(books, contract)
        for line in books.rr_contract_lines(contract):
            own = line.terminated_at if line.terminated_at is not None else line.service_end_at
            ends = [at for at in (own, ended) if at is not None]
            if not ends:
                continue
            end = min(ends)
            after = recognised(line, FAR) - recognised(line, _unit_end(end, contract.convention))
            if after:
                yield Violation(
                    "INV-32",
                    f"line {line.id} of {contract.id} recognises {after} after its service "
                    f"ended on {_day(end)}",
                    (
                        refs.revrec(contract.id),
                        refs.revrec(line.id),
                        refs.billing(books.links.source("revrec.contract", contract) or ""),
                    ),
                    {"after_end_minor": after, "service_end_at": end},
                )


def _month_ends(line: Line, now: int) -> list[int]:
    """Every month end from the line's creation up to now, and now itself."""
    first = month_index(line.created_at)
    return [month_start(m) for m in range(first + 1, month_index(now) + 1)] + [now + 1]


@invariant("INV-33", group="subledger", handoffs=("revrec.contracts",), reads=DOCUMENTS)
def no_line_recognises_more_than_its_allocation(books: Books) -> Iterator[Violation]:
    """No contract line has recognised more than its allocated consideration: not at any month
    end so far, not now, and not over its whole life (the allocation in force at the time)."""
    for contract in books.rr_contracts.values():
        for line in books.rr_contract_lines(contract):
            if not line.fixed:
                continue
            for before in [*_month_ends(line, books.now), FAR]:
                earned, share = recognised(line, before), allocated(line, before - 1)
                if earned > share:
                    when = "over its life" if before == FAR else f"by {_day(before - 1)}"
                    yield Violation(
                        "INV-33",
                        f"line {line.id} of {contract.id} has recognised {earned} {when}, more "
                        f"than its allocation of {share}",
                        (refs.revrec(contract.id), refs.revrec(line.id)),
                        {"recognised_minor": earned, "allocated_minor": share, "before": before},
                    )
                    break

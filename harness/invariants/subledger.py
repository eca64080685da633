"""Subledger invariants: billing reaches the contracts, bookings match, closes reach the GL."""

from __future__ import annotations

from collections.abc import Iterator

from harness.books import Books
from harness.invariants import refs
from harness.invariants.ledger import close_nets, owes_journal
from harness.invariants.registry import DOCUMENTS, invariant
from harness.invariants.tax import earned, periods_in_term
from harness.violations import Violation
from simulators.revrec.models import Contract, PeriodClose

# Subledger account roles → harness.toml [accounts] roles.
ROLE_MAP = {
    "deferred_revenue": "deferred_revenue",
    "unbilled_receivable": "unbilled_ar",
    "revenue": "revenue",
    "fx_gain_loss": "fx_gain_loss",
}


@invariant("INV-16", group="subledger", handoffs=("revrec.billing",), reads=DOCUMENTS)
def subledger_billed_matches_billing(books: Books) -> Iterator[Violation]:
    """Billed = recognised + deferred − unbilled on every contract line, and what the
    subledger has billed is what billing invoiced, as the flow sends it: for every finalised
    invoice (total ≠ 0) of a subscription with a contract, its net per subscription item
    split by sign — a positive invoice is an ``invoice`` event under its id for the positive
    nets and a ``credit_note`` ``<id>-credit`` for the negative ones, a negative invoice a
    ``credit_note`` under its id and an ``invoice`` ``<id>-charge`` — each with the same
    per-item amounts (none owed when there is nothing to carry); a voided invoice also has a
    ``credit_note`` ``<id>-void`` for its positive nets; every live credit note has a
    ``credit_note`` event under its id for what its lines earn. Amounts are what lines earn:
    less discounts and included tax, never tax (INV-51). Lines on no subscription item are not
    billed in the subledger."""
    for booked in books.rr_contracts.values():
        for row in books.rr_line_balances(booked):
            r, b = row["recognised_minor"], row["billed_minor"]
            d, u = row["deferred_minor"], row["unbilled_minor"]
            if r + d - u != b:
                yield Violation(
                    "INV-16",
                    f"line {row['line']} of {booked.id}: recognised {r} + deferred {d} − "
                    f"unbilled {u} ≠ billed {b}",
                    (refs.revrec(booked.id), refs.revrec(row["line"])),
                )
    for inv in books.finalised_invoices:
        if not inv.subscription or inv.total == 0:
            continue
        contract = books.links.target("revrec.contract", inv.subscription)
        if contract is None:
            continue
        net: dict[str, int] = {}
        for line in inv.lines:
            if line.subscription_item:
                net[line.subscription_item] = net.get(line.subscription_item, 0) + earned(line)
        charged = {k: v for k, v in net.items() if v > 0}
        credited = {k: -v for k, v in net.items() if v < 0}
        if inv.total > 0:
            owed = [
                ("revrec.billing_event", "invoice", charged),
                ("revrec.billing_credit", "credit_note", credited),
            ]
        else:
            owed = [
                ("revrec.billing_event", "credit_note", credited),
                ("revrec.billing_charge", "invoice", charged),
            ]
        if inv.status == "void":
            owed.append(("revrec.billing_void", "credit_note", charged))
        for link, kind, amounts in owed:
            if amounts:
                yield from _event(books, contract, inv.id, link, kind, amounts)
        for cn in books.credit_notes_by_invoice.get(inv.id, []):
            if cn.status != "void":
                credited_total = sum(earned(x) for x in cn.lines)
                yield from _event(
                    books,
                    contract,
                    cn.id,
                    "revrec.credit_event",
                    "credit_note",
                    None,
                    credited_total,
                )


def _event(
    books: Books,
    contract: Contract,
    source: str,
    link: str,
    kind: str,
    by_item: dict[str, int] | None,
    total: int | None = None,
) -> Iterator[Violation]:
    """The billing event copying ``source`` through ``link`` is a ``kind`` on ``contract``
    of ``total`` or, given ``by_item``, of those amounts per subscription item."""
    if by_item is not None:
        total = sum(by_item.values())
    event = books.links.target(link, source)
    named: tuple[str, ...] = (refs.billing(source), refs.revrec(contract.id))
    if event is None:
        # Described only when missing: describing reads every source document.
        external_id = books.links.describe(link, source)
        yield Violation(
            "INV-16",
            f"{kind} of {source} has no subledger billing event ({external_id})",
            named,
            {"link": link, "type": kind, "total": total},
        )
        return
    named = (*named, refs.revrec(event.id))
    sent = sum(int(line["amount_minor"]) for line in event.lines)
    if event.contract != contract.id or event.type != kind or sent != total:
        yield Violation(
            "INV-16",
            f"billing event {event.external_id} is a {event.type} of {sent} on {event.contract}; "
            f"billing says a {kind} of {total} on {contract.id}",
            named,
            {"event_total_minor": sent, "billing_total": total},
        )
        return
    if by_item is None:
        return
    lines = {
        ln.id: books.links.source("revrec.line", ln) for ln in books.rr_contract_lines(contract)
    }
    per_item: dict[str, int] = {}
    for line in event.lines:
        key = lines.get(str(line["line"])) or str(line["line"])
        per_item[key] = per_item.get(key, 0) + int(line["amount_minor"])
    per_item = {k: v for k, v in per_item.items() if v}
    if per_item != by_item:
        yield Violation(
            "INV-16",
            f"billing event {event.external_id} splits its total differently from the invoice",
            named,
            {"event_by_item": per_item, "invoice_by_item": by_item},
        )


@invariant("INV-18", group="subledger", handoffs=("revrec.contracts",), reads=DOCUMENTS)
def allocations_sum_to_the_price(books: Books) -> Iterator[Violation]:
    """A contract's allocations sum to its transaction price (the fixed lines' amounts), and it
    books what was sold: every subscription routed to an entity (a won opportunity's, or one
    made in billing for a customer with ``metadata.entity``) has a contract (linked as
    declared, default external id = subscription id) with one line per item (default external
    id = item id), the item's quantity and
    the price of the whole term (unit amount × the billing periods in the subscription's
    ``metadata.term_months``, 12 months when absent), usage lines for metered prices. A change
    billed only from the next period (no prorations: a renewal) may reach the contract when
    that period starts: until then the line may book the quantity this period was billed at."""
    for booked in books.rr_contracts.values():
        fixed = [ln for ln in books.rr_contract_lines(booked) if ln.fixed]
        total = sum(ln.amount_minor for ln in fixed)
        allocated = sum(ln.allocated_minor for ln in fixed)
        if total != allocated:
            yield Violation(
                "INV-18",
                f"contract {booked.id} allocates {allocated} of a price of {total}",
                (refs.revrec(booked.id),),
                {"allocated_minor": allocated, "price_minor": total},
            )
    for sub in books.subscriptions.values():
        entity = (sub.metadata.get("entity") or "") or books.customer_entity(sub.customer)
        if not entity:
            continue  # routed to no entity: no contract is owed
        contract = books.links.target("revrec.contract", sub.id)
        if contract is None:
            opp_id = books.links.source("billing.subscription", sub)
            source = f"of opportunity {opp_id}" if opp_id else "made in billing"
            yield Violation(
                "INV-18",
                f"subscription {sub.id} {source} has no subledger contract",
                (refs.billing(sub.id), *((refs.crm(opp_id),) if opp_id else ())),
            )
            continue
        lines = {
            books.links.source("revrec.line", ln) or "": ln
            for ln in books.rr_contract_lines(contract)
        }
        billed_now = _billed_this_period(books, sub.id)
        for item_id in sub.items:
            item = books.subscription_items.get(item_id)
            price = books.prices.get(item.price) if item else None
            if item is None or price is None:
                continue
            line = lines.get(item_id)
            named: tuple[str, ...] = (
                refs.billing(sub.id),
                refs.billing(item_id),
                refs.revrec(contract.id),
            )
            if line is None:
                yield Violation("INV-18", f"item {item_id} has no contract line", named)
                continue
            named = (*named, refs.revrec(line.id))
            if price.metered:
                if line.pattern != "usage":
                    yield Violation(
                        "INV-18", f"metered item {item_id} is a {line.pattern} line", named
                    )
                continue
            term_price = price.unit_amount * periods_in_term(sub, price)
            terms = (line.quantity, line.unit_price_minor)
            if terms != (item.quantity, term_price) and terms != (
                billed_now.get(item_id),
                term_price,
            ):
                yield Violation(
                    "INV-18",
                    f"contract line for {item_id} books {line.quantity} × "
                    f"{line.unit_price_minor}; billing has {item.quantity} × "
                    f"{price.unit_amount} for {periods_in_term(sub, price)} period(s)",
                    named,
                    {
                        "contract": [line.quantity, line.unit_price_minor],
                        "billing": [item.quantity, term_price],
                    },
                )


def _billed_this_period(books: Books, sub_id: str) -> dict[str, int]:
    """Per subscription item, the quantity the period under way was billed at, when nothing
    was prorated for it since (so a change made is billed only from the next period)."""
    billed: dict[str, int] = {}
    prorated: set[str] = set()
    for inv in books.invoices_by_subscription.get(sub_id, []):
        for line in inv.lines:
            item = line.subscription_item
            if item is None or not line.period_start <= books.now < line.period_end:
                continue
            if line.proration:
                prorated.add(item)
            else:
                billed[item] = line.quantity
    return {item: qty for item, qty in billed.items() if item not in prorated}


@invariant("INV-19", group="subledger", handoffs=("revrec.contracts",), reads=DOCUMENTS)
def changes_reach_the_subledger_prospectively(books: Books) -> Iterator[Violation]:
    """Every mid-period change of a subscription with a contract (its prorations, other than a
    cancellation's) reaches the subledger as a prospective modification effective at the
    change (the prorations' start instant); revenue before it is left alone. A cancellation
    reaches it too: once the subscription has ended, every ratable line of its contract ends
    at the cancel instant at the latest (terminated by a prospective modification effective
    then); while the end is only scheduled (``cancel_at``), every ratable line's service is
    already shortened to end by then."""
    changes: dict[tuple[str, int], list[str]] = {}
    for ii in books.invoice_items.values():
        if ii.proration and ii.subscription and not ii.deleted:
            changes.setdefault((ii.subscription, ii.period_start), []).append(ii.id)
    for (sub_id, at), items in sorted(changes.items()):
        sub = books.subscriptions.get(sub_id)
        if sub is None or (sub.ended_at is not None and at >= sub.ended_at):
            continue
        contract = books.links.target("revrec.contract", sub_id)
        if contract is None:
            continue
        yield from _prospective_at(books, contract, sub_id, at, [refs.billing(i) for i in items])
    for sub in books.subscriptions.values():
        end = sub.ended_at if sub.ended_at is not None else sub.cancel_at
        contract = books.links.target("revrec.contract", sub.id) if end is not None else None
        if contract is None or end is None:
            continue
        how = "ended" if sub.ended_at is not None else "is scheduled to end"
        for line in books.rr_contract_lines(contract):
            if line.pattern != "ratable" or line.service_start_at is None:
                continue
            line_end = line.service_end_at
            if line.service_start_at < end and (line_end is None or line_end > end):
                yield Violation(
                    "INV-19",
                    f"subscription {sub.id} {how} at {end}; line {line.id} of contract "
                    f"{contract.id} still runs to {line_end}",
                    (refs.billing(sub.id), refs.revrec(contract.id), refs.revrec(line.id)),
                    {"subscription_end_at": end, "service_end_at": line_end},
                )
        if sub.ended_at is not None and any(
            line.terminated_at == sub.ended_at for line in books.rr_contract_lines(contract)
        ):
            yield from _prospective_at(books, contract, sub.id, sub.ended_at, [])


def _prospective_at(
    books: Books, contract: Contract, sub_id: str, at: int, named: list[str]
) -> Iterator[Violation]:
    """A prospective modification of ``contract`` takes effect at ``at``."""
    mods = [books.rr_modifications[m] for m in contract.modifications]
    if any(m.effective_at == at and m.treatment == "prospective" for m in mods):
        return
    other = [m for m in mods if m.effective_at == at]
    yield Violation(
        "INV-19",
        f"the change of {sub_id} at {at} reached contract {contract.id} "
        + (f"as a {other[0].treatment} modification" if other else "as no modification"),
        (refs.billing(sub_id), refs.revrec(contract.id), *named),
        {"effective_at": at, "modifications": [m.id for m in mods]},
    )


@invariant("INV-21", group="subledger", handoffs=("erp.journals",), reads=DOCUMENTS)
def subledger_ties_to_the_gl(books: Books) -> Iterator[Violation]:
    """Each subledger period close that recognised anything reaches the ERP as one live
    journal entry (linked as declared, default external id = the close id), in the entity's
    subsidiary and functional
    currency, whose net per account role (via [accounts]) equals the close summary's
    functional net for that role, every currency together (FX releases included, at the
    subledger's booking rates)."""
    for close in books.rr_period_closes.values():
        yield from _close(books, close)


def _close(books: Books, close: PeriodClose) -> Iterator[Violation]:
    journals = [j for j in books.links.targets("erp.journal", close.id) if not j.voided]
    if not journals:
        if owes_journal(close):
            yield Violation(
                "INV-21",
                f"subledger close {close.entity} {close.period} has no live ERP journal "
                f"({books.links.describe('erp.journal', close.id)})",
                (refs.revrec(close.id),),
            )
        return
    journal = journals[0]
    named: tuple[str, ...] = (refs.revrec(close.id), refs.erp_txn(journal))
    subsidiary = books.subsidiary_by_external_id.get(close.entity.upper())
    if subsidiary is None or journal.subsidiary != subsidiary.id:
        yield Violation(
            "INV-21",
            f"ERP journal for close {close.id} is not in subsidiary {close.entity}",
            named,
        )
    entity = books.rr_entities.get(close.entity)
    functional = (entity.functional_currency if entity else "").upper()
    currency = books.currency_code(journal.currency)
    if functional and currency != functional:
        yield Violation(
            "INV-21",
            f"ERP journal for close {close.entity} {close.period} is in {currency}, the "
            f"entity's functional currency is {functional}",
            named,
            {"erp_currency": currency, "functional_currency": functional},
        )
    expected: dict[str, int] = {}
    for role, net in close_nets(close.journal).items():
        account = books.account_ids.get(ROLE_MAP.get(role, role))
        if account is None:
            yield Violation(
                "INV-21",
                f"account role {ROLE_MAP.get(role, role)} is not mapped to an ERP account "
                "([accounts])",
                named,
            )
            continue
        expected[account] = expected.get(account, 0) + net
    actual: dict[str, int] = {}
    for line in books.gl.get(journal.id, ()):
        actual[line.account] = actual.get(line.account, 0) + line.debit_minor - line.credit_minor
    actual = {k: v for k, v in actual.items() if v}
    expected = {k: v for k, v in expected.items() if v}
    if actual != expected:
        yield Violation(
            "INV-21",
            f"ERP journal for close {close.entity} {close.period} moves {actual}; the "
            f"subledger says {expected} (account id → net debit, {functional or currency} "
            "minor)",
            named,
            {"erp": actual, "subledger": expected},
        )

"""Ledger invariants: journals balance, trial balance, periods, and routing to entities."""

from __future__ import annotations

import calendar
import functools
from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from typing import Any

from harness.books import Books, ar_link
from harness.invariants import refs
from harness.invariants.registry import DOCUMENTS, invariant
from harness.violations import Violation
from simulators.erp.models import Period
from simulators.revrec.models import PeriodClose

# The hand-offs that post to the ERP's general ledger.
ERP_POSTINGS = ("erp.invoices", "erp.payments", "erp.credit_memos", "erp.journals")


@invariant("INV-01", group="ledger", handoffs=ERP_POSTINGS, reads=DOCUMENTS)
def journals_balance(books: Books) -> Iterator[Violation]:
    """Every ERP transaction balances per subsidiary (debits = credits in the transaction
    currency and in the subsidiary's base currency), and every subledger period-close journal
    balances per entity and currency, in the transaction and the functional currency."""
    for tid, lines in books.gl.items():
        nets: dict[str, list[int]] = {}
        for line in lines:
            cell = nets.setdefault(line.subsidiary, [0, 0])
            cell[0] += line.debit_minor - line.credit_minor
            cell[1] += line.debit_base_minor - line.credit_base_minor
        for sub, (txn, base) in nets.items():
            if txn or base:
                kind = lines[0].kind
                yield Violation(
                    "INV-01",
                    f"ERP {kind} {tid} is out of balance in subsidiary {sub}",
                    (refs.erp(kind, tid), refs.erp("subsidiary", sub)),
                    {"net_minor": txn, "net_base_minor": base},
                )
    for close in books.rr_period_closes.values():
        sums: dict[str, list[int]] = {}
        for row in close.journal:
            cell = sums.setdefault(row["currency"], [0, 0])
            cell[0] += row["debit_minor"] - row["credit_minor"]
            cell[1] += row["functional_debit_minor"] - row["functional_credit_minor"]
        for currency, (txn, func) in sums.items():
            if txn or func:
                yield Violation(
                    "INV-01",
                    f"subledger close of {close.entity} {close.period} is out of balance "
                    f"in {currency}",
                    (refs.revrec(close.id),),
                    {"net_minor": txn, "net_functional_minor": func},
                )


@invariant("INV-02", group="ledger", handoffs=ERP_POSTINGS, reads=(*DOCUMENTS, "erp_periods"))
def trial_balance_per_entity_and_period(books: Books) -> Iterator[Violation]:
    """Per subsidiary and posting period, the general ledger's base-currency debits equal its
    credits (the trial balance of every entity and period is zero)."""
    nets: dict[tuple[str, str], int] = {}
    for line in books.gl_lines():
        key = (line.subsidiary, line.period)
        nets[key] = nets.get(key, 0) + line.debit_base_minor - line.credit_base_minor
    for (sub, period_id), net in sorted(nets.items()):
        if net:
            period = books.erp_periods.get(period_id)
            name = period.ym if period else period_id
            yield Violation(
                "INV-02",
                f"the trial balance of subsidiary {sub} for {name} is off by {net} (base minor)",
                (refs.erp("subsidiary", sub), refs.erp("accountingPeriod", period_id)),
                {"net_base_minor": net},
            )


def _refuses(period: Period) -> bool:
    """The period takes no postings from the integration: closed, or locked for everyone."""
    return period.closed or period.all_locked


def _between_closed(books: Books, sub: str, first: str, last: str) -> bool:
    """Every period of ``sub`` from ``first`` up to, not including, ``last`` is closed (or
    locked)."""
    for period in books.erp_periods.values():
        if period.subsidiary == sub and first <= period.ym < last and not _refuses(period):
            return False
    return True


@invariant("INV-03", group="ledger", handoffs=ERP_POSTINGS, reads=(*DOCUMENTS, "erp_periods"))
def postings_in_open_periods(books: Books) -> Iterator[Violation]:
    """Every posting sits in the period of its date; when that period is closed (or locked for
    everyone), in the first open period after it (every period in between is closed or locked)
    — never in an earlier period.
    ERP documents from billing and the subledger are dated by their source (UTC): invoice by
    finalisation (a negative one's credit memo too), payment by ``paid_at``, credit memo by the
    credit note's creation, the close journal by the last day of the subledger period."""
    # Group first: a million lines collapse to a few (subsidiary, period, month) cells; only
    # the cells found wrong are walked again to name every transaction in them.
    cells: set[tuple[str, str, str]] = set()
    transactions = books.erp_transactions
    for txn_id, lines in books.gl.items():
        if not lines:
            continue
        txn = transactions.get(txn_id)
        if txn is not None and txn.to_subsidiary is None:
            # One subsidiary, one date, one period: its first line speaks for all of them.
            first = lines[0]
            cells.add((first.subsidiary, first.period, first.tran_on[:7]))
            continue
        for line in lines:  # intercompany: each side in its own subsidiary's period
            cells.add((line.subsidiary, line.period, line.tran_on[:7]))
    wrong: dict[tuple[str, str, str], str] = {}
    for sub, period_id, month in cells:
        period: Period | None = books.erp_periods.get(period_id)
        if period is None or period.ym == month:
            continue
        dated = books.erp_period_at(sub, month)
        if period.ym < month:
            wrong[(sub, period_id, month)] = (
                f"a posting dated {month} sits in the earlier period {period.ym} ({sub})"
            )
        elif (
            dated is None
            or not _refuses(dated)
            or not _between_closed(books, sub, month, period.ym)
        ):
            wrong[(sub, period_id, month)] = (
                f"a posting dated {month} sits in {period.ym} ({sub}) although {month} "
                "or a period after it is open"
            )
    if wrong:
        named: dict[tuple[str, str, str], dict[str, None]] = {key: {} for key in wrong}
        for line in books.gl_lines():
            key = (line.subsidiary, line.period, line.tran_on[:7])
            if key in named:
                named[key][refs.erp(line.kind, line.transaction)] = None
        for (sub, period_id, month), message in wrong.items():
            yield Violation(
                "INV-03",
                message,
                (*named[(sub, period_id, month)], refs.erp("accountingPeriod", period_id)),
                {"period_id": period_id, "date_month": month, "subsidiary": sub},
            )
    yield from _source_dates(books)


def _source_dates(books: Books) -> Iterator[Violation]:
    expected: list[tuple[str, str, str, str]] = []  # (link, source id, source ref, date)
    for inv in books.finalised_invoices:
        assert inv.finalized_at is not None
        link = ar_link(inv.total)
        if link is not None and books.owns("erp.invoices"):
            expected.append((link, inv.id, refs.billing(inv.id), day_of(inv.finalized_at)))
        if inv.paid_at is not None and inv.amount_paid > 0 and books.owns("erp.payments"):
            expected.append(("erp.payment", inv.id, refs.billing(inv.id), day_of(inv.paid_at)))
    if books.owns("erp.credit_memos"):
        for cn in books.credit_notes.values():
            expected.append(("erp.credit_memo", cn.id, refs.billing(cn.id), day_of(cn.created)))
    if books.owns("erp.journals"):
        for close in books.rr_period_closes.values():
            expected.append(
                ("erp.journal", close.id, refs.revrec(close.id), _last_day(close.period))
            )
    for link, source_id, source, day in expected:
        for txn in books.links.targets(link, source_id):
            if txn.tran_on != day:
                yield Violation(
                    "INV-03",
                    f"ERP {txn.kind} {txn.id} ({books.links.describe(link, source_id)}) is "
                    f"dated {txn.tran_on}, its source {day}",
                    (source, refs.erp_txn(txn)),
                    {"tran_on": txn.tran_on, "source_on": day},
                )


@functools.lru_cache(maxsize=8192)
def _day_number(days: int) -> str:
    return date.fromordinal(_EPOCH_ORDINAL + days).isoformat()


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def day_of(at: int) -> str:
    """The UTC date of a Unix time, as the ERP dates documents (cached by day: a large world
    has a hundred thousand documents and a few hundred distinct days)."""
    return _day_number(at // 86400)


def _last_day(period: str) -> str:
    year, month = int(period[:4]), int(period[5:7])
    return f"{period}-{calendar.monthrange(year, month)[1]:02d}"


def close_nets(journal: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """A close's functional net debit per subledger account role, every currency together
    (FX releases included): what its one ERP journal moves."""
    nets: dict[str, int] = {}
    for row in journal:
        net = int(row["functional_debit_minor"]) - int(row["functional_credit_minor"])
        role = str(row["account_role"])
        nets[role] = nets.get(role, 0) + net
    return {role: net for role, net in nets.items() if net}


def owes_journal(close: PeriodClose) -> bool:
    """The flow posts one ERP journal per close (external id = the close id) unless the
    close recognised nothing: no summary row carries a functional amount."""
    return any(
        row["functional_debit_minor"] or row["functional_credit_minor"] for row in close.journal
    )


@invariant(
    "INV-05",
    group="ledger",
    handoffs=("erp.customers", *ERP_POSTINGS, "revrec.contracts"),
    reads=DOCUMENTS,
)
def documents_in_routed_entity(books: Books) -> Iterator[Violation]:
    """Each ERP customer synced from billing sits in the subsidiary named by the Stripe
    customer's ``metadata.entity``, and so does every ERP document for it; each subledger
    contract sits in its subscription's entity."""
    expected_sub: dict[str, tuple[str, str]] = {}  # ERP customer id → (subsidiary id, cus id)
    for customer in books.customers.values():
        entity = books.customer_entity(customer.id)
        erp_customer = books.links.target("erp.customer", customer.id)
        if entity is None or erp_customer is None:
            continue
        subsidiary = books.subsidiary_by_external_id.get(entity)
        named = (refs.billing(customer.id), refs.erp("customer", erp_customer.id))
        if subsidiary is None:
            if books.owns("erp.customers"):
                yield Violation(
                    "INV-05",
                    f"customer {customer.id} routes to entity {entity}, which the ERP has no "
                    "subsidiary for",
                    named,
                    {"entity": entity},
                )
            continue
        expected_sub[erp_customer.id] = (subsidiary.id, customer.id)
        if erp_customer.subsidiary != subsidiary.id and books.owns("erp.customers"):
            yield Violation(
                "INV-05",
                f"ERP customer for {customer.id} is in subsidiary "
                f"{_sub_name(books, erp_customer.subsidiary)}, not {entity}",
                named,
                {"entity": entity, "subsidiary": _sub_name(books, erp_customer.subsidiary)},
            )
    postings = {
        "invoice": "erp.invoices",
        "creditMemo": "erp.invoices",
        "customerPayment": "erp.payments",
    }
    for txn in books.erp_transactions.values():
        if txn.entity is None or txn.entity not in expected_sub or txn.system:
            continue
        owner = postings.get(txn.kind, "erp.journals")
        if txn.kind == "creditMemo" and books.links.source("erp.credit_memo", txn) is not None:
            owner = "erp.credit_memos"
        if not books.owns(owner):
            continue
        want, cus = expected_sub[txn.entity]
        if txn.subsidiary != want:
            yield Violation(
                "INV-05",
                f"ERP {txn.kind} {txn.id} is in subsidiary {_sub_name(books, txn.subsidiary)}, "
                f"not {_sub_name(books, want)}",
                (refs.billing(cus), refs.erp_txn(txn)),
                {"subsidiary": _sub_name(books, txn.subsidiary), "entity": _sub_name(books, want)},
            )
    if not books.owns("revrec.contracts"):
        return
    for contract in books.rr_contracts.values():
        sub = books.subscriptions.get(books.links.source("revrec.contract", contract) or "")
        if sub is None:
            continue
        entity = (sub.metadata.get("entity") or "").upper() or books.customer_entity(sub.customer)
        if entity and contract.entity.upper() != entity:
            yield Violation(
                "INV-05",
                f"subledger contract {contract.id} is in entity {contract.entity}, its "
                f"subscription routes to {entity}",
                (refs.billing(sub.id), refs.revrec(contract.id)),
                {"entity": entity, "contract_entity": contract.entity},
            )


def _sub_name(books: Books, sub_id: str) -> str:
    sub = books.erp_subsidiaries.get(sub_id)
    return (sub.external_id or sub.id) if sub else sub_id

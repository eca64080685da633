"""What the reference flow owes for each source record, and what the books hold for it.

Each rule pairs a source (a finalised invoice, a won deal, a period close …) with one function
saying which document the flow owes for it (docs/reference-flow.md, to the letter: a zero-total
invoice owes nothing, a negative one a credit memo under the invoice id, a paid invoice with
nothing paid no payment) and one lookup per kind of document finding what is there. The
lookups are the only place that knows how documents are linked to their sources.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from harness.books import Books, ar_kind

# Opportunity types that amend a subscription instead of creating one.
AMENDING = ("Amendment", "Renewal")
# The ERP kinds the flow writes; any other document of these kinds is unexpected.
ERP_KINDS = ("invoice", "creditMemo", "customerPayment", "journalEntry")


@dataclass(frozen=True)
class Doc:
    """A document found in a target system."""

    system: str
    kind: str
    id: str  # its own id there
    external_id: str | None


@dataclass(frozen=True)
class Owed:
    """A document the flow owes for one source record, and the id it is filed under."""

    source: str
    system: str
    kind: str
    external_id: str


@dataclass(frozen=True)
class Exempt:
    """A source the flow deliberately posts nothing for, and why."""

    source: str
    reason: str


class Index:
    """The books, grouped once for the lookups (every lookup is a dictionary read)."""

    def __init__(self, books: Books) -> None:
        self.books = books

    @functools.cached_property
    def erp(self) -> dict[tuple[str, str], list[Doc]]:
        found: dict[tuple[str, str], list[Doc]] = defaultdict(list)
        for txn in self.books.erp_transactions.values():
            if txn.kind in ERP_KINDS:
                found[(txn.kind, txn.external_id or "")].append(
                    Doc("erp", txn.kind, txn.id, txn.external_id)
                )
        return found

    def universe(self) -> list[Doc]:
        """Every document of the kinds the flow writes, whoever wrote it."""
        docs = [doc for group in self.erp.values() for doc in group]
        docs += [
            _subscription(s)
            for group in self.books.subscriptions_by_opportunity.values()
            for s in group
        ]
        docs += [
            Doc("revrec", "contract", c.id, c.external_id) for c in self.books.rr_contracts.values()
        ]
        return docs


# ---------------------------------------------------------------------------------------------
# what the flow owes, one function per kind of document


def ar_document_for_invoice(books: Books, invoice: Any) -> Owed | Exempt:
    """Flow 3: a finalised invoice is an ERP invoice when positive, an unapplied credit memo
    when negative, both under the invoice id; a zero total posts nothing."""
    kind = ar_kind(invoice.total)
    if kind is None:
        return Exempt(invoice.id, "total 0: the flow posts nothing")
    return Owed(invoice.id, "erp", kind, invoice.id)


def payment_for_invoice(books: Books, invoice: Any) -> Owed | Exempt:
    """Flow 4: a paid invoice with money paid is an ERP customer payment ``pay_<invoice>``;
    one settled from the customer's credit balance (amount_paid 0) is no payment."""
    if invoice.amount_paid <= 0:
        return Exempt(invoice.id, "paid from credit (amount_paid 0): no payment")
    return Owed(invoice.id, "erp", "customerPayment", f"pay_{invoice.id}")


def credit_memo_for_credit_note(books: Books, note: Any) -> Owed | Exempt:
    """Flow 6: a credit note is an ERP credit memo under the credit note id."""
    return Owed(note.id, "erp", "creditMemo", note.id)


def journal_for_period_close(books: Books, close: Any) -> Owed | Exempt:
    """Flow 7: a subledger close is one ERP journal under its close id; a close that
    recognised nothing (every amount of its summary zero) posts no journal."""
    for line in close.journal:
        own = line.get("currency") == line.get("functional_currency")
        debit = line["debit_minor"] if own else line["functional_debit_minor"]
        credit = line["credit_minor"] if own else line["functional_credit_minor"]
        if debit or credit:
            return Owed(close.id, "erp", "journalEntry", close.id)
    return Exempt(close.id, "recognised nothing: no journal")


def subscription_for_deal(books: Books, opportunity: Any) -> Owed | Exempt:
    """Flow 1: a won new-business opportunity is one subscription carrying
    ``metadata.crm_opportunity_id``."""
    return Owed(opportunity.id, "billing", "subscription", opportunity.id)


def contract_for_subscription(books: Books, subscription: Any) -> Owed | Exempt:
    """Flow 1: a deal's subscription is one subledger contract under the subscription id."""
    return Owed(subscription.id, "revrec", "contract", subscription.id)


# ---------------------------------------------------------------------------------------------
# what is there, one lookup per kind of document


def erp_document(index: Index, owed: Owed) -> list[Doc]:
    """ERP transactions of the owed kind filed under the owed external id."""
    return index.erp.get((owed.kind, owed.external_id), [])


def subscriptions_of_deal(index: Index, owed: Owed) -> list[Doc]:
    return [_subscription(s) for s in index.books.subscriptions_by_opportunity.get(owed.source, [])]


def contract_of_subscription(index: Index, owed: Owed) -> list[Doc]:
    contract = index.books.rr_contract_by_external_id(owed.external_id)
    return [] if contract is None else [Doc("revrec", "contract", contract.id, owed.external_id)]


def _subscription(sub: Any) -> Doc:
    return Doc("billing", "subscription", sub.id, sub.metadata.get("crm_opportunity_id"))


# ---------------------------------------------------------------------------------------------
# the rules


@dataclass(frozen=True)
class Rule:
    name: str
    sources: Callable[[Books], Iterable[Any]]
    owes: Callable[[Books, Any], Owed | Exempt]
    find: Callable[[Index, Owed], list[Doc]]

    @property
    def statement(self) -> str:
        return " ".join((self.owes.__doc__ or "").split())


def _won_deals(books: Books) -> list[Any]:
    return [
        o
        for o in books.crm_records("Opportunity")
        if o.get("IsWon") and o.get("Type") not in AMENDING
    ]


def _deal_subscriptions(books: Books) -> list[Any]:
    won = {o.id for o in _won_deals(books)}
    return [
        s for opp, subs in books.subscriptions_by_opportunity.items() if opp in won for s in subs
    ]


RULES: tuple[Rule, ...] = (
    Rule(
        "erp_ar_document_per_finalised_invoice",
        lambda b: b.finalised_invoices,
        ar_document_for_invoice,
        erp_document,
    ),
    Rule(
        "erp_payment_per_paid_invoice",
        lambda b: [i for i in b.finalised_invoices if i.status == "paid"],
        payment_for_invoice,
        erp_document,
    ),
    Rule(
        "erp_credit_memo_per_credit_note",
        lambda b: b.credit_notes.values(),
        credit_memo_for_credit_note,
        erp_document,
    ),
    Rule(
        "erp_journal_per_period_close",
        lambda b: b.rr_period_closes.values(),
        journal_for_period_close,
        erp_document,
    ),
    Rule("subscription_per_won_deal", _won_deals, subscription_for_deal, subscriptions_of_deal),
    Rule(
        "subledger_contract_per_deal_subscription",
        _deal_subscriptions,
        contract_for_subscription,
        contract_of_subscription,
    ),
)


@dataclass
class Match:
    """One owed document and what was found for it."""

    owed: Owed
    found: list[Doc]


@dataclass
class RuleResult:
    rule: Rule
    matches: list[Match]
    exempt: list[Exempt]


def match(books: Books, rules: Iterable[Rule] = RULES) -> tuple[list[RuleResult], list[Doc]]:
    """Every rule over the books, and the documents no source accounts for (unexpected)."""
    index = Index(books)
    results = []
    claimed: set[tuple[str, str, str]] = set()
    systems = books.systems
    for rule in rules:
        matches: list[Match] = []
        exempt: list[Exempt] = []
        for source in rule.sources(books):
            owed = rule.owes(books, source)
            if isinstance(owed, Exempt):
                exempt.append(owed)
                continue
            if owed.system not in systems:
                continue
            found = rule.find(index, owed)
            claimed.update((d.system, d.kind, d.id) for d in found)
            matches.append(Match(owed, found))
        results.append(RuleResult(rule, matches, exempt))
    unexpected = [d for d in index.universe() if (d.system, d.kind, d.id) not in claimed]
    return results, unexpected

"""What the reference flow owes for each source record, and what the books hold for it.

Each rule pairs a kind of source (a finalised invoice, a won deal, a period close …) with one
function saying which document the flow owes for a source — docs/reference-flow.md to the
letter: a zero-total invoice owes nothing, a negative one a credit memo, a paid invoice with
nothing paid no payment, a close that recognised nothing no journal — named by the link that
finds it. Documents are found only through the link index (`Books.links`), so an integration
that names its documents its own way (harness.toml [links]) is judged as it declared; rules
of hand-offs it does not own (harness.toml [scope]) are not judged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from harness.books import Books, ar_link
from harness.handoffs import LINKS
from harness.links import target_key

# Opportunity types that amend a subscription instead of creating one.
AMENDING = ("Amendment", "Renewal")
# ERP kinds the flow writes: a transaction of these that copies no source is unexpected.
ERP_KINDS = ("invoice", "creditMemo", "customerPayment", "journalEntry")


@dataclass(frozen=True)
class Owed:
    """A document the flow owes for one source record, and the link that finds it."""

    source: str
    link: str


@dataclass(frozen=True)
class Exempt:
    """A source the flow deliberately posts nothing for, and why."""

    source: str
    reason: str


# ---------------------------------------------------------------------------------------------
# what the flow owes, one function per kind of document


def ar_document_for_invoice(books: Books, invoice: Any) -> Owed | Exempt:
    """Flow 3: a finalised invoice is an ERP invoice when positive, an unapplied credit memo
    when negative; a zero total posts nothing."""
    link = ar_link(invoice.total)
    if link is None:
        return Exempt(invoice.id, "total 0: the flow posts nothing")
    return Owed(invoice.id, link)


def payment_for_invoice(books: Books, invoice: Any) -> Owed | Exempt:
    """Flow 4: a paid invoice with money paid is an ERP customer payment; one settled from the
    customer's credit balance (amount_paid 0) is no payment."""
    if invoice.amount_paid <= 0:
        return Exempt(invoice.id, "paid from credit (amount_paid 0): no payment")
    return Owed(invoice.id, "erp.payment")


def credit_memo_for_credit_note(books: Books, note: Any) -> Owed | Exempt:
    """Flow 6: a credit note is an ERP credit memo."""
    return Owed(note.id, "erp.credit_memo")


def journal_for_period_close(books: Books, close: Any) -> Owed | Exempt:
    """Flow 7: a subledger close is one ERP revenue journal; a close that recognised nothing
    (every amount of its summary zero) posts no journal."""
    for line in close.journal:
        own = line.get("currency") == line.get("functional_currency")
        debit = line["debit_minor"] if own else line["functional_debit_minor"]
        credit = line["credit_minor"] if own else line["functional_credit_minor"]
        if debit or credit:
            return Owed(close.id, "erp.journal")
    return Exempt(close.id, "recognised nothing: no journal")


def subscription_for_deal(books: Books, opportunity: Any) -> Owed | Exempt:
    """Flow 1: a won new-business opportunity is one subscription."""
    return Owed(opportunity.id, "billing.subscription")


def contract_for_subscription(books: Books, subscription: Any) -> Owed | Exempt:
    """Flow 1: a won deal's subscription is one subledger contract."""
    return Owed(subscription.id, "revrec.contract")


# ---------------------------------------------------------------------------------------------
# the rules


@dataclass(frozen=True)
class Rule:
    name: str
    label: str  # short, for tables
    sources: Callable[[Books], Iterable[Any]]
    owes: Callable[[Books, Any], Owed | Exempt]
    links: tuple[str, ...]  # every link ``owes`` may name
    # Every copy through these links is owed by a source of this rule (else it is unexpected);
    # not so for contracts, which the flow also books for subscriptions made in billing.
    complete: bool = True

    @property
    def statement(self) -> str:
        return " ".join((self.owes.__doc__ or "").split())

    def judged(self, books: Books) -> bool:
        """Only hand-offs the integration under test owns are judged (stand-ins do the rest)."""
        return books.owns(*(LINKS[link].handoff for link in self.links))


def _won_deals(books: Books) -> list[Any]:
    return [
        o
        for o in books.crm_records("Opportunity")
        if o.get("IsWon") and o.get("Type") not in AMENDING
    ]


def _deal_subscriptions(books: Books) -> list[Any]:
    return [
        sub
        for deal in _won_deals(books)
        for sub in books.links.targets("billing.subscription", deal.id)
    ]


RULES: tuple[Rule, ...] = (
    Rule(
        "erp_ar_document_per_finalised_invoice",
        "ERP invoice or credit memo ← finalised invoice",
        lambda b: b.finalised_invoices,
        ar_document_for_invoice,
        ("erp.invoice", "erp.invoice_credit"),
    ),
    Rule(
        "erp_payment_per_paid_invoice",
        "ERP payment ← paid invoice",
        lambda b: [i for i in b.finalised_invoices if i.status == "paid"],
        payment_for_invoice,
        ("erp.payment",),
    ),
    Rule(
        "erp_credit_memo_per_credit_note",
        "ERP credit memo ← credit note",
        lambda b: b.credit_notes.values(),
        credit_memo_for_credit_note,
        ("erp.credit_memo",),
    ),
    Rule(
        "erp_journal_per_period_close",
        "ERP journal ← subledger close",
        lambda b: b.rr_period_closes.values(),
        journal_for_period_close,
        ("erp.journal",),
    ),
    Rule(
        "subscription_per_won_deal",
        "subscription ← won deal",
        _won_deals,
        subscription_for_deal,
        ("billing.subscription",),
    ),
    Rule(
        "subledger_contract_per_deal_subscription",
        "subledger contract ← deal's subscription",
        _deal_subscriptions,
        contract_for_subscription,
        ("revrec.contract",),
        complete=False,
    ),
)


@dataclass
class Match:
    """One owed document and what the link index finds for it."""

    owed: Owed
    found: list[Any]


@dataclass
class RuleResult:
    rule: Rule
    matches: list[Match]
    exempt: list[Exempt]


def match(books: Books, rules: Iterable[Rule] = RULES) -> tuple[list[RuleResult], list[Any]]:
    """Every judged rule over the books, and the documents nothing owes (unexpected): copies
    of a source that owes no such document, and ERP documents that copy no source at all."""
    results = []
    owed_by_link: dict[str, set[str]] = {}
    judged = [rule for rule in rules if rule.judged(books)]
    for rule in judged:
        matches: list[Match] = []
        exempt: list[Exempt] = []
        for source in rule.sources(books):
            owed = rule.owes(books, source)
            if isinstance(owed, Exempt):
                exempt.append(owed)
                continue
            owed_by_link.setdefault(owed.link, set()).add(owed.source)
            matches.append(Match(owed, books.links.targets(owed.link, owed.source)))
        results.append(RuleResult(rule, matches, exempt))
    unexpected = [
        target
        for rule in judged
        if rule.complete
        for link in rule.links
        for source in books.links.sources(link)
        if source not in owed_by_link.get(link, set())
        for target in books.links.targets(link, source)
    ]
    if any(link.startswith("erp.") for rule in judged for link in rule.links):
        unexpected += [t for t in erp_documents(books) if not _copies_anything(books, t)]
    return results, unexpected


def erp_documents(books: Books) -> list[Any]:
    """ERP transactions of the kinds the flow writes (not the ERP's own system entries)."""
    return [t for kind in ERP_KINDS for t in books.erp_by_kind.get(kind, []) if not t.system]


def documents(books: Books) -> set[str]:
    """The identity of every document the rules can find, for telling later ones apart."""
    found = {target_key(t) for t in erp_documents(books)}
    found |= {target_key(s) for s in books.subscriptions.values()}
    found |= {target_key(c) for c in books.rr_contracts.values()}
    return found


def _copies_anything(books: Books, txn: Any) -> bool:
    return bool(books.links.copies(f"erp.{txn.kind}", txn))

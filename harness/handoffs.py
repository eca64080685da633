"""The closed lists an integration declares against: hand-offs it may own, links it may name."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Handoff:
    """One hand-off of the reference flow: documents one system owes another."""

    id: str
    does: str  # what it moves, in one line (docs and reports)
    flow: str  # where docs/reference-flow.md states it
    # False: a practice no other hand-off needs, so nobody plays it for an integration that
    # does not own it; its rules are then not judged (the report says so).
    standin: bool = True


HANDOFFS: dict[str, Handoff] = {
    h.id: h
    for h in (
        Handoff(
            "crm.provision",
            "won new-business deal → billing customer and subscription",
            "point 1 (Stripe customer, subscription)",
        ),
        Handoff(
            "crm.amend",
            "won amendment or renewal → the subscription's items changed",
            "point 2",
        ),
        Handoff(
            "crm.writeback",
            "billing (and ERP) ids and the sync flag written back to the CRM",
            "point 1 (write back), point 2 (Synced_To_Billing__c)",
        ),
        Handoff(
            "erp.customers",
            "billing customer → ERP customer in the routed subsidiary",
            "point 1 (ERP customer), point 3",
        ),
        Handoff(
            "erp.invoices",
            "finalised invoice → ERP invoice (a credit memo when negative), voids",
            "points 3 and 5",
        ),
        Handoff(
            "billing.writeback",
            "ERP invoice and credit memo ids written back to the billing invoice's metadata",
            "point 3 (write back)",
            standin=False,
        ),
        Handoff(
            "erp.payments",
            "paid invoice → ERP customer payment; credit balance applied from credit memos",
            "point 4",
        ),
        Handoff(
            "erp.credit_memos",
            "credit note → ERP credit memo applied to its invoice",
            "point 6",
        ),
        Handoff(
            "revrec.contracts",
            "subscription and every change to it → subledger contract and modifications",
            "point 1 (contract), points 2 and 8 (modifications)",
        ),
        Handoff(
            "revrec.billing",
            "invoice, credit note and void → subledger billing events",
            "points 3, 5 and 6 (subledger billing events)",
        ),
        Handoff(
            "erp.journals",
            "subledger period close → ERP revenue journal",
            "point 7",
        ),
    )
}


@dataclass(frozen=True)
class LinkSpec:
    """How documents of one kind that one hand-off writes name the source they copy."""

    id: str
    handoff: str
    source: str  # the source document kind (a key of SOURCES)
    target: str  # the target document kind (a key of TARGETS)
    default: dict[str, str]  # the reference flow's convention, as declared in harness.toml
    what: str


# Source document kinds: the template variables each offers (`{invoice.id}` …).
SOURCES: dict[str, tuple[str, ...]] = {
    "account": ("id", "external_id", "name"),
    "opportunity": ("id", "external_id", "name"),
    "customer": ("id", "name", "email", "entity"),
    "subscription": ("id", "customer"),
    "item": ("id", "subscription", "price"),
    "invoice": ("id", "number", "customer", "subscription"),
    "credit_note": ("id", "number", "invoice", "customer"),
    "close": ("id", "entity", "period"),
}
# Target document kinds: the link kinds that can name a source on them.
TARGETS: dict[str, tuple[str, ...]] = {
    "billing.customer": ("metadata", "hook"),
    "billing.subscription": ("metadata", "hook"),
    "erp.customer": ("external_id", "field", "hook"),
    "erp.invoice": ("external_id", "field", "number", "memo", "hook"),
    "erp.creditMemo": ("external_id", "field", "number", "memo", "hook"),
    "erp.customerPayment": ("external_id", "field", "number", "memo", "hook"),
    "erp.journalEntry": ("external_id", "field", "number", "memo", "hook"),
    "revrec.contract": ("external_id", "hook"),
    "revrec.line": ("external_id", "hook"),
    "revrec.billing_event": ("external_id", "hook"),
}
LINK_KINDS = ("external_id", "field", "metadata", "number", "memo", "hook")

LINKS: dict[str, LinkSpec] = {
    s.id: s
    for s in (
        LinkSpec(
            "billing.customer",
            "crm.provision",
            "account",
            "billing.customer",
            {"metadata": "crm_account_id"},
            "the billing customer of a CRM account",
        ),
        LinkSpec(
            "billing.subscription",
            "crm.provision",
            "opportunity",
            "billing.subscription",
            {"metadata": "crm_opportunity_id"},
            "the subscription of a won new-business opportunity",
        ),
        LinkSpec(
            "erp.customer",
            "erp.customers",
            "customer",
            "erp.customer",
            {"external_id": "{customer.id}"},
            "the ERP customer of a billing customer",
        ),
        LinkSpec(
            "erp.invoice",
            "erp.invoices",
            "invoice",
            "erp.invoice",
            {"external_id": "{invoice.id}"},
            "the ERP invoice of a finalised invoice of positive total",
        ),
        LinkSpec(
            "erp.invoice_credit",
            "erp.invoices",
            "invoice",
            "erp.creditMemo",
            {"external_id": "{invoice.id}"},
            "the ERP credit memo of a finalised invoice of negative total",
        ),
        LinkSpec(
            "erp.payment",
            "erp.payments",
            "invoice",
            "erp.customerPayment",
            {"external_id": "pay_{invoice.id}"},
            "the ERP customer payment of a paid invoice",
        ),
        LinkSpec(
            "erp.credit_memo",
            "erp.credit_memos",
            "credit_note",
            "erp.creditMemo",
            {"external_id": "{credit_note.id}"},
            "the ERP credit memo of a credit note",
        ),
        LinkSpec(
            "erp.journal",
            "erp.journals",
            "close",
            "erp.journalEntry",
            {"external_id": "{close.id}"},
            "the ERP revenue journal of a subledger period close",
        ),
        LinkSpec(
            "revrec.contract",
            "revrec.contracts",
            "subscription",
            "revrec.contract",
            {"external_id": "{subscription.id}"},
            "the subledger contract of a subscription",
        ),
        LinkSpec(
            "revrec.line",
            "revrec.contracts",
            "item",
            "revrec.line",
            {"external_id": "{item.id}"},
            "the contract line of a subscription item",
        ),
        LinkSpec(
            "revrec.billing_event",
            "revrec.billing",
            "invoice",
            "revrec.billing_event",
            {"external_id": "{invoice.id}"},
            "the billing event of an invoice (a credit_note event when its total is negative)",
        ),
        LinkSpec(
            "revrec.billing_credit",
            "revrec.billing",
            "invoice",
            "revrec.billing_event",
            {"external_id": "{invoice.id}-credit"},
            "the credit_note event of a positive invoice's negative item nets",
        ),
        LinkSpec(
            "revrec.billing_charge",
            "revrec.billing",
            "invoice",
            "revrec.billing_event",
            {"external_id": "{invoice.id}-charge"},
            "the invoice event of a negative invoice's positive item nets",
        ),
        LinkSpec(
            "revrec.billing_void",
            "revrec.billing",
            "invoice",
            "revrec.billing_event",
            {"external_id": "{invoice.id}-void"},
            "the credit_note event reversing a voided invoice",
        ),
        LinkSpec(
            "revrec.credit_event",
            "revrec.billing",
            "credit_note",
            "revrec.billing_event",
            {"external_id": "{credit_note.id}"},
            "the credit_note event of a credit note",
        ),
    )
}

# CRM fields that receive write-backs (crm.writeback), with the reference's names.
WRITEBACK_FIELDS: dict[str, str] = {
    "opportunity_subscription": "Billing_Subscription_Id__c",
    "opportunity_synced": "Synced_To_Billing__c",
    "account_customer": "Billing_Customer_Id__c",
    "account_erp_customer": "ERP_Customer_Id__c",
}
# Billing metadata keys that receive write-backs (erp.invoices): the ERP document's internal
# id on the invoice it mirrors, so a reader of billing finds the ERP record.
BILLING_WRITEBACK: dict[str, str] = {
    "invoice_erp_document": "erp_document_id",
}
# ERP items invoice lines go to (erp.invoices, erp.credit_memos), with the reference's items.
ERP_ITEMS: dict[str, str] = {
    "subscription": "SUBSCRIPTION",  # lines of subscription items, licensed and metered
    "other": "SERVICES",  # every other line (one-off invoice items)
}

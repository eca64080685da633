"""Reconcile one Stripe object into NetSuite: whatever its current state owes, posted once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .credit import CustomerCredit, ErpCustomer
from .ledger import Ledger
from .mapping import (
    ErpLine,
    credit_note_lines,
    customer_key,
    document_key,
    erp_lines,
    finalised_on,
    paid_on,
    payment_key,
    utc_day,
)
from .money import to_decimal
from .netsuite import NetSuite
from .stripe_source import StripeSource
from .throttle import Rejected, Transient

Json = dict[str, Any]


def routing_entity(customer: Json) -> str:
    """The contracting entity (NetSuite subsidiary external id) a customer's books go to."""
    entity = (customer.get("metadata") or {}).get("entity")
    if not entity:
        raise Rejected(f"Stripe customer {customer['id']} has no metadata.entity to route by")
    return str(entity).strip().upper()


class Poster:
    """Level-triggered: each run compares an object's state in Stripe with the ERP and posts
    what is missing, so duplicated, reordered or replayed events all end the same way."""

    def __init__(self, stripe: StripeSource, erp: NetSuite) -> None:
        self.stripe = stripe
        self.erp = erp
        self.ledger = Ledger(erp)
        self.credit = CustomerCredit(erp, self.ledger)
        self.handlers: dict[str, Callable[[str], None]] = {
            "invoice": self.sync_invoice,
            "credit_note": self.sync_credit_note,
            "subscription": self.sync_subscription,
        }

    def run(self, kind: str, object_id: str) -> None:
        self.handlers[kind](object_id)

    # one handler per Stripe object --------------------------------------------------------
    def sync_subscription(self, subscription_id: str) -> None:
        """A new subscription fixes the customer's currency: the ERP customer can exist."""
        sub = self.stripe.subscription(subscription_id)
        self.customer(str(sub["customer"]), str(sub["currency"]))

    def sync_invoice(self, invoice_id: str) -> None:
        invoice = self.stripe.invoice(invoice_id)
        if invoice["status"] == "draft" or not invoice["status_transitions"]["finalized_at"]:
            return
        total = int(invoice["total"])
        if total == 0:
            return  # nothing owed, nothing to book
        customer = self.customer(str(invoice["customer"]), str(invoice["currency"]))
        if total < 0:
            self.credit_invoice(invoice, customer)  # e.g. a cancellation's unused time
            return
        erp_invoice = self.invoice_document(invoice, customer)
        if invoice["status"] == "void":
            self.void_invoice(erp_invoice, customer)
            return
        self.credit.apply_drawn(
            invoice, erp_invoice, customer, lambda: self.post_credit_sources(invoice)
        )
        if invoice["status"] == "paid" and int(invoice["amount_paid"]) > 0:
            self.payment(invoice, erp_invoice, customer)

    def sync_credit_note(self, credit_note_id: str) -> None:
        note = self.stripe.credit_note(credit_note_id)
        invoice = self.stripe.invoice(str(note["invoice"]))
        customer = self.customer(str(note["customer"]), str(note["currency"]))
        erp_invoice = self.invoice_document(invoice, customer)
        memo = self.credit_memo(note, invoice, erp_invoice, customer)
        if note["status"] == "void" and not self._voided("creditMemo", memo):
            self.erp.void("creditMemo", memo)

    def post_credit_sources(self, invoice: Json) -> None:
        """Post every credit note and negative invoice of the invoice's customer."""
        for kind, source_id in self.stripe.credit_sources(str(invoice["customer"])):
            self.run(kind, source_id)

    # ERP documents ------------------------------------------------------------------------
    def customer(self, customer_id: str, currency: str) -> ErpCustomer:
        key = customer_key(customer_id)
        found = self.erp.get("customer", f"eid:{key}")
        if found is None:
            self.erp.ensure("customer", key, lambda: self._customer_body(customer_id, currency))
            found = self.erp.get("customer", f"eid:{key}")
            if found is None:
                raise Transient(f"ERP customer {key} is not readable yet")
        return ErpCustomer(str(found["id"]), str(found["subsidiary"]["id"]), currency.lower())

    def invoice_document(self, invoice: Json, customer: ErpCustomer) -> str:
        def build() -> Json:
            body = self._sales_document(
                customer, finalised_on(invoice), erp_lines(invoice["lines"])
            )
            body["memo"] = f"Stripe invoice {invoice.get('number') or invoice['id']}"
            body["custbody_stripe_invoice_id"] = str(invoice["id"])
            if invoice.get("number"):
                body["tranId"] = str(invoice["number"])[:45]
            if invoice.get("due_date"):
                body["dueDate"] = utc_day(int(invoice["due_date"]))
            return body

        return self.erp.ensure("invoice", document_key(str(invoice["id"])), build)

    def credit_invoice(self, invoice: Json, customer: ErpCustomer) -> str:
        """A negative invoice: a credit memo left unapplied, the customer's credit balance."""

        def build() -> Json:
            lines = erp_lines(invoice["lines"], sign=-1)
            body = self._sales_document(customer, finalised_on(invoice), lines)
            body["memo"] = f"Stripe credit invoice {invoice.get('number') or invoice['id']}"
            if invoice.get("number"):
                body["tranId"] = str(invoice["number"])[:45]
            return body

        return self.erp.ensure("creditMemo", document_key(str(invoice["id"])), build)

    def credit_memo(
        self, note: Json, invoice: Json, erp_invoice: str, customer: ErpCustomer
    ) -> str:
        """Only the pre-payment part settles the invoice; the rest is customer credit."""

        def build() -> Json:
            lines = credit_note_lines(note, invoice["lines"], invoice)
            body = self._sales_document(customer, utc_day(int(note["created"])), lines)
            body["memo"] = f"Stripe credit note {note['number']}"
            body["tranId"] = str(note["number"])[:45]
            body["createdFrom"] = {"id": erp_invoice}
            body["custbody_stripe_credit_note_id"] = str(note["id"])
            settles = int(note["pre_payment_amount"])
            if settles > 0 and not self._voided("invoice", erp_invoice):
                amount = to_decimal(settles, customer.currency)
                body["apply"] = {
                    "items": [{"doc": {"id": erp_invoice}, "apply": True, "amount": amount}]
                }
            return body

        return self.erp.ensure("creditMemo", document_key(str(note["id"])), build)

    def payment(self, invoice: Json, erp_invoice: str, customer: ErpCustomer) -> str:
        """The money received (amount_paid), never what was settled from credit."""

        def build() -> Json:
            amount = to_decimal(int(invoice["amount_paid"]), customer.currency)
            return {
                **self._header(customer, paid_on(invoice)),
                "customer": {"id": customer.id},
                "payment": amount,
                "memo": f"Stripe payment of {invoice.get('number') or invoice['id']}",
                "apply": {"items": [{"doc": {"id": erp_invoice}, "apply": True, "amount": amount}]},
            }

        return self.erp.ensure("customerPayment", payment_key(str(invoice["id"])), build)

    def void_invoice(self, erp_invoice: str, customer: ErpCustomer) -> None:
        if self._voided("invoice", erp_invoice):
            return
        self.credit.release(erp_invoice, customer)
        self.erp.void("invoice", erp_invoice)

    # helpers ------------------------------------------------------------------------------
    def _customer_body(self, customer_id: str, currency: str) -> Json:
        stripe_customer = self.stripe.customer(customer_id)
        body: Json = {
            "companyName": str(stripe_customer.get("name") or customer_id)[:300],
            "subsidiary": {"id": self.ledger.subsidiary(routing_entity(stripe_customer))},
            "currency": {"externalId": currency.upper()},
            "custentity_stripe_customer_id": customer_id,
        }
        if stripe_customer.get("email"):
            body["email"] = str(stripe_customer["email"])[:254]
        return body

    def _header(self, customer: ErpCustomer, day: str) -> Json:
        """Where and when a document posts: its customer's subsidiary, its own currency, its
        date, and the period that takes it."""
        return {
            "subsidiary": {"id": customer.subsidiary},
            "currency": {"externalId": customer.currency.upper()},
            "tranDate": day,
            "postingPeriod": {"id": self.ledger.period_for(customer.subsidiary, day)},
        }

    def _sales_document(self, customer: ErpCustomer, day: str, lines: list[ErpLine]) -> Json:
        return {
            **self._header(customer, day),
            "entity": {"id": customer.id},
            "item": {
                "items": [
                    {
                        "item": {"externalId": line.item},
                        "amount": to_decimal(line.amount_minor, customer.currency),
                        "description": line.description,
                        **(
                            {
                                "tax1Amt": to_decimal(line.tax_minor, customer.currency),
                                "taxCode": line.tax_code,
                            }
                            if line.tax_minor
                            else {}
                        ),
                    }
                    for line in lines
                ]
            },
        }

    def _voided(self, kind: str, record_id: str) -> bool:
        record = self.erp.get(kind, record_id)
        if record is None:
            raise Transient(f"ERP {kind} {record_id} is not readable")
        return record.get("status") == "Voided"

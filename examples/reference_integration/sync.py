"""Stripe → NetSuite: re-fetch current Stripe state and upsert ERP records by external id."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import stripe

from examples.reference_integration.erp import NetSuite
from examples.reference_integration.retry import PermanentError, with_retries

log = logging.getLogger("reference_integration")

# Subsidiary external ids in the ERP seed (simulators/erp/seed.py), by Stripe currency.
SUBSIDIARY_BY_CURRENCY = {"usd": "US", "gbp": "UK", "eur": "DE"}
# ISO 4217 minor-unit exponents that are not 2 (Stripe's zero- and three-decimal currencies).
_ZERO_DECIMAL = "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf"
_THREE_DECIMAL = "bhd jod kwd omr tnd"
_EXPONENT = {code: 0 for code in _ZERO_DECIMAL.split()}
_EXPONENT |= {code: 3 for code in _THREE_DECIMAL.split()}
HANDLED = frozenset({"invoice.finalized", "invoice.paid"})


def to_amount(minor: int, currency: str) -> Decimal:
    """The one conversion from Stripe minor units to a decimal amount in ``currency``."""
    return Decimal(minor).scaleb(-_EXPONENT.get(currency.lower(), 2))


def json_number(amount: Decimal) -> float | int:
    """A decimal as a JSON number; exact, as amounts have at most 3 decimals and are < 10^12."""
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def utc_date(epoch_s: int | None, what: str) -> str:
    """YYYY-MM-DD (UTC) of a Stripe timestamp; never the wall clock."""
    if epoch_s is None:
        raise PermanentError(f"{what} is not set")
    return datetime.fromtimestamp(epoch_s, UTC).date().isoformat()


def item_for(line: dict[str, Any]) -> str:
    """The ERP item of a Stripe invoice line: subscriptions bill the SUBSCRIPTION item."""
    parent = line.get("parent") or {}
    if parent.get("type") == "subscription_item_details":
        return "SUBSCRIPTION"
    return "SERVICES"


class Syncer:
    """Handles one inbox event at a time; every write is an idempotent eid upsert."""

    def __init__(self, stripe_client: stripe.StripeClient, erp: NetSuite) -> None:
        self.stripe = stripe_client
        self.erp = erp

    def handle(self, kind: str, payload: dict[str, Any]) -> None:
        if kind not in HANDLED:
            return
        invoice_id = payload["data"]["object"]["id"]
        invoice = with_retries(
            lambda: self.stripe.v1.invoices.retrieve(invoice_id).to_dict(),
            what=f"invoice {invoice_id}",
        )
        status = invoice.get("status")
        finalized_at = (invoice.get("status_transitions") or {}).get("finalized_at")
        if status in ("draft", None):
            log.info("invoice %s is still a draft; nothing to post", invoice_id)
            return
        if status == "void" and finalized_at is None:
            return
        self.sync_invoice(invoice)
        if status == "paid" and invoice["amount_paid"] > 0:
            self.sync_payment(invoice)

    def sync_customer(self, customer_id: str, currency: str) -> None:
        customer = with_retries(
            lambda: self.stripe.v1.customers.retrieve(customer_id).to_dict(),
            what=f"customer {customer_id}",
        )
        subsidiary = SUBSIDIARY_BY_CURRENCY.get(currency)
        if subsidiary is None:
            raise PermanentError(f"no subsidiary for currency {currency}")
        body: dict[str, Any] = {
            "companyName": customer.get("name") or customer.get("email") or customer_id,
            "subsidiary": {"externalId": subsidiary},
            "currency": {"externalId": currency.upper()},
        }
        if customer.get("email"):
            body["email"] = customer["email"]
        self.erp.upsert("customer", customer_id, body)

    def sync_invoice(self, invoice: dict[str, Any]) -> None:
        currency: str = invoice["currency"]
        customer_id = _customer_id(invoice)
        self.sync_customer(customer_id, currency)
        lines = with_retries(
            lambda: [
                line.to_dict()
                for line in self.stripe.v1.invoices.line_items.list(
                    invoice["id"], params={"limit": 100}
                ).auto_paging_iter()
            ],
            what=f"lines of {invoice['id']}",
        )
        items = [
            {
                "item": {"externalId": item_for(line)},
                "amount": json_number(to_amount(line["amount"], currency)),
                **({"description": line["description"][:250]} if line.get("description") else {}),
            }
            for line in lines
        ]
        body: dict[str, Any] = {
            "entity": {"externalId": customer_id},
            "subsidiary": {"externalId": SUBSIDIARY_BY_CURRENCY[currency]},
            "currency": {"externalId": currency.upper()},
            "tranDate": utc_date(invoice["status_transitions"]["finalized_at"], "finalized_at"),
            "item": {"items": items},
        }
        if invoice.get("number"):
            body["memo"] = f"Stripe {invoice['number']}"
        self.erp.upsert("invoice", invoice["id"], body)
        log.info("invoice %s -> ERP (%d lines)", invoice["id"], len(items))

    def sync_payment(self, invoice: dict[str, Any]) -> None:
        currency: str = invoice["currency"]
        customer_id = _customer_id(invoice)
        invoice_id: str = invoice["id"]
        amount = json_number(to_amount(invoice["amount_paid"], currency))
        body: dict[str, Any] = {
            "customer": {"externalId": customer_id},
            "subsidiary": {"externalId": SUBSIDIARY_BY_CURRENCY[currency]},
            "currency": {"externalId": currency.upper()},
            "tranDate": utc_date(invoice["status_transitions"]["paid_at"], "paid_at"),
            "payment": amount,
            "apply": {
                "items": [{"doc": {"externalId": invoice_id}, "apply": True, "amount": amount}]
            },
        }
        self.erp.upsert("customerPayment", f"pay_{invoice_id}", body)
        log.info("payment pay_%s -> ERP (%s %s)", invoice_id, amount, currency)


def _customer_id(invoice: dict[str, Any]) -> str:
    customer = invoice["customer"]
    return customer if isinstance(customer, str) else str(customer["id"])

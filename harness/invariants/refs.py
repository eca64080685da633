"""How violations name records: ``<system>:<id>``, ERP records as ``erp:<type>/<id>``."""

from __future__ import annotations

from decimal import Decimal

from simulators.common.deliveries import Delivery
from simulators.common.journal import JournalEntry
from simulators.common.money import exponent
from simulators.erp.models import Transaction


def billing(record_id: str) -> str:
    return f"billing:{record_id}"


def crm(record_id: str) -> str:
    return f"crm:{record_id}"


def revrec(record_id: str) -> str:
    return f"revrec:{record_id}"


def erp(kind: str, record_id: str) -> str:
    return f"erp:{kind}/{record_id}"


def erp_txn(txn: Transaction) -> str:
    return erp(txn.kind, txn.id)


def journal(entry: JournalEntry) -> str:
    return f"{entry.system}:journal/{entry.seq}"


def delivery(d: Delivery) -> str:
    return f"{d.system}:delivery/{d.id}"


def minor(amount: Decimal, currency: str) -> int:
    """A decimal amount in major units as integer minor units of ``currency`` (exact or raise)."""
    scaled = amount.scaleb(exponent(currency.upper()))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {currency} is finer than the currency's minor unit")
    return int(scaled)

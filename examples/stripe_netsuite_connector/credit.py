"""Customer credit in the ERP: a balance Stripe drew on is the customer's unapplied memos."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .ledger import Ledger, literal
from .mapping import drawn_credit
from .money import to_decimal, to_minor
from .netsuite import NetSuite
from .throttle import Transient

Json = dict[str, Any]
log = logging.getLogger("connector.credit")


@dataclass
class Memo:
    id: str
    period: str
    created_from: str | None
    unapplied_minor: int
    applied: dict[str, int]  # ERP invoice id → minor units applied to it


@dataclass(frozen=True)
class ErpCustomer:
    id: str
    subsidiary: str
    currency: str


class CustomerCredit:
    def __init__(self, erp: NetSuite, ledger: Ledger) -> None:
        self.erp = erp
        self.ledger = ledger

    def apply_drawn(
        self,
        invoice: Json,
        erp_invoice: str,
        customer: ErpCustomer,
        post_sources: Callable[[], None],
    ) -> None:
        """Apply as much of the customer's unapplied credit memos to the ERP invoice as the
        Stripe invoice took from the credit balance, oldest first. What is already applied
        counts, so a retry applies nothing twice. ``post_sources`` posts every credit note
        and negative invoice of the customer, for when their memos are not all there yet."""
        drawn = drawn_credit(invoice)
        if drawn == 0:
            return
        memos = self._memos(customer, erp_invoice)
        owed = drawn - sum(m.applied.get(erp_invoice, 0) for m in memos)
        if owed > sum(m.unapplied_minor for m in memos):
            post_sources()
            memos = self._memos(customer, erp_invoice)
            owed = drawn - sum(m.applied.get(erp_invoice, 0) for m in memos)
        usable = self.ledger.open_period_ids(customer.subsidiary)
        for memo in memos:
            if owed <= 0:
                return
            if memo.unapplied_minor <= 0 or memo.period not in usable:
                continue
            take = min(owed, memo.unapplied_minor)
            self._set_application(
                memo, erp_invoice, memo.applied.get(erp_invoice, 0) + take, customer
            )
            owed -= take
        if owed > 0:
            log.warning(
                "invoice %s drew %s of credit; %s is not on any open ERP credit memo",
                invoice["id"],
                drawn,
                owed,
            )

    def release(self, erp_invoice: str, customer: ErpCustomer) -> None:
        """Take every credit memo application off an invoice (NetSuite voids none with them)."""
        for memo in self._memos(customer, None):
            if erp_invoice in memo.applied:
                self._set_application(memo, erp_invoice, 0, customer)

    def _memos(self, customer: ErpCustomer, not_from: str | None) -> list[Memo]:
        """The customer's live credit memos, oldest first, except those created from
        ``not_from`` (an invoice's own credit notes are not credit balance)."""
        rows = self.erp.query(
            "SELECT id FROM transaction WHERE type = 'CustCred' AND voided = 'F' "
            f"AND entity = {literal(customer.id)} ORDER BY trandate, id"
        )
        memos = []
        for row in rows:
            record = self.erp.get("creditMemo", str(row["id"]))
            if record is None:
                raise Transient(f"credit memo {row['id']} vanished while being read")
            memo = _memo(record, customer.currency)
            if not_from is None or memo.created_from != not_from:
                memos.append(memo)
        return memos

    def _set_application(
        self, memo: Memo, erp_invoice: str, amount_minor: int, customer: ErpCustomer
    ) -> None:
        # A PATCHed sublist replaces the stored one: send every application, changed.
        applied = {**memo.applied, erp_invoice: amount_minor}
        items = [
            {"doc": {"id": doc}, "apply": True, "amount": to_decimal(minor, customer.currency)}
            for doc, minor in applied.items()
            if minor > 0
        ]
        self.erp.update("creditMemo", memo.id, {"apply": {"items": items}})
        memo.unapplied_minor -= amount_minor - memo.applied.get(erp_invoice, 0)
        memo.applied = {doc: minor for doc, minor in applied.items() if minor > 0}


def _memo(record: Json, currency: str) -> Memo:
    applied: dict[str, int] = {}
    for line in (record.get("apply") or {}).get("items", []):
        doc = str(line["doc"]["id"])
        applied[doc] = applied.get(doc, 0) + to_minor(Decimal(line["amount"]), currency)
    return Memo(
        str(record["id"]),
        str(record["postingPeriod"]["id"]),
        str(record["createdFrom"]["id"]) if record.get("createdFrom") else None,
        to_minor(Decimal(record.get("unapplied", 0)), currency),
        applied,
    )

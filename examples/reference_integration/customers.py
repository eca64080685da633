"""Billing customers by the CRM account they were made for, read incrementally."""

from __future__ import annotations

import threading
from typing import Any

import stripe
from stripe.params import CustomerListParams

from examples.reference_integration.retry import with_retries


class CustomerIndex:
    """Which billing customer carries a CRM account in its metadata (``key``), shared by every
    worker of the process: read in full once, then only the customers made since the newest
    one seen (Stripe lists newest first, and ``ending_before`` that one returns exactly the
    newer ones). Listing every customer for every deal cost a page per hundred customers per
    deal — quadratic in the book: 1,000 deals read ~5,000 pages.

    A customer whose metadata gains the key after it was read is not seen; the flow sets it
    when it makes the customer, and the CRM write-back is asked first."""

    def __init__(self, key: str) -> None:
        self.key = key
        self._lock = threading.Lock()
        self._newest: str | None = None
        self._by_account: dict[str, str] = {}

    def find(self, client: stripe.StripeClient, account_id: str) -> str | None:
        with self._lock:
            for customer in with_retries(lambda: self._since_last(client), what="customers"):
                account = (customer.get("metadata") or {}).get(self.key)
                if account:
                    self._by_account.setdefault(str(account), str(customer["id"]))
            return self._by_account.get(account_id)

    def _since_last(self, client: stripe.StripeClient) -> list[dict[str, Any]]:
        params: CustomerListParams = {"limit": 100}
        if self._newest is not None:
            params["ending_before"] = self._newest
        # With ending_before the SDK pages towards the newest and yields oldest first.
        found = [c.to_dict() for c in client.v1.customers.list(params=params).auto_paging_iter()]
        if found:
            self._newest = str(found[-1]["id"] if self._newest is not None else found[0]["id"])
        return found

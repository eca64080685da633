"""Inbox workers in parallel: one lane per customer (CRM account, subledger entity), each lane
in arrival order, each worker with its own clients (one keep-alive connection per vendor)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from examples.reference_integration.inbox import Inbox, Message
from examples.reference_integration.retry import PermanentError, with_retries
from examples.reference_integration.sync import Syncer

log = logging.getLogger("reference_integration")

DEFAULT_WORKERS = 8
# The runner settles within 30 s of a fault ending: a retry must come well inside that.
RETRY_CAP_S = 5.0


def backoff_s(attempts: int) -> float:
    """The pause before retrying an event that failed ``attempts`` times: doubling, capped."""
    return min(RETRY_CAP_S, 0.5 * (1 << min(attempts, 6)))


def lane_of(source: str, payload: dict[str, Any]) -> str:
    """What an event must stay in order with: a Stripe event with the rest of its customer's,
    a CRM deal with its account's other deals, a subledger close with its entity's closes.
    Different lanes run in parallel; the flow re-reads every record, so they may interleave."""
    if source == "stripe":
        obj = (payload.get("data") or {}).get("object") or {}
        customer = obj.get("id") if obj.get("object") == "customer" else obj.get("customer")
        if isinstance(customer, str) and customer:
            return f"stripe:{customer}"
    elif source == "crm":
        record = payload.get("sObject") or {}
        account = record.get("AccountId") or record.get("Id")
        if account:
            return f"crm:{account}"
    elif source == "revrec":
        entity = ((payload.get("data") or {}).get("object") or {}).get("entity")
        if entity:
            return f"revrec:{entity}"
    return ""  # its own lane


class Workers:
    """``count`` threads taking events from the inbox. A transient failure pauses only its
    lane (doubling from 0.5 s, capped at 5 s); a permanent one is set aside with an ERROR."""

    def __init__(
        self,
        inbox: Inbox,
        connect: Callable[[], AbstractContextManager[Syncer]],
        count: int = DEFAULT_WORKERS,
    ) -> None:
        self.inbox = inbox
        self.connect = connect
        self._halt = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name=f"inbox-worker-{n}", daemon=True)
            for n in range(max(1, count))
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._halt.set()
        for thread in self._threads:
            thread.join(timeout=timeout_s)

    @property
    def busy(self) -> bool:
        return self.inbox.in_progress() > 0

    def _run(self) -> None:
        with self.connect() as syncer:  # this worker's own clients, kept alive
            while not self._halt.is_set():
                message = self.inbox.take(timeout_s=0.5)
                if message is not None:
                    self._handle(syncer, message)

    def _handle(self, syncer: Syncer, message: Message) -> None:
        try:
            amended = amended_customer(syncer, message)
            if amended is not None:
                # The deal changes a Stripe customer's subscription: no event of that customer
                # may be worked on meanwhile (its mirror would race the amendment).
                self.inbox.join(message, f"stripe:{amended}")
            syncer.handle(message.source, message.kind, message.payload)
            self.inbox.done(message)
            log.info("processed %s %s", message.event_id, message.kind)
        except PermanentError as exc:
            log.error("event %s (%s) failed permanently: %s", message.event_id, message.kind, exc)
            self.inbox.set_aside(message, str(exc))
        except Exception as exc:  # transient, or anything else: keep the worker alive
            log.warning("event %s (%s) will be retried: %r", message.event_id, message.kind, exc)
            self.inbox.retry(message, repr(exc), backoff_s(message.attempts))


def amended_customer(syncer: Syncer, message: Message) -> str | None:
    """The Stripe customer whose subscription a CRM deal amends, if it amends one."""
    if message.source != "crm":
        return None
    sub_id = (message.payload.get("sObject") or {}).get("Billing_Subscription_Id__c")
    if not sub_id:
        return None
    sub = with_retries(
        lambda: syncer.stripe.v1.subscriptions.retrieve(str(sub_id)), what=f"owner of {sub_id}"
    )
    customer = sub.customer
    return customer if isinstance(customer, str) else str(customer.id)

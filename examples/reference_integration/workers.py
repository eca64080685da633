"""The worker process: threads taking inbox events in parallel, one at a time per lane (a
customer, a CRM account, a subledger entity), each with its own keep-alive clients.

`python -m examples.reference_integration.workers` (the receiving process starts it) reads
the same environment as the receiver.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import stripe

from examples.reference_integration.app import Settings
from examples.reference_integration.crm import Crm
from examples.reference_integration.customers import CustomerIndex
from examples.reference_integration.erp import NetSuite
from examples.reference_integration.http import Http, tls_context
from examples.reference_integration.inbox import Inbox, Message
from examples.reference_integration.reads import CachingStripeClient, Reads
from examples.reference_integration.retry import Gate, PermanentError, with_retries
from examples.reference_integration.revrec import Revrec
from examples.reference_integration.sync import Syncer

log = logging.getLogger("reference_integration")

# Events the flow handles alike, by re-reading their invoice and posting what it is now: one
# handling covers every one of them already queued for the same invoice.
SAME_WORK = frozenset({"invoice.finalized", "invoice.paid", "invoice.voided"})
# The runner settles within 30 s of a fault ending: a retry must come well inside that.
RETRY_CAP_S = 5.0


def backoff_s(attempts: int) -> float:
    """The pause before retrying an event that failed ``attempts`` times: doubling, capped."""
    return min(RETRY_CAP_S, 0.5 * (1 << min(attempts, 6)))


class Workers:
    """``count`` threads taking events from the inbox. A transient failure pauses only its
    lane (doubling from 0.5 s, capped at 5 s); a permanent one is set aside with an ERROR and
    listed as an exception (a replay of it that goes through resolves it)."""

    def __init__(
        self,
        inbox: Inbox,
        connect: Callable[[], AbstractContextManager[Connection]],
        count: int,
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

    def halt(self) -> None:
        """Ask every worker to stop after the event in hand."""
        self._halt.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        self.halt()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def wait(self, parent: int) -> None:
        """Until stopped, or until the receiving process is gone (then stop: no orphans)."""
        while not self._halt.wait(1.0):
            if os.getppid() != parent:
                break
        self.stop()

    def _run(self) -> None:
        with self.connect() as connection:  # this worker's own clients, kept alive
            while not self._halt.is_set():
                message = self.inbox.take(timeout_s=0.1)  # how soon a halt is noticed
                if message is not None:
                    connection.fresh()
                    self._handle(connection.syncer, message)

    def _handle(self, syncer: Syncer, message: Message) -> None:
        try:
            amended = amended_customer(syncer, message)
            if amended is not None:
                # The deal changes a Stripe customer's subscription: no event of that customer
                # may be worked on meanwhile (its mirror would race the amendment).
                self.inbox.join(message, f"stripe:{amended}")
            covered = self.inbox.followers(message, SAME_WORK) if message.kind in SAME_WORK else []
            syncer.handle(message.source, message.kind, message.payload)
            self.inbox.done(message, also=covered)
            log.info(
                "processed %s %s%s",
                message.event_id,
                message.kind,
                f" (and {len(covered)} queued for the same invoice)" if covered else "",
            )
        except PermanentError as exc:
            # Set aside, never silently: listed with a reason a finance user can act on,
            # until it is replayed (POST /exceptions/replay).
            system, document = source_of(message.source, message.payload)
            reason = business_reason(message.kind, system, document, exc)
            log.error("event %s (%s) set aside: %s", message.event_id, message.kind, reason)
            self.inbox.set_aside(message, reason, system, document)
        except Exception as exc:  # transient, or anything else: keep the worker alive
            log.warning("event %s (%s) will be retried: %r", message.event_id, message.kind, exc)
            self.inbox.retry(message, repr(exc), backoff_s(message.attempts))


def source_of(source: str, payload: dict[str, Any]) -> tuple[str, str]:
    """The system and document an event is about (what an operator looks up)."""
    if source == "crm":
        return "crm", str((payload.get("sObject") or {}).get("Id") or payload.get("id") or "")
    obj = (payload.get("data") or {}).get("object") or {}
    if source == "revrec":
        return "revrec", str(obj.get("close_id") or obj.get("id") or payload.get("id") or "")
    return "billing", str(obj.get("id") or payload.get("id") or "")


_WHAT = {"in": "invoice", "cn": "credit note", "sub": "subscription", "cus": "customer"}


def business_reason(kind: str, system: str, document: str, exc: Exception) -> str:
    """`<document> (<event>) not posted: <cause>` — one line, the vendor's words, no trace."""
    what = _WHAT.get(document.split("_", 1)[0], "opportunity" if system == "crm" else "document")
    if system == "revrec":
        what = "subledger period close"
    cause = " ".join(str(exc).split()) or type(exc).__name__
    return f"{what} {document} ({kind}) not posted: {cause}"[:1000]


def amended_customer(syncer: Syncer, message: Message) -> str | None:
    """The Stripe customer whose subscription a CRM deal amends, if it amends one."""
    if message.source != "crm":
        return None
    field = syncer.conv.writeback["opportunity_subscription"]  # as declared
    sub_id = (message.payload.get("sObject") or {}).get(field)
    if not sub_id:
        return None
    sub = with_retries(
        lambda: syncer.stripe.v1.subscriptions.retrieve(str(sub_id)), what=f"owner of {sub_id}"
    )
    customer = sub.customer
    return customer if isinstance(customer, str) else str(customer.id)


@dataclass(frozen=True)
class Gates:
    """Each vendor's gate, shared by every worker of the process."""

    stripe: Gate
    erp: Gate
    revrec: Gate
    crm: Gate

    @classmethod
    def of(cls, concurrency: int) -> Gates:
        return cls(*(Gate(concurrency) for _ in range(4)))


@dataclass(frozen=True)
class Connection:
    """One worker's flow and the read caches of its clients, fresh for every event."""

    syncer: Syncer
    reads: list[Reads]

    def fresh(self) -> None:
        self.syncer.fresh()
        for reads in self.reads:
            reads.fresh()


@dataclass(frozen=True)
class Shared:
    """What every worker of the process uses together, made once before they start: the
    vendors' gates, the index of billing customers, one TLS context (making one reads the
    whole CA bundle, ~50 ms of CPU, which every client of eight workers paid at start-up), and
    the ERP customers as this process last wrote them."""

    gates: Gates
    customers: CustomerIndex
    tls: ssl.SSLContext
    customers_upserted: dict[str, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def of(cls, settings: Settings) -> Shared:
        return cls(
            Gates.of(settings.vendor_concurrency),
            CustomerIndex(settings.conventions.metadata_key("billing.customer")),
            tls_context(settings.ca_bundle or True),
        )


@contextlib.contextmanager
def connect(settings: Settings, shared: Shared) -> Iterator[Connection]:
    """One worker's clients: each keeps its connections alive between calls."""
    stripe_reads = Reads()
    stripe_http = Http(settings.stripe_api_base, headers=settings.headers, verify=shared.tls)
    client = stripe.StripeClient(
        settings.stripe_api_key,
        base_addresses={"api": settings.stripe_api_base},
        max_network_retries=0,  # our own retry loop decides, honouring Retry-After
        http_client=CachingStripeClient(stripe_reads, shared.gates.stripe, stripe_http),
    )
    erp = NetSuite(
        settings.netsuite_url,
        settings.netsuite_token,
        verify=shared.tls,
        headers=settings.headers,
        gate=shared.gates.erp,
    )
    revrec = (
        Revrec(
            settings.revrec_url,
            settings.revrec_token,
            headers=settings.headers,
            gate=shared.gates.revrec,
            verify=shared.tls,
        )
        if settings.revrec_url
        else None
    )
    conventions = settings.conventions
    crm = (
        Crm(
            settings.sf_instance_url,
            settings.sf_session_id,
            ca_bundle=settings.ca_bundle,
            tls=shared.tls,
            writeback=conventions.writeback,
            headers=settings.headers,
            gate=shared.gates.crm,
        )
        if settings.sf_instance_url
        else None
    )
    reads = [stripe_reads, erp.reads, *([revrec.reads] if revrec is not None else [])]
    try:
        yield Connection(
            Syncer(
                client, erp, revrec, crm, conventions, shared.customers, shared.customers_upserted
            ),
            reads,
        )
    finally:
        stripe_http.close()
        erp.close()
        if revrec is not None:
            revrec.close()
        if crm is not None:
            crm.close()


def main() -> None:
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    logging.getLogger("stripe").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parent = os.getppid()
    settings = Settings.from_env()
    inbox = Inbox(settings.inbox_path, sync=settings.inbox_sync)
    shared = Shared.of(settings)
    workers = Workers(inbox, lambda: connect(settings, shared), settings.workers)
    # SIGTERM (the receiver stopping): finish the events in hand, then leave.
    signal.signal(signal.SIGTERM, lambda *_: workers.halt())
    workers.start()
    tell = os.environ.get("WORKERS_READY_FD")
    if tell:  # the receiving process waits for this before it answers /healthz
        os.write(int(tell), b"1")
        os.close(int(tell))
    try:
        workers.wait(parent)
    finally:
        inbox.close()


if __name__ == "__main__":
    main()

"""Forged pushes: unsigned, wrongly signed, stale or replayed webhooks sent to the integration.

The harness plays an attacker on the webhook channel. It takes a genuine event (billing's and
the subledger's own event lists; for the CRM, a notification made from the opportunity as it
stands), gives it a new event id unless it is replayed as is, signs it the wrong way or not at
all, posts it to every receiver the integration declared for that system, waits for the
integration to settle, and records what its receivers answered and which of the documents it
writes changed meanwhile. INV-34 judges the records (``Books.forged``).
"""

from __future__ import annotations

import hashlib
import json
import ssl
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import httpx

from harness.actors import StepFailed
from harness.config import render_template
from simulators.common.deliveries import Endpoint

if TYPE_CHECKING:
    from harness.books import Books
    from harness.play import Run
    from harness.steps.webhook import Forge

ForgeKind = Literal["unsigned", "wrong_secret", "stale", "replayed"]
# Past every vendor's tolerance for a signature's age (Stripe's is 300 s).
STALE_S = 3600
RECEIVER_TIMEOUT_S = 10.0
# Where the harness takes genuine events from; the CRM lists none (it pushes outbound messages).
_LISTED = {"billing": "/v1/events", "revrec": "/v1/events"}
CRM_EVENT = "opportunity.closed"


@dataclass(frozen=True)
class ForgedPush:
    """One forged push to one receiver: what it was, what the receiver answered, and the
    documents the integration writes that changed between the push and the settling after."""

    step: int
    system: str
    kind: str
    event_type: str
    event_id: str
    url: str
    status: int | None  # None: no HTTP answer (the connection failed)
    changed: tuple[str, ...] = ()

    @property
    def authentic(self) -> bool:
        """Signed with the receiver's secret, just now: only a replay is."""
        return self.kind == "replayed"

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def ref(self) -> str:
        return f"{self.system}:forged/{self.event_id}"

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ForgedPush:
        return cls(**{**data, "changed": tuple(data.get("changed", ()))})


# --- what the integration writes, digested --------------------------------------------------
def document_digests(books: Books) -> dict[str, str]:
    """A digest of every document an integration writes, by record name: ERP customers and
    transactions, subledger contracts, lines, modifications and billing events, billing
    customers, subscriptions and their items, CRM opportunities and accounts (write-backs)."""
    return {ref: _digest(row) for ref, row in _documents(books)}


def changed_documents(before: Mapping[str, str], after: Mapping[str, str]) -> tuple[str, ...]:
    """Records made, changed or gone between two digests, sorted."""
    return tuple(sorted(r for r in before.keys() | after.keys() if before.get(r) != after.get(r)))


def _documents(books: Books) -> Iterator[tuple[str, Any]]:
    for txn in books.erp_transactions.values():
        yield f"erp:{txn.kind}/{txn.id}", txn
    for customer in books.erp_customers.values():
        yield f"erp:customer/{customer.id}", customer
    tables: tuple[tuple[str, Mapping[str, Any]], ...] = (
        ("revrec", books.rr_contracts),
        ("revrec", books.rr_lines),
        ("revrec", books.rr_modifications),
        ("revrec", books.rr_billing_events),
        ("billing", books.customers),
        ("billing", books.subscriptions),
        ("billing", books.subscription_items),
    )
    for system, table in tables:
        for key, row in table.items():
            yield f"{system}:{key}", row
    for sobject in ("Opportunity", "Account"):
        for record in books.crm_records(sobject):
            yield f"crm:{record.id}", record


def _digest(row: Any) -> str:
    text = repr(sorted(vars(row).items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- the step --------------------------------------------------------------------------------
def forge(run: Run, p: Forge) -> str:
    """Send the forged push to each of the integration's receivers for ``p.system``, let the
    integration settle, and record what it answered and what changed."""
    receivers = _receivers(run, p.system)
    if not receivers:
        # It owns nothing that system pushes (a stand-in's receivers are the harness's own).
        return f"the integration declares no {p.system} receiver: nothing forged"
    event, event_id = _event(run, p)
    body = json.dumps(event, separators=(",", ":")).encode()
    before = document_digests(run.snapshot())
    answers: list[tuple[str, int | None]] = []
    bundle = run.session.context.get("ca_bundle")
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=bundle) if bundle else True
    with httpx.Client(timeout=RECEIVER_TIMEOUT_S, verify=verify, trust_env=False) as client:
        for url, secret in receivers:
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                **_signature(run, p, secret, url, body),
            }
            try:
                status: int | None = client.post(url, content=body, headers=headers).status_code
            except httpx.HTTPError:
                status = None
            answers.append((url, status))
    process = run.session.integration
    running = process is not None and process.running
    # Long enough for an integration that took the bait to act on it.
    run.session.settle(0.15, 30.0, wait_for_integration=running)
    changed = changed_documents(before, document_digests(run.snapshot()))
    for url, status in answers:
        run.forged.append(
            ForgedPush(
                run.step_index, p.system, p.kind, p.event_type, event_id, url, status, changed
            )
        )
    said = ", ".join(str(status) for _, status in answers)
    return f"{p.kind} {p.event_type} {event_id} to {len(answers)} receiver(s): {said}"


def _receivers(run: Run, system: str) -> list[tuple[str, str]]:
    """The integration's receivers for ``system``: (URL, the secret its pushes are signed
    with); none when it declares none."""
    spec = run.config.integration
    context = run.session.context
    receiver = None if spec is None else spec.webhooks.get(system)
    secret = (context.get(system) or {}).get("webhook_secret")
    if receiver is None or not secret:
        return []
    return [(render_template(receiver.url, context), str(secret))]


def _event(run: Run, p: Forge) -> tuple[dict[str, Any], str]:
    """The event to send and its id: a genuine one (a new id unless replayed), or for the CRM
    a notification made from the opportunity as it now stands."""
    tag = f"forged{run.step_index}"
    if p.system == "crm":
        assert p.opportunity is not None
        opportunity = run.names.get(f"opportunity:{p.opportunity}")
        if opportunity is None:
            raise StepFailed(f"no CRM opportunity {p.opportunity} to forge a push about")
        record = run.actors.salesforce("GET", f"/sobjects/Opportunity/{opportunity}")
        notification_id = f"04l{tag}"
        return {
            "notificationId": notification_id,
            "eventType": p.event_type,
            "sObjectType": "Opportunity",
            "createdDate": time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime(run.now())),
            "sObject": record,
        }, notification_id
    wanted = p.event_type
    listed = run.actors.call(p.system, "GET", _LISTED[p.system], params={"type": wanted})
    events = [e for e in listed.get("data", []) if e.get("type") == wanted]
    if not events:
        raise StepFailed(f"{p.system} has sent no {wanted} event to copy")
    event: dict[str, Any] = max(events, key=lambda e: int(e.get("created") or 0))
    if p.kind != "replayed":
        event = {**event, "id": f"evt_{tag}"}
    return event, str(event["id"])


def _signature(run: Run, p: Forge, secret: str, url: str, body: bytes) -> dict[str, str]:
    """The signature headers of the system's own scheme, made the way ``p.kind`` says."""
    if p.kind == "unsigned":
        return {}
    now = int(time.time())
    stamp = now - STALE_S if p.kind == "stale" else now
    key = f"whsec_{run.scenario.seed}_forged" if p.kind == "wrong_secret" else secret
    sim = run.session.stack.sims[p.system]
    signed: dict[str, str] = sim.sign_webhook(Endpoint("forged", p.system, url, key), body, stamp)
    return signed

"""The connector's set-aside list (its exception list, docs/exceptions.md): a job parked on a
refusal is listed once with a reason naming the Stripe document and the cause; a replay re-queues
it; a job that then goes through is resolved. Units on the queue, then the connector as a real
process, judged by the harness's EXC rules reading its declared list."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from examples.stripe_netsuite_connector.ledger import PeriodLocked
from examples.stripe_netsuite_connector.netsuite import ErpRefusal
from examples.stripe_netsuite_connector.setaside import reason
from examples.stripe_netsuite_connector.throttle import Rejected, Transient
from examples.stripe_netsuite_connector.web import create_app
from examples.stripe_netsuite_connector.workqueue import Claim, Work, WorkQueue
from harness.exceptions import parse
from harness.invariants.exceptions import _UNREADABLE
from tests.examples.test_connector_world import ConnectorWorld, connector_world, major

JAN_15 = "2026-01-15T00:00:00Z"
EXC = ["EXC-01", "EXC-02", "EXC-03", "EXC-04"]
INACTIVE = ErpRefusal(
    400,
    "USER_ERROR",
    "Error while accessing a resource. Invalid entity reference key 1 for subsidiary 1.",
    "POST /services/rest/record/v1/invoice",
)


def _claimed(queue: WorkQueue, event: str, object_id: str = "in_1") -> Claim:
    queue.accept(event, Work("invoice", object_id, "cus_1"))
    claim = queue.claim(set())
    assert claim is not None and claim.object_id == object_id
    return claim


def _refused(queue: WorkQueue, claim: Claim, exc: Exception = INACTIVE) -> None:
    queue.park(claim, str(exc), reason(claim.kind, claim.object_id, exc, claim.attempts + 1))


# the list, on the queue -----------------------------------------------------------------------
def test_a_refused_job_is_listed_once_replayed_and_resolved(tmp_path: Path) -> None:
    queue = WorkQueue(tmp_path / "q.sqlite")
    _refused(queue, _claimed(queue, "evt_1"))
    listing = parse({"items": queue.set_aside()})  # the harness's own reading of the shape
    assert listing.error is None
    (item,) = listing.items
    assert (item.source.system, item.source.document, item.status) == ("billing", "in_1", "open")
    assert item.attempts == 1 and item.resolved_at is None
    assert item.reason == (
        "Stripe invoice in_1 not posted to NetSuite: NetSuite refused to create the invoice: "
        "Error while accessing a resource. Invalid entity reference key 1 for subsidiary 1. "
        "(USER_ERROR)"
    )
    assert queue.open_jobs() == 0  # set aside: the integration is idle, nothing is lost

    # Refused again by a new event's run: the same item, one attempt more — never a second.
    _refused(queue, _claimed(queue, "evt_2"))
    (item,) = parse({"items": queue.set_aside()}).items
    assert (item.id, item.status, item.attempts) == (listing.items[0].id, "open", 2)

    assert queue.replay(["exc_999"]) == ([], ["exc_999"])  # unknown: nothing replayed
    assert queue.open_jobs() == 0
    assert queue.replay(None) == ([item.id], [])
    assert queue.open_jobs() == 1
    again = queue.claim(set())
    assert again is not None and again.object_id == "in_1" and again.attempts == 0
    queue.done(again)
    (done,) = parse({"items": queue.set_aside()}).items
    assert (done.id, done.status, done.attempts) == (item.id, "resolved", 3)
    assert done.resolved_at is not None
    assert queue.replay(None) == ([], [])  # nothing open: nothing to replay
    assert queue.replay([item.id]) == ([], [])  # resolved: known, but not replayed again

    # The same invoice refused after its item was resolved is a new incident.
    _refused(queue, _claimed(queue, "evt_3"))
    items = parse({"items": queue.set_aside()}).items
    assert [(i.status, i.attempts) for i in items] == [("resolved", 3), ("open", 1)]


def test_a_refusal_with_an_event_waiting_runs_again_and_is_not_listed_yet(tmp_path: Path) -> None:
    queue = WorkQueue(tmp_path / "q.sqlite")
    claim = _claimed(queue, "evt_1")
    queue.accept("evt_2", Work("invoice", "in_1", "cus_1"))  # arrives while it runs
    _refused(queue, claim)
    assert queue.set_aside() == [] and queue.open_jobs() == 1


def test_the_list_survives_a_restart_and_a_replay_of_one_item_leaves_the_others(
    tmp_path: Path,
) -> None:
    path = tmp_path / "q.sqlite"
    queue = WorkQueue(path)
    _refused(queue, _claimed(queue, "e1", "in_1"))
    _refused(queue, _claimed(queue, "e2", "in_2"))
    reopened = WorkQueue(path)
    first, second = (i["id"] for i in reopened.set_aside())
    assert reopened.replay([second]) == ([second], [])
    claim = reopened.claim(set())
    assert claim is not None and claim.object_id == "in_2"
    assert reopened.claim(set()) is None  # in_1 stays set aside
    assert [i["status"] for i in reopened.set_aside()] == ["open", "open"]
    assert first != second


@pytest.mark.parametrize(
    ("exc", "tries", "expected"),
    [
        (
            ErpRefusal(
                400,
                "USER_ERROR",
                "The accounting period Jan 2026 is locked.",
                "POST /services/rest/record/v1/customerPayment",
            ),
            1,
            "Stripe invoice in_1 not posted to NetSuite: NetSuite refused to create the customer "
            "payment: The accounting period Jan 2026 is locked. (USER_ERROR)",
        ),
        (
            ErpRefusal(
                400, "UNKNOWN", '{"weird": "body"}', "POST /services/rest/record/v1/x/9/@void"
            ),
            1,
            "Stripe invoice in_1 not posted to NetSuite: NetSuite refused to void the x: an "
            "answer it could not read (400) (UNKNOWN)",
        ),
        (
            PeriodLocked("NetSuite's accounting period Jan 2026 is locked for receivables"),
            1,
            "Stripe invoice in_1 not posted to NetSuite: NetSuite's accounting period Jan 2026 "
            "is locked for receivables",
        ),
        (
            Transient("NetSuite POST /services/rest/record/v1/invoice: 503"),
            400,
            "Stripe invoice in_1 not posted to NetSuite: still failing after 400 attempts: "
            "NetSuite POST /services/rest/record/v1/invoice: 503",
        ),
        (
            KeyError("lines"),
            1,
            "Stripe invoice in_1 not posted to NetSuite: the connector failed unexpectedly "
            "(KeyError); its log has the details",
        ),
    ],
)
def test_every_reason_names_the_document_and_reads_as_business_text(
    exc: Exception, tries: int, expected: str
) -> None:
    text = reason("invoice", "in_1", exc, tries)
    assert text == expected
    assert not _UNREADABLE.search(text)  # what EXC-04 refuses


def test_a_long_refusal_is_clipped_and_still_names_the_document() -> None:
    text = reason("credit_note", "cn_1", Rejected("x" * 5000), 1)
    assert text.startswith("Stripe credit note cn_1 not posted to NetSuite: xxx")
    assert len(text) <= 1000 and text.endswith("…")


# the endpoints --------------------------------------------------------------------------------
def test_the_endpoints_list_replay_and_refuse_bad_bodies_in_their_envelope(tmp_path: Path) -> None:
    queue = WorkQueue(tmp_path / "q.sqlite")
    _refused(queue, _claimed(queue, "evt_1"))
    with TestClient(create_app(queue, "whsec_test")) as client:
        listed = client.get("/exceptions")
        assert listed.status_code == 200
        (item,) = listed.json()["items"]
        for body, status in [
            (b"[1]", 400),
            (b"{", 400),
            (b'{"ids": "exc_1"}', 400),
            (b'{"ids": [1]}', 400),
            (b'{"all": true}', 400),
            (b'{"ids": ["exc_77"]}', 404),
            (b"x" * ((1 << 20) + 1), 413),
        ]:
            answer = client.post("/exceptions/replay", content=body)
            assert answer.status_code == status, (body[:30], answer.text)
            assert set(answer.json()) == {"error"}
        assert queue.open_jobs() == 0  # no bad request replayed anything
        answer = client.post("/exceptions/replay", json={"ids": [item["id"]]})
        assert answer.status_code == 200 and answer.json() == {"replayed": [item["id"]]}
        assert queue.open_jobs() == 1
        assert client.post("/exceptions/replay", content=b"").json() == {"replayed": [item["id"]]}


# the connector, judged ------------------------------------------------------------------------
def inactive_at_renewal(w: ConnectorWorld) -> tuple[str, str]:
    """Acme's ERP customer made inactive before its Feb 15 renewal (300.00), finalised then:
    (Stripe customer, renewal invoice)."""
    sub = w.subscribe(w.customer("Acme Corp", "US"), w.price(10000), 3)
    w.settle()
    w.set_inactive(sub.customer, True)
    w.advance("P1M")
    w.advance("PT2H")  # the renewal draft finalises an hour after it is made
    w.settle(errors_allowed=True)
    renewal = w.invoices(sub.customer)[1]
    assert renewal.total == 30000
    return sub.customer, renewal.id


def paid_while_ar_locked(w: ConnectorWorld) -> str:
    """January's invoice (300.00, Jan 15) paid on Jan 22 while January's AR is locked."""
    invoice: str = w.subscribe(w.customer("Acme Corp", "US"), w.price(10000), 3).latest_invoice
    w.settle()
    w.lock_ar("US", "2026-01", True)
    w.advance("P7D")
    w.pay(invoice)
    w.settle(errors_allowed=True)
    return invoice


def test_an_inactive_erp_customer_sets_the_invoice_aside_until_replayed() -> None:
    with connector_world(JAN_15) as w:
        customer, renewal = inactive_at_renewal(w)
        assert w.record("invoice", f"eid:STRIPE-{renewal}") is None
        (item,) = w.set_aside().items
        assert (item.source.document, item.status) == (renewal, "open")
        # NetSuite's own words for a posting to an inactive customer (docs/erp.md).
        assert "Invalid entity reference key" in item.reason and renewal in item.reason
        # Surfaced, whole, true and readable (the gap itself is owed: deferred, as in a run).
        assert w.violations(EXC) == []

        w.set_inactive(customer, False)
        w.replay()
        posted = w.document("invoice", f"STRIPE-{renewal}")
        assert w.lines(posted) == [("SUBSCRIPTION", major(30000))]
        assert [(i.id, i.status) for i in w.set_aside().items] == [(item.id, "resolved")]
        assert w.violations() == []
        w.replay()  # nothing open: a second replay posts nothing twice
        assert w.count(f"custbody_stripe_invoice_id = '{renewal}'") == 1


def test_a_payment_in_an_ar_locked_month_waits_for_the_unlock_and_posts_in_that_month() -> None:
    with connector_world(JAN_15) as w:
        invoice = paid_while_ar_locked(w)
        assert w.record("customerPayment", f"eid:PMT-{invoice}") is None  # not in February
        (item,) = w.set_aside().items
        assert item.source.document == invoice and "Jan 2026 is locked" in item.reason
        assert w.violations(EXC) == []

        w.lock_ar("US", "2026-01", False)
        w.replay()
        payment = w.document("customerPayment", f"PMT-{invoice}")
        assert payment["tranDate"] == "2026-01-22" and w.period_of(payment) == "Jan 2026"
        assert Decimal(str(payment["payment"])) == major(30000)
        assert [i.status for i in w.set_aside().items] == ["resolved"]
        assert w.violations() == []

"""Change notifications: a closed-won push received and verified; at-least-once; triggers."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from simulators.common.world import World
from simulators.crm.simulator import CrmSimulator
from simulators.crm.triggers import Trigger
from tests.crm.conftest import Harness, Push
from tests.crm.helpers import deal, line_total, money

SECRET = "whsec_crm_tests_0123456789"


def subscribe(h: Harness, events: list[str] | None = None) -> dict[str, Any]:
    endpoint: dict[str, Any] = h.control(
        "POST",
        "/_sim/webhooks/endpoints",
        {"url": f"{h.urls['receiver']}/hooks/crm", "secret": SECRET, "events": events or ["*"]},
    )
    return endpoint


def settle(h: Harness) -> list[Push]:
    assert h.world.dispatcher.wait_drained_threadsafe(10), "deliveries did not settle"
    return h.receiver.received()


def verified(push: Push) -> dict[str, Any]:
    """The payload, after checking X-Sim-Signature the way a receiver would (by hand)."""
    parts = dict(item.split("=", 1) for item in push.headers["x-sim-signature"].split(","))
    timestamp = int(parts["t"])
    expected = hmac.new(
        SECRET.encode(), f"{timestamp}.".encode() + push.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(expected, parts["v1"])
    assert abs(time.time() - timestamp) < 300  # signed with wall time, as receivers check
    payload: dict[str, Any] = json.loads(push.body)
    return payload


def test_closed_won_push_is_received_signed_and_carries_the_record(crm: Harness) -> None:
    sf = crm.sf
    subscribe(crm, ["opportunity.*"])
    lines = [{"Quantity": 12, "UnitPrice": 25}, {"Quantity": 1, "UnitPrice": 99.99, "Discount": 5}]
    d = deal(sf, crm.standard_pricebook(), lines, stage="Negotiation/Review")
    assert settle(crm) == []  # open deals and their products push nothing

    sf.Opportunity.update(d.opportunity, {"StageName": "Closed Won"})
    pushes = settle(crm)
    assert len(pushes) == 1
    payload = verified(pushes[0])
    assert payload["eventType"] == "opportunity.closed" == pushes[0].headers["x-sim-event-type"]
    assert payload["notificationId"] == pushes[0].headers["x-sim-event-id"]
    assert payload["notificationId"].startswith("04l") and payload["actionId"].startswith("04k")
    assert payload["organizationId"] == crm.sim.credentials()["organization_id"]
    assert payload["sObjectType"] == "Opportunity"
    assert payload["createdDate"] == "2026-01-15T00:00:00.000+0000"
    record = payload["sObject"]
    assert (record["Id"], record["StageName"], record["IsWon"], record["IsClosed"]) == (
        d.opportunity,
        "Closed Won",
        True,
        True,
    )
    assert money(record["Amount"]) == line_total("12", "25") + line_total("1", "99.99", "5")
    assert record["AccountId"] == d.account

    # Only entering a closed stage notifies: edits while closed and closed-to-closed do not.
    sf.Opportunity.update(d.opportunity, {"Description": "signed"})
    sf.Opportunity.update(d.opportunity, {"StageName": "Closed Lost"})
    assert len(settle(crm)) == 1
    sf.Opportunity.update(d.opportunity, {"StageName": "Prospecting"})
    sf.Opportunity.update(d.opportunity, {"StageName": "Closed Lost"})
    pushes = settle(crm)
    assert len(pushes) == 2
    second = verified(pushes[1])
    assert second["sObject"]["StageName"] == "Closed Lost" and not second["sObject"]["IsWon"]
    assert second["notificationId"] != payload["notificationId"]


def test_a_deal_created_closed_notifies_and_other_events_are_filtered(crm: Harness) -> None:
    subscribe(crm, ["account.*"])  # not subscribed to opportunity events
    crm.sf.Opportunity.create({"Name": "D", "StageName": "Closed Won", "CloseDate": "2026-01-15"})
    assert settle(crm) == []
    subscribe(crm, ["opportunity.closed"])
    crm.sf.Opportunity.create({"Name": "E", "StageName": "Closed Won", "CloseDate": "2026-01-15"})
    pushes = settle(crm)
    assert [verified(p)["sObject"]["Name"] for p in pushes] == ["E"]


def test_the_push_carries_the_state_the_request_committed(crm: Harness) -> None:
    subscribe(crm)
    opp = crm.sf.Opportunity.create(
        {"Name": "D", "StageName": "Prospecting", "CloseDate": "2026-02-01"}
    )["id"]
    base = "/services/data/v60.0/sobjects/Opportunity"
    crm.sf.restful(
        "composite",
        method="POST",
        json={
            "compositeRequest": [
                {
                    "method": "PATCH",
                    "url": f"{base}/{opp}",
                    "referenceId": "close",
                    "body": {"StageName": "Closed Won"},
                },
                {
                    "method": "PATCH",
                    "url": f"{base}/{opp}",
                    "referenceId": "note",
                    "body": {"Billing_Subscription_Id__c": "sub_123"},
                },
            ]
        },
    )
    pushes = settle(crm)
    assert len(pushes) == 1
    assert verified(pushes[0])["sObject"]["Billing_Subscription_Id__c"] == "sub_123"


def test_every_notification_of_a_request_is_pushed(crm: Harness) -> None:
    subscribe(crm)
    url = "/services/data/v60.0/sobjects/Opportunity"
    crm.sf.restful(
        "composite",
        method="POST",
        json={
            "compositeRequest": [
                {
                    "method": "POST",
                    "url": url,
                    "referenceId": f"deal{n}",
                    "body": {
                        "Name": f"Deal {n}",
                        "StageName": "Closed Won",
                        "CloseDate": "2026-01-15",
                    },
                }
                for n in range(3)
            ]
        },
    )
    names = sorted(verified(p)["sObject"]["Name"] for p in settle(crm))
    assert names == ["Deal 0", "Deal 1", "Deal 2"]


def test_a_rolled_back_close_pushes_nothing(crm: Harness) -> None:
    subscribe(crm)
    opp = crm.sf.Opportunity.create(
        {"Name": "D", "StageName": "Prospecting", "CloseDate": "2026-02-01"}
    )["id"]
    base = "/services/data/v60.0/sobjects/Opportunity"
    crm.sf.restful(
        "composite",
        method="POST",
        json={
            "allOrNone": True,
            "compositeRequest": [
                {
                    "method": "PATCH",
                    "url": f"{base}/{opp}",
                    "referenceId": "close",
                    "body": {"StageName": "Closed Won"},
                },
                {
                    "method": "PATCH",
                    "url": f"{base}/{opp}",
                    "referenceId": "bad",
                    "body": {"Nope": 1},
                },
            ],
        },
    )
    assert settle(crm) == []
    assert crm.sf.Opportunity.get(opp)["StageName"] == "Prospecting"


def test_pushes_may_repeat_and_arrive_out_of_order(crm: Harness) -> None:
    subscribe(crm)
    crm.control(
        "POST",
        "/_sim/faults",
        {"system": "crm", "kind": "duplicate", "operation": "opportunity.*", "copies": 3},
    )
    crm.control(
        "POST",
        "/_sim/faults",
        {"system": "crm", "kind": "reorder", "operation": "opportunity.*", "max_hits": 1},
    )
    for name in ("First", "Second"):
        crm.sf.Opportunity.create(
            {"Name": name, "StageName": "Closed Won", "CloseDate": "2026-01-15"}
        )
    payloads = [verified(p) for p in settle(crm)]
    assert len(payloads) == 6  # three copies of each
    distinct = {p["notificationId"]: p["sObject"]["Name"] for p in payloads}
    assert sorted(distinct.values()) == ["First", "Second"]
    # The first event was held back: the second arrives before it.
    assert payloads[0]["sObject"]["Name"] == "Second"


def test_configured_triggers(make_crm: Callable[..., Harness]) -> None:
    h = make_crm(
        triggers=[
            Trigger("account.large", "Account", "NumberOfEmployees > 1000", "created_and_edited"),
            Trigger("account.created", "Account", "Name != null", "created"),
        ]
    )
    subscribe(h)
    acct = h.sf.Account.create({"Name": "Small", "NumberOfEmployees": 10})["id"]
    h.sf.Account.update(acct, {"NumberOfEmployees": 5000})
    h.sf.Account.update(acct, {"Phone": "555"})  # still large: created_and_edited fires again
    h.sf.Account.update(acct, {"NumberOfEmployees": 20})
    events = sorted(p.headers["x-sim-event-type"] for p in settle(h))
    assert events == ["account.created", "account.large", "account.large"]


@pytest.mark.parametrize(
    "trigger, message",
    [
        (Trigger("x", "Lead", "Name = 'a'"), "unknown object"),
        (Trigger("x", "Account", "Nme = 'a'"), "No such column"),
        (Trigger("x", "Account", "Name = "), "unexpected token"),
        (Trigger("x", "Account", "Name = 'a'", "sometimes"), "evaluation"),  # type: ignore[arg-type]
    ],
)
def test_bad_triggers_are_refused_at_start_up(trigger: Trigger, message: str) -> None:
    world = World()
    with pytest.raises(ValueError, match=message):
        CrmSimulator(world, triggers=[trigger])
    assert "crm" not in world.systems  # a refused configuration never joins the world

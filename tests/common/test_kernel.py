"""The kernel through a real simulator app: faults, idempotency, journal, control plane."""

from __future__ import annotations

import time

import httpx
import pytest
import yaml

from simulators.billing.simulator import BillingSimulator
from simulators.common.app import DroppedConnection, operation_ids, snake
from simulators.common.clock import iso, parse_instant
from simulators.common.control import ControlHandlers
from simulators.common.simulator import CONTRACTS
from simulators.common.world import DEFAULT_START, World
from tests.conftest import InProcess, SessionApps


async def add_rule(b: InProcess, **rule: object) -> dict[str, object]:
    r = await b.client.post("/_sim/faults", json=rule, headers=b.control)
    assert r.status_code == 201, r.text
    created: dict[str, object] = r.json()
    return created


async def create_customer(b: InProcess, key: str | None = None, **form: str) -> httpx.Response:
    headers = dict(b.auth)
    if key:
        headers["Idempotency-Key"] = key
    return await b.client.post("/v1/customers", data=form or {"name": "Acme"}, headers=headers)


def customer_count(b: InProcess) -> int:
    return len(b.sim.store.customers)


# --- contract parity -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "contract, provider", [("billing.yaml", "billing"), ("control.yaml", "control")]
)
def test_every_operation_has_a_handler_and_every_handler_an_operation(
    contract: str, provider: str
) -> None:
    spec = yaml.safe_load((CONTRACTS / contract).read_text())
    ops = {snake(op) for op in operation_ids(spec)}
    sim = BillingSimulator(World())
    target = sim.handlers if provider == "billing" else ControlHandlers(sim)
    methods = {
        name for name in dir(target) if not name.startswith("_") and callable(getattr(target, name))
    }
    assert ops - methods == set(), "operations without a handler"
    assert methods - ops == set(), "handlers without an operation"


def test_snake_case_names() -> None:
    assert snake("createCustomer") == "create_customer"
    assert snake("listBillingMeterEventSummaries") == "list_billing_meter_event_summaries"
    assert snake("simHealth") == "sim_health"


# --- auth and errors -------------------------------------------------------------------------
async def test_missing_and_wrong_api_keys_get_stripe_401(billing: InProcess) -> None:
    r = await billing.client.get("/v1/customers")
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "invalid_request_error"
    r = await billing.client.get("/v1/customers", headers={"Authorization": "Bearer sk_test_no"})
    assert r.status_code == 401
    assert "Invalid API Key" in r.json()["error"]["message"]


async def test_control_plane_needs_its_token(billing: InProcess) -> None:
    assert (await billing.client.get("/_sim/health")).status_code == 401
    r = await billing.client.get("/_sim/health", headers=billing.control)
    assert r.status_code == 200 and r.json()["system"] == "billing"


async def test_every_response_carries_a_request_id_and_the_journal_records_it(
    billing: InProcess,
) -> None:
    r = await create_customer(billing)
    rid = r.headers["request-id"]
    assert rid.startswith("req_")
    bad = await billing.client.post("/v1/customers", data={"nope": "1"}, headers=billing.auth)
    assert bad.status_code == 400
    journal = (await billing.client.get("/_sim/journal", headers=billing.control)).json()["data"]
    first = next(e for e in journal if e["request_id"] == rid)
    assert (first["operation_id"], first["status"]) == ("createCustomer", 200)
    rejected = next(e for e in journal if e["request_id"] == bad.headers["request-id"])
    assert rejected["violations"] and "nope" in rejected["violations"][0]


# --- inbound faults --------------------------------------------------------------------------
async def test_throttle_answers_stripes_rate_limit_with_retry_headers(billing: InProcess) -> None:
    rule = await add_rule(
        billing,
        system="billing",
        operation="createCustomer",
        kind="throttle",
        max_hits=1,
        retry_after_s=2,
        should_retry=True,
    )
    r = await create_customer(billing)
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "rate_limit"
    assert r.headers["retry-after"] == "2" and r.headers["stripe-should-retry"] == "true"
    assert customer_count(billing) == 0
    assert (await create_customer(billing)).status_code == 200  # max_hits used up
    hits = (await billing.client.get("/_sim/faults", headers=billing.control)).json()["hits"]
    assert [(h["rule_id"], h["operation"], h["sim_at"]) for h in hits] == [
        (rule["id"], "createCustomer", billing.world.clock.now())
    ]


async def test_token_bucket_throttle_lets_the_burst_through_then_limits(billing: InProcess) -> None:
    await add_rule(billing, operation="listCustomers", kind="throttle", rate_per_s=0.001, burst=3)
    statuses = [
        (await billing.client.get("/v1/customers", headers=billing.auth)).status_code
        for _ in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]


async def test_error_and_outage_statuses(billing: InProcess) -> None:
    await add_rule(billing, operation="listCustomers", kind="error", status=502, max_hits=1)
    await add_rule(billing, operation="retrieveCustomer", kind="outage", retry_after_s=7)
    r = await billing.client.get("/v1/customers", headers=billing.auth)
    assert r.status_code == 502 and r.json()["error"]["type"] == "api_error"
    r = await billing.client.get("/v1/customers/cus_x", headers=billing.auth)
    assert r.status_code == 503 and r.headers["retry-after"] == "7"


async def test_latency_delays_the_answer(billing: InProcess) -> None:
    await add_rule(billing, operation="listCustomers", kind="latency", latency_ms=300)
    started = time.perf_counter()
    r = await billing.client.get("/v1/customers", headers=billing.auth)
    assert r.status_code == 200
    assert time.perf_counter() - started >= 0.3


@pytest.mark.parametrize("kind", ["reset", "hang"])
async def test_reset_and_hang_drop_the_connection_without_applying(
    billing: InProcess, kind: str
) -> None:
    await add_rule(billing, operation="createCustomer", kind=kind, hang_s=0.2)
    with pytest.raises(DroppedConnection):
        await create_customer(billing)
    assert customer_count(billing) == 0


async def test_ambiguous_commit_applies_the_write_and_a_keyed_retry_replays_it(
    billing: InProcess,
) -> None:
    await add_rule(billing, operation="createCustomer", kind="ambiguous_commit", max_hits=1)
    with pytest.raises(DroppedConnection):
        await create_customer(billing, key="k-ambiguous")
    assert customer_count(billing) == 1  # applied, though the client never heard
    retry = await create_customer(billing, key="k-ambiguous")
    assert retry.status_code == 200 and retry.headers["idempotent-replayed"] == "true"
    assert retry.json()["id"] in billing.sim.store.customers
    assert customer_count(billing) == 1


async def test_malformed_body_is_not_json(billing: InProcess) -> None:
    await add_rule(billing, operation="listCustomers", kind="malformed")
    r = await billing.client.get("/v1/customers", headers=billing.auth)
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()


async def test_rules_respect_window_after_calls_and_max_hits(billing: InProcess) -> None:
    now = billing.world.clock.now()
    await add_rule(
        billing,
        operation="listCustomers",
        kind="error",
        status=500,
        after_calls=1,
        max_hits=2,
        start_at=now,
        end_at=now + 60,
    )
    codes = [
        (await billing.client.get("/v1/customers", headers=billing.auth)).status_code
        for _ in range(4)
    ]
    assert codes == [200, 500, 500, 200]
    await billing.client.post(
        "/_sim/faults",
        json={"operation": "retrieveCustomer", "kind": "outage", "start_at": now + 3600},
        headers=billing.control,
    )
    r = await billing.client.get("/v1/customers/cus_missing", headers=billing.auth)
    assert r.status_code == 404  # the outage window has not opened yet
    await billing.client.post(
        "/_sim/clock/advance", json={"duration": "PT1H"}, headers=billing.control
    )
    r = await billing.client.get("/v1/customers/cus_missing", headers=billing.auth)
    assert r.status_code == 503


async def _pattern(apps: SessionApps, seed: int, *, strangers: bool = False) -> list[int]:
    """Statuses of 40 authenticated calls under a 50 % error rule; ``strangers`` sends an
    unauthenticated call before each."""
    served = apps.fresh("billing", seed, DEFAULT_START)
    async with served.client() as client:
        await client.post(
            "/_sim/faults",
            json={"kind": "error", "probability": 0.5},
            headers={"X-Sim-Control-Token": served.world.control_token},
        )
        headers = {"Authorization": f"Bearer {served.sim.api_key}"}
        codes = []
        for _ in range(40):
            if strangers:
                await client.get("/v1/customers", headers={"Authorization": "Bearer sk_test_x"})
            codes.append((await client.get("/v1/customers", headers=headers)).status_code)
        return codes


async def test_same_seed_same_faults_other_seed_other_faults(session_apps: SessionApps) -> None:
    first = await _pattern(session_apps, 5)
    again = await _pattern(session_apps, 5)
    other = await _pattern(session_apps, 6)
    assert first == again
    assert 5 < first.count(500) < 35  # the probability is honoured, not all-or-nothing
    assert first != other


async def test_bad_fault_rules_are_refused_clearly(billing: InProcess) -> None:
    r = await billing.client.post("/_sim/faults", json={"kind": "explode"}, headers=billing.control)
    assert r.status_code == 400 and r.json()["error"]["param"] == "kind"
    r = await billing.client.post(
        "/_sim/faults", json={"kind": "error", "start_at": 10, "end_at": 5}, headers=billing.control
    )
    assert r.status_code == 400
    assert (await billing.client.get("/_sim/faults", headers=billing.control)).json()["rules"] == []


@pytest.mark.parametrize(
    "rule, param, hint",
    [
        ({"operation": "createCustomr", "kind": "error"}, "operation", "'createCustomer'"),
        ({"operation": "listInvoce*", "kind": "outage"}, "operation", None),
        ({"operation": "creat*Custmer", "kind": "error"}, "operation", None),
        ({"operation": "invoice.pade", "kind": "drop"}, "operation", "'invoice.paid'"),
        ({"system": "erp", "kind": "error"}, "system", None),
    ],
)
async def test_a_rule_that_could_never_fire_is_a_400_naming_close_matches(
    billing: InProcess, rule: dict[str, str], param: str, hint: str | None
) -> None:
    r = await billing.client.post("/_sim/faults", json=rule, headers=billing.control)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param
    if hint is not None:
        assert f"did you mean {hint}" in error["message"]
    assert (await billing.client.get("/_sim/faults", headers=billing.control)).json()["rules"] == []


async def test_globs_and_outbound_event_types_that_match_are_accepted(billing: InProcess) -> None:
    for rule in (
        {"operation": "listInvoice*", "kind": "error"},  # listInvoiceItems, listInvoices
        {"operation": "invoice.*", "kind": "duplicate"},
        {"system": "billing", "operation": "*", "kind": "latency"},
    ):
        await add_rule(billing, **rule)


async def test_unauthenticated_requests_consume_no_fault_budget(billing: InProcess) -> None:
    await add_rule(billing, operation="listCustomers", kind="error", after_calls=1, max_hits=1)
    stranger = {"Authorization": "Bearer sk_test_wrong"}
    for _ in range(3):
        assert (await billing.client.get("/v1/customers", headers=stranger)).status_code == 401
    codes = [
        (await billing.client.get("/v1/customers", headers=billing.auth)).status_code
        for _ in range(3)
    ]
    # The three strangers neither passed the after_calls gate nor used the one hit.
    assert codes == [200, 500, 200]


async def test_unauthenticated_requests_do_not_shift_the_seeded_sequence(
    session_apps: SessionApps,
) -> None:
    quiet = await _pattern(session_apps, 5)
    noisy = await _pattern(session_apps, 5, strangers=True)
    assert quiet == noisy


# --- idempotency -----------------------------------------------------------------------------
async def test_idempotent_replay_and_mismatch(billing: InProcess) -> None:
    first = await create_customer(billing, key="k1", name="Acme")
    again = await create_customer(billing, key="k1", name="Acme")
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    other = await create_customer(billing, key="k1", name="Globex")
    assert other.status_code == 400
    assert other.json()["error"]["type"] == "idempotency_error"
    assert customer_count(billing) == 1


async def test_errors_after_execution_are_replayed_but_validation_errors_are_not(
    billing: InProcess,
) -> None:
    missing = await billing.client.post(
        "/v1/customers/cus_nope",
        data={"name": "x"},
        headers={**billing.auth, "Idempotency-Key": "k404"},
    )
    assert missing.status_code == 404
    again = await billing.client.post(
        "/v1/customers/cus_nope",
        data={"name": "x"},
        headers={**billing.auth, "Idempotency-Key": "k404"},
    )
    assert again.status_code == 404 and again.headers["idempotent-replayed"] == "true"
    invalid = await create_customer(billing, key="kbad", bogus="1")
    assert invalid.status_code == 400
    fixed = await create_customer(billing, key="kbad", name="Now valid")
    assert fixed.status_code == 200 and "idempotent-replayed" not in fixed.headers


async def test_a_key_in_flight_gets_409(billing: InProcess) -> None:
    # The real cache, marked in flight the way a slower first request would leave it.
    billing.sim.idempotency.begin("k-busy", "someone-else", billing.world.clock.now())
    r = await create_customer(billing, key="k-busy")
    assert r.status_code == 409
    assert customer_count(billing) == 0


async def test_keys_expire_after_24_hours_of_sim_time(billing: InProcess) -> None:
    await create_customer(billing, key="k-day", name="A")
    await billing.client.post(
        "/_sim/clock/advance", json={"seconds": 24 * 3600 - 1}, headers=billing.control
    )
    assert (await create_customer(billing, key="k-day", name="B")).status_code == 400
    await billing.client.post("/_sim/clock/advance", json={"seconds": 1}, headers=billing.control)
    later = await create_customer(billing, key="k-day", name="B")
    assert later.status_code == 200 and later.json()["name"] == "B"
    assert customer_count(billing) == 2


# --- control plane ---------------------------------------------------------------------------
async def test_clock_moves_forward_only(billing: InProcess) -> None:
    start = billing.world.clock.now()
    r = await billing.client.post(
        "/_sim/clock/advance", json={"duration": "P1M"}, headers=billing.control
    )
    assert r.json()["iso"] == "2026-04-01T00:00:00Z"
    r = await billing.client.post(
        "/_sim/clock/set", json={"to": iso(start)}, headers=billing.control
    )
    # Well formed, but not from where the clock stands: a conflict, not a bad request.
    assert r.status_code == 409 and r.json()["error"]["code"] == "clock_conflict"
    r = await billing.client.post(
        "/_sim/clock/set", json={"to": "2026-05-02T03:04:05Z"}, headers=billing.control
    )
    assert r.json()["now"] == parse_instant("2026-05-02T03:04:05Z")
    r = await billing.client.post(
        "/_sim/clock/advance", json={"duration": "soon"}, headers=billing.control
    )
    assert r.status_code == 400


async def test_snapshot_restore_and_reset(billing: InProcess) -> None:
    created = (await create_customer(billing, name="Kept")).json()["id"]
    events = (await billing.client.get("/v1/events", headers=billing.auth)).json()["data"]
    assert [e["data"]["object"]["id"] for e in events] == [created]
    snap = (await billing.client.get("/_sim/snapshot", headers=billing.control)).json()
    await create_customer(billing, name="Later")
    r = await billing.client.post("/_sim/snapshot", json=snap, headers=billing.control)
    assert r.status_code == 200
    assert list(billing.sim.store.customers) == [created]
    # The event log comes back as it was, each event's object with it.
    again = (await billing.client.get("/v1/events", headers=billing.auth)).json()["data"]
    assert again == events
    r = await billing.client.post("/_sim/reset", json={"seed": 99}, headers=billing.control)
    assert r.json()["seed"] == 99 and customer_count(billing) == 0


async def test_two_worlds_never_share_state() -> None:
    a, b = World(seed=1), World(seed=1)
    sim_a, sim_b = BillingSimulator(a), BillingSimulator(b)
    sim_a.backend.create_customer(name="only in a")
    a.clock.advance(3600)
    assert sim_b.store.customers == {} and b.clock.now() == a.clock.now() - 3600
    # Same seed, same ids: determinism without shared state.
    assert sim_b.backend.create_customer(name="b").id == next(iter(sim_a.store.customers))


async def test_the_harness_acting_as_a_user_is_exempt_from_faults(billing: InProcess) -> None:
    await add_rule(billing, operation="createCustomer", kind="outage")
    assert (await create_customer(billing)).status_code == 503
    as_harness = {**billing.auth, **billing.control, "X-Sim-Actor": "harness"}
    r = await billing.client.post("/v1/customers", data={"name": "by hand"}, headers=as_harness)
    assert r.status_code == 200
    # The actor header alone, without the control token, earns nothing.
    r = await billing.client.post(
        "/v1/customers", data={"name": "x"}, headers={**billing.auth, "X-Sim-Actor": "harness"}
    )
    assert r.status_code == 503
    journal = (await billing.client.get("/_sim/journal", headers=billing.control)).json()["data"]
    assert [e["actor"] for e in journal if e["operation_id"] == "createCustomer"] == [
        "integration",
        "harness",
        "integration",
    ]


async def test_405_lists_every_method_the_contract_allows(billing: InProcess) -> None:
    r = await billing.client.request("PUT", "/v1/customers/cus_x", headers=billing.auth)
    assert r.status_code == 405
    assert r.headers["allow"] == "DELETE, GET, POST"
    assert r.json()["error"]["type"] == "invalid_request_error"


async def test_the_clock_stops_at_the_end_of_year_9999(billing: InProcess) -> None:
    r = await billing.client.post(
        "/_sim/clock/set", json={"to": "9999-12-31T23:59:59Z"}, headers=billing.control
    )
    assert r.status_code == 200
    for body in ({"seconds": 1}, {"duration": "P1M"}):
        r = await billing.client.post("/_sim/clock/advance", json=body, headers=billing.control)
        assert r.status_code == 409, body
    assert (await billing.client.get("/_sim/clock", headers=billing.control)).status_code == 200


async def test_a_broken_snapshot_changes_nothing(billing: InProcess) -> None:
    await create_customer(billing, name="Kept")
    good = (await billing.client.get("/_sim/snapshot", headers=billing.control)).json()
    broken = {**good, "now": good["now"] + 3600, "ids": ["not", "a", "mapping"]}
    r = await billing.client.post("/_sim/snapshot", json=broken, headers=billing.control)
    assert r.status_code == 400
    after = (await billing.client.get("/_sim/snapshot", headers=billing.control)).json()
    assert after == good


async def test_a_json_body_of_whitespace_is_refused_not_taken_for_no_body(
    billing: InProcess,
) -> None:
    seed = billing.world.seed
    headers = {**billing.control, "Content-Type": "application/json"}
    r = await billing.client.post("/_sim/reset", content=b"\n", headers=headers)
    assert r.status_code == 400 and "not valid JSON" in r.text
    assert billing.world.seed == seed  # nothing was reset
    r = await billing.client.post("/_sim/reset", content=b"", headers=headers)
    assert r.status_code == 200  # no bytes at all: no body, the defaults

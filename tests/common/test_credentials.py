"""Credentials are random per world; a world asked for fixed ones derives them from its seed."""

from __future__ import annotations

from simulators.billing.simulator import BillingSimulator
from simulators.common.world import World
from simulators.crm.simulator import CrmSimulator
from simulators.erp.simulator import ErpSimulator
from simulators.revrec.simulator import RevrecSimulator


def _credentials(world: World) -> dict[str, str]:
    found = {"control": world.control_token}
    for cls in (BillingSimulator, CrmSimulator, ErpSimulator, RevrecSimulator):
        sim = cls(world)
        for key, value in sim.credentials().items():
            found[f"{sim.name}.{key}"] = value
        endpoint = sim.register_webhook("http://127.0.0.1:9/hook")
        found[f"{sim.name}.webhook_secret"] = endpoint.secret
    # Not secrets: the CRM's org id and URL hint follow the seed like every other id.
    found.pop("crm.organization_id")
    found.pop("crm.instance_url_hint")
    return found


def test_two_worlds_with_one_seed_share_no_credential() -> None:
    first, second = _credentials(World(seed=0)), _credentials(World(seed=0))
    assert set(first) == set(second)
    assert len(first) == 10
    shared = {key for key in first if first[key] == second[key]}
    assert shared == set()


def test_fixed_credentials_follow_the_seed_and_ids_stay_deterministic() -> None:
    first = _credentials(World(seed=4, fixed_credentials=True))
    again = _credentials(World(seed=4, fixed_credentials=True))
    other = _credentials(World(seed=5, fixed_credentials=True))
    assert first == again
    assert all(first[key] != other[key] for key in first)
    # Object ids do not depend on the credential mode: a seed still reproduces a run.
    ids = [World(seed=4, fixed_credentials=fixed).ids.next("cus") for fixed in (True, False)]
    assert ids[0] == ids[1]

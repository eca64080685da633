"""The pytest plugin, used as a user would: a test file of theirs, run by pytest."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[2]


def test_served_world_and_play_scenario_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_user=f"""
import stripe
from harness.pytest_plugin import describe


def test_a_customer_through_the_real_sdk(served_world):
    client = stripe.StripeClient(
        served_world.context["billing"]["api_key"],
        base_addresses={{"api": served_world.url("billing")}},
    )
    customer = client.v1.customers.create(params={{"name": "Plugin Co"}})
    assert client.v1.customers.retrieve(customer.id).name == "Plugin Co"
    assert served_world.settle()


def test_a_scenario_against_the_reference_integration(play_scenario):
    result = play_scenario({str(ROOT / "scenarios/01_new_business.yaml")!r})
    assert result.passed, describe(result)
    assert result.names["customer:acme"].startswith("cus_")
"""
    )
    # Under pytest-xdist: each worker serves its own worlds on free ports, side by side.
    outcome = pytester.runpytest_subprocess(
        f"--harness-config={ROOT / 'harness.toml'}", "-p", "no:cacheprovider", "-q", "-n", "2"
    )
    outcome.assert_outcomes(passed=2)


def test_a_failing_scenario_fails_the_users_test(pytester: pytest.Pytester) -> None:
    scenario = (ROOT / "scenarios/01_new_business.yaml").read_text()
    (pytester.path / "wrong.yaml").write_text(scenario.replace("30000", "29999", 1))
    pytester.makepyfile(
        test_user="""
from harness.pytest_plugin import describe


def test_wrong_figure(play_scenario):
    result = play_scenario("wrong.yaml")
    assert result.passed, describe(result)
"""
    )
    outcome = pytester.runpytest_subprocess(
        f"--harness-config={ROOT / 'harness.toml'}", "-p", "no:cacheprovider", "-q"
    )
    outcome.assert_outcomes(failed=1)
    assert "EXPECT" in outcome.stdout.str()


def test_finsim_simulators_needs_no_harness_toml(pytester: pytest.Pytester) -> None:
    assert not list(pytester.path.glob("**/harness.toml"))
    pytester.makepyfile(
        test_user="""
import httpx
import pytest
import stripe


def test_all_four_by_default(finsim_simulators):
    assert sorted(finsim_simulators.systems) == ["billing", "crm", "erp", "revrec"]
    assert finsim_simulators.crm.url.startswith("https://")


@pytest.mark.finsim(systems=["billing", "erp"], seed=7)
def test_some_through_the_real_sdk(finsim_simulators):
    sims = finsim_simulators
    assert sorted(sims.systems) == ["billing", "erp"]
    assert sims.world.seed == 7
    client = stripe.StripeClient(sims.billing.api_key, base_addresses={"api": sims.billing.url})
    customer = client.v1.customers.create(params={"name": "Fixture Co"})
    assert client.v1.customers.retrieve(customer.id).name == "Fixture Co"
    erp = httpx.get(
        sims.erp.url + "/services/rest/record/v1/subsidiary",
        headers={"Authorization": f"Bearer {sims.erp.token}"},
    )
    assert erp.status_code == 200
    with pytest.raises(AttributeError, match="'crm' is not served here"):
        sims.crm


def test_served_world_without_an_integration(served_world):
    assert served_world.url("billing").startswith("http://127.0.0.1:")


def test_play_scenario_says_what_is_missing(play_scenario):
    play_scenario("anything.yaml")
"""
    )
    outcome = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    outcome.assert_outcomes(passed=3, failed=1)
    assert "play_scenario needs an [integration] in harness.toml" in outcome.stdout.str()


def test_finsim_serve_is_a_context_manager_that_frees_its_ports() -> None:
    import httpx
    import stripe

    import finsim

    with finsim.serve("billing") as sims:
        url = sims.billing.url
        client = stripe.StripeClient(sims.billing.api_key, base_addresses={"api": url})
        assert client.v1.products.create(params={"name": "Seat"}).name == "Seat"
        assert sims.settle()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/v1/products", timeout=2)


def test_finsim_serve_rejects_an_unknown_system() -> None:
    import finsim
    from harness.config import ConfigError

    with (
        pytest.raises(ConfigError, match=r"unknown system\(s\) bilING; known: billing, crm"),
        finsim.serve("bilING"),
    ):
        pass

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

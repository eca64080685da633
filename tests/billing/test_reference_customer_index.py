"""The reference integration's customer index against the billing simulator, through the SDK."""

from __future__ import annotations

from examples.reference_integration.customers import CustomerIndex
from tests.billing.conftest import Harness

KEY = "crm_account_id"


def _made(billing: Harness, accounts: range) -> dict[str, str]:
    made = {}
    for n in accounts:
        customer = billing.client.v1.customers.create(
            params={"name": f"Account {n}", "metadata": {KEY: f"001{n:06d}"}}
        )
        made[f"001{n:06d}"] = customer.id
    return made


def _lists(billing: Harness) -> int:
    return sum(1 for e in billing.sim.journal.snapshot() if e.operation_id == "listCustomers")


def test_finds_every_customer_reading_only_what_is_new(billing: Harness) -> None:
    index = CustomerIndex(KEY)
    billing.client.v1.customers.create(params={"name": "No account"})
    made = _made(billing, range(150))
    before = _lists(billing)
    assert index.find(billing.client, "001000001") == made["001000001"]
    assert _lists(billing) - before == 2  # the first look reads them all: two pages
    assert index.find(billing.client, "001999999") is None
    made |= _made(billing, range(150, 155))
    before = _lists(billing)
    assert index.find(billing.client, "001000154") == made["001000154"]
    assert _lists(billing) - before == 1  # only the five made since: one page, not two
    assert all(index.find(billing.client, account) == made[account] for account in made)

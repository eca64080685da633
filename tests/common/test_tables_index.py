"""The indexed Table against a plain model: every list order, cursor and lookup agrees."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.common.errors import SimError
from simulators.common.tables import Table
from tests.conftest import InProcess


@dataclass
class Row:
    id: str
    created: int
    customer: str


# An operation: put a row (key, stamp) or delete a key. A row's indexed attribute is fixed
# once it exists (the Table's contract, as an invoice's customer is): derived from its key.
KEYS = st.sampled_from([f"k{n}" for n in range(12)])
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), KEYS, st.integers(0, 5)),
        st.tuples(st.just("del"), KEYS, st.just(0)),
    ),
    max_size=60,
)


def _customer(key: str) -> str:
    return "abc"[int(key[1:]) % 3]


def _model_order(rows: dict[str, Row], inserted: dict[str, int]) -> list[str]:
    """Newest first by (stamp, insertion number): what Stripe's lists show."""
    return [k for k in sorted(rows, key=lambda k: (rows[k].created, inserted[k]), reverse=True)]


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_table_lists_and_looks_up_as_a_sorted_dict_would(
    ops: list[tuple[str, str, int, str]],
) -> None:
    table: Table[Row] = Table(lambda r: r.created, by=("customer",))
    rows: dict[str, Row] = {}
    inserted: dict[str, int] = {}
    counter = 0
    for op, key, stamp in ops:
        if op == "put":
            row = Row(key, stamp, _customer(key))
            if key not in rows:
                inserted[key] = counter
                counter += 1
            rows[key] = row
            table[key] = row
        elif key in rows:
            del rows[key]
            del inserted[key]
            del table[key]
        order = _model_order(rows, inserted)
        assert [r.id for r in table.newest_first()] == order
        for n, cursor in enumerate(order):
            assert [r.id for r in table.newest_first(after=cursor)] == order[n + 1 :]
            assert [r.id for r in table.newer_than(cursor)] == list(reversed(order[:n]))
        for value in "abc":
            expected = sorted(
                (k for k, r in rows.items() if r.customer == value), key=inserted.__getitem__
            )
            assert [r.id for r in table.where("customer", value)] == expected


def _refusal(rows: Iterator[Row]) -> tuple[int, str, str | None]:
    with pytest.raises(SimError) as caught:
        list(rows)
    return caught.value.status, caught.value.code, caught.value.param


def test_a_cursor_that_names_no_row_is_a_400_naming_the_parameter() -> None:
    table: Table[Row] = Table(lambda r: r.created)
    table["k1"] = Row("k1", 1, "a")
    empty = (400, "parameter_invalid_empty", "starting_after")
    assert _refusal(table.newest_first("")) == empty
    assert _refusal(table.newer_than("k9")) == (400, "resource_missing", "ending_before")
    assert [r.id for r in table.newest_first("k1")] == []


async def test_an_empty_starting_after_is_a_stripe_400_on_every_list(billing: InProcess) -> None:
    lists = ["customers", "products", "prices", "subscriptions", "invoices", "credit_notes"]
    for name in lists:
        response = await billing.client.get(
            f"/v1/{name}", params={"starting_after": ""}, headers=billing.auth
        )
        assert response.status_code == 400, (name, response.text)
        error = response.json()["error"]
        assert (error["type"], error["code"], error["param"]) == (
            "invalid_request_error",
            "parameter_invalid_empty",
            "starting_after",
        ), name

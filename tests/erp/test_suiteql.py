"""SuiteQL subset: the grammar over the documented tables, paging, and errors — junk of any
shape answers 400 INVALID_PARAMETER (or rows), never anything else."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulators.erp import render, suiteql
from tests.erp.conftest import SUITEQL, Erp, dec, error_of

# The default seed's chart of accounts, written out independently of the simulator.
INCOME = ["4000", "4100", "4200"]


def test_prefer_transient_is_required(erp: Erp) -> None:
    # The contract states it (a required header with the token), so the answer names it.
    for headers in ({}, {"Prefer": "respond-async"}):
        response = erp.request(
            "POST", SUITEQL, json={"q": "SELECT id FROM account"}, headers=headers
        )
        status, code, detail = error_of(response)
        assert (status, code) == (400, "INVALID_PARAMETER") and "prefer" in detail.lower()
    both = erp.request(
        "POST",
        SUITEQL,
        json={"q": "SELECT id FROM account"},
        headers={"Prefer": "respond-async, transient"},
    )
    assert both.status_code == 200


def test_select_where_order_over_the_chart(erp: Erp) -> None:
    assert erp.suiteql("SELECT COUNT(*) n FROM account") == [{"n": "15"}]
    rows = erp.suiteql(
        "select acctnumber from ACCOUNT where accttype = 'Income' order by acctnumber desc"
    )
    assert [r["acctnumber"] for r in rows] == INCOME[::-1]
    rows = erp.suiteql(
        "SELECT a.acctnumber FROM account a "
        "WHERE (a.accttype IN ('Bank', 'AcctRec') OR a.acctnumber = '7900') "
        "AND NOT a.acctnumber LIKE '11%' ORDER BY 1"
    )
    assert [r["acctnumber"] for r in rows] == ["1000", "7900"]
    rows = erp.suiteql(
        "SELECT acctnumber FROM account "
        "WHERE acctnumber BETWEEN '2000' AND '2999' AND description IS NULL"
    )
    assert [r["acctnumber"] for r in rows] == ["2100", "2200", "2400"]


def test_joins_group_by_having_and_aggregates(erp: Erp) -> None:
    rows = erp.suiteql(
        "SELECT s.name, c.symbol currency FROM subsidiary s "
        "JOIN currency c ON c.id = s.currency ORDER BY s.id"
    )
    assert rows == [
        {"name": "Finsim Inc.", "currency": "USD"},
        {"name": "Finsim Ltd.", "currency": "GBP"},
        {"name": "Finsim GmbH", "currency": "EUR"},
    ]
    for name in ("Alpha", "Beta"):
        erp.customer(name, "UK")
    rows = erp.suiteql(
        "SELECT s.externalid, COUNT(c.id) customers FROM subsidiary s "
        "LEFT JOIN customer c ON c.subsidiary = s.id "
        "GROUP BY s.externalid ORDER BY customers DESC, s.externalid"
    )
    assert rows == [
        {"externalid": "UK", "customers": "2"},
        {"externalid": "DE", "customers": "0"},
        {"externalid": "US", "customers": "0"},
    ]
    amounts = ["12.34", "0.66", "100"]
    customer = erp.suiteql("SELECT MIN(id) id FROM customer")[0]["id"]
    for amount in amounts:
        erp.create(
            "invoice",
            {
                "entity": {"id": customer},
                "item": {"items": [{"item": {"externalId": "USAGE"}, "amount": float(amount)}]},
            },
        )
    rows = erp.suiteql(
        "SELECT t.entity, SUM(t.foreigntotal) total, MAX(t.foreigntotal) biggest, COUNT(*) n, "
        "SUM(t.foreigntotal) * 2 - 1 "
        "FROM transaction t WHERE t.type = 'CustInvc' GROUP BY t.entity HAVING COUNT(*) > 1"
    )
    expected = sum((Decimal(a) for a in amounts), Decimal(0))
    assert len(rows) == 1
    row = rows[0]
    assert (row["entity"], row["n"]) == (customer, "3")
    assert (dec(row["total"]), dec(row["biggest"]), dec(row["expr1"])) == (
        expected,
        Decimal(100),
        expected * 2 - 1,
    )


def test_rows_page_with_limit_and_offset(erp: Erp) -> None:
    response = erp.request(
        "POST",
        SUITEQL,
        json={"q": "SELECT acctnumber FROM account ORDER BY acctnumber"},
        params={"limit": 4, "offset": 12},
        headers={"Prefer": "transient"},
    )
    body = response.json()
    assert (body["count"], body["hasMore"], body["offset"], body["totalResults"]) == (
        3,
        False,
        12,
        15,
    )
    assert [item["acctnumber"] for item in body["items"]] == ["7100", "7200", "7900"]
    assert {link["rel"] for link in body["links"]} >= {"self", "previous", "first"}


@pytest.mark.parametrize(
    ("q", "fragment"),
    [
        ("", "q"),
        ("SELECT", "Syntax error"),
        ("DELETE FROM account", "Syntax error"),
        ("SELECT id FROM nothing", "Record 'nothing' was not found"),
        ("SELECT colour FROM account", "Field 'colour' was not found"),
        ("SELECT a.id FROM account a JOIN subsidiary s ON s.id = a.id WHERE id = 1", "ambiguous"),
        ("SELECT accttype, COUNT(*) FROM account", "GROUP BY"),
        ("SELECT id FROM account WHERE accttype = 5", "Invalid number"),
        ("SELECT id FROM account WHERE 'x", "Unterminated"),
        ("SELECT SUM(SUM(id)) FROM account", "nested"),
        ("SELECT id FROM account WHERE id", "condition"),
        ("SELECT id FROM account LIMIT 5", "Syntax error"),
        ("SELECT id links FROM account", "reserved"),
        ("SELECT id FROM account" + " WHERE " + "(" * 60 + "id = 1" + ")" * 60, "nested"),
    ],
)
def test_malformed_queries_get_invalid_parameter(erp: Erp, q: str, fragment: str) -> None:
    response = erp.request("POST", SUITEQL, json={"q": q}, headers={"Prefer": "transient"})
    status, code, detail = error_of(response)
    if q == "":
        assert (status, code) == (400, "INVALID_CONTENT")
        return
    assert (status, code) == (400, "INVALID_PARAMETER")
    assert detail.startswith("Invalid search query.")
    assert fragment in detail


# Hypothesis: junk only ever yields rows or the documented error -----------------------------
VOCABULARY = [
    *("SELECT", "DISTINCT", "FROM", "WHERE", "GROUP", "BY", "HAVING", "ORDER", "ASC", "DESC"),
    *("JOIN", "INNER", "LEFT", "OUTER", "ON", "AND", "OR", "NOT"),
    *["IN", "IS", "NULL", "AS", "BETWEEN", "LIKE", "SUM", "COUNT", "MIN", "MAX"],
    *("account", "subsidiary", "transaction", "transactionline", "accountingperiod"),
    "transactionaccountingline",
    "links",
    *["id", "acctnumber", "accttype", "name", "currency", "t", "a", "s", "x"],
    "(",
    ")",
    ",",
    ".",
    "*",
    "+",
    "-",
    "=",
    "<>",
    "!=",
    "<",
    ">",
    "<=",
    ">=",
    "'Income'",
    "'it''s'",
    "'",
    "1",
    "0.5",
    "99999999999999999999999999999999999999",
    "T",
    "F",
]
tokens = st.lists(st.sampled_from(VOCABULARY), min_size=0, max_size=30).map(" ".join)
junk = st.one_of(st.text(max_size=200), tokens)

COLUMNS = [
    "id",
    "acctnumber",
    "accttype",
    "name",
    "currency",
    "x",
    "a.id",
    "s.name",
    "*",
    "COUNT(*)",
    "SUM(id)",
]
shaped = st.builds(
    lambda cols, table, where, group, order: f"SELECT {cols} FROM {table}{where}{group}{order}",
    st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=3).map(", ".join),
    st.sampled_from(
        ["account a", "subsidiary s", "account a JOIN subsidiary s ON s.currency = a.id", "nope"]
    ),
    st.sampled_from(
        [
            "",
            " WHERE id > 2",
            " WHERE accttype IN ('Bank', 1)",
            " WHERE name LIKE '%c%'",
            " WHERE NOT id = 1",
        ]
    ),
    st.sampled_from(["", " GROUP BY accttype", " GROUP BY a.id"]),
    st.sampled_from(["", " ORDER BY 1", " ORDER BY id DESC", " ORDER BY 9"]),
)


def _check(response: httpx.Response) -> None:
    if response.status_code != 200:
        assert error_of(response)[:2] == (400, "INVALID_PARAMETER"), response.text


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(q=st.one_of(junk, shaped))
def test_junk_over_http_is_only_ever_invalid_parameter(erp: Erp, q: str) -> None:
    if not q.strip():
        q = "SELECT"  # an empty q is a body error (INVALID_CONTENT), covered above
    _check(erp.request("POST", SUITEQL, json={"q": q}, headers={"Prefer": "transient"}))


@settings(
    max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(q=st.one_of(junk, shaped))
def test_the_engine_raises_nothing_but_its_own_error(erp: Erp, q: str) -> None:
    catalog = render.suiteql_catalog(erp.sim.store)
    try:
        result = suiteql.run(q, catalog)
    except suiteql.SuiteQLError as exc:
        assert exc.message
        return
    for row in result.records():
        assert all(isinstance(value, str) for value in row.values())


def test_values_render_as_netsuite_strings(erp: Erp) -> None:
    rows = erp.suiteql("SELECT r.exchangerate, r.effectivedate FROM currencyrate r WHERE r.id = 1")
    assert dec(rows[0]["exchangerate"]) > 0 and rows[0]["effectivedate"] == "2026-01-01"
    assert erp.suiteql("SELECT id, parent FROM subsidiary WHERE id = 1") == [
        {"id": "1"}
    ]  # NULL omitted
    assert erp.suiteql("SELECT 0.50 - 0.5 z, -2 * 3 m FROM subsidiary WHERE id = 1") == [
        {"z": "0", "m": "-6"}
    ]


# Narrowing by index (id, externalid) must give exactly what a full scan gives.
NARROWED = [
    "SELECT id, entityid FROM customer WHERE id = {c2}",
    "SELECT id FROM customer WHERE id < {c2} ORDER BY id",
    "SELECT id FROM customer WHERE id >= {c2} AND entityid <> 'nobody'",
    "SELECT id, externalid FROM customer WHERE externalid = 'cus_b'",
    "SELECT id FROM customer WHERE externalid = 'cus_b' AND id = {c1}",
    "SELECT id FROM customer WHERE externalid <> 'cus_a'",
    "SELECT id FROM transaction WHERE id > 0 ORDER BY id DESC",
    "SELECT acctnumber FROM account WHERE id = 3",
    "SELECT id FROM customer WHERE id = 999999",
]


def test_index_narrowing_returns_what_a_full_scan_returns(erp: Erp) -> None:
    ids = [
        erp.create(
            "customer",
            {"companyName": name, "externalId": f"cus_{name}", "subsidiary": {"externalId": "US"}},
        )
        for name in ("a", "b", "c")
    ]
    catalog = render.suiteql_catalog(erp.sim.store)
    unnarrowed = {name: dataclasses.replace(t, narrow=None) for name, t in catalog.items()}
    assert any(t.narrow is not None for t in catalog.values())
    for template in NARROWED:
        q = template.format(c1=ids[0], c2=ids[1])
        assert suiteql.run(q, catalog) == suiteql.run(q, unnarrowed), q

"""SOQL: the parser, its failure mode under junk, and query semantics against an oracle."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.common.errors import SimError
from simulators.common.world import World
from simulators.crm import soql
from simulators.crm.simulator import CrmSimulator

QUERY_ERRORS = {
    "MALFORMED_QUERY",
    "INVALID_FIELD",
    "INVALID_TYPE",
    "INVALID_QUERY_FILTER_OPERATOR",
    "NUMBER_OUTSIDE_VALID_RANGE",
}


# --- parser --------------------------------------------------------------------------------
def test_the_documented_subset_parses() -> None:
    q = soql.parse(
        "select Id, Account.Name, (SELECT Quantity FROM OpportunityLineItems "
        "WHERE Quantity > 1 ORDER BY Quantity LIMIT 2) FROM Opportunity "
        "WHERE (StageName = 'Closed Won' OR Amount >= 10.5) AND NOT CloseDate < LAST_N_DAYS:30 "
        "AND Type IN ('New Customer', null) AND Name LIKE 'A\\_%' "
        "ORDER BY Name DESC NULLS FIRST, Id LIMIT 5 OFFSET 2"
    )
    assert q.sobject == "Opportunity" and not q.count
    assert [p.names for p in q.select if isinstance(p, soql.Path)] == [("Id",), ("Account", "Name")]
    sub = next(i for i in q.select if isinstance(i, soql.Subquery)).query
    assert (sub.sobject, sub.limit) == ("OpportunityLineItems", 2)
    assert isinstance(q.where, soql.And) and len(q.where.parts) == 4
    assert isinstance(q.where.parts[0], soql.Or) and isinstance(q.where.parts[1], soql.Not)
    assert q.order_by[0].descending and not q.order_by[0].nulls_last
    assert not q.order_by[1].descending and not q.order_by[1].nulls_last
    assert (q.limit, q.offset) == (5, 2)
    assert soql.parse("SELECT COUNT() FROM Account").count


@pytest.mark.parametrize(
    "text, column, token",
    [
        ("SELECT Id FRM Account", 11, "FRM"),
        ("SELECT FROM Account", 8, "FROM"),
        ("SELECT Id FROM Account WHERE a = 1 AND b = 2 OR c = 3", 46, "OR"),
        ("SELECT Id FROM Account LIMIT 1.5", 30, "1.5"),
        ("SELECT Id FROM Account WHERE Name = 'x' garbage", 41, "garbage"),
        ("SELECT Id, (SELECT Id, (SELECT Id FROM Contacts) FROM Contacts) FROM Account", 24, "("),
        ("SELECT Id FROM Account WHERE Name LIKE 5", 40, "5"),
        ("SELECT Id FROM Account WHERE", 29, "<EOF>"),
        ("SELECT Id FROM Account WHERE Name = 'open", 37, "'open"),
        ("SELECT COUNT(Id) FROM Account", 13, "("),
    ],
)
def test_outside_the_subset_is_malformed_with_row_and_column(
    text: str, column: int, token: str
) -> None:
    with pytest.raises(soql.SoqlError) as caught:
        soql.parse(text)
    assert caught.value.code == "MALFORMED_QUERY"
    assert f"ERROR at Row:1:Column:{column}\nunexpected token: {token}" in caught.value.message
    # The caret sits under the offending column of the echoed line.
    lines = caught.value.message.split("\n")
    assert lines[1] == text and lines[2] == " " * (column - 1) + "^"


def test_mixing_and_or_needs_parentheses() -> None:
    soql.parse("SELECT Id FROM Account WHERE a = 1 AND (b = 2 OR c = 3)")
    soql.parse("SELECT Id FROM Account WHERE (a = 1 AND b = 2) OR c = 3")
    for mixed in ("(a = 1 OR b = 2 AND c = 3)", "NOT a = 1 AND b = 2 OR c = 3"):
        with pytest.raises(soql.SoqlError, match=r"unexpected token: (AND|OR)"):
            soql.parse(f"SELECT Id FROM Account WHERE {mixed}")


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    deep = "SELECT Id FROM Account WHERE " + "(" * 5000 + "a = 1" + ")" * 5000
    with pytest.raises(soql.SoqlError, match="nested more than"):
        soql.parse(deep)
    nots = "SELECT Id FROM Account WHERE " + "NOT " * 5000 + "a = 1"
    with pytest.raises(soql.SoqlError, match="nested more than"):
        soql.parse(nots)


def test_too_long_and_empty() -> None:
    with pytest.raises(soql.SoqlError, match="too long"):
        soql.parse("SELECT Id FROM Account WHERE Name = '" + "x" * 100_000 + "'")
    with pytest.raises(soql.SoqlError, match="has to be specified"):
        soql.parse("   ")


def test_string_escapes_and_like_patterns() -> None:
    q = soql.parse(r"SELECT Id FROM Account WHERE Name = 'O\'Brien \\ \n' AND Name LIKE '50\%%'")
    assert isinstance(q.where, soql.And)
    first = q.where.parts[0]
    assert isinstance(first, soql.Comparison) and first.value.value == "O'Brien \\ \n"
    second = q.where.parts[1]
    assert isinstance(second, soql.Comparison)
    pattern = soql.like_regex(second.value.raw)
    assert pattern.fullmatch("50% off") and pattern.fullmatch("50%")
    assert not pattern.fullmatch("500 off")  # the escaped % is a literal percent sign
    assert soql.like_regex("a_c").fullmatch("ABC") and not soql.like_regex("a_c").fullmatch("abbc")
    with pytest.raises(soql.SoqlError, match="Illegal character sequence"):
        soql.parse(r"SELECT Id FROM Account WHERE Name = 'bad \q'")


# --- property tests: junk never raises anything but MALFORMED_QUERY --------------------------
VOCABULARY = [
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "IN",
    "LIKE",
    "ORDER",
    "BY",
    "ASC",
    "DESC",
    "NULLS",
    "FIRST",
    "LAST",
    "LIMIT",
    "OFFSET",
    "COUNT",
    "TRUE",
    "false",
    "null",
    "TODAY",
    "LAST_N_DAYS",
    "NEXT_N_DAYS",
    ":",
    "(",
    ")",
    ",",
    ".",
    "=",
    "!=",
    "<>",
    "<",
    ">",
    "<=",
    ">=",
    "Id",
    "Name",
    "Amount",
    "Account",
    "Opportunity",
    "OpportunityLineItems",
    "Contacts",
    "StageName",
    "CloseDate",
    "CreatedDate",
    "IsWon",
    "Quantity",
    "Foo__c",
    "'x'",
    "'it''s'",
    "'%a_'",
    "0",
    "12",
    "-3.5",
    "99999999999999999999",
    "2026-01-15",
    "2026-02-30",
    "2026-01-15T10:00:00Z",
    "2026-01-15T10:00:00+01:00",
    "'001Sm000000000AAAA'",
    "\\",
    "\n",
]
token_soup = st.lists(st.sampled_from(VOCABULARY), min_size=0, max_size=30).map(" ".join)
queries = st.one_of(
    st.text(max_size=120),
    token_soup,
    token_soup.map(lambda rest: "SELECT " + rest),
    token_soup.map(lambda rest: "SELECT Id FROM Opportunity WHERE " + rest),
)


@settings(max_examples=400, deadline=None)
@given(queries)
def test_the_parser_fails_only_with_malformed_query(text: str) -> None:
    try:
        soql.parse(text)
    except soql.SoqlError as exc:
        assert exc.code == "MALFORMED_QUERY" and exc.message


@pytest.fixture(scope="module")
def org() -> Iterator[CrmSimulator]:
    """A small org built through the backend (no HTTP): the data SOQL tests query."""
    world = World(seed=5, start_at="2026-01-15T12:00:00Z")
    sim = CrmSimulator(world)
    b = sim.backend
    account = b.sobject("Account")
    with world.lock:
        acme = b.create(account, {"Name": "Acme", "NumberOfEmployees": 50, "Industry": "Tech"})
        b.create(account, {"Name": "acme labs", "NumberOfEmployees": 5})
        b.create(account, {"Name": "Globex", "NumberOfEmployees": 500, "Industry": "Energy"})
        b.create(account, {"Name": "Initech"})
        world.clock.advance(86_400)  # one day later
        b.create(account, {"Name": "Umbrella", "NumberOfEmployees": 5000, "Industry": "Bio"})
        opp = b.sobject("Opportunity")
        for name, stage, close, amount in [
            ("A1", "Prospecting", "2026-01-10", 100),
            ("A2", "Closed Won", "2026-01-16", 250.5),
            ("A3", "Closed Lost", "2026-03-01", None),
        ]:
            b.create(
                opp,
                {
                    "Name": name,
                    "AccountId": acme.id,
                    "StageName": stage,
                    "CloseDate": close,
                    "Amount": amount,
                },
            )
        b.create(opp, {"Name": "Orphan", "StageName": "Qualification", "CloseDate": "2026-01-17"})
        b.flush()
    yield sim


def run(sim: CrmSimulator, text: str, endpoint: str = "query") -> dict[str, Any]:
    with sim.world.lock:
        result: dict[str, Any] = sim.backend.query(
            text, endpoint=endpoint, version="v60.0", batch_size=2000
        )
        return result


def names(sim: CrmSimulator, text: str) -> list[str]:
    return [r["Name"] for r in run(sim, text)["records"]]


@settings(max_examples=300, deadline=None)
@given(st.one_of(token_soup, token_soup.map(lambda r: "SELECT Id FROM Account WHERE " + r)))
def test_any_statement_answers_a_salesforce_400_or_a_result(org: CrmSimulator, text: str) -> None:
    try:
        result = run(org, text)
    except SimError as exc:
        assert exc.status == 400 and exc.code in QUERY_ERRORS, (exc.code, exc.message)
    else:
        assert result["totalSize"] == len(result["records"]) or result["records"] == []


# Random filters over Account.NumberOfEmployees / Name, checked against a Python oracle.
EMPLOYEES = {"Acme": 50, "acme labs": 5, "Globex": 500, "Initech": None, "Umbrella": 5000}
_OPS = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}
leaf = st.one_of(
    st.tuples(
        st.just("NumberOfEmployees"),
        st.sampled_from(list(_OPS)),
        st.sampled_from([0, 5, 50, 51, 500, 5000]),
    ),
    st.tuples(
        st.just("Name"), st.sampled_from(["=", "!="]), st.sampled_from(["acme", "GLOBEX", "nobody"])
    ),
)


def _conditions(depth: int) -> st.SearchStrategy[Any]:
    if depth == 0:
        return leaf
    sub = _conditions(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(st.sampled_from(["AND", "OR"]), st.lists(sub, min_size=2, max_size=3)),
        st.tuples(st.just("NOT"), sub),
    )


def _text(cond: Any) -> str:
    if cond[0] in ("AND", "OR"):
        return "(" + f" {cond[0]} ".join(_text(c) for c in cond[1]) + ")"
    if cond[0] == "NOT":
        return f"(NOT {_text(cond[1])})"
    field, op, value = cond
    return f"{field} {op} {value!r}" if isinstance(value, str) else f"{field} {op} {value}"


def _oracle(cond: Any, name: str) -> bool:
    if cond[0] == "AND":
        return all(_oracle(c, name) for c in cond[1])
    if cond[0] == "OR":
        return any(_oracle(c, name) for c in cond[1])
    if cond[0] == "NOT":
        return not _oracle(cond[1], name)
    field, op, value = cond
    stored = EMPLOYEES[name] if field == "NumberOfEmployees" else name.lower()
    if stored is None:  # SOQL: null differs from every value and is not ordered
        return op == "!="
    return bool(_OPS[op](stored, value.lower() if isinstance(value, str) else value))


@settings(max_examples=150, deadline=None)
@given(_conditions(3))
def test_filters_agree_with_an_independent_oracle(org: CrmSimulator, cond: Any) -> None:
    got = set(names(org, f"SELECT Name FROM Account WHERE {_text(cond)}"))
    assert got == {n for n in EMPLOYEES if _oracle(cond, n)}


# --- semantics -----------------------------------------------------------------------------
def test_text_comparisons_ignore_case_and_null_is_a_value(org: CrmSimulator) -> None:
    assert names(org, "SELECT Name FROM Account WHERE Name = 'ACME'") == ["Acme"]
    assert names(org, "SELECT Name FROM Account WHERE Name LIKE 'acme%'") == ["Acme", "acme labs"]
    assert names(org, "SELECT Name FROM Account WHERE Industry = null") == ["acme labs", "Initech"]
    assert names(org, "SELECT Name FROM Account WHERE Industry != 'Tech' ORDER BY Name") == [
        "acme labs",
        "Globex",
        "Initech",
        "Umbrella",
    ]
    assert names(org, "SELECT Name FROM Account WHERE Industry IN ('tech', 'BIO')") == [
        "Acme",
        "Umbrella",
    ]
    assert names(
        org, "SELECT Name FROM Account WHERE Industry NOT IN ('Tech') AND Industry != null"
    ) == [
        "Globex",
        "Umbrella",
    ]


def test_order_by_with_nulls_limit_and_offset(org: CrmSimulator) -> None:
    q = "SELECT Name FROM Account ORDER BY NumberOfEmployees"
    assert names(org, q) == ["Initech", "acme labs", "Acme", "Globex", "Umbrella"]
    assert names(org, q + " DESC") == ["Umbrella", "Globex", "Acme", "acme labs", "Initech"]
    assert names(org, q + " DESC NULLS FIRST") == [
        "Initech",
        "Umbrella",
        "Globex",
        "Acme",
        "acme labs",
    ]
    assert names(org, q + " NULLS LAST LIMIT 2 OFFSET 1") == ["Acme", "Globex"]
    assert names(org, "SELECT Name FROM Account ORDER BY Industry NULLS LAST, Name DESC") == [
        "Umbrella",
        "Globex",
        "Acme",
        "Initech",
        "acme labs",
    ]
    with pytest.raises(SimError) as caught:
        run(org, "SELECT Name FROM Account LIMIT 1 OFFSET 2001")
    assert caught.value.code == "NUMBER_OUTSIDE_VALID_RANGE"


def test_dates_datetimes_and_relative_literals(org: CrmSimulator) -> None:
    # The clock is 2026-01-16T12:00Z; four accounts were created on the 15th, one on the 16th.
    assert names(org, "SELECT Name FROM Account WHERE CreatedDate = TODAY") == ["Umbrella"]
    assert len(names(org, "SELECT Name FROM Account WHERE CreatedDate = YESTERDAY")) == 4
    assert len(names(org, "SELECT Name FROM Account WHERE CreatedDate = LAST_N_DAYS:1")) == 5
    assert names(org, "SELECT Name FROM Account WHERE CreatedDate > 2026-01-15T23:59:59Z") == [
        "Umbrella"
    ]
    assert names(
        org, "SELECT Name FROM Account WHERE SystemModstamp < 2026-01-16T00:00:00+01:00"
    ) == [
        "Acme",
        "acme labs",
        "Globex",
        "Initech",
    ]
    assert names(org, "SELECT Name FROM Opportunity WHERE CloseDate < TODAY") == ["A1"]
    assert names(org, "SELECT Name FROM Opportunity WHERE CloseDate = NEXT_N_DAYS:1") == ["Orphan"]
    assert names(org, "SELECT Name FROM Opportunity WHERE CloseDate >= 2026-03-01") == ["A3"]
    assert names(
        org, "SELECT Name FROM Opportunity WHERE CloseDate = THIS_MONTH ORDER BY Name"
    ) == [
        "A1",
        "A2",
        "Orphan",
    ]


def test_parent_fields_children_and_count(org: CrmSimulator) -> None:
    rows = run(org, "SELECT Name, Account.Name, Account.Industry FROM Opportunity ORDER BY Name")
    by_name = {r["Name"]: r for r in rows["records"]}
    assert by_name["A1"]["Account"]["Name"] == "Acme"
    assert by_name["A1"]["Account"]["Industry"] == "Tech"
    assert by_name["A1"]["Account"]["attributes"]["type"] == "Account"
    assert by_name["Orphan"]["Account"] is None
    assert names(
        org, "SELECT Name FROM Opportunity WHERE Account.Name = 'acme' AND IsWon = true"
    ) == ["A2"]
    accounts = run(
        org,
        "SELECT Name, (SELECT Name FROM Opportunities WHERE IsClosed = true ORDER BY Name DESC) "
        "FROM Account WHERE Name IN ('Acme', 'Globex') ORDER BY Name",
    )["records"]
    assert [o["Name"] for o in accounts[0]["Opportunities"]["records"]] == ["A3", "A2"]
    assert accounts[0]["Opportunities"]["totalSize"] == 2 and accounts[0]["Opportunities"]["done"]
    assert accounts[1]["Opportunities"] is None  # no children: null, as Salesforce answers
    count = run(org, "SELECT COUNT() FROM Account WHERE NumberOfEmployees > 10")
    assert (count["totalSize"], count["records"]) == (3, [])


@pytest.mark.parametrize(
    "text, code, needle",
    [
        ("SELECT Nme FROM Account", "INVALID_FIELD", "No such column 'Nme' on entity 'Account'"),
        ("SELECT Id FROM Acount", "INVALID_TYPE", "sObject type 'Acount' is not supported"),
        ("SELECT Acct.Name FROM Opportunity", "INVALID_FIELD", "relationship 'Acct'"),
        ("SELECT Id, (SELECT Id FROM Lines) FROM Opportunity", "INVALID_TYPE", "'Lines'"),
        (
            "SELECT Id FROM Account WHERE Name = 5",
            "MALFORMED_QUERY",
            "should be enclosed in quotes",
        ),
        ("SELECT Id FROM Opportunity WHERE Amount > '5'", "MALFORMED_QUERY", "type double"),
        (
            "SELECT Id FROM Opportunity WHERE CloseDate = 2026-01-15T00:00:00Z",
            "MALFORMED_QUERY",
            "type date",
        ),
        (
            "SELECT Id FROM Account WHERE CreatedDate > 2026-01-15",
            "MALFORMED_QUERY",
            "type dateTime",
        ),
        (
            "SELECT Id FROM Opportunity WHERE CloseDate = 2026-02-30",
            "MALFORMED_QUERY",
            "invalid date",
        ),
        (
            "SELECT Id FROM Account WHERE Id = 'nope'",
            "INVALID_QUERY_FILTER_OPERATOR",
            "invalid ID field: nope",
        ),
        (
            "SELECT Id FROM Opportunity WHERE Amount LIKE '5%'",
            "INVALID_QUERY_FILTER_OPERATOR",
            "LIKE",
        ),
        (
            "SELECT Id FROM Opportunity WHERE IsWon > false",
            "INVALID_QUERY_FILTER_OPERATOR",
            "boolean",
        ),
        ("SELECT Id, Name, id FROM Account", "MALFORMED_QUERY", "duplicate field selected: id"),
    ],
)
def test_statements_the_org_cannot_answer(
    org: CrmSimulator, text: str, code: str, needle: str
) -> None:
    with pytest.raises(SimError) as caught:
        run(org, text)
    assert (caught.value.status, caught.value.code) == (400, code)
    assert needle in caught.value.message
    assert re.search(r"ERROR at Row:1:Column:\d+", caught.value.message) or code not in {
        "INVALID_FIELD",
        "INVALID_TYPE",
    }

"""A recursive-descent parser for the documented SOQL subset; every failure is MALFORMED_QUERY.

Grammar (keywords case-insensitive)::

    query       := SELECT select_list FROM name [WHERE condition]
                   [ORDER BY order_item ("," order_item)*] [LIMIT int] [OFFSET int]
    select_list := COUNT "(" ")" | select_item ("," select_item)*
    select_item := path | "(" query ")"            -- a child subquery, one level deep
    path        := name ("." name)*                -- Account.Name: parent relationships
    condition   := unary (AND unary)* | unary (OR unary)*   -- mixing needs parentheses
    unary       := NOT unary | "(" condition ")" | comparison
    comparison  := path op value | path [NOT] IN "(" value ("," value)* ")" | path LIKE string
    op          := "=" | "!=" | "<>" | "<" | ">" | "<=" | ">="
    value       := string | number | date | datetime | TRUE | FALSE | NULL | date_literal
    date_literal:= TODAY | YESTERDAY | TOMORROW | THIS_MONTH | LAST_MONTH | NEXT_MONTH
                 | THIS_YEAR | LAST_N_DAYS ":" int | NEXT_N_DAYS ":" int
    order_item  := path [ASC | DESC] [NULLS (FIRST | LAST)]
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

MAX_LENGTH = 100_000  # Salesforce's limit on the length of a SOQL statement
MAX_DEPTH = 32  # nested parentheses and NOTs; deeper is refused, never a RecursionError

# Reserved words: never a field or object name (GROUP, HAVING, ... are SOQL's, unsupported here).
KEYWORDS = frozenset(
    {
        *("SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "ASC"),
        *("DESC", "NULLS", "LIMIT", "OFFSET", "TRUE", "FALSE", "NULL", "GROUP", "HAVING"),
        *("WITH", "USING", "TYPEOF", "FOR"),
    }
)
DATE_LITERALS = frozenset(
    {"TODAY", "YESTERDAY", "TOMORROW", "THIS_MONTH", "LAST_MONTH", "NEXT_MONTH", "THIS_YEAR"}
)
N_DATE_LITERALS = frozenset({"LAST_N_DAYS", "NEXT_N_DAYS"})
COMPARATORS = frozenset({"=", "!=", "<>", "<", ">", "<=", ">="})

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?(?:\d+(?:\.\d+)?|\.\d+))
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),.:])
    """,
    re.VERBOSE,
)
_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}


class SoqlError(Exception):
    """A statement outside the subset: Salesforce's MALFORMED_QUERY with row and column."""

    code = "MALFORMED_QUERY"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Token:
    kind: str  # string, datetime, date, number, name, op, punct, eof
    text: str
    pos: int

    @property
    def upper(self) -> str:
        return self.text.upper()


@dataclass(frozen=True)
class Path:
    names: tuple[str, ...]
    pos: int

    @property
    def dotted(self) -> str:
        return ".".join(self.names)


@dataclass(frozen=True)
class Literal:
    """``kind``: string, number, boolean, null, date, datetime or relative.

    A string keeps ``raw`` (the text between the quotes) so LIKE can tell ``\\%`` from ``%``;
    a relative date is ``(name, n)``.
    """

    kind: str
    value: Any
    pos: int
    raw: str = ""


@dataclass(frozen=True)
class Comparison:
    path: Path
    op: str  # = != < > <= >= LIKE
    value: Literal


@dataclass(frozen=True)
class InList:
    path: Path
    values: tuple[Literal, ...]
    negated: bool


@dataclass(frozen=True)
class Not:
    condition: Condition


@dataclass(frozen=True)
class And:
    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Condition, ...]


Condition = Comparison | InList | Not | And | Or


@dataclass(frozen=True)
class OrderItem:
    path: Path
    descending: bool
    nulls_last: bool


@dataclass(frozen=True)
class Subquery:
    query: Query


SelectItem = Path | Subquery


@dataclass(frozen=True)
class Query:
    select: tuple[SelectItem, ...]
    count: bool
    sobject: str
    sobject_pos: int
    where: Condition | None
    order_by: tuple[OrderItem, ...]
    limit: int | None
    offset: int | None


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _error(text, pos, _shown(text[pos:]))
        kind = match.lastgroup
        assert kind is not None
        if kind != "ws":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(Token("eof", "", len(text)))
    return tokens


@functools.lru_cache(maxsize=512)
def parse(text: str) -> Query:
    """The statement's syntax tree; raises :class:`SoqlError` for anything outside the subset.

    Cached by text (the tree is immutable; errors are raised afresh, lru_cache keeps none)."""
    if len(text) > MAX_LENGTH:
        raise SoqlError(f"Query is too long: {len(text)} characters (maximum {MAX_LENGTH}).")
    if not text.strip():
        raise SoqlError("A query string has to be specified")
    parser = _Parser(text, tokenize(text))
    query = parser.query(nested=False)
    parser.expect_eof()
    return query


def parse_condition(text: str) -> Condition:
    """A bare WHERE condition (for configured notification criteria)."""
    parser = _Parser(text, tokenize(text))
    condition = parser.condition()
    parser.expect_eof()
    return condition


class _Parser:
    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    # token helpers -------------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, ahead: int) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def fail(self, tok: Token | None = None) -> SoqlError:
        tok = tok or self.tok
        return _error(self.text, tok.pos, tok.text if tok.kind != "eof" else "<EOF>")

    def at_keyword(self, word: str) -> bool:
        return self.tok.kind == "name" and self.tok.upper == word

    def accept_keyword(self, word: str) -> bool:
        if self.at_keyword(word):
            self.advance()
            return True
        return False

    def expect_keyword(self, word: str) -> None:
        if not self.accept_keyword(word):
            raise self.fail()

    def accept_punct(self, symbol: str) -> bool:
        if self.tok.kind == "punct" and self.tok.text == symbol:
            self.advance()
            return True
        return False

    def expect_punct(self, symbol: str) -> None:
        if not self.accept_punct(symbol):
            raise self.fail()

    def expect_eof(self) -> None:
        if self.tok.kind != "eof":
            raise self.fail()

    def name(self) -> Token:
        tok = self.tok
        if tok.kind != "name" or tok.upper in KEYWORDS:
            raise self.fail()
        return self.advance()

    def integer(self) -> int:
        tok = self.tok
        if tok.kind != "number" or not tok.text.isdigit() or len(tok.text) > 9:
            raise self.fail()
        self.advance()
        return int(tok.text)

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise SoqlError(
                f"The condition is nested more than {MAX_DEPTH} levels deep "
                f"(at character {self.tok.pos + 1})."
            )

    # grammar -------------------------------------------------------------------------------
    def query(self, *, nested: bool) -> Query:
        self.expect_keyword("SELECT")
        select, count = self.select_list(nested=nested)
        self.expect_keyword("FROM")
        sobject = self.name()
        where = self.condition() if self.accept_keyword("WHERE") else None
        order: tuple[OrderItem, ...] = ()
        if self.accept_keyword("ORDER"):
            self.expect_keyword("BY")
            items = [self.order_item()]
            while self.accept_punct(","):
                items.append(self.order_item())
            order = tuple(items)
        limit = self.integer() if self.accept_keyword("LIMIT") else None
        offset = self.integer() if self.accept_keyword("OFFSET") else None
        return Query(select, count, sobject.text, sobject.pos, where, order, limit, offset)

    def select_list(self, *, nested: bool) -> tuple[tuple[SelectItem, ...], bool]:
        if self.at_keyword("COUNT") and self.peek(1).text == "(" and self.peek(2).text == ")":
            self.i += 3
            return (), True
        items = [self.select_item(nested=nested)]
        while self.accept_punct(","):
            items.append(self.select_item(nested=nested))
        return tuple(items), False

    def select_item(self, *, nested: bool) -> SelectItem:
        if self.tok.kind == "punct" and self.tok.text == "(":
            if nested:
                raise self.fail()  # subqueries are one level deep
            self.advance()
            sub = self.query(nested=True)
            self.expect_punct(")")
            return Subquery(sub)
        return self.path()

    def path(self) -> Path:
        first = self.name()
        names = [first.text]
        while self.accept_punct("."):
            names.append(self.name().text)
        return Path(tuple(names), first.pos)

    def order_item(self) -> OrderItem:
        path = self.path()
        descending = False
        if self.accept_keyword("DESC"):
            descending = True
        else:
            self.accept_keyword("ASC")
        # Nulls sort as the smallest value: first ascending, last descending, by default.
        nulls_last = descending
        if self.accept_keyword("NULLS"):
            if self.accept_keyword("LAST"):
                nulls_last = True
            elif self.accept_keyword("FIRST"):
                nulls_last = False
            else:
                raise self.fail()
        return OrderItem(path, descending, nulls_last)

    def condition(self) -> Condition:
        first = self.unary()
        if self.at_keyword("AND") or self.at_keyword("OR"):
            # One joiner per level: in "a AND b OR c" the OR is left over, and whatever comes
            # next (")", ORDER BY, the end) refuses it, as SOQL does without parentheses.
            joiner = self.tok.upper
            parts = [first]
            while self.accept_keyword(joiner):
                parts.append(self.unary())
            return And(tuple(parts)) if joiner == "AND" else Or(tuple(parts))
        return first

    def unary(self) -> Condition:
        if self.accept_keyword("NOT"):
            self.enter()
            inner = self.unary()
            self.depth -= 1
            return Not(inner)
        if self.accept_punct("("):
            self.enter()
            inner = self.condition()
            self.expect_punct(")")
            self.depth -= 1
            return inner
        return self.comparison()

    def comparison(self) -> Condition:
        path = self.path()
        tok = self.tok
        if tok.kind == "op":
            self.advance()
            op = "!=" if tok.text == "<>" else tok.text
            return Comparison(path, op, self.value())
        if self.accept_keyword("LIKE"):
            value = self.value()
            if value.kind != "string":
                raise self.fail(self.tokens[self.i - 1])
            return Comparison(path, "LIKE", value)
        negated = False
        if self.at_keyword("NOT") and self.peek(1).upper == "IN":
            self.advance()
            negated = True
        if self.accept_keyword("IN"):
            self.expect_punct("(")
            values = [self.value()]
            while self.accept_punct(","):
                values.append(self.value())
            self.expect_punct(")")
            return InList(path, tuple(values), negated)
        raise self.fail()

    def value(self) -> Literal:
        tok = self.advance()
        if tok.kind == "string":
            raw = tok.text[1:-1]
            return Literal("string", _unescape(self.text, tok, raw), tok.pos, raw)
        if tok.kind == "number":
            return Literal("number", Decimal(tok.text), tok.pos)
        if tok.kind in ("date", "datetime"):
            return Literal(tok.kind, tok.text, tok.pos)
        if tok.kind == "name":
            word = tok.upper
            if word in ("TRUE", "FALSE"):
                return Literal("boolean", word == "TRUE", tok.pos)
            if word == "NULL":
                return Literal("null", None, tok.pos)
            if word in DATE_LITERALS:
                return Literal("relative", (word, 0), tok.pos)
            if word in N_DATE_LITERALS:
                self.expect_punct(":")
                return Literal("relative", (word, self.integer()), tok.pos)
        raise self.fail(tok)


def _unescape(text: str, tok: Token, raw: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = raw[i + 1]  # the token pattern guarantees a character after a backslash
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
        elif nxt in "%_":
            out.append(nxt)
        else:
            raise SoqlError(
                f"Invalid string literal '{raw}'. Illegal character sequence '\\{nxt}' in "
                f"string literal (at character {tok.pos + i + 2})."
            )
        i += 2
    return "".join(out)


def like_regex(raw: str) -> re.Pattern[str]:
    """LIKE's pattern as a case-insensitive regex: ``%`` any run, ``_`` one character."""
    parts: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            nxt = raw[i + 1]
            parts.append(re.escape(_ESCAPES.get(nxt, nxt)))
            i += 2
            continue
        parts.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _shown(rest: str) -> str:
    return rest.split()[0][:40] if rest.split() else rest[:1]


def _error(text: str, pos: int, token: str) -> SoqlError:
    return SoqlError(located(text, pos, f"unexpected token: {token}"))


def located(text: str, pos: int, message: str) -> str:
    """Salesforce's layout: the line, a caret under the column, row and column, the message."""
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    line = text[line_start : line_end if line_end != -1 else len(text)]
    row = text.count("\n", 0, pos) + 1
    column = pos - line_start + 1
    if len(line) > 200:
        # Keep the message short for long statements: a window around the error.
        start = max(0, column - 100)
        line, column = line[start : start + 200], column - start
    return f"\n{line}\n{' ' * (column - 1)}^\nERROR at Row:{row}:Column:{column}\n{message}"

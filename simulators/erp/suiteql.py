"""A SuiteQL subset: tokenizer, recursive-descent parser and executor over in-memory tables.

Grammar (keywords and names are case-insensitive; see docs/erp.md)::

    query     := SELECT [DISTINCT] item ("," item)* FROM table join*
                 [WHERE cond] [GROUP BY column ("," column)*] [HAVING cond]
                 [ORDER BY order ("," order)*]
    item      := "*" | name "." "*" | expr [[AS] name]
    table     := name [[AS] name]
    join      := [INNER | LEFT [OUTER]] JOIN table ON cond
    cond      := conj (OR conj)* ;  conj := neg (AND neg)* ;  neg := NOT neg | pred
    pred      := expr [cmp expr | [NOT] IN "(" expr ("," expr)* ")" | IS [NOT] NULL
                       | [NOT] BETWEEN expr AND expr | [NOT] LIKE string]
    cmp       := "=" | "<>" | "!=" | "<" | ">" | "<=" | ">="
    expr      := term (("+" | "-") term)* ;  term := unary ("*" unary)* ;  unary := "-" unary | atom
    atom      := number | string | NULL | "(" cond ")" | agg "(" [DISTINCT] expr ")"
                 | COUNT "(" "*" ")" | column
    agg       := SUM | COUNT | MIN | MAX ;  column := name ["." name]
    order     := (expr | position) [ASC | DESC]

Values are Decimal, str or None (NULL, three-valued logic). Every malformed or unsupported
query raises :class:`SuiteQLError`; nothing else escapes for any input text.
"""

from __future__ import annotations

import decimal
import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

Value = Decimal | str | None
Row = Mapping[str, Value]
Env = dict[str, Row]  # table alias → row
RowFn = Callable[[Env], Any]
GroupFn = Callable[[list[Env]], Any]

MAX_DEPTH = 48  # nested parentheses, NOTs and unary minus
MAX_DIGITS = 38
MAX_JOIN_PAIRS = 5_000_000  # rows compared by a join without an equality to hash on
_ARITH = decimal.Context(prec=60, traps=[decimal.Overflow, decimal.InvalidOperation])

KEYWORDS = frozenset(
    {
        *("select", "distinct", "from", "where", "group", "by", "having", "order", "asc"),
        *("desc", "join", "inner", "left", "outer", "on", "and", "or", "not", "in", "is"),
        *("null", "as", "between", "like"),
    }
)
AGGREGATES = frozenset({"sum", "count", "min", "max"})
_COMPARISONS = frozenset({"=", "<>", "!=", "<", ">", "<=", ">="})


class SuiteQLError(Exception):
    """A query the subset cannot run; ``message`` is shown to the client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Table:
    """A queryable table: its columns (lower case) and a function listing its rows."""

    columns: tuple[str, ...]
    rows: Callable[[], Iterable[Row]]
    # Columns whose values are always numbers ("n") or always text ("s"), NULL aside, and a way
    # to find, in table order, the rows a ``column op literal`` condition can keep without
    # building every row (None when it cannot narrow). Only used when no row could raise.
    types: Mapping[str, str] = field(default_factory=dict)
    narrow: Callable[[str, str, Value], Iterable[Row] | None] | None = None
    # Custom fields (``custbody…``): any column with this prefix exists, NULL where unset.
    custom_prefix: str | None = None

    def has(self, column: str) -> bool:
        prefix = self.custom_prefix
        return column in self.columns or (prefix is not None and column.startswith(prefix))


@dataclass(frozen=True)
class Result:
    columns: list[str]
    rows: list[list[Value]]

    def records(self, start: int = 0, stop: int | None = None) -> list[dict[str, str]]:
        """Rows (``start:stop``) as NetSuite renders them: values as text, NULL columns left out."""
        return [
            {
                name: render_value(v)
                for name, v in zip(self.columns, row, strict=True)
                if v is not None
            }
            for row in self.rows[start:stop]
        ]


def render_value(value: Decimal | str) -> str:
    if isinstance(value, Decimal):
        if value == 0:
            return "0"
        return format(_ARITH.normalize(value), "f")
    return value


# --- tokens ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Token:
    kind: str  # name | number | string | op | end
    text: str
    pos: int

    @property
    def word(self) -> str:
        return self.text.lower() if self.kind == "name" else ""


_TOKEN = re.compile(
    r"""(?P<ws>\s+)
      |(?P<number>[0-9]+(?:\.[0-9]+)?|\.[0-9]+)
      |(?P<string>'(?:[^']|'')*')
      |(?P<name>[A-Za-z_][A-Za-z0-9_]*)
      |(?P<op><>|!=|<=|>=|[=<>(),.*+-])""",
    re.VERBOSE,
)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            if text[pos] == "'":
                raise SuiteQLError(f"Unterminated string literal at position {pos}.")
            raise SuiteQLError(f"Unexpected character {text[pos]!r} at position {pos}.")
        kind = match.lastgroup or ""
        if kind != "ws":
            value = match.group()
            if kind == "number" and len(value.replace(".", "")) > MAX_DIGITS:
                raise SuiteQLError(f"Number too long at position {pos}.")
            tokens.append(Token(kind, value, pos))
        pos = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


# --- syntax tree -------------------------------------------------------------------------
@dataclass(frozen=True)
class Literal:
    value: Value


@dataclass(frozen=True)
class Column:
    table: str | None
    name: str


@dataclass(frozen=True)
class Star:
    table: str | None


@dataclass(frozen=True)
class Aggregate:
    func: str
    arg: Node | None  # None: COUNT(*)
    distinct: bool = False


@dataclass(frozen=True)
class Negate:
    operand: Node


@dataclass(frozen=True)
class Arith:
    first: Node
    rest: tuple[tuple[str, Node], ...]


@dataclass(frozen=True)
class Compare:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class InList:
    operand: Node
    items: tuple[Node, ...]
    negated: bool


@dataclass(frozen=True)
class IsNull:
    operand: Node
    negated: bool


@dataclass(frozen=True)
class Between:
    operand: Node
    low: Node
    high: Node
    negated: bool


@dataclass(frozen=True)
class Like:
    operand: Node
    pattern: str
    negated: bool


@dataclass(frozen=True)
class Logic:
    op: str  # and | or
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    operand: Node


Node = (
    Literal
    | Column
    | Aggregate
    | Negate
    | Arith
    | Compare
    | InList
    | IsNull
    | Between
    | Like
    | Logic
    | Not
)
_BOOLEAN = (Compare, InList, IsNull, Between, Like, Logic, Not)


@dataclass(frozen=True)
class SelectItem:
    expr: Node | Star
    alias: str | None


@dataclass(frozen=True)
class TableRef:
    name: str
    alias: str


@dataclass(frozen=True)
class Join:
    table: TableRef
    on: Node
    left: bool


@dataclass(frozen=True)
class OrderItem:
    expr: Node
    descending: bool


@dataclass(frozen=True)
class Query:
    distinct: bool
    items: tuple[SelectItem, ...]
    source: TableRef
    joins: tuple[Join, ...]
    where: Node | None
    group_by: tuple[Column, ...]
    having: Node | None
    order_by: tuple[OrderItem, ...]


# --- parser ------------------------------------------------------------------------------
@functools.lru_cache(maxsize=512)
def parse(text: str) -> Query:
    # Cached: an integration sends the same few query texts again and again, and the syntax
    # tree is immutable. Errors are raised afresh each time (lru_cache keeps no exceptions).
    return _Parser(tokenize(text)).query()


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    # helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.tok
        if token.kind != "end":
            self.pos += 1
        return token

    def at(self, *words: str) -> bool:
        return self.tok.word in words if self.tok.kind == "name" else self.tok.text in words

    def accept(self, *words: str) -> bool:
        if self.at(*words):
            self.advance()
            return True
        return False

    def expect(self, word: str) -> Token:
        if not self.at(word):
            raise self.error(f"expected {word.upper() if word.isalpha() else repr(word)}")
        return self.advance()

    def error(self, what: str) -> SuiteQLError:
        token = self.tok
        found = "end of query" if token.kind == "end" else repr(token.text)
        return SuiteQLError(f"Syntax error at position {token.pos}: {what}, found {found}.")

    def name(self, what: str) -> str:
        token = self.tok
        if token.kind != "name" or token.word in KEYWORDS:
            raise self.error(f"expected {what}")
        self.advance()
        return token.word

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise SuiteQLError(f"The query is nested more than {MAX_DEPTH} levels deep.")

    # query
    def query(self) -> Query:
        self.expect("select")
        distinct = self.accept("distinct")
        items = [self.select_item()]
        while self.accept(","):
            items.append(self.select_item())
        self.expect("from")
        source = self.table_ref()
        joins: list[Join] = []
        while self.at("join", "inner", "left"):
            joins.append(self.join())
        where = self.condition("WHERE") if self.accept("where") else None
        group_by: list[Column] = []
        if self.accept("group"):
            self.expect("by")
            group_by.append(self.group_column())
            while self.accept(","):
                group_by.append(self.group_column())
        having = self.condition("HAVING") if self.accept("having") else None
        order_by: list[OrderItem] = []
        if self.accept("order"):
            self.expect("by")
            order_by.append(self.order_item())
            while self.accept(","):
                order_by.append(self.order_item())
        if self.tok.kind != "end":
            raise self.error("expected end of query")
        return Query(
            distinct,
            tuple(items),
            source,
            tuple(joins),
            where,
            tuple(group_by),
            having,
            tuple(order_by),
        )

    def select_item(self) -> SelectItem:
        if self.accept("*"):
            return SelectItem(Star(None), None)
        if self.tok.kind == "name" and self.peek().text == "." and self.peek(2).text == "*":
            table = self.name("a table alias")
            self.advance()
            self.advance()
            return SelectItem(Star(table), None)
        expr = self.value("a column or expression")
        alias = None
        if self.accept("as") or (self.tok.kind == "name" and self.tok.word not in KEYWORDS):
            alias = self.name("an alias")
        return SelectItem(expr, alias)

    def table_ref(self) -> TableRef:
        table = self.name("a table name")
        alias = table
        if self.accept("as") or (self.tok.kind == "name" and self.tok.word not in KEYWORDS):
            alias = self.name("a table alias")
        return TableRef(table, alias)

    def join(self) -> Join:
        left = False
        if self.accept("left"):
            left = True
            self.accept("outer")
        else:
            self.accept("inner")
        self.expect("join")
        table = self.table_ref()
        self.expect("on")
        return Join(table, self.condition("ON"), left)

    def group_column(self) -> Column:
        node = self.value("a column")
        if not isinstance(node, Column):
            raise SuiteQLError("GROUP BY takes column names only in this SuiteQL subset.")
        return node

    def order_item(self) -> OrderItem:
        expr = self.value("an ORDER BY expression")
        descending = False
        if self.accept("desc"):
            descending = True
        else:
            self.accept("asc")
        return OrderItem(expr, descending)

    # expressions
    def condition(self, clause: str) -> Node:
        node = self.disjunction()
        if not isinstance(node, _BOOLEAN):
            raise SuiteQLError(f"{clause} needs a condition (a comparison, IN, IS NULL, …).")
        return node

    def value(self, what: str) -> Node:
        node = self.additive()
        if isinstance(node, _BOOLEAN):
            raise SuiteQLError(f"Expected {what}, found a condition.")
        return node

    def disjunction(self) -> Node:
        items = [self.conjunction()]
        while self.accept("or"):
            items.append(self.conjunction())
        return self.logic("or", items)

    def conjunction(self) -> Node:
        items = [self.negation()]
        while self.accept("and"):
            items.append(self.negation())
        return self.logic("and", items)

    def logic(self, op: str, items: list[Node]) -> Node:
        if len(items) == 1:
            return items[0]
        if not all(isinstance(item, _BOOLEAN) for item in items):
            raise SuiteQLError(f"{op.upper()} joins conditions, not values.")
        return Logic(op, tuple(items))

    def negation(self) -> Node:
        if self.accept("not"):
            self.nest()
            operand = self.negation()
            self.depth -= 1
            if not isinstance(operand, _BOOLEAN):
                raise SuiteQLError("NOT applies to a condition, not a value.")
            return Not(operand)
        return self.predicate()

    def predicate(self) -> Node:
        left = self.additive()
        if self.tok.kind == "op" and self.tok.text in _COMPARISONS:
            op = self.advance().text
            return Compare("<>" if op == "!=" else op, self.operand(left), self.operand_value())
        negated = False
        if self.at("not") and self.peek().word in ("in", "between", "like"):
            self.advance()
            negated = True
        if self.accept("in"):
            self.expect("(")
            items = [self.operand_value()]
            while self.accept(","):
                items.append(self.operand_value())
            self.expect(")")
            return InList(self.operand(left), tuple(items), negated)
        if self.accept("between"):
            low = self.operand_value()
            self.expect("and")
            return Between(self.operand(left), low, self.operand_value(), negated)
        if self.accept("like"):
            if self.tok.kind != "string":
                raise self.error("expected a string pattern after LIKE")
            pattern = _unquote(self.advance().text)
            return Like(self.operand(left), pattern, negated)
        if negated:
            raise self.error("expected IN, BETWEEN or LIKE after NOT")
        if self.accept("is"):
            is_not = self.accept("not")
            self.expect("null")
            return IsNull(self.operand(left), is_not)
        return left

    def operand(self, node: Node) -> Node:
        if isinstance(node, _BOOLEAN):
            raise SuiteQLError("A condition cannot be compared; compare values.")
        return node

    def operand_value(self) -> Node:
        return self.operand(self.additive())

    def additive(self) -> Node:
        first = self.term()
        rest: list[tuple[str, Node]] = []
        while self.tok.kind == "op" and self.tok.text in ("+", "-"):
            op = self.advance().text
            rest.append((op, self.term()))
        return self.arith(first, rest)

    def term(self) -> Node:
        first = self.unary()
        rest: list[tuple[str, Node]] = []
        while self.tok.kind == "op" and self.tok.text == "*":
            self.advance()
            rest.append(("*", self.unary()))
        return self.arith(first, rest)

    def arith(self, first: Node, rest: list[tuple[str, Node]]) -> Node:
        if not rest:
            return first
        if any(isinstance(n, _BOOLEAN) for n in (first, *(node for _, node in rest))):
            raise SuiteQLError("Arithmetic applies to values, not conditions.")
        return Arith(first, tuple(rest))

    def unary(self) -> Node:
        if self.tok.kind == "op" and self.tok.text == "-":
            self.advance()
            self.nest()
            operand = self.unary()
            self.depth -= 1
            if isinstance(operand, _BOOLEAN):
                raise SuiteQLError("Unary minus applies to a value.")
            return Negate(operand)
        return self.atom()

    def atom(self) -> Node:
        token = self.tok
        if token.kind == "number":
            self.advance()
            return Literal(Decimal(token.text))
        if token.kind == "string":
            self.advance()
            return Literal(_unquote(token.text))
        if token.kind == "op" and token.text == "(":
            self.advance()
            self.nest()
            node = self.disjunction()
            self.depth -= 1
            self.expect(")")
            return node
        if token.kind == "name":
            if token.word == "null":
                self.advance()
                return Literal(None)
            if self.peek().text == "(":
                return self.aggregate()
            if token.word in KEYWORDS:
                raise self.error("expected a value")
            table = None
            name = self.name("a column")
            if self.accept("."):
                table, name = name, self.name("a column name")
            return Column(table, name)
        raise self.error("expected a value")

    def aggregate(self) -> Node:
        func = self.advance().word
        if func not in AGGREGATES:
            raise SuiteQLError(f"Unknown or unsupported function {func.upper()}.")
        self.expect("(")
        if func == "count" and self.accept("*"):
            self.expect(")")
            return Aggregate("count", None)
        distinct = self.accept("distinct")
        self.nest()
        arg = self.value(f"an argument to {func.upper()}")
        self.depth -= 1
        self.expect(")")
        return Aggregate(func, arg, distinct)


def _unquote(text: str) -> str:
    return text[1:-1].replace("''", "'")


# --- execution ---------------------------------------------------------------------------
def run(text: str, catalog: Mapping[str, Table]) -> Result:
    return execute(parse(text), catalog)


def execute(query: Query, catalog: Mapping[str, Table]) -> Result:
    try:
        return _Plan(query, catalog).run()
    except (ArithmeticError, decimal.DecimalException) as exc:
        raise SuiteQLError(f"Arithmetic error: {type(exc).__name__}.") from None


class _Plan:
    def __init__(self, query: Query, catalog: Mapping[str, Table]) -> None:
        self.query = query
        self.catalog = catalog
        self.sources: list[TableRef] = []
        self.tables: dict[str, Table] = {}
        self.aliases: list[str | None] = []
        for ref in (query.source, *(j.table for j in query.joins)):
            table = catalog.get(ref.name)
            if table is None:
                raise SuiteQLError(f"Record '{ref.name}' was not found.")
            if ref.alias in self.tables:
                raise SuiteQLError(f"The table alias '{ref.alias}' is used twice.")
            self.sources.append(ref)
            self.tables[ref.alias] = table
        # Compile every clause before reading any row: errors never depend on the data.
        self.joins = [
            (j, self.row_fn(j.on, scope=n + 2), self.equalities(j, n + 1))
            for n, j in enumerate(query.joins)
        ]
        self.where = self.row_fn(query.where) if query.where is not None else None
        self.items = self.expand(query.items)
        self.names = self.column_names()
        self.grouped = (
            bool(query.group_by)
            or any(_has_aggregate(e) for e in (*self.items, query.having) if e is not None)
            or any(_has_aggregate(o.expr) for o in query.order_by)
        )
        if query.having is not None and not self.grouped:
            raise SuiteQLError("HAVING needs GROUP BY or an aggregate.")
        self.keys = [self.resolve(c, len(self.sources)) for c in query.group_by]
        if self.grouped:
            self.group_fns = [self.group_fn(e) for e in self.items]
            self.having = self.group_fn(query.having) if query.having is not None else None
        else:
            self.row_fns = [self.row_fn(e) for e in self.items]
        self.order = [self.order_fn(o) for o in query.order_by]

    # compile ---------------------------------------------------------------------------
    def expand(self, items: Sequence[SelectItem]) -> list[Node]:
        out: list[Node] = []
        for item in items:
            if isinstance(item.expr, Star):
                if item.expr.table is not None and item.expr.table not in self.tables:
                    raise SuiteQLError(f"Unknown table alias '{item.expr.table}'.")
                for ref in self.sources:
                    if item.expr.table in (None, ref.alias):
                        for column in self.tables[ref.alias].columns:
                            out.append(Column(ref.alias, column))
                            self.aliases.append(None)
            else:
                out.append(item.expr)
                self.aliases.append(item.alias)
        return out

    def column_names(self) -> list[str]:
        names: list[str] = []
        unnamed = 0
        for expr, alias in zip(self.items, self.aliases, strict=True):
            if alias is not None:
                names.append(alias)
            elif isinstance(expr, Column):
                names.append(expr.name)
            else:
                unnamed += 1
                names.append(f"expr{unnamed}")
        return names

    def resolve(self, column: Column, scope: int | None = None) -> tuple[str, str]:
        visible = self.sources[: scope if scope is not None else len(self.sources)]
        if column.table is not None:
            ref = next((r for r in visible if r.alias == column.table), None)
            if ref is None:
                raise SuiteQLError(f"Unknown table alias '{column.table}'.")
            if not self.tables[ref.alias].has(column.name):
                raise SuiteQLError(f"Field '{column.name}' for record '{ref.name}' was not found.")
            return ref.alias, column.name
        owners = [r for r in visible if self.tables[r.alias].has(column.name)]
        if not owners:
            raise SuiteQLError(f"Field '{column.name}' was not found.")
        if len(owners) > 1:
            raise SuiteQLError(
                f"Field '{column.name}' is ambiguous; qualify it with a table alias."
            )
        return owners[0].alias, column.name

    def row_fn(self, node: Node, scope: int | None = None) -> RowFn:
        """A function of one joined row; aggregates are not allowed here."""
        if isinstance(node, Literal):
            value = node.value
            return lambda env: value
        if isinstance(node, Column):
            alias, name = self.resolve(node, scope)
            return lambda env: env[alias].get(name)
        if isinstance(node, Aggregate):
            raise SuiteQLError("Aggregates are allowed in SELECT, HAVING and ORDER BY only.")
        return _combine(node, lambda child: self.row_fn(child, scope))

    def group_fn(self, node: Node) -> GroupFn:
        """A function of one group of rows: aggregates over it, grouped columns from it."""
        if isinstance(node, Literal):
            value = node.value
            return lambda rows: value
        if isinstance(node, Column):
            key = self.resolve(node)
            if key not in self.keys:
                raise SuiteQLError(f"'{node.name}' must appear in GROUP BY or inside an aggregate.")
            fn = self.row_fn(node)
            return lambda rows: fn(rows[0]) if rows else None
        if isinstance(node, Aggregate):
            if node.arg is not None and _has_aggregate(node.arg):
                raise SuiteQLError("Aggregates cannot be nested.")
            arg = self.row_fn(node.arg) if node.arg is not None else None
            return _aggregate(node.func, arg, node.distinct)
        return _combine(node, self.group_fn)

    def order_fn(self, item: OrderItem) -> tuple[int | Callable[[Any], Any], bool]:
        expr = item.expr
        if isinstance(expr, Literal) and isinstance(expr.value, Decimal):
            position = expr.value
            if position != position.to_integral_value() or not 1 <= position <= len(self.items):
                raise SuiteQLError(f"ORDER BY position {position} is not a selected column.")
            return int(position) - 1, item.descending
        if isinstance(expr, Column) and expr.table is None and expr.name in self.aliases:
            return self.aliases.index(expr.name), item.descending
        if expr in self.items:
            return self.items.index(expr), item.descending
        if self.query.distinct:
            raise SuiteQLError("With SELECT DISTINCT, ORDER BY must name selected columns.")
        return (self.group_fn(expr) if self.grouped else self.row_fn(expr)), item.descending

    def equalities(self, join: Join, new: int) -> list[tuple[RowFn, RowFn]]:
        """ON conjuncts ``earlier.col = new.col``: keys to hash the join on."""
        conjuncts = (
            join.on.items if isinstance(join.on, Logic) and join.on.op == "and" else (join.on,)
        )
        pairs: list[tuple[RowFn, RowFn]] = []
        for c in conjuncts:
            if (
                isinstance(c, Compare)
                and c.op == "="
                and isinstance(c.left, Column)
                and isinstance(c.right, Column)
            ):
                left, right = self.resolve(c.left, new + 1), self.resolve(c.right, new + 1)
                mine = self.sources[new].alias
                if (left[0] == mine) != (right[0] == mine):
                    old, cur = (right, left) if left[0] == mine else (left, right)
                    pairs.append((_getter(old), _getter(cur)))
        return pairs

    # run -------------------------------------------------------------------------------
    def run(self) -> Result:
        first = self.sources[0]
        envs: list[Env] = [{first.alias: row} for row in self.first_rows()]
        for (join, on, pairs), ref in zip(self.joins, self.sources[1:], strict=True):
            envs = self.join(envs, ref, join.left, on, pairs)
        if self.where is not None:
            where = self.where
            envs = [env for env in envs if where(env) is True]
        if self.grouped:
            contexts: list[Any] = self.groups(envs)
            if self.having is not None:
                having = self.having
                contexts = [g for g in contexts if having(g) is True]
            rows = [[fn(g) for fn in self.group_fns] for g in contexts]
        else:
            contexts = envs
            rows = [[fn(env) for fn in self.row_fns] for env in envs]
        if self.query.distinct:
            seen: set[tuple[Any, ...]] = set()
            unique: list[tuple[list[Value], Any]] = []
            for row, ctx in zip(rows, contexts, strict=True):
                key = tuple(_hashable(v) for v in row)
                if key not in seen:
                    seen.add(key)
                    unique.append((row, ctx))
            rows, contexts = [r for r, _ in unique], [c for _, c in unique]
        rows = self.sort(rows, contexts)
        return Result(self.names, rows)

    def first_rows(self) -> Iterable[Row]:
        """The first table's rows, or only those an indexed condition of WHERE can keep.

        Narrowing is exact: every WHERE condition is a typed ``column op literal`` that can
        neither raise nor accept a row the index left out, and WHERE still runs on the rest.
        (Without joins only: a join's size check must see every row, as it always has.)"""
        ref = self.sources[0]
        table = self.tables[ref.alias]
        where = self.query.where
        if table.narrow is None or where is None or self.joins:
            return table.rows()
        conditions = []
        conjuncts = where.items if isinstance(where, Logic) and where.op == "and" else (where,)
        for node in conjuncts:
            condition = _condition(node, ref.alias, table)
            if condition is None:
                return table.rows()
            conditions.append(condition)
        for column, op, value in conditions:
            rows = table.narrow(column, op, value)
            if rows is not None:
                return rows
        return table.rows()

    def join(
        self,
        envs: list[Env],
        ref: TableRef,
        left: bool,
        on: RowFn,
        pairs: list[tuple[RowFn, RowFn]],
    ) -> list[Env]:
        right_rows = list(self.tables[ref.alias].rows())
        alias = ref.alias
        out: list[Env] = []
        if pairs:
            index: dict[tuple[Any, ...], list[Row]] = {}
            for row in right_rows:
                key = tuple(_join_key(cur({alias: row})) for _, cur in pairs)
                if None not in key:
                    index.setdefault(key, []).append(row)
            for env in envs:
                key = tuple(_join_key(old(env)) for old, _ in pairs)
                candidates = index.get(key, []) if None not in key else []
                matched = self.matches(env, alias, candidates, on)
                out.extend(matched if matched or not left else [{**env, alias: {}}])
            return out
        if len(envs) * len(right_rows) > MAX_JOIN_PAIRS:
            raise SuiteQLError("The join compares too many rows; join on an equality of columns.")
        for env in envs:
            matched = self.matches(env, alias, right_rows, on)
            out.extend(matched if matched or not left else [{**env, alias: {}}])
        return out

    @staticmethod
    def matches(env: Env, alias: str, rows: Iterable[Row], on: RowFn) -> list[Env]:
        found = []
        for row in rows:
            candidate = {**env, alias: row}
            if on(candidate) is True:
                found.append(candidate)
        return found

    def groups(self, envs: list[Env]) -> list[list[Env]]:
        if not self.keys:
            return [envs]
        fns = [_getter(key) for key in self.keys]
        grouped: dict[tuple[Any, ...], list[Env]] = {}
        for env in envs:
            grouped.setdefault(tuple(_hashable(fn(env)) for fn in fns), []).append(env)
        return list(grouped.values())

    def sort(self, rows: list[list[Value]], contexts: list[Any]) -> list[list[Value]]:
        if not self.order:
            return rows
        keyed = []
        for row, ctx in zip(rows, contexts, strict=True):
            keys = [row[how] if isinstance(how, int) else how(ctx) for how, _ in self.order]
            keyed.append((keys, row))
        try:
            # Stable sorts from the last key to the first give the combined order.
            for n in range(len(self.order) - 1, -1, -1):
                keyed.sort(key=_nth_key(n), reverse=self.order[n][1])
        except TypeError:
            raise SuiteQLError("ORDER BY compares values of different types.") from None
        return [row for _, row in keyed]


_FLIPPED = {"=": "=", "<>": "<>", "<": ">", ">": "<", "<=": ">=", ">=": "<="}


def _condition(node: Node, alias: str, table: Table) -> tuple[str, str, Value] | None:
    """``column op literal`` (either way round) on a typed column of the table, else None."""
    if not isinstance(node, Compare):
        return None
    op, column, literal = node.op, node.left, node.right
    if isinstance(column, Literal) and isinstance(literal, Column):
        op, column, literal = _FLIPPED[op], literal, column
    if not isinstance(column, Column) or not isinstance(literal, Literal):
        return None
    if column.table not in (None, alias) or column.name not in table.columns:
        return None
    kind = table.types.get(column.name)
    value = literal.value
    if (kind == "n" and isinstance(value, Decimal) and value.is_finite()) or (
        kind == "s" and isinstance(value, str)
    ):
        return column.name, op, value
    return None


def _nth_key(n: int) -> Callable[[tuple[list[Value], list[Value]]], tuple[bool, Any]]:
    return lambda keyed: _sort_key(keyed[0][n])


def _getter(key: tuple[str, str]) -> RowFn:
    alias, name = key
    return lambda env: env[alias].get(name)


def _has_aggregate(node: Node | None) -> bool:
    if node is None or isinstance(node, Literal | Column):
        return False
    if isinstance(node, Aggregate):
        return True
    return any(_has_aggregate(child) for child in _children(node))


def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Negate | Not):
        return (node.operand,)
    if isinstance(node, Arith):
        return (node.first, *(n for _, n in node.rest))
    if isinstance(node, Compare):
        return (node.left, node.right)
    if isinstance(node, InList):
        return (node.operand, *node.items)
    if isinstance(node, IsNull | Like):
        return (node.operand,)
    if isinstance(node, Between):
        return (node.operand, node.low, node.high)
    if isinstance(node, Logic):
        return node.items
    if isinstance(node, Aggregate):
        return () if node.arg is None else (node.arg,)
    return ()


def _combine(
    node: Node, compile_child: Callable[[Node], Callable[[Any], Any]]
) -> Callable[[Any], Any]:
    """Compile an operator node over already compiled children (rows or groups alike)."""
    if isinstance(node, Negate):
        inner = compile_child(node.operand)
        return lambda ctx: _neg(inner(ctx))
    if isinstance(node, Arith):
        first = compile_child(node.first)
        rest = [(op, compile_child(n)) for op, n in node.rest]
        return lambda ctx: _arith(first(ctx), [(op, fn(ctx)) for op, fn in rest])
    if isinstance(node, Compare):
        left, right, op = compile_child(node.left), compile_child(node.right), node.op
        return lambda ctx: _test(op, _compare(left(ctx), right(ctx)))
    if isinstance(node, InList):
        operand = compile_child(node.operand)
        items = [compile_child(n) for n in node.items]
        negated = node.negated
        return lambda ctx: (
            _not(_in(operand(ctx), [fn(ctx) for fn in items]))
            if negated
            else _in(operand(ctx), [fn(ctx) for fn in items])
        )
    if isinstance(node, IsNull):
        operand, negated = compile_child(node.operand), node.negated
        return lambda ctx: (operand(ctx) is not None) if negated else (operand(ctx) is None)
    if isinstance(node, Between):
        operand, low, high = (compile_child(n) for n in (node.operand, node.low, node.high))
        negated = node.negated

        def between(ctx: Any) -> bool | None:
            value = operand(ctx)
            result = _and(
                [_test(">=", _compare(value, low(ctx))), _test("<=", _compare(value, high(ctx)))]
            )
            return _not(result) if negated else result

        return between
    if isinstance(node, Like):
        operand, negated, pattern = compile_child(node.operand), node.negated, node.pattern

        def like(ctx: Any) -> bool | None:
            value = operand(ctx)
            if value is None:
                return None
            found = _like(render_value(value), pattern)
            return not found if negated else found

        return like
    if isinstance(node, Logic):
        parts = [compile_child(n) for n in node.items]
        combine = _and if node.op == "and" else _or
        return lambda ctx: combine([fn(ctx) for fn in parts])
    if isinstance(node, Not):
        inner = compile_child(node.operand)
        return lambda ctx: _not(inner(ctx))
    raise SuiteQLError("Unsupported expression.")  # pragma: no cover - every node is handled


def _aggregate(func: str, arg: RowFn | None, distinct: bool) -> GroupFn:
    def compute(rows: list[Env]) -> Value:
        if arg is None:
            return Decimal(len(rows))
        values: list[Value] = [v for v in (arg(env) for env in rows) if v is not None]
        if distinct:
            values = list({_hashable(v): v for v in values}.values())
        if func == "count":
            return Decimal(len(values))
        if not values:
            return None
        if func == "sum":
            total = Decimal(0)
            for value in values:
                total = _ARITH.add(total, _number(value))
            return total
        best = values[0]
        for value in values[1:]:
            order = _compare(value, best)
            if order is not None and ((order < 0) if func == "min" else (order > 0)):
                best = value
        return best

    return compute


def _number(value: Value) -> Decimal:
    if isinstance(value, Decimal):
        return value
    try:
        number = Decimal(str(value).strip())
    except decimal.InvalidOperation:
        raise SuiteQLError(f"Invalid number: '{value}'.") from None
    if not number.is_finite():
        raise SuiteQLError(f"Invalid number: '{value}'.")
    return number


def _neg(value: Value) -> Value:
    return None if value is None else _ARITH.minus(_number(value))


def _arith(first: Value, rest: list[tuple[str, Value]]) -> Value:
    if first is None or any(v is None for _, v in rest):
        return None
    total = _number(first)
    for op, value in rest:
        number = _number(value)
        if op == "+":
            total = _ARITH.add(total, number)
        elif op == "-":
            total = _ARITH.subtract(total, number)
        else:
            total = _ARITH.multiply(total, number)
    return total


def _compare(left: Value, right: Value) -> int | None:
    if left is None or right is None:
        return None
    if isinstance(left, str) and isinstance(right, str):
        return (left > right) - (left < right)
    a, b = _number(left), _number(right)
    return (a > b) - (a < b)


def _test(op: str, order: int | None) -> bool | None:
    if order is None:
        return None
    return {
        "=": order == 0,
        "<>": order != 0,
        "<": order < 0,
        ">": order > 0,
        "<=": order <= 0,
        ">=": order >= 0,
    }[op]


def _in(value: Value, items: list[Value]) -> bool | None:
    unknown = False
    for item in items:
        order = _compare(value, item)
        if order == 0:
            return True
        unknown = unknown or order is None
    return None if unknown else False


def _not(value: bool | None) -> bool | None:
    return None if value is None else not value


def _and(values: list[bool | None]) -> bool | None:
    if any(v is False for v in values):
        return False
    return None if any(v is None for v in values) else True


def _or(values: list[bool | None]) -> bool | None:
    if any(v is True for v in values):
        return True
    return None if any(v is None for v in values) else False


def _hashable(value: Value) -> tuple[str, Any]:
    if isinstance(value, Decimal):
        return ("n", _ARITH.normalize(value))
    return ("s", value)


def _join_key(value: Value) -> tuple[str, Any] | None:
    """A hash key under which every pair of values that compares equal meets."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except decimal.InvalidOperation:
            return ("s", value)
        if number.is_finite():
            return ("n", _ARITH.normalize(number))
        return ("s", value)
    return ("n", _ARITH.normalize(value))


def _sort_key(value: Value) -> tuple[bool, Any]:
    # NULLs sort last ascending and first descending, as in Oracle.
    return (value is None, "" if value is None else value)


def _like(text: str, pattern: str) -> bool:
    """SQL LIKE (``%`` any run, ``_`` one character) without regex backtracking blow-ups."""
    t = p = 0
    star, mark = -1, 0
    while t < len(text):
        if p < len(pattern) and pattern[p] != "%" and pattern[p] in ("_", text[t]):
            t, p = t + 1, p + 1
        elif p < len(pattern) and pattern[p] == "%":
            star, mark, p = p, t, p + 1
        elif star >= 0:
            mark += 1
            t, p = mark, star + 1
        else:
            return False
    while p < len(pattern) and pattern[p] == "%":
        p += 1
    return p == len(pattern)

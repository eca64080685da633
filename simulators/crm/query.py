"""SOQL bound to the schema and run against the store: fields, filters, order, children."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from simulators.crm import ids, soql
from simulators.crm.models import Record, parse_date, parse_datetime, to_decimal, to_json
from simulators.crm.render import attributes
from simulators.crm.schema import ID_TYPES, NUMBER_TYPES, TEXT_TYPES, FieldDef, Schema, SObjectDef

Json = dict[str, Any]
Resolve = Callable[[str | None], Record | None]
Predicate = Callable[[Record, Resolve], bool]
MAX_OFFSET = 2000  # Salesforce's largest OFFSET


class QueryError(Exception):
    """A statement that parses but does not fit the org: unknown object or field, bad filter."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class BoundPath:
    """A field reached from the queried object through zero or more parent relationships."""

    hops: tuple[FieldDef, ...]  # reference fields followed, in order
    parents: tuple[SObjectDef, ...]  # the object each hop leads to
    field: FieldDef
    dotted: str

    def get(self, record: Record, resolve: Resolve) -> Any:
        current: Record | None = record
        for ref in self.hops:
            assert current is not None
            current = resolve(current.fields.get(ref.name))
            if current is None:
                return None
        assert current is not None
        return current.fields.get(self.field.name)


@dataclass(frozen=True)
class OrderKey:
    path: BoundPath
    descending: bool
    nulls_last: bool


@dataclass(frozen=True)
class Plan:
    obj: SObjectDef
    columns: tuple[BoundPath, ...]
    children: tuple[tuple[str, SObjectDef, str, Plan], ...]  # name, child object, field, plan
    where: Predicate | None
    order: tuple[OrderKey, ...]
    limit: int | None
    offset: int | None
    count: bool


# --- binding -------------------------------------------------------------------------------
class Binder:
    """Checks a parsed statement against the schema and compiles its filters to predicates."""

    def __init__(self, schema: Schema, text: str, now_ms: int) -> None:
        self.schema = schema
        self.text = text
        self.now_ms = now_ms

    def _fail(self, code: str, pos: int, message: str) -> QueryError:
        return QueryError(code, soql.located(self.text, pos, message))

    def bind(self, query: soql.Query) -> Plan:
        obj = self.schema.sobject(query.sobject)
        if obj is None:
            raise self._fail(
                "INVALID_TYPE",
                query.sobject_pos,
                f"sObject type '{query.sobject}' is not supported. If you are attempting to "
                "use a custom object, be sure to append the '__c' after the entity name. "
                "Please reference your WSDL or the describe call for the appropriate names.",
            )
        return self._bind(query, obj, nested=False)

    def _bind(self, query: soql.Query, obj: SObjectDef, *, nested: bool) -> Plan:
        columns: list[BoundPath] = []
        children: list[tuple[str, SObjectDef, str, Plan]] = []
        seen: set[str] = set()
        for item in query.select:
            if isinstance(item, soql.Subquery):
                rel = obj.child(item.query.sobject)
                if rel is None:
                    raise self._fail(
                        "INVALID_TYPE",
                        item.query.sobject_pos,
                        f"Didn't understand relationship '{item.query.sobject}' in FROM part of "
                        "query call. If you are attempting to use a custom relationship, be sure "
                        "to append the '__r' after the custom relationship name. Please reference "
                        "your WSDL or the describe call for the appropriate names.",
                    )
                key = rel.name.lower()
                child_obj = self.schema.sobject(rel.child)
                assert child_obj is not None
                plan = self._bind(item.query, child_obj, nested=True)
                children.append((rel.name, child_obj, rel.field, plan))
            else:
                bound = self.path(obj, item)
                columns.append(bound)
                key = bound.dotted.lower()
            if key in seen:
                pos = item.pos if isinstance(item, soql.Path) else item.query.sobject_pos
                raise self._fail("MALFORMED_QUERY", pos, f"duplicate field selected: {key}")
            seen.add(key)
        if query.offset is not None and query.offset > MAX_OFFSET:
            raise QueryError(
                "NUMBER_OUTSIDE_VALID_RANGE", f"Maximum SOQL offset allowed is {MAX_OFFSET}"
            )
        return Plan(
            obj,
            tuple(columns),
            tuple(children),
            self.condition(obj, query.where) if query.where is not None else None,
            tuple(
                OrderKey(self.path(obj, o.path), o.descending, o.nulls_last) for o in query.order_by
            ),
            query.limit,
            query.offset,
            query.count,
        )

    def path(self, obj: SObjectDef, path: soql.Path) -> BoundPath:
        hops: list[FieldDef] = []
        parents: list[SObjectDef] = []
        current = obj
        for name in path.names[:-1]:
            ref = current.relationship(name)
            if ref is None or ref.reference_to is None:
                raise self._fail(
                    "INVALID_FIELD",
                    path.pos,
                    f"Didn't understand relationship '{name}' in field path. If you are "
                    "attempting to use a custom relationship, be sure to append the '__r' after "
                    "the custom relationship name. Please reference your WSDL or the describe "
                    "call for the appropriate names.",
                )
            parent = self.schema.sobject(ref.reference_to)
            assert parent is not None
            hops.append(ref)
            parents.append(parent)
            current = parent
        found = current.field(path.names[-1])
        if found is None:
            raise self._fail(
                "INVALID_FIELD",
                path.pos,
                f"No such column '{path.names[-1]}' on entity '{current.name}'. If you are "
                "attempting to use a custom field, be sure to append the '__c' after the custom "
                "field name. Please reference your WSDL or the describe call for the appropriate "
                "names.",
            )
        canonical = [r.relationship_name or "" for r in hops] + [found.name]
        return BoundPath(tuple(hops), tuple(parents), found, ".".join(canonical))

    def condition(self, obj: SObjectDef, cond: soql.Condition) -> Predicate:
        if isinstance(cond, soql.And):
            parts = [self.condition(obj, c) for c in cond.parts]
            return lambda r, res: all(p(r, res) for p in parts)
        if isinstance(cond, soql.Or):
            parts = [self.condition(obj, c) for c in cond.parts]
            return lambda r, res: any(p(r, res) for p in parts)
        if isinstance(cond, soql.Not):
            inner = self.condition(obj, cond.condition)
            return lambda r, res: not inner(r, res)
        if isinstance(cond, soql.InList):
            return self._in_list(obj, cond)
        return self._comparison(obj, cond)

    # comparisons --------------------------------------------------------------------------
    def _comparison(self, obj: SObjectDef, cond: soql.Comparison) -> Predicate:
        bound = self.path(obj, cond.path)
        f = bound.field
        key = _comparable(f)
        op = cond.op
        if op == "LIKE":
            if not (f.type in TEXT_TYPES or f.type in ID_TYPES):
                raise self._fail(
                    "INVALID_QUERY_FILTER_OPERATOR",
                    cond.value.pos,
                    f"invalid operator on {f.type} field: LIKE",
                )
            pattern = soql.like_regex(cond.value.raw)
            return lambda r, res: _like(pattern, bound.get(r, res))
        if f.type == "boolean" and op not in ("=", "!="):
            raise self._fail(
                "INVALID_QUERY_FILTER_OPERATOR",
                cond.value.pos,
                f"invalid operator on boolean field: {op}",
            )
        value = self._literal(f, cond.value, bound.dotted)
        if value is None:
            if op not in ("=", "!="):
                raise self._fail(
                    "INVALID_QUERY_FILTER_OPERATOR",
                    cond.value.pos,
                    f"invalid operator on null value: {op}",
                )
            wants_null = op == "="
            return lambda r, res: (bound.get(r, res) is None) == wants_null
        if isinstance(value, _Range):
            return _range_predicate(bound, key, value, op)
        return _scalar_predicate(bound, key, value, op)

    def _in_list(self, obj: SObjectDef, cond: soql.InList) -> Predicate:
        bound = self.path(obj, cond.path)
        key = _comparable(bound.field)
        values: set[Any] = set()
        for literal in cond.values:
            value = self._literal(bound.field, literal, bound.dotted)
            if isinstance(value, _Range):
                raise self._fail(
                    "MALFORMED_QUERY", literal.pos, "date literals are not supported in IN lists"
                )
            values.add(value)
        negated = cond.negated

        def predicate(r: Record, res: Resolve) -> bool:
            stored = bound.get(r, res)
            found = (None if stored is None else key(stored)) in values
            return found != negated

        return predicate

    def _literal(self, f: FieldDef, lit: soql.Literal, name: str) -> Any:
        """The literal in the field's comparable domain; a _Range for relative dates."""
        if lit.kind == "null":
            return None
        kind = f.type
        quoted = kind in TEXT_TYPES or kind in ID_TYPES
        type_name = {
            "currency": "double",
            "percent": "double",
            "datetime": "dateTime",
            "reference": "id",
        }.get(kind, "string" if kind in TEXT_TYPES else kind)
        mismatch = self._fail(
            "MALFORMED_QUERY",
            lit.pos,
            f"value of filter criterion for field '{name}' must be of type {type_name} and "
            f"should {'' if quoted else 'not '}be enclosed in quotes",
        )
        if quoted:
            if lit.kind != "string":
                raise mismatch
            if kind in ID_TYPES:
                normalized = ids.normalize(lit.value)
                if normalized is None:
                    raise self._fail(
                        "INVALID_QUERY_FILTER_OPERATOR", lit.pos, f"invalid ID field: {lit.value}"
                    )
                return normalized
            return str(lit.value).lower()
        if kind in NUMBER_TYPES:
            if lit.kind != "number":
                raise mismatch
            number: Decimal = lit.value
            return number
        if kind == "boolean":
            if lit.kind != "boolean":
                raise mismatch
            return bool(lit.value)
        if lit.kind == "relative":
            word, n = lit.value
            start, end = _date_range(word, n, self.now_ms)
            if kind == "date":
                return _Range(start.isoformat(), end.isoformat())
            return _Range(_midnight_ms(start), _midnight_ms(end))
        if kind == "date" and lit.kind == "date":
            parsed = parse_date(lit.value)
            if parsed is None:
                raise self._fail("MALFORMED_QUERY", lit.pos, f"invalid date: {lit.value}")
            return parsed
        if kind == "datetime" and lit.kind == "datetime":
            millis = parse_datetime(lit.value)
            if millis is None:
                raise self._fail("MALFORMED_QUERY", lit.pos, f"invalid dateTime: {lit.value}")
            return millis
        raise mismatch


@dataclass(frozen=True)
class _Range:
    """A relative date literal as a half-open interval [start, end)."""

    start: Any
    end: Any


def _comparable(f: FieldDef) -> Callable[[Any], Any]:
    """Stored value -> the domain filters and ORDER BY compare in (text is case-insensitive)."""
    if f.type in TEXT_TYPES:
        return lambda v: str(v).lower()
    if f.type in NUMBER_TYPES:
        return lambda v: to_decimal(f, int(v))
    return lambda v: v


def _like(pattern: re.Pattern[str], stored: Any) -> bool:
    return stored is not None and pattern.fullmatch(str(stored)) is not None


def _scalar_predicate(
    bound: BoundPath, key: Callable[[Any], Any], value: Any, op: str
) -> Predicate:
    def predicate(r: Record, res: Resolve) -> bool:
        stored = bound.get(r, res)
        if stored is None:
            # SOQL treats null as a value: it differs from every non-null one.
            return op == "!="
        v = key(stored)
        if op == "=":
            return bool(v == value)
        if op == "!=":
            return bool(v != value)
        if op == "<":
            return bool(v < value)
        if op == ">":
            return bool(v > value)
        if op == "<=":
            return bool(v <= value)
        return bool(v >= value)

    return predicate


def _range_predicate(
    bound: BoundPath, key: Callable[[Any], Any], rng: _Range, op: str
) -> Predicate:
    def predicate(r: Record, res: Resolve) -> bool:
        stored = bound.get(r, res)
        if stored is None:
            return op == "!="
        v = key(stored)
        inside = bool(rng.start <= v < rng.end)
        if op == "=":
            return inside
        if op == "!=":
            return not inside
        if op == "<":
            return bool(v < rng.start)
        if op == "<=":
            return bool(v < rng.end)
        if op == ">":
            return bool(v >= rng.end)
        return bool(v >= rng.start)

    return predicate


def _shift(day: date, days: int) -> date:
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return date.max if days > 0 else date.min


def _month(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(max(1, min(9999, year)), month + 1, 1)


def _date_range(word: str, n: int, now_ms: int) -> tuple[date, date]:
    today = datetime.fromtimestamp(now_ms // 1000, UTC).date()
    if word == "TODAY":
        return today, _shift(today, 1)
    if word == "YESTERDAY":
        return _shift(today, -1), today
    if word == "TOMORROW":
        return _shift(today, 1), _shift(today, 2)
    if word == "LAST_N_DAYS":
        return _shift(today, -n), _shift(today, 1)
    if word == "NEXT_N_DAYS":
        return _shift(today, 1), _shift(today, 1 + n)
    first = today.replace(day=1)
    if word == "THIS_MONTH":
        return first, _month(first, 1)
    if word == "LAST_MONTH":
        return _month(first, -1), first
    if word == "NEXT_MONTH":
        return _month(first, 1), _month(first, 2)
    assert word == "THIS_YEAR"
    return date(today.year, 1, 1), _month(date(today.year, 1, 1), 12)


def _midnight_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1000


# --- execution -----------------------------------------------------------------------------
def select(plan: Plan, rows: Iterable[Record], resolve: Resolve) -> list[Record]:
    """Filter, order, offset and limit."""
    if not plan.order and plan.limit is not None:
        # Unordered with a LIMIT: the first matches in table order, without reading the rest.
        start = plan.offset or 0
        where = plan.where
        found = (r for r in rows if where is None or where(r, resolve))
        return list(itertools.islice(found, start, start + plan.limit))
    chosen = [r for r in rows if plan.where is None or plan.where(r, resolve)]
    for order in reversed(plan.order):
        key = _comparable(order.path.field)
        null_rank = 2 if order.nulls_last != order.descending else 0

        def sort_key(
            r: Record, path: BoundPath = order.path, k: Any = key, nr: int = null_rank
        ) -> Any:
            v = path.get(r, resolve)
            return (nr,) if v is None else (1, k(v))

        chosen.sort(key=sort_key, reverse=order.descending)
    start = plan.offset or 0
    end = None if plan.limit is None else start + plan.limit
    return chosen[start:end]


def render_rows(
    plan: Plan,
    records: list[Record],
    resolve: Resolve,
    children_of: Callable[[str, str, str], list[Record]],
    version: str,
) -> list[Json]:
    """Records as a query returns them: attributes, selected fields, parents, child lists."""
    out = []
    for rec in records:
        row: Json = {"attributes": attributes(version, plan.obj.name, rec.id)}
        for column in plan.columns:
            _put(row, column, rec, resolve, version)
        for name, child_obj, field_name, child_plan in plan.children:
            kids = select(child_plan, children_of(child_obj.name, field_name, rec.id), resolve)
            row[name] = (
                {
                    "totalSize": len(kids),
                    "done": True,
                    "records": render_rows(child_plan, kids, resolve, children_of, version),
                }
                if kids
                else None
            )
        out.append(row)
    return out


def _put(row: Json, column: BoundPath, rec: Record, resolve: Resolve, version: str) -> None:
    node: Json | None = row
    current: Record | None = rec
    for ref, parent in zip(column.hops, column.parents, strict=True):
        assert node is not None and current is not None
        name = ref.relationship_name or ref.name
        current = resolve(current.fields.get(ref.name))
        if current is None:
            node.setdefault(name, None)
            return
        child = node.get(name)
        if child is None:
            child = node[name] = {"attributes": attributes(version, parent.name, current.id)}
        node = child
    assert node is not None and current is not None
    node[column.field.name] = to_json(column.field, current.fields.get(column.field.name))

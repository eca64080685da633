"""NetSuite JSON for ERP records, list envelopes, jobs, and the SuiteQL tables over the store."""

from __future__ import annotations

import decimal
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from simulators.common.clock import iso
from simulators.common.money import exponent
from simulators.erp.models import (
    CUSTOM_PREFIX,
    TRANSACTION_KINDS,
    TYPE_CODES,
    Account,
    Currency,
    CurrencyRate,
    Customer,
    GlLine,
    Item,
    Job,
    Period,
    Subsidiary,
    Transaction,
    amount_decimal,
    amount_out,
    day_of,
)
from simulators.erp.store import ErpStore
from simulators.erp.suiteql import Row, Table, Value

Json = dict[str, Any]
RECORD_PATH = "/services/rest/record/v1/"
JOB_PATH = "/services/rest/async/v1/job/"
SUITEQL_PATH = "/services/rest/query/v1/suiteql"
TYPE_NAMES = {
    "invoice": "Invoice",
    "creditMemo": "Credit Memo",
    "customerPayment": "Payment",
    "journalEntry": "Journal",
}


def record_path(kind: str, record_id: str) -> str:
    return f"{RECORD_PATH}{kind}/{record_id}"


def links(href: str) -> list[Json]:
    return [{"rel": "self", "href": href}]


def _compact(data: Json) -> Json:
    """NetSuite leaves empty fields out of a record."""
    return {k: v for k, v in data.items() if v is not None}


# references --------------------------------------------------------------------------------
def ref_name(s: ErpStore, kind: str, record_id: str) -> str | None:
    record = s.get(kind, record_id)
    if record is None:
        return None
    if isinstance(record, Subsidiary | Currency):
        return record.name
    if isinstance(record, Account):
        return f"{record.number} {record.name}"
    if isinstance(record, Period):
        return record.name
    if isinstance(record, Customer):
        return record.company_name
    if isinstance(record, Transaction):
        return f"{TYPE_NAMES[record.kind]} #{record.tran_id}"
    name: str | None = getattr(record, "name", None)
    return name


def ref(s: ErpStore, kind: str, record_id: str | None) -> Json | None:
    if record_id is None:
        return None
    return _compact({"id": record_id, "refName": ref_name(s, kind, record_id)})


# collections -------------------------------------------------------------------------------
def page_links(base: str, limit: int, offset: int, total: int) -> list[Json]:
    def at(n: int) -> str:
        sep = "&" if "?" in base else "?"
        return f"{base}{sep}limit={limit}&offset={n}"

    out = []
    if offset > 0:
        out.append({"rel": "previous", "href": at(max(0, offset - limit))})
        out.append({"rel": "first", "href": at(0)})
    if offset + limit < total:
        out.append({"rel": "next", "href": at(offset + limit)})
        out.append({"rel": "last", "href": at(((total - 1) // limit) * limit)})
    out.append({"rel": "self", "href": at(offset)})
    return out


def collection(
    ids: list[str], href: Callable[[str], str], base: str, limit: int, offset: int
) -> Json:
    chosen = ids[offset : offset + limit]
    return {
        "links": page_links(base, limit, offset, len(ids)),
        "count": len(chosen),
        "hasMore": offset + limit < len(ids),
        "items": [{"links": links(href(i)), "id": i} for i in chosen],
        "offset": offset,
        "totalResults": len(ids),
    }


def sublist(href: str, lines: list[Json], expand: bool) -> Json:
    if not expand:
        return {"links": links(href)}
    return {
        "links": links(href),
        "count": len(lines),
        "hasMore": False,
        "items": lines,
        "offset": 0,
        "totalResults": len(lines),
    }


# records -----------------------------------------------------------------------------------
def record(s: ErpStore, kind: str, row: Any, today: str, expand: bool) -> Json:
    renderers: dict[str, Callable[[], Json]] = {
        "subsidiary": lambda: subsidiary(s, row),
        "currency": lambda: currency(s, row, today),
        "currencyRate": lambda: currency_rate(s, row),
        "account": lambda: account(row),
        "accountingPeriod": lambda: period(s, row),
        "customer": lambda: customer(s, row),
        "serviceSaleItem": lambda: item(s, row),
    }
    if kind in renderers:
        return renderers[kind]()
    return transaction(s, row, expand)


def subsidiary(s: ErpStore, sub: Subsidiary) -> Json:
    return _compact(
        {
            "links": links(record_path("subsidiary", sub.id)),
            "id": sub.id,
            "externalId": sub.external_id,
            "name": sub.name,
            "currency": ref(s, "currency", sub.currency),
            "country": sub.country,
            "parent": ref(s, "subsidiary", sub.parent),
            "isInactive": sub.is_inactive,
        }
    )


def currency(s: ErpStore, c: Currency, today: str) -> Json:
    root = _root_currency(s)
    rate: float | None = None
    if root is not None:
        if root == c.id:
            rate = 1.0
        else:
            found = [
                r
                for r in s.currency_rates.values()
                if r.base == root and r.currency == c.id and r.effective_on <= today
            ]
            if found:
                rate = float(max(found, key=lambda r: (r.effective_on, int(r.id))).rate)
    return _compact(
        {
            "links": links(record_path("currency", c.id)),
            "id": c.id,
            "externalId": c.external_id,
            "name": c.name,
            "symbol": c.symbol,
            "currencyPrecision": exponent(c.symbol),
            "exchangeRate": rate,
            "isBaseCurrency": root == c.id,
            "isInactive": c.is_inactive,
        }
    )


def _root_currency(s: ErpStore) -> str | None:
    roots = sorted(
        (sub for sub in s.subsidiaries.values() if sub.parent is None), key=lambda x: int(x.id)
    )
    return roots[0].currency if roots else None


def currency_rate(s: ErpStore, r: CurrencyRate) -> Json:
    return _compact(
        {
            "links": links(record_path("currencyRate", r.id)),
            "id": r.id,
            "externalId": r.external_id,
            "baseCurrency": ref(s, "currency", r.base),
            "transactionCurrency": ref(s, "currency", r.currency),
            "exchangeRate": float(r.rate),
            "effectiveDate": r.effective_on,
        }
    )


def account(a: Account) -> Json:
    return _compact(
        {
            "links": links(record_path("account", a.id)),
            "id": a.id,
            "externalId": a.external_id,
            "acctNumber": a.number,
            "acctName": a.name,
            "acctType": a.type,
            "description": a.description,
            "isInactive": a.is_inactive,
        }
    )


def item(s: ErpStore, i: Item) -> Json:
    return _compact(
        {
            "links": links(record_path("serviceSaleItem", i.id)),
            "id": i.id,
            "externalId": i.external_id,
            "itemId": i.item_id,
            "displayName": i.name,
            "itemType": "Service",
            "incomeAccount": ref(s, "account", i.income_account),
            "deferredRevenueAccount": ref(s, "account", i.deferred_revenue_account),
            "isInactive": i.is_inactive,
        }
    )


def period(s: ErpStore, p: Period) -> Json:
    return _compact(
        {
            "links": links(record_path("accountingPeriod", p.id)),
            "id": p.id,
            "externalId": p.external_id,
            "periodName": p.name,
            "startDate": p.start_on,
            "endDate": p.end_on,
            "subsidiary": ref(s, "subsidiary", p.subsidiary),
            "closed": p.closed,
            "allLocked": p.all_locked,
            "arLocked": p.ar_locked,
            "isPosting": True,
            "isQuarter": False,
            "isYear": False,
            "isAdjust": False,
            "closedOnDate": p.closed_on,
        }
    )


def customer(s: ErpStore, c: Customer) -> Json:
    return _compact(
        {
            "links": links(record_path("customer", c.id)),
            "id": c.id,
            "externalId": c.external_id,
            "entityId": c.entity_id,
            "companyName": c.company_name,
            "email": c.email,
            "subsidiary": ref(s, "subsidiary", c.subsidiary),
            "currency": ref(s, "currency", c.currency),
            "isInactive": c.is_inactive,
            "dateCreated": iso(c.created_at),
            "lastModifiedDate": iso(c.modified_at),
            **c.custom,
        }
    )


def status(t: Transaction) -> str:
    if t.voided:
        return "Voided"
    if t.kind == "invoice":
        return "Paid In Full" if t.total_minor and not t.amount_remaining_minor else "Open"
    if t.kind == "creditMemo":
        return "Fully Applied" if t.applied_minor == t.total_minor else "Open"
    if t.kind == "customerPayment":
        return "Deposited"
    return "Approved for Posting"


def transaction(s: ErpStore, t: Transaction, expand: bool) -> Json:
    code = s.currencies[t.currency].symbol
    path = record_path(t.kind, t.id)

    def money(minor: int) -> float:
        return amount_out(minor, code)

    data: Json = {
        "links": links(path),
        "id": t.id,
        "externalId": t.external_id,
        "tranId": t.tran_id,
        "tranDate": t.tran_on,
        "postingPeriod": ref(s, "accountingPeriod", t.period),
        "subsidiary": ref(s, "subsidiary", t.subsidiary),
        "currency": ref(s, "currency", t.currency),
        "exchangeRate": float(Decimal(t.exchange_rate)),
        "memo": t.memo,
        "status": status(t),
        "createdDate": iso(t.created_at),
        "lastModifiedDate": iso(t.modified_at),
        **t.custom,
    }
    if t.kind in ("invoice", "creditMemo"):
        data.update(
            {
                "entity": ref(s, "customer", t.entity),
                "account": ref(s, "account", t.account),
                "otherRefNum": t.other_ref,
                "dueDate": t.due_on,
                "subtotal": money(t.subtotal_minor),
                "taxTotal": money(t.tax_minor),
                "total": money(t.total_minor),
                "item": sublist(
                    f"{path}/item",
                    [
                        _compact(
                            {
                                "links": [],
                                "line": line.line,
                                "item": ref(s, "serviceSaleItem", line.item),
                                "description": line.description,
                                "quantity": None
                                if line.quantity is None
                                else float(Decimal(line.quantity)),
                                "rate": None if line.rate is None else float(Decimal(line.rate)),
                                "amount": money(line.amount_minor),
                                "tax1Amt": money(line.tax_minor) if line.tax_minor else None,
                                "taxCode": line.tax_code,
                            }
                        )
                        for line in t.items
                    ],
                    expand,
                ),
            }
        )
    if t.kind == "invoice":
        data["amountPaid"] = money(0 if t.voided else t.paid_minor)
        data["amountRemaining"] = money(t.amount_remaining_minor)
    if t.kind == "creditMemo":
        data["createdFrom"] = ref(s, "invoice", t.created_from)
    if t.kind in ("creditMemo", "customerPayment"):
        applied = t.applied_minor
        data["applied"] = money(applied)
        data["unapplied"] = money(0 if t.voided else t.total_minor - applied)
        data["apply"] = sublist(
            f"{path}/apply",
            [
                {
                    "links": [],
                    "doc": ref(s, "invoice", a.doc),
                    "apply": True,
                    "amount": money(a.amount_minor),
                }
                for a in t.applies
            ],
            expand,
        )
    if t.kind == "customerPayment":
        data.update(
            {
                "customer": ref(s, "customer", t.entity),
                "account": ref(s, "account", t.account),
                "payment": money(t.payment_minor),
                "total": money(t.payment_minor),
            }
        )
    if t.kind == "journalEntry":
        data.update(
            {
                "toSubsidiary": ref(s, "subsidiary", t.to_subsidiary),
                "approved": True,
                "reversalDate": t.reversal_on,
                "reversalEntry": ref(s, "journalEntry", t.reversal_entry),
                "createdFrom": ref(s, "transaction", t.created_from) if t.created_from else None,
                "debitTotal": money(sum(line.debit_minor for line in t.lines)),
                "creditTotal": money(sum(line.credit_minor for line in t.lines)),
                "line": sublist(
                    f"{path}/line",
                    [
                        _compact(
                            {
                                "links": [],
                                "line": line.line,
                                "account": ref(s, "account", line.account),
                                "debit": money(line.debit_minor) if line.debit_minor else None,
                                "credit": money(line.credit_minor) if line.credit_minor else None,
                                "memo": line.memo,
                                "entity": ref(s, "customer", line.entity),
                                "lineSubsidiary": ref(s, "subsidiary", line.subsidiary),
                            }
                        )
                        for line in t.lines
                    ],
                    expand,
                ),
            }
        )
    return _compact(data)


# async jobs --------------------------------------------------------------------------------
def job(j: Job) -> Json:
    return {
        "links": links(f"{JOB_PATH}{j.id}"),
        "id": j.id,
        "completed": True,
        "progress": j.progress,
        "startTime": iso(j.created_at),
        "endTime": iso(j.created_at),
        "task": {"links": links(f"{JOB_PATH}{j.id}/task")},
    }


def task(j: Job) -> Json:
    base = f"{JOB_PATH}{j.id}/task/1"
    return {
        "links": [{"rel": "related", "href": f"{base}/result"}, *links(base)],
        "id": "1",
        "completed": True,
        "progress": j.progress,
        "startTime": iso(j.created_at),
        "endTime": iso(j.created_at),
    }


# SuiteQL tables ----------------------------------------------------------------------------
def _n(record_id: str | None) -> Decimal | None:
    return None if record_id is None else Decimal(int(record_id))


def _flag(value: bool) -> str:
    return "T" if value else "F"


def _nonzero(value: Decimal) -> Decimal | None:
    return value if value else None


def suiteql_catalog(s: ErpStore) -> dict[str, Table]:
    """The documented SuiteQL tables: columns in lower case, rows computed on demand."""
    tables = {
        "transaction": Table(
            (
                "id",
                "tranid",
                "type",
                "trandate",
                "postingperiod",
                "entity",
                "currency",
                "exchangerate",
                "foreigntotal",
                "foreignamountpaid",
                "foreignamountunpaid",
                "status",
                "memo",
                "externalid",
                "voided",
                "posting",
                "createdfrom",
                "createddate",
                "lastmodifieddate",
            ),
            lambda: [_transaction_row(s, t) for t in s.transactions.values()],
            types=TRANSACTION_TYPES,
            narrow=_narrower(
                s, "transactions", TRANSACTION_KINDS, lambda t: _transaction_row(s, t)
            ),
            custom_prefix=CUSTOM_PREFIX["transaction"],
        ),
        "transactionline": Table(
            (
                "id",
                "transaction",
                "linesequencenumber",
                "mainline",
                "subsidiary",
                "entity",
                "item",
                "memo",
                "foreignamount",
                "debitforeignamount",
                "creditforeignamount",
            ),
            lambda: [_line_row(line) for line in s.gl_lines()],
        ),
        "transactionaccountingline": Table(
            (
                "transaction",
                "transactionline",
                "accountingbook",
                "account",
                "debit",
                "credit",
                "amount",
                "netamount",
                "posting",
                "postingperiod",
                "exchangerate",
            ),
            lambda: [_accounting_row(line) for line in s.gl_lines()],
        ),
        "account": Table(
            (
                "id",
                "acctnumber",
                "acctname",
                "fullname",
                "accountsearchdisplayname",
                "accttype",
                "description",
                "isinactive",
                "externalid",
            ),
            lambda: [
                {
                    "id": _n(a.id),
                    "acctnumber": a.number,
                    "acctname": a.name,
                    "fullname": a.name,
                    "accountsearchdisplayname": f"{a.number} {a.name}",
                    "accttype": a.type,
                    "description": a.description,
                    "isinactive": _flag(a.is_inactive),
                    "externalid": a.external_id,
                }
                for a in s.accounts.values()
            ],
        ),
        "subsidiary": Table(
            (
                "id",
                "name",
                "currency",
                "parent",
                "country",
                "iselimination",
                "isinactive",
                "externalid",
            ),
            lambda: [
                {
                    "id": _n(x.id),
                    "name": x.name,
                    "currency": _n(x.currency),
                    "parent": _n(x.parent),
                    "country": x.country,
                    "iselimination": "F",
                    "isinactive": _flag(x.is_inactive),
                    "externalid": x.external_id,
                }
                for x in s.subsidiaries.values()
            ],
        ),
        "accountingperiod": Table(
            (
                "id",
                "periodname",
                "startdate",
                "enddate",
                "subsidiary",
                "closed",
                "alllocked",
                "arlocked",
                "isposting",
                "isquarter",
                "isyear",
                "isadjust",
                "closedondate",
                "externalid",
            ),
            lambda: [
                {
                    "id": _n(p.id),
                    "periodname": p.name,
                    "startdate": p.start_on,
                    "enddate": p.end_on,
                    "subsidiary": _n(p.subsidiary),
                    "closed": _flag(p.closed),
                    "alllocked": _flag(p.all_locked),
                    "arlocked": _flag(p.ar_locked),
                    "isposting": "T",
                    "isquarter": "F",
                    "isyear": "F",
                    "isadjust": "F",
                    "closedondate": p.closed_on,
                    "externalid": p.external_id,
                }
                for p in s.periods.values()
            ],
        ),
        "currency": Table(
            ("id", "name", "symbol", "currencyprecision", "isinactive", "externalid"),
            lambda: [_currency_row(c) for c in s.currencies.values()],
        ),
        "currencyrate": Table(
            (
                "id",
                "basecurrency",
                "transactioncurrency",
                "exchangerate",
                "effectivedate",
                "externalid",
            ),
            lambda: [
                {
                    "id": _n(r.id),
                    "basecurrency": _n(r.base),
                    "transactioncurrency": _n(r.currency),
                    "exchangerate": Decimal(r.rate),
                    "effectivedate": r.effective_on,
                    "externalid": r.external_id,
                }
                for r in s.currency_rates.values()
            ],
        ),
        "customer": Table(
            (
                "id",
                "entityid",
                "companyname",
                "email",
                "subsidiary",
                "currency",
                "isinactive",
                "externalid",
                "datecreated",
                "lastmodifieddate",
            ),
            lambda: [_customer_row(c) for c in s.customers.values()],
            types=CUSTOMER_TYPES,
            narrow=_narrower(s, "customers", ("customer",), _customer_row),
            custom_prefix=CUSTOM_PREFIX["customer"],
        ),
        "item": Table(
            (
                "id",
                "itemid",
                "displayname",
                "itemtype",
                "incomeaccount",
                "deferredrevenueaccount",
                "isinactive",
                "externalid",
            ),
            lambda: [
                {
                    "id": _n(i.id),
                    "itemid": i.item_id,
                    "displayname": i.name,
                    "itemtype": "Service",
                    "incomeaccount": _n(i.income_account),
                    "deferredrevenueaccount": _n(i.deferred_revenue_account),
                    "isinactive": _flag(i.is_inactive),
                    "externalid": i.external_id,
                }
                for i in s.items.values()
            ],
        ),
    }
    # "accountingline" is accepted as a short name for transactionaccountingline.
    tables["accountingline"] = tables["transactionaccountingline"]
    return tables


def _customer_row(c: Customer) -> Row:
    return {
        "id": _n(c.id),
        "entityid": c.entity_id,
        "companyname": c.company_name,
        "email": c.email,
        "subsidiary": _n(c.subsidiary),
        "currency": _n(c.currency),
        "isinactive": _flag(c.is_inactive),
        "externalid": c.external_id,
        "datecreated": day_of(c.created_at),
        "lastmodifieddate": day_of(c.modified_at),
        **_custom_columns(c.custom),
    }


def _custom_columns(custom: dict[str, Any]) -> dict[str, Value]:
    """Custom field values as SuiteQL holds them: numbers as numbers, checkboxes T/F, text."""
    row: dict[str, Value] = {}
    for name, value in custom.items():
        if isinstance(value, bool):
            row[name] = _flag(value)
        elif isinstance(value, int | float):
            row[name] = Decimal(repr(value))
        elif value is not None:
            row[name] = str(value)
    return row


# Columns always numbers (n) or always text (s), NULL aside: SuiteQL conditions on them can
# use the store's indexes (suiteql.Table.narrow).
CUSTOMER_TYPES = {
    "id": "n",
    "subsidiary": "n",
    "currency": "n",
    "entityid": "s",
    "companyname": "s",
    "email": "s",
    "isinactive": "s",
    "externalid": "s",
}
TRANSACTION_TYPES = {"id": "n", "entity": "n", "tranid": "s", "type": "s", "externalid": "s"}


def _narrower(
    s: ErpStore, table: str, kinds: Iterable[str], build: Callable[[Any], Row]
) -> Callable[[str, str, Value], list[Row] | None]:
    """Rows for ``id op n`` and ``externalid = 'x'`` from the store's indexes, in table order."""

    def narrow(column: str, op: str, value: Value) -> list[Row] | None:
        rows: dict[str, Any] = getattr(s, table)
        if column == "externalid" and op == "=" and isinstance(value, str):
            found = [s.by_external_id(kind, value) for kind in kinds]
            hits = {r.id: r for r in found if r is not None}
            if len(hits) <= 1:
                return [build(r) for r in hits.values()]
            if s.ids_ascending(table) is None:
                return None
            return [build(hits[k]) for k in sorted(hits, key=int)]
        if column != "id" or not isinstance(value, Decimal):
            return None
        if op == "=":
            if value != value.to_integral_value():
                return []
            row = rows.get(str(int(value)))
            return [] if row is None else [build(row)]
        top = s.ids_ascending(table)
        if top is None or op not in ("<", "<=", ">", ">="):
            return None
        low, high = 1, top
        floor = int(value.to_integral_value(rounding=decimal.ROUND_FLOOR))
        ceiling = int(value.to_integral_value(rounding=decimal.ROUND_CEILING))
        if op == "<":
            high = min(high, ceiling - 1)
        elif op == "<=":
            high = min(high, floor)
        elif op == ">":
            low = max(low, floor + 1)
        else:
            low = max(low, ceiling)
        if high - low + 1 > len(rows):
            return None
        return [build(r) for n in range(low, high + 1) if (r := rows.get(str(n))) is not None]

    return narrow


def _currency_row(c: Currency) -> Row:
    return {
        "id": _n(c.id),
        "name": c.name,
        "symbol": c.symbol,
        "currencyprecision": Decimal(exponent(c.symbol)),
        "isinactive": _flag(c.is_inactive),
        "externalid": c.external_id,
    }


def _transaction_row(s: ErpStore, t: Transaction) -> Row:
    code = s.currencies[t.currency].symbol
    invoice = t.kind == "invoice"
    return {
        "id": _n(t.id),
        "tranid": t.tran_id,
        "type": TYPE_CODES[t.kind],
        "trandate": t.tran_on,
        "postingperiod": _n(t.period),
        "entity": _n(t.entity),
        "currency": _n(t.currency),
        "exchangerate": Decimal(t.exchange_rate),
        "foreigntotal": amount_decimal(t.total_minor, code),
        "foreignamountpaid": amount_decimal(t.paid_minor, code) if invoice else None,
        "foreignamountunpaid": amount_decimal(t.amount_remaining_minor, code) if invoice else None,
        "status": status(t),
        "memo": t.memo,
        "externalid": t.external_id,
        "voided": _flag(t.voided),
        "posting": "T",
        "createdfrom": _n(t.created_from),
        "createddate": day_of(t.created_at),
        "lastmodifieddate": day_of(t.modified_at),
        **_custom_columns(t.custom),
    }


def _line_row(line: GlLine) -> Row:
    debit = amount_decimal(line.debit_minor, line.currency)
    credit = amount_decimal(line.credit_minor, line.currency)
    return {
        "id": Decimal(line.line),
        "transaction": _n(line.transaction),
        "linesequencenumber": Decimal(line.line),
        "mainline": _flag(line.line == 0 and line.kind != "journalEntry"),
        "subsidiary": _n(line.subsidiary),
        "entity": _n(line.entity),
        "item": _n(line.item),
        "memo": line.memo,
        "foreignamount": debit - credit,
        "debitforeignamount": _nonzero(debit),
        "creditforeignamount": _nonzero(credit),
    }


def _accounting_row(line: GlLine) -> Row:
    debit = amount_decimal(line.debit_base_minor, line.base_currency)
    credit = amount_decimal(line.credit_base_minor, line.base_currency)
    return {
        "transaction": _n(line.transaction),
        "transactionline": Decimal(line.line),
        "accountingbook": Decimal(1),
        "account": _n(line.account),
        "debit": _nonzero(debit),
        "credit": _nonzero(credit),
        "amount": debit - credit,
        "netamount": debit - credit,
        "posting": "T",
        "postingperiod": _n(line.period),
        "exchangerate": Decimal(line.exchange_rate),
    }


def suiteql_page(records: Iterable[Json], total: int, limit: int, offset: int) -> Json:
    items = list(records)
    return {
        "links": page_links(SUITEQL_PATH, limit, offset, total),
        "count": len(items),
        "hasMore": offset + len(items) < total,
        "items": items,
        "offset": offset,
        "totalResults": total,
    }

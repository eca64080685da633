"""ERP records and pure ledger arithmetic: money edges, rates, periods, postings, GL summaries."""

from __future__ import annotations

import calendar
import decimal
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from simulators.common.money import exponent, from_decimal, round_decimal, to_decimal

# Amounts at or above this (in major units) are refused: it keeps every amount and every sum
# of a few of them within the 15 significant digits a JSON double carries exactly.
AMOUNT_LIMIT = Decimal(10) ** 12
# Enough digits for any amount × rate product without the default context (28) rounding it.
_WIDE = decimal.Context(prec=80, rounding=decimal.ROUND_HALF_UP)

TRANSACTION_KINDS = ("invoice", "creditMemo", "customerPayment", "journalEntry")
AR_KINDS = frozenset({"invoice", "creditMemo", "customerPayment"})
# NetSuite custom field script ids: body fields on transactions, entity fields on customers.
CUSTOM_PREFIX = {"transaction": "custbody", "customer": "custentity"}


def custom_fields(doc: dict[str, Any], record: str) -> dict[str, Any]:
    """The custom fields of a request or stored document (``custbody…`` / ``custentity…``)."""
    prefix = CUSTOM_PREFIX[record]
    return {k: v for k, v in doc.items() if k.startswith(prefix)}


# SuiteQL's transaction.type codes.
TYPE_CODES = {
    "invoice": "CustInvc",
    "creditMemo": "CustCred",
    "customerPayment": "CustPymt",
    "journalEntry": "Journal",
}
TRAN_ID_PREFIX = {
    "invoice": "INV",
    "creditMemo": "CM",
    "customerPayment": "PYMT",
    "journalEntry": "JE",
}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# --- records ------------------------------------------------------------------------------
@dataclass
class Currency:
    id: str
    name: str
    symbol: str  # ISO 4217 code; decides the decimals (simulators.common.money.exponent)
    external_id: str | None = None
    is_inactive: bool = False


@dataclass
class CurrencyRate:
    """How many units of ``base`` one unit of ``currency`` is worth from ``effective_on``."""

    id: str
    base: str  # currency record id
    currency: str  # currency record id (NetSuite's transactionCurrency)
    rate: str  # Decimal text
    effective_on: str  # YYYY-MM-DD
    external_id: str | None = None


@dataclass
class Subsidiary:
    id: str
    name: str
    currency: str  # base currency record id
    country: str | None = None
    parent: str | None = None
    external_id: str | None = None
    is_inactive: bool = False


@dataclass
class Account:
    id: str
    number: str
    name: str
    type: str  # NetSuite acctType: AcctRec, Bank, DeferRevenue, Income, …
    description: str | None = None
    external_id: str | None = None
    is_inactive: bool = False


@dataclass
class Item:
    """A service sale item mapping invoice lines to accounts (seeded; REST record
    ``serviceSaleItem``, read and made (in)active, and SuiteQL table ``item``)."""

    id: str
    item_id: str
    name: str
    income_account: str
    deferred_revenue_account: str | None = None  # when set, billings defer revenue here
    external_id: str | None = None
    is_inactive: bool = False


@dataclass
class Period:
    """One calendar month of one subsidiary (periods per subsidiary are our choice)."""

    id: str
    subsidiary: str
    year: int
    month: int
    external_id: str | None = None
    closed: bool = False
    all_locked: bool = False
    ar_locked: bool = False
    closed_on: str | None = None

    @property
    def name(self) -> str:
        return period_name(self.year, self.month)

    @property
    def start_on(self) -> str:
        return f"{self.year:04d}-{self.month:02d}-01"

    @property
    def end_on(self) -> str:
        last = calendar.monthrange(self.year, self.month)[1]
        return f"{self.year:04d}-{self.month:02d}-{last:02d}"

    @property
    def ym(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass
class Customer:
    id: str
    company_name: str
    entity_id: str
    subsidiary: str
    currency: str
    created_at: int
    modified_at: int
    email: str | None = None
    external_id: str | None = None
    is_inactive: bool = False
    custom: dict[str, Any] = field(default_factory=dict)  # custentity… fields


@dataclass
class ItemLine:
    """A line of an invoice's or credit memo's item sublist."""

    line: int
    item: str
    amount_minor: int
    tax_minor: int = 0
    description: str | None = None
    quantity: str | None = None  # Decimal text, informational
    rate: str | None = None  # Decimal text (unit price), informational
    tax_code: str | None = None  # the tax code (jurisdiction) tax1Amt is owed under


@dataclass
class JournalLine:
    line: int
    account: str
    subsidiary: str
    debit_minor: int = 0
    credit_minor: int = 0
    memo: str | None = None
    entity: str | None = None


@dataclass
class Application:
    """Part of a payment or credit memo applied to an invoice, with the AR base it relieves."""

    doc: str
    amount_minor: int
    ar_base_minor: int


@dataclass
class Transaction:
    id: str
    kind: str  # invoice | creditMemo | customerPayment | journalEntry
    tran_id: str
    subsidiary: str
    currency: str  # currency record id
    exchange_rate: str  # Decimal text: transaction currency → subsidiary base currency
    tran_on: str
    period: str
    created_at: int
    modified_at: int
    # The request document (patches merged in): a change rebuilds the transaction from it.
    source: dict[str, Any] = field(default_factory=dict)
    external_id: str | None = None
    entity: str | None = None
    account: str | None = None  # AR account (invoice, credit memo) or deposit account
    memo: str | None = None
    other_ref: str | None = None
    due_on: str | None = None
    to_subsidiary: str | None = None
    items: list[ItemLine] = field(default_factory=list)
    lines: list[JournalLine] = field(default_factory=list)
    applies: list[Application] = field(default_factory=list)
    payment_minor: int = 0
    ar_base_minor: int = 0  # invoices: the base value of the AR they debit
    paid_minor: int = 0  # invoices: applied by payments and credit memos
    paid_base_minor: int = 0  # invoices: the AR base those applications relieved
    voided: bool = False
    voided_by: str | None = None  # the voiding journal entry
    created_from: str | None = None  # credit memo: its invoice; system journal: its original
    reversal_on: str | None = None
    reversal_entry: str | None = None  # the reversing journal made for reversal_on
    system: bool = False  # a voiding or reversing journal the simulator made

    @property
    def custom(self) -> dict[str, Any]:
        """Custom body fields (``custbody…``) as last written (kept in the request document)."""
        return custom_fields(self.source, "transaction")

    @property
    def subtotal_minor(self) -> int:
        return sum(line.amount_minor for line in self.items)

    @property
    def tax_minor(self) -> int:
        return sum(line.tax_minor for line in self.items)

    @property
    def total_minor(self) -> int:
        if self.kind == "customerPayment":
            return self.payment_minor
        if self.kind == "journalEntry":
            return sum(line.debit_minor for line in self.lines)
        return self.subtotal_minor + self.tax_minor

    @property
    def applied_minor(self) -> int:
        return sum(a.amount_minor for a in self.applies)

    @property
    def amount_remaining_minor(self) -> int:
        return 0 if self.voided else self.total_minor - self.paid_minor


@dataclass
class GlLine:
    """One posting line: both currencies, the subsidiary, account and period it lands in."""

    transaction: str
    line: int
    kind: str  # the transaction kind
    role: str  # what made the line: ar, revenue, deferred_revenue, tax, cash, journal, fx, rounding
    subsidiary: str
    account: str
    period: str
    tran_on: str
    currency: str  # ISO code of the transaction currency
    debit_minor: int
    credit_minor: int
    base_currency: str  # ISO code of the subsidiary's base currency
    debit_base_minor: int
    credit_base_minor: int
    exchange_rate: str
    entity: str | None = None
    item: str | None = None
    memo: str | None = None


@dataclass
class Job:
    """An asynchronous request: run at once; ``status`` is what the synchronous call answered."""

    id: str
    operation: str
    created_at: int
    progress: str  # succeeded | failed
    status: int
    idempotency_key: str | None = None
    location: str | None = None
    error: dict[str, Any] | None = None  # status, code, message, param of a failed request


# --- money at the edge --------------------------------------------------------------------
def decimal_in(value: float | int | Decimal) -> Decimal:
    """A JSON number as the Decimal its text meant (floats print their shortest repr)."""
    if isinstance(value, bool) or not isinstance(value, float | int | Decimal):
        raise ValueError("not a number")
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not number.is_finite():
        raise ValueError("not a finite number")
    return number


def amount_in(value: float | int | Decimal, code: str) -> int:
    """A decimal amount in ``code`` to minor units; ValueError says what is wrong with it."""
    number = decimal_in(value)
    if abs(number) >= AMOUNT_LIMIT:
        raise ValueError(f"amounts must be below {AMOUNT_LIMIT:,}")
    try:
        return from_decimal(number, code)
    except ValueError:
        places = exponent(code)
        raise ValueError(f"{code} amounts take at most {places} decimal places") from None


def amount_out(minor: int, code: str) -> float:
    """Minor units as the JSON number NetSuite sends (exact for every amount we accept)."""
    return float(to_decimal(minor, code))


def amount_decimal(minor: int, code: str) -> Decimal:
    return to_decimal(minor, code)


def rate_in(value: float | int | Decimal) -> Decimal:
    rate = decimal_in(value)
    if rate <= 0 or rate >= Decimal(10) ** 9:
        raise ValueError("exchange rates must be positive and below 1,000,000,000")
    return rate


def rate_text(rate: Decimal) -> str:
    return format(rate.normalize(), "f")


def to_base(minor: int, code: str, rate: Decimal, base_code: str) -> int:
    """``minor`` of ``code`` at ``rate``, rounded half-up to the base currency's minor unit."""
    with decimal.localcontext(_WIDE):
        converted = to_decimal(minor, code) * rate
        return from_decimal(round_decimal(converted, base_code), base_code)


def apportion(total: int, part: int, whole: int) -> int:
    """``total × part / whole`` rounded half-up: the base share of a partial application."""
    if part == whole:
        return total
    with decimal.localcontext(_WIDE):
        share = Decimal(total) * Decimal(part) / Decimal(whole)
        return int(share.quantize(Decimal(1), rounding=decimal.ROUND_HALF_UP))


# --- dates and periods --------------------------------------------------------------------
def day_of(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")


def parse_day(text: str) -> date:
    """YYYY-MM-DD to a date; ValueError for impossible dates (2026-02-30)."""
    return date.fromisoformat(text)


def month_of(day: str) -> tuple[int, int]:
    return int(day[0:4]), int(day[5:7])


def add_months(year: int, month: int, count: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + count
    return index // 12, index % 12 + 1


def period_name(year: int, month: int) -> str:
    return f"{MONTHS[month - 1]} {year}"


def posting_block(period: Period, *, ar: bool, override: bool) -> str | None:
    """Why nothing may be posted to ``period`` by this role, or None when it may."""
    if period.closed:
        return f"The accounting period {period.name} is closed; nothing can be posted to it."
    locked = period.all_locked or (ar and period.ar_locked)
    if locked and not override:
        return (
            f"The accounting period {period.name} is locked. Only roles with the Override "
            "Period Restrictions permission can post to it."
        )
    return None


# --- postings -----------------------------------------------------------------------------
@dataclass
class Posting:
    """A ledger line before base conversion: an account, a side and an amount."""

    role: str
    account: str
    subsidiary: str
    debit_minor: int = 0
    credit_minor: int = 0
    entity: str | None = None
    item: str | None = None
    memo: str | None = None
    base_minor: int | None = None  # fixed base amount (AR relieved at its historical rate)


@dataclass(frozen=True)
class Booking:
    """What a transaction posts with: its currency and, per subsidiary, base, rate and period."""

    transaction: str
    kind: str
    currency: str
    tran_on: str
    bases: dict[str, str]  # subsidiary → base currency code
    rates: dict[str, Decimal]  # subsidiary → rate to that base
    periods: dict[str, str]  # subsidiary → period id
    rounding_account: str
    fx_account: str


def post(booking: Booking, postings: Iterable[Posting]) -> list[GlLine]:
    """Convert postings to ledger lines and balance every subsidiary in base currency.

    Each line is converted on its own (amount × rate, half-up). What that leaves unbalanced
    per subsidiary goes on a line with no transaction-currency amount: to the realized FX
    account when the document relieves AR at an invoice's historical rate (fixed-base lines:
    the gap is the exchange difference, plus the document's own rounding), else to the
    rounding account."""
    lines: list[GlLine] = []
    settling: set[str] = set()
    for p in postings:
        sub = p.subsidiary
        amount = p.debit_minor - p.credit_minor
        if p.base_minor is not None:
            settling.add(sub)
            base = p.base_minor
        else:
            base = to_base(abs(amount), booking.currency, booking.rates[sub], booking.bases[sub])
        lines.append(_line(booking, p, sub, amount, base))
    for sub in list(dict.fromkeys(line.subsidiary for line in lines)):
        gap = sum(
            line.debit_base_minor - line.credit_base_minor
            for line in lines
            if line.subsidiary == sub
        )
        if gap:
            role, account = (
                ("fx", booking.fx_account)
                if sub in settling
                else ("rounding", booking.rounding_account)
            )
            lines.append(_balancing(booking, sub, role, account, gap))
    kept = [line for line in lines if _nonzero(line)]
    for n, line in enumerate(kept):
        line.line = n
    return kept


def _nonzero(line: GlLine) -> bool:
    return any((line.debit_minor, line.credit_minor, line.debit_base_minor, line.credit_base_minor))


def _line(booking: Booking, p: Posting, sub: str, amount: int, base: int) -> GlLine:
    debit = amount >= 0
    return GlLine(
        transaction=booking.transaction,
        line=0,
        kind=booking.kind,
        role=p.role,
        subsidiary=sub,
        account=p.account,
        period=booking.periods[sub],
        tran_on=booking.tran_on,
        currency=booking.currency,
        debit_minor=amount if debit else 0,
        credit_minor=0 if debit else -amount,
        base_currency=booking.bases[sub],
        debit_base_minor=base if debit else 0,
        credit_base_minor=0 if debit else base,
        exchange_rate=rate_text(booking.rates[sub]),
        entity=p.entity,
        item=p.item,
        memo=p.memo,
    )


def _balancing(booking: Booking, sub: str, role: str, account: str, gap: int) -> GlLine:
    """A line with no transaction amount that takes ``gap`` (debits − credits) off the base."""
    return GlLine(
        transaction=booking.transaction,
        line=0,
        kind=booking.kind,
        role=role,
        subsidiary=sub,
        account=account,
        period=booking.periods[sub],
        tran_on=booking.tran_on,
        currency=booking.currency,
        debit_minor=0,
        credit_minor=0,
        base_currency=booking.bases[sub],
        debit_base_minor=-gap if gap < 0 else 0,
        credit_base_minor=gap if gap > 0 else 0,
        exchange_rate=rate_text(booking.rates[sub]),
    )


def mirror(
    lines: list[GlLine], transaction: str, tran_on: str, periods: dict[str, str]
) -> list[GlLine]:
    """The opposite entry: every line's sides swapped, amounts (both currencies) unchanged."""
    return [
        GlLine(
            transaction=transaction,
            line=n,
            kind="journalEntry",
            role=line.role,
            subsidiary=line.subsidiary,
            account=line.account,
            period=periods[line.subsidiary],
            tran_on=tran_on,
            currency=line.currency,
            debit_minor=line.credit_minor,
            credit_minor=line.debit_minor,
            base_currency=line.base_currency,
            debit_base_minor=line.credit_base_minor,
            credit_base_minor=line.debit_base_minor,
            exchange_rate=line.exchange_rate,
            entity=line.entity,
            item=line.item,
            memo=line.memo,
        )
        for n, line in enumerate(lines)
    ]


def gl_fingerprint(lines: list[GlLine]) -> list[tuple[Any, ...]]:
    """What makes two postings the same for the ledger (memos and line numbers aside)."""
    return sorted(
        (
            line.subsidiary,
            line.account,
            line.period,
            line.currency,
            line.debit_minor,
            line.credit_minor,
            line.debit_base_minor,
            line.credit_base_minor,
            line.entity or "",
        )
        for line in lines
    )


def ledger_summary(lines: Iterable[GlLine]) -> list[dict[str, Any]]:
    """Debits, credits and balance per subsidiary, account, currency and period, both currencies."""
    totals: dict[tuple[str, str, str, str, str], list[int]] = {}
    for line in lines:
        key = (line.subsidiary, line.account, line.currency, line.period, line.base_currency)
        row = totals.setdefault(key, [0, 0, 0, 0])
        row[0] += line.debit_minor
        row[1] += line.credit_minor
        row[2] += line.debit_base_minor
        row[3] += line.credit_base_minor
    return [
        {
            "subsidiary": sub,
            "account": account,
            "currency": currency,
            "period": period,
            "debit_minor": d,
            "credit_minor": c,
            "balance_minor": d - c,
            "base_currency": base,
            "debit_base_minor": db,
            "credit_base_minor": cb,
            "balance_base_minor": db - cb,
        }
        for (sub, account, currency, period, base), (d, c, db, cb) in sorted(
            totals.items(), key=lambda kv: tuple(_sortable(k) for k in kv[0])
        )
    ]


def _sortable(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (1 << 62, value)

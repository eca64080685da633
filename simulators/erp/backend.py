"""ERP behaviour: one method per operation; ledger rules, periods on the clock, async jobs."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from simulators.common.errors import SimError
from simulators.common.world import World
from simulators.erp import errors, suiteql
from simulators.erp.models import (
    AR_KINDS,
    TRAN_ID_PREFIX,
    TRANSACTION_KINDS,
    Account,
    Application,
    Booking,
    Currency,
    CurrencyRate,
    Customer,
    GlLine,
    Item,
    ItemLine,
    Job,
    JournalLine,
    Period,
    Posting,
    Subsidiary,
    Transaction,
    add_months,
    amount_decimal,
    amount_in,
    apportion,
    custom_fields,
    day_of,
    decimal_in,
    gl_fingerprint,
    mirror,
    month_of,
    parse_day,
    period_name,
    post,
    posting_block,
    rate_in,
    rate_text,
)
from simulators.erp.seed import SeedData
from simulators.erp.store import ErpStore

Json = dict[str, Any]
EXTERNAL_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
JOB_PATH = "/services/rest/async/v1/job/"
JOB_RETENTION_S = 30 * 86400  # NetSuite purges async job ids after 30 days
MAX_JOBS = 20_000
PERIOD_NAME = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
LAST_MONTH = 9999 * 12 + 11  # December 9999: the clock stops there


@dataclass(frozen=True)
class Role:
    """What a token may do: NetSuite's Override Period Restrictions and period management."""

    name: str
    override_periods: bool
    manage_periods: bool


INTEGRATION = Role("integration", override_periods=False, manage_periods=False)
ADMINISTRATOR = Role("administrator", override_periods=True, manage_periods=True)


@dataclass
class Plan:
    """A transaction built and checked but not yet stored: commit only mutates."""

    txn: Transaction
    gl: list[GlLine]
    reversal: tuple[Transaction, list[GlLine]] | None = None
    periods: set[str] = field(default_factory=set)


class ErpBackend:
    """All ERP rules. Called with the world lock held; time comes from the world clock only."""

    def __init__(self, world: World, store: ErpStore, seed: SeedData) -> None:
        self.world = world
        self.store = store
        self.seed = seed
        world.clock.subscribe(self._on_clock)

    # time and ids ----------------------------------------------------------------------
    def now(self) -> int:
        return self.world.clock.now()

    def today(self) -> str:
        return day_of(self.now())

    def _next_id(self, family: str) -> str:
        return str(self.world.ids.counter(f"erp.{family}"))

    # seed ------------------------------------------------------------------------------
    def load_seed(self) -> None:
        s, seed = self.store, self.seed
        s.reset()
        codes: dict[str, str] = {}
        for c in seed.currencies:
            currency = Currency(self._next_id("currency"), c.name, c.symbol, c.symbol)
            s.add("currency", currency)
            codes[c.symbol] = currency.id
        subs: dict[str, str] = {}
        for sub in seed.subsidiaries:
            record = Subsidiary(
                self._next_id("subsidiary"),
                sub.name,
                codes[sub.currency],
                sub.country,
                subs.get(sub.parent) if sub.parent else None,
                sub.external_id,
            )
            s.add("subsidiary", record)
            subs[sub.external_id] = record.id
        numbers: dict[str, str] = {}
        for a in seed.accounts:
            account = Account(
                self._next_id("account"), a.number, a.name, a.type, external_id=a.number
            )
            s.add("account", account)
            numbers[a.number] = account.id
        for i in seed.items:
            s.add(
                "serviceSaleItem",
                Item(
                    self._next_id("item"),
                    i.external_id,
                    i.name,
                    numbers[i.income_account],
                    numbers[i.deferred_revenue_account] if i.deferred_revenue_account else None,
                    i.external_id,
                ),
            )
        s.roles = {role: numbers[number] for role, number in seed.roles.items()}
        s.first_period = seed.first_period or self.today()[:7]
        s.periods_ahead = seed.periods_ahead
        first = month_of(s.first_period + "-01")
        for r in seed.rates:
            on = r.effective_on or "{:04d}-{:02d}-01".format(*add_months(*first, r.month_offset))
            s.add(
                "currencyRate",
                CurrencyRate(
                    self._next_id("currencyRate"), codes[r.base], codes[r.currency], r.rate, on
                ),
            )
        first_index, last_index = self._window()
        self.materialize(range(first_index, last_index + 1))

    # periods --------------------------------------------------------------------------
    # Every subsidiary has a period for every month from the first period to periods_ahead
    # months past today. They are records (ids, state) made when first needed: the window's
    # end as the clock reaches it, any other month when a posting, a lookup or a close needs
    # it. So moving the clock costs at most periods_ahead + 1 months of periods, however far
    # it moves, and months the clock jumped over exist without having been written down.
    def _on_clock(self, before: int, now: int) -> None:
        s = self.store
        if not s.first_period:
            return  # not seeded yet
        old_last, (first, last) = self._window(before)[1], self._window(now)
        year, month = month_of(day_of(now))
        self.materialize(range(max(old_last + 1, year * 12 + month - 1, first), last + 1))

    def _window(self, at: int | None = None) -> tuple[int, int]:
        """First and last month index (year * 12 + month - 1) that have periods at ``at``."""
        s = self.store
        year, month = month_of(s.first_period + "-01")
        first = year * 12 + month - 1
        year, month = month_of(day_of(self.now() if at is None else at))
        return first, min(year * 12 + month - 1 + s.periods_ahead, LAST_MONTH)

    def materialize(self, months: Iterable[int]) -> None:
        """Period records, for every subsidiary, of the months (indexes) that have none yet."""
        s = self.store
        subs = sorted(s.subsidiaries.values(), key=lambda sub: int(sub.id))
        for index in months:
            year, month0 = divmod(index, 12)
            ym = f"{year:04d}-{month0 + 1:02d}"
            if ym in s.period_months:
                continue
            for sub in subs:
                self._add_period(sub, year, month0 + 1)

    def _add_period(self, sub: Subsidiary, year: int, month: int) -> None:
        eid = f"{sub.external_id}-{year:04d}-{month:02d}" if sub.external_id else None
        period = Period(self._next_id("period"), sub.id, year, month, eid)
        self.store.add("accountingPeriod", period)

    def period_of(self, sub_id: str, ym: str) -> Period | None:
        """The period of a subsidiary for ``YYYY-MM``, made now if the month is in the window."""
        period = self.store.period_at(sub_id, ym)
        if period is None and self.store.first_period:
            first, last = self._window()
            index = int(ym[:4]) * 12 + int(ym[5:7]) - 1
            if first <= index <= last:
                self.materialize([index])
                period = self.store.period_at(sub_id, ym)
        return period

    # lookups ---------------------------------------------------------------------------
    def find(self, kind: str, key: str) -> Any:
        """A record named in the URL: an internal id or ``eid:<externalId>``; else 404."""
        if key.startswith("eid:"):
            record = self.store.by_external_id(kind, key[4:])
            if record is None and kind == "accountingPeriod":
                record = self._period_by_external_id(key[4:])
        else:
            record = self.store.get(kind, key) if key.isdigit() else None
        if record is None:
            raise errors.nonexistent(kind, key)
        return record

    def _period_by_external_id(self, external_id: str) -> Period | None:
        """``<subsidiary external id>-YYYY-MM`` of a month in the window not yet made."""
        sub_eid, ym = external_id[:-8], external_id[-7:]
        if external_id[-8:-7] != "-" or not PERIOD_NAME.fullmatch(ym):
            return None
        sub = self.store.by_external_id("subsidiary", sub_eid)
        return None if sub is None else self.period_of(sub.id, ym)

    def ref(self, kind: str, value: Any, path: str) -> Any:
        """A record named in a request body by ``{"id"}`` or ``{"externalId"}``; else 400."""
        if not isinstance(value, dict):
            raise errors.invalid_value(path, value, "A reference is an object with an id.")
        if "id" in value:
            key = str(value["id"])
            record = self.store.get(kind, key)
        elif "externalId" in value:
            key = str(value["externalId"])
            record = self.store.by_external_id(kind, key)
        else:
            raise errors.invalid_value(path, "{}", "A reference needs an id or an externalId.")
        if record is None:
            raise errors.invalid_value(path, key)
        return record

    def _opt_ref(self, kind: str, p: Json, name: str) -> Any:
        return self.ref(kind, p[name], name) if name in p else None

    def _unique(self, kind: str, external_id: str | None, current: Any = None) -> None:
        if external_id is None:
            return
        found = self.store.by_external_id(kind, external_id)
        if found is not None and found is not current:
            raise errors.duplicate(kind, external_id)

    def _amount(self, value: Any, code: str, path: str) -> int:
        try:
            return amount_in(value, code)
        except ValueError as exc:
            raise errors.invalid_value(path, value, str(exc)) from None

    def _day(self, value: str, path: str) -> str:
        try:
            parse_day(value)
        except ValueError:
            raise errors.invalid_value(path, value, "Dates are YYYY-MM-DD.") from None
        return value

    @staticmethod
    def _require(p: Json, *names: str) -> None:
        for name in names:
            if name not in p:
                raise errors.missing_field(name)

    def code(self, currency_id: str) -> str:
        return self.store.currencies[currency_id].symbol

    def account_for(self, role: str) -> str:
        return self.store.roles[role]

    # generic record operations ---------------------------------------------------------
    def create(self, kind: str, p: Json, role: Role) -> Any:
        if kind in TRANSACTION_KINDS:
            return self.create_transaction(kind, p, role)
        creators: dict[str, Callable[[Json], Any]] = {
            "subsidiary": self.create_subsidiary,
            "currency": self.create_currency,
            "currencyRate": self.create_currency_rate,
            "account": self.create_account,
            "customer": self.create_customer,
        }
        return creators[kind](p)

    def update(self, kind: str, record: Any, p: Json, role: Role) -> Any:
        if kind in TRANSACTION_KINDS:
            return self.update_transaction(kind, record, p, role)
        if kind == "accountingPeriod":
            return self.update_period(record, p, role)
        updaters: dict[str, Callable[[Any, Json], Any]] = {
            "subsidiary": self.update_subsidiary,
            "currency": self.update_currency,
            "currencyRate": self.update_currency_rate,
            "account": self.update_account,
            "customer": self.update_customer,
            "serviceSaleItem": self.update_item,
        }
        return updaters[kind](record, p)

    def upsert(self, kind: str, key: str, p: Json, role: Role) -> tuple[Any, bool]:
        """PUT …/<kind>/eid:<externalId>: update the record with that external id, or create it."""
        if not key.startswith("eid:"):
            raise errors.bad_parameter(
                f"The upsert operation needs an external ID in the URL: …/{kind}/eid:<externalId>.",
                "id",
            )
        external_id = key[4:]
        if not EXTERNAL_ID.fullmatch(external_id):
            raise errors.bad_parameter(
                "External IDs contain letters, numbers, underscores and hyphens only.", "id"
            )
        if p.get("externalId", external_id) != external_id:
            raise errors.invalid_value(
                "externalId", p["externalId"], "It must match the external ID in the URL."
            )
        existing = self.store.by_external_id(kind, external_id)
        if existing is not None:
            return self.update(kind, existing, p, role), False
        return self.create(kind, {**p, "externalId": external_id}, role), True

    def delete(self, kind: str, record: Any, role: Role) -> None:
        if kind in TRANSACTION_KINDS:
            self.delete_transaction(kind, record, role)
        elif kind == "customer":
            if self._customer_used(record.id):
                raise errors.user_error(
                    "This customer has transactions and cannot be deleted; make it inactive."
                )
            self.store.remove(kind, record)
        elif kind == "account":
            if self._account_used(record.id):
                raise errors.user_error(
                    "This account has postings or is used by an item or an account role; it "
                    "cannot be deleted. Make it inactive."
                )
            self.store.remove(kind, record)
        elif kind == "currencyRate":
            # Transactions keep the rate they were booked at; only later bookings change.
            self.store.remove(kind, record)
        else:  # pragma: no cover - the contract offers no other deletes
            raise errors.user_error(f"{kind} records cannot be deleted.")

    # setup records ---------------------------------------------------------------------
    def create_subsidiary(self, p: Json) -> Subsidiary:
        self._require(p, "name", "currency")
        self._unique("subsidiary", p.get("externalId"))
        currency = self.ref("currency", p["currency"], "currency")
        parent = self._opt_ref("subsidiary", p, "parent")
        sub = Subsidiary(
            self._next_id("subsidiary"),
            p["name"],
            currency.id,
            p.get("country"),
            parent.id if parent else None,
            p.get("externalId"),
            bool(p.get("isInactive", False)),
        )
        self.store.add("subsidiary", sub)
        for ym in sorted(self.store.period_months):
            self._add_period(sub, int(ym[:4]), int(ym[5:7]))
        return sub

    def update_subsidiary(self, sub: Subsidiary, p: Json) -> Subsidiary:
        self._unique("subsidiary", p.get("externalId"), sub)
        currency = self._opt_ref("currency", p, "currency")
        if currency is not None and currency.id != sub.currency and self._subsidiary_used(sub.id):
            raise errors.user_error(
                "The base currency of a subsidiary with customers or transactions cannot change.",
                "currency",
            )
        parent = self._opt_ref("subsidiary", p, "parent")
        if parent is not None and self._descends_from(parent, sub):
            raise errors.user_error("A subsidiary cannot be its own parent or ancestor.", "parent")
        if currency is not None:
            sub.currency = currency.id
        if parent is not None:
            sub.parent = parent.id
        for name, attr in (("name", "name"), ("country", "country"), ("isInactive", "is_inactive")):
            if name in p:
                setattr(sub, attr, p[name])
        if "externalId" in p:
            self.store.set_external_id("subsidiary", sub, p["externalId"])
        return sub

    def _descends_from(self, candidate: Subsidiary, ancestor: Subsidiary) -> bool:
        node: Subsidiary | None = candidate
        seen: set[str] = set()
        while node is not None and node.id not in seen:
            if node.id == ancestor.id:
                return True
            seen.add(node.id)
            node = self.store.subsidiaries.get(node.parent) if node.parent else None
        return False

    def _subsidiary_used(self, sub_id: str) -> bool:
        return any(c.subsidiary == sub_id for c in self.store.customers.values()) or any(
            sub_id in (t.subsidiary, t.to_subsidiary) for t in self.store.transactions.values()
        )

    def create_currency(self, p: Json) -> Currency:
        self._require(p, "name", "symbol")
        self._unique("currency", p.get("externalId"))
        self._symbol_free(p["symbol"])
        currency = Currency(
            self._next_id("currency"),
            p["name"],
            p["symbol"],
            p.get("externalId"),
            bool(p.get("isInactive", False)),
        )
        self.store.add("currency", currency)
        return currency

    def update_currency(self, currency: Currency, p: Json) -> Currency:
        self._unique("currency", p.get("externalId"), currency)
        if "symbol" in p and p["symbol"] != currency.symbol:
            self._symbol_free(p["symbol"])
            if self._currency_used(currency.id):
                raise errors.user_error(
                    "The symbol of a currency in use cannot change: it decides the decimals of "
                    "every amount booked in it.",
                    "symbol",
                )
            currency.symbol = p["symbol"]
        for name, attr in (("name", "name"), ("isInactive", "is_inactive")):
            if name in p:
                setattr(currency, attr, p[name])
        if "externalId" in p:
            self.store.set_external_id("currency", currency, p["externalId"])
        return currency

    def _symbol_free(self, symbol: str) -> None:
        if any(c.symbol == symbol for c in self.store.currencies.values()):
            raise errors.user_error(
                f"A currency with the symbol {symbol} already exists.", "symbol"
            )

    def _currency_used(self, currency_id: str) -> bool:
        s = self.store
        return (
            any(sub.currency == currency_id for sub in s.subsidiaries.values())
            or any(c.currency == currency_id for c in s.customers.values())
            or any(t.currency == currency_id for t in s.transactions.values())
            or any(currency_id in (r.base, r.currency) for r in s.currency_rates.values())
        )

    def create_currency_rate(self, p: Json) -> CurrencyRate:
        self._require(p, "baseCurrency", "transactionCurrency", "exchangeRate", "effectiveDate")
        self._unique("currencyRate", p.get("externalId"))
        rate = self._rate_record(p, None)
        self.store.add("currencyRate", rate)
        return rate

    def update_currency_rate(self, rate: CurrencyRate, p: Json) -> CurrencyRate:
        self._unique("currencyRate", p.get("externalId"), rate)
        merged = {
            "baseCurrency": {"id": rate.base},
            "transactionCurrency": {"id": rate.currency},
            "exchangeRate": Decimal(rate.rate),
            "effectiveDate": rate.effective_on,
            **p,
        }
        checked = self._rate_record(merged, rate)
        rate.base, rate.currency = checked.base, checked.currency
        rate.rate, rate.effective_on = checked.rate, checked.effective_on
        if "externalId" in p:
            self.store.set_external_id("currencyRate", rate, p["externalId"])
        return rate

    def _rate_record(self, p: Json, current: CurrencyRate | None) -> CurrencyRate:
        base = self.ref("currency", p["baseCurrency"], "baseCurrency")
        currency = self.ref("currency", p["transactionCurrency"], "transactionCurrency")
        if base.id == currency.id:
            raise errors.user_error(
                "The base and transaction currencies of a rate must differ.", "transactionCurrency"
            )
        try:
            rate = rate_in(p["exchangeRate"])
        except ValueError as exc:
            raise errors.invalid_value("exchangeRate", p["exchangeRate"], str(exc)) from None
        on = self._day(p["effectiveDate"], "effectiveDate")
        clash = next(
            (
                r
                for r in self.store.currency_rates.values()
                if (r.base, r.currency, r.effective_on) == (base.id, currency.id, on)
                and r is not current
            ),
            None,
        )
        if clash is not None:
            raise errors.user_error(
                f"A {currency.symbol}→{base.symbol} rate effective {on} exists already "
                f"(currencyRate {clash.id}).",
                "effectiveDate",
            )
        rate_id = current.id if current else self._next_id("currencyRate")
        return CurrencyRate(rate_id, base.id, currency.id, rate_text(rate), on, p.get("externalId"))

    def create_account(self, p: Json) -> Account:
        self._require(p, "acctNumber", "acctName", "acctType")
        self._unique("account", p.get("externalId"))
        self._number_free(p["acctNumber"], None)
        account = Account(
            self._next_id("account"),
            p["acctNumber"],
            p["acctName"],
            p["acctType"],
            p.get("description"),
            p.get("externalId"),
            bool(p.get("isInactive", False)),
        )
        self.store.add("account", account)
        return account

    def update_account(self, account: Account, p: Json) -> Account:
        self._unique("account", p.get("externalId"), account)
        if "acctNumber" in p:
            self._number_free(p["acctNumber"], account)
        if "acctType" in p and p["acctType"] != account.type and self._account_used(account.id):
            raise errors.user_error(
                "The type of an account with postings or an account role cannot change.", "acctType"
            )
        for name, attr in (
            ("acctNumber", "number"),
            ("acctName", "name"),
            ("acctType", "type"),
            ("description", "description"),
            ("isInactive", "is_inactive"),
        ):
            if name in p:
                setattr(account, attr, p[name])
        if "externalId" in p:
            self.store.set_external_id("account", account, p["externalId"])
        return account

    def update_item(self, item: Item, p: Json) -> Item:
        """Seeded items take a new display name and are made (in)active; nothing else moves
        (their accounts decide what every posted line booked)."""
        if "displayName" in p:
            item.name = p["displayName"]
        if "isInactive" in p:
            item.is_inactive = bool(p["isInactive"])
        return item

    def _number_free(self, number: str, current: Account | None) -> None:
        if any(a.number == number and a is not current for a in self.store.accounts.values()):
            raise errors.user_error(f"An account numbered {number} already exists.", "acctNumber")

    def _account_used(self, account_id: str) -> bool:
        s = self.store
        return (
            account_id in s.roles.values()
            or any(
                account_id in (i.income_account, i.deferred_revenue_account)
                for i in s.items.values()
            )
            or any(line.account == account_id for line in s.gl_lines())
            or any(t.account == account_id for t in s.transactions.values())
        )

    def update_period(self, period: Period, p: Json, role: Role) -> Period:
        """Open, lock or close a period; closing is in date order, reopening in reverse."""
        if not role.manage_periods:
            raise errors.forbidden(
                "Permission Violation: you need the Manage Accounting Periods permission to "
                "change an accounting period."
            )
        siblings = [x for x in self.store.periods.values() if x.subsidiary == period.subsidiary]
        closing = p.get("closed") is True and not period.closed
        reopening = p.get("closed") is False and period.closed
        if closing:
            open_before = self._open_before(period)
            if open_before:
                raise errors.user_error(
                    f"Close the earlier periods first: {', '.join(open_before[:3])}"
                    + (" …" if len(open_before) > 3 else "")
                    + ".",
                    "closed",
                )
        if reopening:
            closed_after = sorted(x.name for x in siblings if x.ym > period.ym and x.closed)
            if closed_after:
                raise errors.user_error(
                    f"Reopen the later periods first: {', '.join(closed_after[:3])}.", "closed"
                )
        if closing:
            period.closed, period.closed_on = True, self.today()
        if reopening:
            period.closed, period.closed_on = False, None
        if "allLocked" in p:
            period.all_locked = bool(p["allLocked"])
        if "arLocked" in p:
            period.ar_locked = bool(p["arLocked"])
        return period

    def _open_before(self, period: Period) -> list[str]:
        """Names of the (first four) open periods before ``period`` in its subsidiary, months
        not yet made included: they exist, and they are open."""
        first, _ = self._window()
        found: list[str] = []
        for index in range(first, period.year * 12 + period.month - 1):
            year, month0 = divmod(index, 12)
            earlier = self.store.period_at(period.subsidiary, f"{year:04d}-{month0 + 1:02d}")
            if earlier is None or not earlier.closed:
                found.append(earlier.name if earlier else period_name(year, month0 + 1))
                if len(found) > 3:
                    break
        return found

    # customers -------------------------------------------------------------------------
    def create_customer(self, p: Json) -> Customer:
        self._require(p, "companyName", "subsidiary")
        self._unique("customer", p.get("externalId"))
        sub = self._active_subsidiary(self.ref("subsidiary", p["subsidiary"], "subsidiary"))
        currency = self._opt_ref("currency", p, "currency")
        if currency is not None and currency.is_inactive:
            raise errors.inactive_reference("currency", currency.id, "currency")
        now = self.now()
        customer = Customer(
            self._next_id("customer"),
            p["companyName"],
            p.get("entityId") or p["companyName"],
            sub.id,
            currency.id if currency else sub.currency,
            now,
            now,
            p.get("email"),
            p.get("externalId"),
            bool(p.get("isInactive", False)),
            custom_fields(p, "customer"),
        )
        self.store.add("customer", customer)
        return customer

    def update_customer(self, customer: Customer, p: Json) -> Customer:
        self._unique("customer", p.get("externalId"), customer)
        sub = self._opt_ref("subsidiary", p, "subsidiary")
        if sub is not None:
            self._active_subsidiary(sub)
        currency = self._opt_ref("currency", p, "currency")
        moving = (sub is not None and sub.id != customer.subsidiary) or (
            currency is not None and currency.id != customer.currency
        )
        if moving and self._customer_used(customer.id):
            raise errors.user_error(
                "A customer with transactions keeps its subsidiary and currency.",
                "subsidiary" if sub is not None and sub.id != customer.subsidiary else "currency",
            )
        if sub is not None:
            customer.subsidiary = sub.id
        if currency is not None:
            customer.currency = currency.id
        for name, attr in (
            ("companyName", "company_name"),
            ("entityId", "entity_id"),
            ("email", "email"),
            ("isInactive", "is_inactive"),
        ):
            if name in p:
                setattr(customer, attr, p[name])
        customer.custom.update(custom_fields(p, "customer"))
        if "externalId" in p:
            self.store.set_external_id("customer", customer, p["externalId"])
        customer.modified_at = self.now()
        return customer

    def _customer_used(self, customer_id: str) -> bool:
        return any(
            t.entity == customer_id or any(line.entity == customer_id for line in t.lines)
            for t in self.store.transactions.values()
        )

    # transactions: create, update, delete, void -----------------------------------------
    def create_transaction(self, kind: str, p: Json, role: Role) -> Transaction:
        self._unique(kind, p.get("externalId"))
        plan = self._build(kind, p, None)
        self._check_postable(kind, plan.periods, role)
        return self._commit(kind, plan, None)

    def update_transaction(self, kind: str, txn: Transaction, p: Json, role: Role) -> Transaction:
        if txn.system:
            raise errors.user_error(
                "This journal entry was made by a void or a reversal and cannot be changed."
            )
        if txn.voided:
            raise errors.user_error("A voided transaction cannot be changed.")
        self._unique(kind, p.get("externalId"), txn)
        plan = self._build(kind, {**txn.source, **p}, txn)
        old_gl = self.store.gl.get(txn.id, [])
        changed = (
            gl_fingerprint(plan.gl) != gl_fingerprint(old_gl)
            or plan.txn.reversal_on != txn.reversal_on
        )
        if changed:
            if kind == "invoice" and txn.paid_minor:
                raise errors.user_error(
                    "This invoice has payments or credits applied; unapply them before changing "
                    "what it posts."
                )
            if txn.reversal_entry is not None:
                raise errors.user_error(
                    "This journal entry has a reversing entry; delete it and enter it again."
                )
            old_periods = {txn.period} | {line.period for line in old_gl}
            self._check_postable(kind, plan.periods | old_periods, role)
        else:
            # Changes that post nothing still cannot touch a closed period.
            self._check_postable(kind, {txn.period}, ADMINISTRATOR)
            plan.reversal = None
        return self._commit(kind, plan, txn)

    def delete_transaction(self, kind: str, txn: Transaction, role: Role) -> None:
        if txn.system:
            raise errors.user_error(
                "This journal entry was made by a void or a reversal; delete or void the "
                "original instead."
            )
        if txn.voided:
            raise errors.user_error("A voided transaction cannot be deleted.")
        if kind == "invoice" and txn.paid_minor:
            raise errors.user_error(
                "This invoice has payments or credits applied; delete or void them first."
            )
        doomed = [txn.id] + ([txn.reversal_entry] if txn.reversal_entry else [])
        periods = {line.period for tid in doomed for line in self.store.gl.get(tid, [])}
        self._check_postable(kind, periods | {txn.period}, role)
        self._unapply(txn)
        for tid in doomed:
            self.store.gl.pop(tid, None)
            gone = self.store.transactions.get(tid)
            if gone is not None:
                self.store.remove(gone.kind, gone)

    def void(self, kind: str, txn: Transaction, role: Role) -> Transaction:
        """Void by reversing journal: a journal dated today mirrors every ledger line."""
        if txn.voided:
            raise errors.user_error(f"{txn.tran_id} is already voided.")
        if txn.system:
            raise errors.user_error("A voiding or reversing journal cannot be voided.")
        if kind == "invoice" and txn.paid_minor:
            raise errors.user_error(
                "This invoice has payments or credits applied; void or unapply them first."
            )
        if txn.reversal_entry is not None:
            raise errors.user_error(
                "This journal entry already has a reversing entry; it cannot also be voided."
            )
        today = self.today()
        lines = self.store.gl.get(txn.id, [])
        subs = list(dict.fromkeys([txn.subsidiary, *(line.subsidiary for line in lines)]))
        periods = {sub: self._period_on(sub, today, "tranDate").id for sub in subs}
        mirrored = mirror(lines, "", today, periods)
        self._check_postable(kind, set(periods.values()), role)
        journal = self._system_journal(txn, today, periods, mirrored, f"Void of {txn.tran_id}")
        self._unapply(txn)
        txn.applies = []
        txn.voided, txn.voided_by, txn.modified_at = True, journal.id, self.now()
        return journal

    def _system_journal(
        self, original: Transaction, on: str, periods: dict[str, str], gl: list[GlLine], memo: str
    ) -> Transaction:
        now = self.now()
        journal = Transaction(
            id=self._next_id("transaction"),
            kind="journalEntry",
            tran_id=self._tran_id("journalEntry"),
            subsidiary=original.subsidiary,
            currency=original.currency,
            exchange_rate=original.exchange_rate,
            tran_on=on,
            period=periods[original.subsidiary],
            created_at=now,
            modified_at=now,
            to_subsidiary=original.to_subsidiary,
            memo=memo,
            created_from=original.id,
            system=True,
            lines=[
                JournalLine(
                    n,
                    line.account,
                    line.subsidiary,
                    line.debit_minor,
                    line.credit_minor,
                    line.memo,
                    line.entity,
                )
                for n, line in enumerate(gl)
            ],
        )
        for line in gl:
            line.transaction = journal.id
        self.store.add("journalEntry", journal)
        self.store.gl[journal.id] = gl
        return journal

    def _tran_id(self, kind: str) -> str:
        return f"{TRAN_ID_PREFIX[kind]}{self.world.ids.counter(f'erp.tranid.{kind}')}"

    def _check_postable(self, kind: str, periods: set[str], role: Role) -> None:
        for period_id in sorted(periods, key=int):
            period = self.store.periods[period_id]
            reason = posting_block(period, ar=kind in AR_KINDS, override=role.override_periods)
            if reason is not None:
                raise errors.user_error(reason, "postingPeriod")

    def _commit(self, kind: str, plan: Plan, existing: Transaction | None) -> Transaction:
        txn, s = plan.txn, self.store
        if existing is not None:
            self._unapply(existing)
            s.remove(kind, existing)
            txn.id, txn.created_at = existing.id, existing.created_at
            txn.tran_id = txn.tran_id or existing.tran_id
            txn.reversal_entry = existing.reversal_entry
            txn.paid_minor, txn.paid_base_minor = existing.paid_minor, existing.paid_base_minor
        else:
            txn.id = self._next_id("transaction")
            txn.tran_id = txn.tran_id or self._tran_id(kind)
        for line in plan.gl:
            line.transaction = txn.id
        s.add(kind, txn)
        s.gl[txn.id] = plan.gl
        self._apply(txn)
        if plan.reversal is not None:
            reversal, gl = plan.reversal
            periods = {line.subsidiary: line.period for line in gl}
            periods.setdefault(txn.subsidiary, reversal.period)
            journal = self._system_journal(
                txn, reversal.tran_on, periods, gl, f"Reversal of {txn.tran_id}"
            )
            txn.reversal_entry = journal.id
        return txn

    def _apply(self, txn: Transaction) -> None:
        for app in txn.applies:
            invoice = self.store.transactions[app.doc]
            invoice.paid_minor += app.amount_minor
            invoice.paid_base_minor += app.ar_base_minor

    def _unapply(self, txn: Transaction) -> None:
        for app in txn.applies:
            invoice = self.store.transactions.get(app.doc)
            if invoice is not None:
                invoice.paid_minor -= app.amount_minor
                invoice.paid_base_minor -= app.ar_base_minor

    # transactions: building ------------------------------------------------------------
    def _build(self, kind: str, p: Json, existing: Transaction | None) -> Plan:
        builders: dict[str, Callable[[str, Json, Transaction | None], Plan]] = {
            "invoice": self._build_sale,
            "creditMemo": self._build_sale,
            "customerPayment": self._build_payment,
            "journalEntry": self._build_journal,
        }
        plan = builders[kind](kind, p, existing)
        plan.txn.source = dict(p)
        plan.periods |= {line.period for line in plan.gl}
        if plan.reversal is not None:
            plan.periods |= {line.period for line in plan.reversal[1]}
        return plan

    def _header(self, p: Json, customer_field: str) -> tuple[Customer, Subsidiary, Currency]:
        """The customer and the subsidiary and currency it routes the document to."""
        self._require(p, customer_field)
        customer = self.ref("customer", p[customer_field], customer_field)
        if customer.is_inactive:
            raise errors.inactive_reference(
                "entity", customer.id, customer_field, customer.subsidiary
            )
        sub = self._active_subsidiary(self.store.subsidiaries[customer.subsidiary])
        given_sub = self._opt_ref("subsidiary", p, "subsidiary")
        if given_sub is not None and given_sub.id != sub.id:
            raise errors.user_error(
                f"The customer {customer.company_name} belongs to the subsidiary {sub.name}; its "
                "transactions must use it.",
                "subsidiary",
            )
        currency = self.store.currencies[customer.currency]
        if currency.is_inactive:
            raise errors.inactive_reference("currency", currency.id, "currency")
        given_currency = self._opt_ref("currency", p, "currency")
        if given_currency is not None and given_currency.id != currency.id:
            raise errors.user_error(
                f"The customer {customer.company_name} transacts in {currency.symbol}.", "currency"
            )
        return customer, sub, currency

    def _dating(self, p: Json, sub: Subsidiary) -> tuple[str, Period]:
        tran_on = self._day(p["tranDate"], "tranDate") if "tranDate" in p else self.today()
        if "postingPeriod" in p:
            period = self.ref("accountingPeriod", p["postingPeriod"], "postingPeriod")
            if period.subsidiary != sub.id:
                raise errors.invalid_value(
                    "postingPeriod", period.id, "The period belongs to another subsidiary."
                )
            return tran_on, period
        return tran_on, self._period_on(sub.id, tran_on, "tranDate")

    def _period_on(self, sub_id: str, day: str, path: str) -> Period:
        period = self.period_of(sub_id, day[:7])
        if period is None:
            name = self.store.subsidiaries[sub_id].name
            raise errors.user_error(
                f"There is no accounting period for {day} in the subsidiary {name} (periods run "
                f"from {self.store.first_period} to {self.store.periods_ahead} months past today).",
                path,
            )
        return period

    def _rate(self, p: Json, currency: Currency, base: Currency, tran_on: str) -> Decimal:
        if "exchangeRate" in p:
            try:
                rate = rate_in(p["exchangeRate"])
            except ValueError as exc:
                raise errors.invalid_value("exchangeRate", p["exchangeRate"], str(exc)) from None
            if currency.id == base.id and rate != 1:
                raise errors.user_error(
                    "A transaction in its subsidiary's base currency has exchange rate 1.",
                    "exchangeRate",
                )
            return rate
        return self.dated_rate(currency, base, tran_on)

    def dated_rate(self, currency: Currency, base: Currency, on: str) -> Decimal:
        """The latest rate for the pair effective on or before ``on`` (1 within a currency)."""
        if currency.id == base.id:
            return Decimal(1)
        found = [
            r
            for r in self.store.currency_rates.values()
            if r.base == base.id and r.currency == currency.id and r.effective_on <= on
        ]
        if not found:
            raise errors.user_error(
                f"There is no {currency.symbol}→{base.symbol} exchange rate effective on or "
                f"before {on}; add a currencyRate or give exchangeRate.",
                "exchangeRate",
            )
        best = max(found, key=lambda r: (r.effective_on, int(r.id)))
        return Decimal(best.rate)

    def _account(self, p: Json, name: str, role: str, types: tuple[str, ...]) -> Account:
        account: Account = (
            self.ref("account", p[name], name)
            if name in p
            else self.store.accounts[self.account_for(role)]
        )
        if account.type not in types:
            raise errors.invalid_value(
                name, account.id, f"The account must be of type {' or '.join(types)}."
            )
        if account.is_inactive:
            raise errors.inactive_reference("account", account.id, name)
        return account

    def _active_subsidiary(self, sub: Subsidiary, path: str = "subsidiary") -> Subsidiary:
        """The subsidiary, unless an administrator made it inactive: it takes no postings and
        no new customers until it is active again."""
        if sub.is_inactive:
            raise errors.inactive_reference("subsidiary", sub.id, path)
        return sub

    def _booking(
        self,
        kind: str,
        currency: Currency,
        tran_on: str,
        rates: dict[str, Decimal],
        periods: dict[str, str],
    ) -> Booking:
        s = self.store
        return Booking(
            transaction="",
            kind=kind,
            currency=currency.symbol,
            tran_on=tran_on,
            bases={sub: s.currencies[s.subsidiaries[sub].currency].symbol for sub in rates},
            rates=rates,
            periods=periods,
            rounding_account=self.account_for("rounding"),
            fx_account=self.account_for("fx"),
        )

    def _new(
        self,
        kind: str,
        p: Json,
        sub: Subsidiary,
        currency: Currency,
        rate: Decimal,
        tran_on: str,
        period: Period,
        existing: Transaction | None,
    ) -> Transaction:
        now = self.now()
        return Transaction(
            id=existing.id if existing else "",
            kind=kind,
            tran_id=p.get("tranId") or (existing.tran_id if existing else ""),
            subsidiary=sub.id,
            currency=currency.id,
            exchange_rate=rate_text(rate),
            tran_on=tran_on,
            period=period.id,
            created_at=existing.created_at if existing else now,
            modified_at=now,
            external_id=p.get("externalId"),
            memo=p.get("memo"),
        )

    def _build_sale(self, kind: str, p: Json, existing: Transaction | None) -> Plan:
        """Invoices and credit memos: AR against income or deferred revenue, and tax."""
        credit = kind == "creditMemo"
        customer, sub, currency = self._header(p, "entity")
        tran_on, period = self._dating(p, sub)
        rate = self._rate(p, currency, self.store.currencies[sub.currency], tran_on)
        ar = self._account(p, "account", "ar", ("AcctRec",))
        self._require(p, "item")
        items = [
            self._item_line(raw, n, currency.symbol) for n, raw in enumerate(p["item"]["items"])
        ]
        created_from = None
        if credit and "createdFrom" in p:
            origin = self.ref("invoice", p["createdFrom"], "createdFrom")
            if origin.entity != customer.id:
                raise errors.user_error("The invoice belongs to another customer.", "createdFrom")
            created_from = origin.id
        txn = self._new(kind, p, sub, currency, rate, tran_on, period, existing)
        txn.entity, txn.account, txn.items = customer.id, ar.id, items
        txn.other_ref, txn.created_from = p.get("otherRefNum"), created_from
        if "dueDate" in p:
            txn.due_on = self._day(p["dueDate"], "dueDate")
        total = txn.total_minor
        # Income (or deferred revenue) and tax sit on the side opposite AR.
        sales: list[tuple[str, str, int, str | None, str | None]] = []
        for line in items:
            item = self.store.items[line.item]
            if item.deferred_revenue_account is not None:
                sales.append(
                    (
                        "deferred_revenue",
                        item.deferred_revenue_account,
                        line.amount_minor,
                        item.id,
                        line.description,
                    )
                )
            else:
                sales.append(
                    ("revenue", item.income_account, line.amount_minor, item.id, line.description)
                )
        # One tax line per tax code (the GL carries the jurisdiction, as NetSuite's tax
        # agencies do), all on the tax-liability account; a line without a code is untagged.
        by_code: dict[str | None, int] = {}
        for line in items:
            if line.tax_minor:
                by_code[line.tax_code] = by_code.get(line.tax_code, 0) + line.tax_minor
        for tax_code, tax in by_code.items():
            sales.append(("tax", self.account_for("tax"), tax, None, tax_code))
        postings = [
            Posting(
                role,
                account,
                sub.id,
                debit_minor=amount if credit else 0,
                credit_minor=0 if credit else amount,
                entity=customer.id,
                item=item_id,
                memo=memo,
            )
            for role, account, amount, item_id, memo in sales
        ]
        if credit:
            txn.applies = self._settle(p, customer, currency, total, existing)
            postings += self._relief(txn, customer, total, ar.id)
        else:
            postings.insert(0, Posting("ar", ar.id, sub.id, debit_minor=total, entity=customer.id))
        gl = post(
            self._booking(kind, currency, tran_on, {sub.id: rate}, {sub.id: period.id}), postings
        )
        if not credit:
            txn.ar_base_minor = sum(line.debit_base_minor for line in gl if line.role == "ar")
        return Plan(txn, gl)

    def _relief(
        self, txn: Transaction, customer: Customer, total: int, unapplied_account: str
    ) -> list[Posting]:
        """AR credits of a payment or credit memo: each application at its invoice's base,
        the unapplied rest at the document's own rate."""
        postings = [
            Posting(
                "ar",
                self.store.transactions[app.doc].account or unapplied_account,
                txn.subsidiary,
                credit_minor=app.amount_minor,
                entity=customer.id,
                base_minor=app.ar_base_minor,
            )
            for app in txn.applies
        ]
        unapplied = total - sum(app.amount_minor for app in txn.applies)
        postings.append(
            Posting(
                "ar", unapplied_account, txn.subsidiary, credit_minor=unapplied, entity=customer.id
            )
        )
        return postings

    def _item_line(self, raw: Json, n: int, code: str) -> ItemLine:
        here = f"item.items[{n}]"
        if "item" not in raw:
            raise errors.missing_field(f"{here}.item")
        item = self.ref("serviceSaleItem", raw["item"], f"{here}.item")
        if item.is_inactive:
            raise errors.inactive_reference("item", item.id, f"{here}.item")
        quantity = decimal_in(raw["quantity"]) if "quantity" in raw else None
        unit = decimal_in(raw["rate"]) if "rate" in raw else None
        if "amount" in raw:
            amount = self._amount(raw["amount"], code, f"{here}.amount")
        elif quantity is not None and unit is not None:
            # NetSuite computes quantity × rate; we refuse a product finer than the currency.
            amount = self._amount(quantity * unit, code, f"{here}.amount")
        else:
            raise errors.missing_field(f"{here}.amount")
        tax = self._amount(raw["tax1Amt"], code, f"{here}.tax1Amt") if "tax1Amt" in raw else 0
        tax_code = raw.get("taxCode")
        if tax_code is not None and (not isinstance(tax_code, str) or not tax_code.strip()):
            raise errors.invalid_value(f"{here}.taxCode", tax_code, "a tax code is a name")
        return ItemLine(
            n,
            item.id,
            amount,
            tax,
            raw.get("description"),
            None if quantity is None else rate_text(quantity),
            None if unit is None else rate_text(unit),
            tax_code,
        )

    def _settle(
        self,
        p: Json,
        customer: Customer,
        currency: Currency,
        limit: int,
        existing: Transaction | None,
    ) -> list[Application]:
        """Applications to invoices: same customer and currency, within what remains open;
        each relieves its share of the invoice's AR at the invoice's own base value."""
        own = {a.doc: a for a in existing.applies} if existing else {}
        apps: list[Application] = []
        left = limit
        for n, raw in enumerate((p.get("apply") or {}).get("items", [])):
            here = f"apply.items[{n}]"
            if raw.get("apply") is False:
                continue
            invoice = self.ref("invoice", raw["doc"], f"{here}.doc")
            if invoice.voided:
                raise errors.user_error(f"Invoice {invoice.tran_id} is voided.", f"{here}.doc")
            if invoice.entity != customer.id:
                raise errors.user_error(
                    f"Invoice {invoice.tran_id} belongs to another customer.", f"{here}.doc"
                )
            if invoice.currency != currency.id:
                raise errors.user_error(
                    f"Invoice {invoice.tran_id} is in another currency.", f"{here}.doc"
                )
            if any(a.doc == invoice.id for a in apps):
                raise errors.user_error(
                    f"Invoice {invoice.tran_id} is applied twice.", f"{here}.doc"
                )
            mine = own.get(invoice.id)
            open_minor = invoice.amount_remaining_minor + (mine.amount_minor if mine else 0)
            open_base = (
                invoice.ar_base_minor
                - invoice.paid_base_minor
                + (mine.ar_base_minor if mine else 0)
            )
            amount = (
                self._amount(raw["amount"], currency.symbol, f"{here}.amount")
                if "amount" in raw
                else min(open_minor, left)
            )
            if amount == 0:
                continue
            if amount > open_minor:
                raise errors.user_error(
                    f"The amount applied to invoice {invoice.tran_id} exceeds what remains open on "
                    f"it ({_show(open_minor, currency.symbol)}).",
                    f"{here}.amount",
                )
            if amount > left:
                raise errors.user_error(
                    "The applications total more than the document's "
                    f"{_show(limit, currency.symbol)}.",
                    f"{here}.amount",
                )
            apps.append(Application(invoice.id, amount, apportion(open_base, amount, open_minor)))
            left -= amount
        return apps

    def _build_payment(self, kind: str, p: Json, existing: Transaction | None) -> Plan:
        """Customer payments: cash against AR; applied AR leaves at the invoices' base values,
        so the exchange difference lands on realized FX gain/loss."""
        customer, sub, currency = self._header(p, "customer")
        tran_on, period = self._dating(p, sub)
        rate = self._rate(p, currency, self.store.currencies[sub.currency], tran_on)
        deposit = self._account(p, "account", "cash", ("Bank", "OthCurrAsset"))
        self._require(p, "payment")
        amount = self._amount(p["payment"], currency.symbol, "payment")
        txn = self._new("customerPayment", p, sub, currency, rate, tran_on, period, existing)
        txn.entity, txn.account, txn.payment_minor = customer.id, deposit.id, amount
        txn.applies = self._settle(p, customer, currency, amount, existing)
        postings = [Posting("cash", deposit.id, sub.id, debit_minor=amount, entity=customer.id)]
        postings += self._relief(txn, customer, amount, self.account_for("ar"))
        gl = post(
            self._booking(
                "customerPayment", currency, tran_on, {sub.id: rate}, {sub.id: period.id}
            ),
            postings,
        )
        return Plan(txn, gl)

    def _build_journal(self, kind: str, p: Json, existing: Transaction | None) -> Plan:
        """Journal entries, intercompany ones included: balanced per subsidiary or refused."""
        self._require(p, "subsidiary", "line")
        s = self.store
        sub = self._active_subsidiary(self.ref("subsidiary", p["subsidiary"], "subsidiary"))
        to_sub = self._opt_ref("subsidiary", p, "toSubsidiary")
        if to_sub is not None:
            self._active_subsidiary(to_sub, "toSubsidiary")
        if to_sub is not None and to_sub.id == sub.id:
            raise errors.user_error("toSubsidiary must differ from subsidiary.", "toSubsidiary")
        currency = self._opt_ref("currency", p, "currency") or s.currencies[sub.currency]
        if to_sub is not None and currency.id not in (sub.currency, to_sub.currency):
            raise errors.user_error(
                "An intercompany journal is in the base currency of the subsidiary or of the "
                "to-subsidiary.",
                "currency",
            )
        tran_on, period = self._dating(p, sub)
        rates = {sub.id: self._rate(p, currency, s.currencies[sub.currency], tran_on)}
        periods = {sub.id: period.id}
        if to_sub is not None:
            rates[to_sub.id] = self.dated_rate(currency, s.currencies[to_sub.currency], tran_on)
            periods[to_sub.id] = self._period_on(to_sub.id, period.start_on, "toSubsidiary").id
        lines = [
            self._journal_line(raw, n, currency.symbol, sub, to_sub)
            for n, raw in enumerate(p["line"]["items"])
        ]
        for sub_id in rates:
            debits = sum(line.debit_minor for line in lines if line.subsidiary == sub_id)
            credits = sum(line.credit_minor for line in lines if line.subsidiary == sub_id)
            if debits != credits:
                name = s.subsidiaries[sub_id].name
                raise errors.user_error(
                    f"The journal entry is out of balance for {name}: debits "
                    f"{_show(debits, currency.symbol)} and credits "
                    f"{_show(credits, currency.symbol)}. "
                    "The total debits must equal the total credits.",
                    "line",
                )
        txn = self._new("journalEntry", p, sub, currency, rates[sub.id], tran_on, period, existing)
        txn.to_subsidiary, txn.lines = (to_sub.id if to_sub else None), lines
        postings = [
            Posting(
                "journal",
                line.account,
                line.subsidiary,
                debit_minor=line.debit_minor,
                credit_minor=line.credit_minor,
                entity=line.entity,
                memo=line.memo,
            )
            for line in lines
        ]
        gl = post(self._booking("journalEntry", currency, tran_on, rates, periods), postings)
        plan = Plan(txn, gl)
        if "reversalDate" in p:
            on = self._day(p["reversalDate"], "reversalDate")
            if on < tran_on:
                raise errors.user_error(
                    "The reversal date is before the journal's date.", "reversalDate"
                )
            txn.reversal_on = on
            back = {sub_id: self._period_on(sub_id, on, "reversalDate").id for sub_id in rates}
            reversal = replace(txn, tran_on=on, period=back[sub.id])
            plan.reversal = (reversal, mirror(gl, "", on, back))
        return plan

    def _journal_line(
        self, raw: Json, n: int, code: str, sub: Subsidiary, to_sub: Subsidiary | None
    ) -> JournalLine:
        here = f"line.items[{n}]"
        account = self.ref("account", raw["account"], f"{here}.account")
        if account.is_inactive:
            raise errors.inactive_reference("account", account.id, f"{here}.account")
        if ("debit" in raw) == ("credit" in raw):
            raise errors.user_error("Enter either a debit or a credit on each line.", here)
        debit = self._amount(raw["debit"], code, f"{here}.debit") if "debit" in raw else 0
        credit = self._amount(raw["credit"], code, f"{here}.credit") if "credit" in raw else 0
        line_sub = (
            self.ref("subsidiary", raw["lineSubsidiary"], f"{here}.lineSubsidiary")
            if "lineSubsidiary" in raw
            else sub
        )
        allowed = {sub.id} | ({to_sub.id} if to_sub else set())
        if line_sub.id not in allowed:
            raise errors.user_error(
                "A line posts to the journal's subsidiary or its toSubsidiary.",
                f"{here}.lineSubsidiary",
            )
        entity = None
        if "entity" in raw:
            customer = self.ref("customer", raw["entity"], f"{here}.entity")
            if customer.subsidiary != line_sub.id:
                raise errors.user_error(
                    f"The customer {customer.company_name} belongs to another subsidiary.",
                    f"{here}.entity",
                )
            entity = customer.id
        return JournalLine(n, account.id, line_sub.id, debit, credit, raw.get("memo"), entity)

    # async jobs ------------------------------------------------------------------------
    def submit(
        self, operation: str, key: str | None, run: Callable[[], tuple[int, str | None]]
    ) -> Job:
        """Run a write as a job now; a reused idempotency key is refused before it runs."""
        self._purge_jobs()
        if key is not None and key in self.store.idempotency_keys:
            raise errors.idempotency(JOB_PATH + self.store.idempotency_keys[key])
        location: str | None = None
        error: Json | None = None
        try:
            status, location = run()
        except SimError as exc:
            status = exc.status
            error = {
                "status": exc.status,
                "code": exc.code,
                "message": exc.message,
                "param": exc.param,
            }
        job = Job(
            self._next_id("job"),
            operation,
            self.now(),
            "failed" if error else "succeeded",
            status,
            key,
            location,
            error,
        )
        self.store.jobs[job.id] = job
        if key is not None:
            self.store.idempotency_keys[key] = job.id
        return job

    def _purge_jobs(self) -> None:
        """NetSuite purges async jobs after 30 days; we also keep at most MAX_JOBS. A purged
        job's idempotency key is free again, and its status is a 404."""
        jobs, now = self.store.jobs, self.now()
        while jobs:
            oldest = next(iter(jobs.values()))
            if now - oldest.created_at < JOB_RETENTION_S and len(jobs) < MAX_JOBS:
                return
            del jobs[oldest.id]
            if oldest.idempotency_key is not None:
                self.store.idempotency_keys.pop(oldest.idempotency_key, None)

    def job(self, key: str) -> Job:
        job = self.store.jobs.get(key)
        if job is None:
            raise errors.nonexistent("job", key)
        return job

    # SuiteQL ---------------------------------------------------------------------------
    def query(self, q: str, catalog: dict[str, suiteql.Table]) -> suiteql.Result:
        try:
            result = suiteql.run(q, catalog)
            if "links" in result.columns:
                # Every result row carries NetSuite's "links" array; a column cannot take it.
                raise suiteql.SuiteQLError("'links' is reserved and cannot name a column.")
            return result
        except suiteql.SuiteQLError as exc:
            raise errors.bad_parameter(
                "Invalid search query. Detailed unprocessed description follows. Search error "
                f"occurred: {exc.message}",
                "q",
            ) from None


def _show(minor: int, code: str) -> str:
    return f"{code} {amount_decimal(minor, code):,f}"

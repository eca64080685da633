"""Seed data: the default multi-entity world (three subsidiaries, chart, items, rates, periods)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

ACCOUNT_TYPES = frozenset(
    {
        "Bank",
        "AcctRec",
        "UnbilledRec",
        "OthCurrAsset",
        "FixedAsset",
        "AcctPay",
        "OthCurrLiab",
        "DeferRevenue",
        "LongTermLiab",
        "Equity",
        "Income",
        "OthIncome",
        "COGS",
        "Expense",
        "OthExpense",
    }
)
# The account roles postings need; a seed maps each to an account number.
ROLES = ("ar", "unbilled_ar", "cash", "deferred_revenue", "tax", "fx", "rounding")


@dataclass(frozen=True)
class SeedCurrency:
    symbol: str
    name: str


@dataclass(frozen=True)
class SeedSubsidiary:
    external_id: str
    name: str
    currency: str  # ISO code
    country: str
    parent: str | None = None  # external id of the parent subsidiary


@dataclass(frozen=True)
class SeedAccount:
    number: str
    name: str
    type: str


@dataclass(frozen=True)
class SeedItem:
    external_id: str
    name: str
    income_account: str  # account number
    deferred_revenue_account: str | None = None  # account number; set → revenue is deferred


@dataclass(frozen=True)
class SeedRate:
    """``currency`` → ``base`` at ``rate``, effective from the first period plus ``month_offset``
    months, or from ``effective_on`` (YYYY-MM-DD) when given."""

    base: str
    currency: str
    rate: str
    month_offset: int = 0
    effective_on: str | None = None


@dataclass(frozen=True)
class SeedData:
    """Everything the ERP starts with; ``first_period`` (YYYY-MM) defaults to the clock's month."""

    currencies: tuple[SeedCurrency, ...]
    subsidiaries: tuple[SeedSubsidiary, ...]
    accounts: tuple[SeedAccount, ...]
    items: tuple[SeedItem, ...]
    rates: tuple[SeedRate, ...]
    roles: dict[str, str] = field(default_factory=dict)  # role → account number
    first_period: str | None = None
    periods_ahead: int = 12

    def __post_init__(self) -> None:
        codes = {c.symbol for c in self.currencies}
        numbers = {a.number for a in self.accounts}
        subs = {s.external_id for s in self.subsidiaries}
        problems = [f"role {r} is not mapped" for r in ROLES if r not in self.roles]
        problems += [
            f"role {r} names unknown account {n}" for r, n in self.roles.items() if n not in numbers
        ]
        problems += [
            f"account {a.number} has type {a.type}"
            for a in self.accounts
            if a.type not in ACCOUNT_TYPES
        ]
        problems += [
            f"subsidiary {s.external_id} uses {s.currency}"
            for s in self.subsidiaries
            if s.currency not in codes
        ]
        problems += [
            f"subsidiary {s.external_id} has unknown parent {s.parent}"
            for s in self.subsidiaries
            if s.parent is not None and s.parent not in subs
        ]
        problems += [
            f"item {i.external_id} maps to unknown accounts"
            for i in self.items
            if i.income_account not in numbers
            or (
                i.deferred_revenue_account is not None and i.deferred_revenue_account not in numbers
            )
        ]
        problems += [
            f"rate {r.currency}->{r.base} names an unknown currency or is not positive"
            for r in self.rates
            if r.base not in codes or r.currency not in codes or Decimal(r.rate) <= 0
        ]
        if not self.subsidiaries:
            problems.append("a seed needs at least one subsidiary")
        if self.periods_ahead < 0:
            problems.append("periods_ahead must not be negative")
        if problems:
            raise ValueError("invalid ERP seed data: " + "; ".join(problems))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SeedData:
        """A seed from plain data (a YAML or JSON file): the same field names as the classes."""
        return cls(
            currencies=tuple(SeedCurrency(**c) for c in data["currencies"]),
            subsidiaries=tuple(SeedSubsidiary(**s) for s in data["subsidiaries"]),
            accounts=tuple(SeedAccount(**a) for a in data["accounts"]),
            items=tuple(SeedItem(**i) for i in data.get("items", [])),
            rates=tuple(SeedRate(**r) for r in data.get("rates", [])),
            roles=dict(data["roles"]),
            first_period=data.get("first_period"),
            periods_ahead=int(data.get("periods_ahead", 12)),
        )

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# USD value of one unit, for the first month and the month after; cross rates derive from it.
_USD_VALUE = {
    0: {
        "USD": Decimal("1"),
        "GBP": Decimal("1.27"),
        "EUR": Decimal("1.09"),
        "JPY": Decimal("0.0067"),
    },
    1: {
        "USD": Decimal("1"),
        "GBP": Decimal("1.25"),
        "EUR": Decimal("1.08"),
        "JPY": Decimal("0.0066"),
    },
}


def _cross_rates() -> tuple[SeedRate, ...]:
    rates = []
    for offset, value in _USD_VALUE.items():
        for base in ("USD", "GBP", "EUR"):
            for currency in value:
                if currency != base:
                    rate = (value[currency] / value[base]).quantize(
                        Decimal("0.000001"), rounding=ROUND_HALF_UP
                    )
                    rates.append(SeedRate(base, currency, str(rate), offset))
    return tuple(rates)


def default_seed() -> SeedData:
    """Finsim Inc. (US, USD) with Finsim Ltd. (UK, GBP) and Finsim GmbH (DE, EUR) under it."""
    return SeedData(
        currencies=(
            SeedCurrency("USD", "US Dollar"),
            SeedCurrency("GBP", "British Pound"),
            SeedCurrency("EUR", "Euro"),
            SeedCurrency("JPY", "Japanese Yen"),
        ),
        subsidiaries=(
            SeedSubsidiary("US", "Finsim Inc.", "USD", "US"),
            SeedSubsidiary("UK", "Finsim Ltd.", "GBP", "GB", parent="US"),
            SeedSubsidiary("DE", "Finsim GmbH", "EUR", "DE", parent="US"),
        ),
        accounts=(
            SeedAccount("1000", "Cash", "Bank"),
            SeedAccount("1100", "Accounts Receivable", "AcctRec"),
            SeedAccount("1150", "Unbilled Receivables", "UnbilledRec"),
            SeedAccount("1200", "Intercompany Receivable", "OthCurrAsset"),
            SeedAccount("2100", "Intercompany Payable", "OthCurrLiab"),
            SeedAccount("2200", "Sales Tax Payable", "OthCurrLiab"),
            SeedAccount("2400", "Deferred Revenue", "DeferRevenue"),
            SeedAccount("3000", "Retained Earnings", "Equity"),
            SeedAccount("4000", "Subscription Revenue", "Income"),
            SeedAccount("4100", "Usage Revenue", "Income"),
            SeedAccount("4200", "Services Revenue", "Income"),
            SeedAccount("6000", "Operating Expenses", "Expense"),
            SeedAccount("7100", "Realized FX Gain/Loss", "OthIncome"),
            SeedAccount("7200", "Unrealized FX Gain/Loss", "OthIncome"),
            SeedAccount("7900", "Rounding Gain/Loss", "OthExpense"),
        ),
        items=(
            SeedItem("SUBSCRIPTION", "Subscription", "4000", deferred_revenue_account="2400"),
            SeedItem("USAGE", "Usage", "4100"),
            SeedItem("SERVICES", "Professional Services", "4200"),
        ),
        rates=_cross_rates(),
        roles={
            "ar": "1100",
            "unbilled_ar": "1150",
            "cash": "1000",
            "deferred_revenue": "2400",
            "tax": "2200",
            "fx": "7100",
            "rounding": "7900",
        },
    )

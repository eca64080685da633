"""Billing records and pure billing arithmetic: periods, prorations, invoice and credit totals."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

import orjson

from simulators.billing.amounts import LineTax, unit_times_quantity
from simulators.common.clock import add_months
from simulators.common.jsonbytes import dumps_kept
from simulators.common.money import div_round_half_up

DAY = 86400
FINALIZE_AFTER_S = 3600  # renewal drafts are finalised an hour after creation, as in Stripe


# --- records ------------------------------------------------------------------------------
@dataclass
class Customer:
    id: str
    created: int
    email: str | None = None
    name: str | None = None
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    balance: int = 0  # negative is credit the customer holds
    currency: str | None = None
    default_payment_method: str | None = None
    test_clock: str | None = None
    deleted: bool = False
    address: dict[str, str | None] | None = None
    tax_exempt: str = "none"  # none | exempt | reverse
    discount: str | None = None  # the customer's discount (di_…)


@dataclass
class TaxIdRecord:
    id: str
    created: int
    customer: str
    type: str
    value: str
    country: str | None = None


@dataclass
class TaxRate:
    id: str
    created: int
    display_name: str
    percentage: str  # a decimal string, up to 4 decimals: exact arithmetic
    inclusive: bool
    active: bool = True
    country: str | None = None
    state: str | None = None
    jurisdiction: str | None = None
    jurisdiction_level: str | None = None
    description: str | None = None
    tax_type: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class Coupon:
    id: str
    created: int
    duration: str  # once | repeating | forever
    percent_off: str | None = None  # a decimal string: exact arithmetic
    amount_off: int | None = None
    currency: str | None = None
    duration_in_months: int | None = None
    name: str | None = None
    max_redemptions: int | None = None
    redeem_by: int | None = None
    times_redeemed: int = 0
    metadata: dict[str, str] = field(default_factory=dict)
    deleted: bool = False
    applies_to: list[str] | None = None  # products it is restricted to; None: every line

    @property
    def valid(self) -> bool:
        """Whether it can still be redeemed (``redeem_by`` is checked against the clock when
        a discount is made)."""
        return not self.deleted and (
            self.max_redemptions is None or self.times_redeemed < self.max_redemptions
        )

    def applies(self, product: str | None) -> bool:
        """Whether it takes anything off a line of ``product`` (``applies_to[products]``)."""
        return self.applies_to is None or product in self.applies_to


@dataclass
class PromotionCode:
    id: str
    created: int
    code: str
    coupon: str
    active: bool = True
    customer: str | None = None
    expires_at: int | None = None
    max_redemptions: int | None = None
    times_redeemed: int = 0
    first_time_transaction: bool = False
    minimum_amount: int | None = None
    minimum_amount_currency: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class Discount:
    """A coupon applied to a customer, subscription (item), invoice or invoice item."""

    id: str
    coupon: str
    start: int
    end: int | None = None  # repeating: start + duration_in_months; once: when it was used
    customer: str | None = None
    subscription: str | None = None
    subscription_item: str | None = None
    invoice: str | None = None
    invoice_item: str | None = None
    promotion_code: str | None = None
    deleted: bool = False

    def active(self, at: int) -> bool:
        return not self.deleted and (self.end is None or at < self.end)


@dataclass
class PaymentMethod:
    id: str
    created: int
    brand: str
    last4: str
    decline_code: str | None = None  # set for Stripe's declining test cards
    funding: str = "credit"
    customer: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class Product:
    id: str
    created: int
    name: str
    active: bool = True
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    updated: int = 0
    default_price: str | None = None
    tax_code: str | None = None


@dataclass
class Recurring:
    interval: str  # day | week | month | year
    interval_count: int = 1
    usage_type: str = "licensed"  # licensed | metered
    meter: str | None = None


@dataclass
class Price:
    id: str
    created: int
    product: str
    currency: str
    unit_amount: int
    recurring: Recurring | None = None
    active: bool = True
    lookup_key: str | None = None
    nickname: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    tax_behavior: str = "unspecified"
    # Set when the price was given as unit_amount_decimal (minor units, up to 12 decimals);
    # unit_amount then holds it rounded half-up, for readers that want a whole figure.
    unit_amount_decimal: str | None = None

    @property
    def metered(self) -> bool:
        return self.recurring is not None and self.recurring.usage_type == "metered"

    @property
    def whole(self) -> bool:
        """Whether the unit amount is a whole number of minor units (Stripe then shows it)."""
        return self.unit_amount_decimal is None or Decimal(self.unit_amount_decimal) == int(
            Decimal(self.unit_amount_decimal)
        )

    def amount_for(self, quantity: int) -> int:
        """What ``quantity`` units cost: a decimal unit price is multiplied out exactly and
        the line rounded half-up once."""
        if self.unit_amount_decimal is None:
            return self.unit_amount * quantity
        return unit_times_quantity(self.unit_amount_decimal, quantity)


@dataclass
class SubscriptionItem:
    id: str
    subscription: str
    price: str
    quantity: int
    created: int
    metadata: dict[str, str] = field(default_factory=dict)
    tax_rates: list[str] = field(default_factory=list)
    discounts: list[str] = field(default_factory=list)


@dataclass
class Subscription:
    id: str
    customer: str
    currency: str
    created: int
    start_date: int
    billing_cycle_anchor: int
    current_period_start: int
    current_period_end: int
    items: list[str] = field(default_factory=list)
    status: str = "incomplete"
    cancel_at_period_end: bool = False
    cancel_at: int | None = None
    canceled_at: int | None = None
    ended_at: int | None = None
    latest_invoice: str | None = None
    default_payment_method: str | None = None
    collection_method: str = "charge_automatically"
    days_until_due: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    test_clock: str | None = None
    cycles: int = 0  # renewals so far: the period end is anchor + (cycles + 1) intervals
    cancellation_reason: str | None = None
    default_tax_rates: list[str] = field(default_factory=list)
    automatic_tax: bool = False
    discounts: list[str] = field(default_factory=list)
    trial_start: int | None = None
    trial_end: int | None = None
    trial_will_end_sent: bool = False
    pause_behavior: str | None = None  # void | keep_as_draft | mark_uncollectible
    pause_resumes_at: int | None = None

    def paused_at(self, at: int) -> str | None:
        """The pause_collection behavior in force at ``at``, if collection is paused."""
        if self.pause_behavior is None:
            return None
        if self.pause_resumes_at is not None and at >= self.pause_resumes_at:
            return None
        return self.pause_behavior


@dataclass
class InvoiceItem:
    id: str
    customer: str
    amount: int
    currency: str
    date: int
    period_start: int
    period_end: int
    description: str | None = None
    quantity: int = 1
    price: str | None = None
    proration: bool = False
    subscription: str | None = None
    subscription_item: str | None = None
    invoice: str | None = None  # None while pending
    metadata: dict[str, str] = field(default_factory=dict)
    test_clock: str | None = None
    deleted: bool = False
    tax_rates: list[str] = field(default_factory=list)
    discounts: list[str] = field(default_factory=list)
    discountable: bool = True


@dataclass
class InvoiceLine:
    id: str
    invoice: str
    amount: int
    currency: str
    description: str
    quantity: int
    period_start: int
    period_end: int
    price: str | None = None
    product: str | None = None
    proration: bool = False
    subscription: str | None = None
    subscription_item: str | None = None
    invoice_item: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    tax_rates: list[str] = field(default_factory=list)  # the line's own; else the invoice's
    discounts: list[str] = field(default_factory=list)  # the line's own (item-level) discounts
    discountable: bool = True
    taxes: list[LineTax] = field(default_factory=list)
    # Discount id -> amount off this line, in the order applied (line's own, then invoice's).
    discount_amounts: dict[str, int] = field(default_factory=dict)

    @property
    def discount_total(self) -> int:
        return sum(self.discount_amounts.values())

    @property
    def exclusive_tax(self) -> int:
        return sum(t.amount for t in self.taxes if not t.inclusive)

    @property
    def inclusive_tax(self) -> int:
        return sum(t.amount for t in self.taxes if t.inclusive)


@dataclass
class Invoice:
    id: str
    customer: str
    currency: str
    created: int
    period_start: int
    period_end: int
    billing_reason: str
    collection_method: str = "charge_automatically"
    subscription: str | None = None
    status: str = "draft"
    lines: list[InvoiceLine] = field(default_factory=list)
    number: str | None = None
    description: str | None = None
    auto_advance: bool = True
    starting_balance: int = 0
    ending_balance: int | None = None
    applied_balance: int = 0  # negative: customer credit used; positive: debt added
    amount_due: int = 0
    amount_paid: int = 0
    pre_payment_credit_notes_amount: int = 0
    post_payment_credit_notes_amount: int = 0
    attempt_count: int = 0
    attempted: bool = False
    next_payment_attempt: int | None = None
    due_date: int | None = None
    finalized_at: int | None = None
    paid_at: int | None = None
    voided_at: int | None = None
    marked_uncollectible_at: int | None = None
    paid_out_of_band: bool = False
    metadata: dict[str, str] = field(default_factory=dict)
    test_clock: str | None = None
    default_tax_rates: list[str] = field(default_factory=list)
    automatic_tax: bool = False
    # "complete" once automatic tax was computed; "requires_location_inputs" without an address.
    automatic_tax_status: str | None = None
    customer_tax_exempt: str = "none"
    discounts: list[str] = field(default_factory=list)  # invoice-level discounts
    # The sums, kept by ``refresh_totals`` whenever lines change (a stored figure, so copies
    # of the invoice keep the figure it had).
    subtotal: int = 0
    total: int = 0
    total_excluding_tax: int = 0
    subtotal_excluding_tax: int = 0

    def refresh_totals(self) -> None:
        """total = Σ line amounts − discounts + exclusive tax (inclusive tax is inside the
        amounts). subtotal excludes exclusive tax and invoice-level discounts only: a line's
        own discounts are already taken off it, as Stripe defines ``subtotal``."""
        gross = sum(line.amount for line in self.lines)
        own = sum(
            amount
            for line in self.lines
            for discount, amount in line.discount_amounts.items()
            if discount in line.discounts
        )
        discounts = sum(line.discount_total for line in self.lines)
        exclusive = sum(line.exclusive_tax for line in self.lines)
        inclusive = sum(line.inclusive_tax for line in self.lines)
        self.subtotal = gross - own
        self.total = gross - discounts + exclusive
        self.total_excluding_tax = self.total - exclusive - inclusive
        self.subtotal_excluding_tax = self.subtotal - inclusive

    @property
    def amount_remaining(self) -> int:
        if self.status in ("draft", "void"):
            return self.amount_due if self.status == "draft" else 0
        return max(0, self.amount_due - self.amount_paid)


@dataclass
class CreditNoteLine:
    id: str
    amount: int  # gross: before discounts and exclusive tax, as Stripe's line amount
    type: str
    description: str | None
    quantity: int | None
    unit_amount: int | None
    invoice_line_item: str | None
    taxes: list[LineTax] = field(default_factory=list)
    discount_amounts: dict[str, int] = field(default_factory=dict)

    @property
    def discount_amount(self) -> int:
        return sum(self.discount_amounts.values())

    @property
    def total(self) -> int:
        return (
            self.amount
            - self.discount_amount
            + sum(t.amount for t in self.taxes if not t.inclusive)
        )


@dataclass
class CreditNote:
    id: str
    invoice: str
    customer: str
    number: str
    currency: str
    created: int
    lines: list[CreditNoteLine]
    type: str  # pre_payment | post_payment
    pre_payment_amount: int = 0
    refund_amount: int = 0
    credit_amount: int = 0
    out_of_band_amount: int = 0
    status: str = "issued"
    reason: str | None = None
    memo: str | None = None
    voided_at: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """What the note credits: line amounts less discounts plus exclusive tax."""
        return sum(line.total for line in self.lines)

    @property
    def subtotal(self) -> int:
        return sum(line.amount for line in self.lines)

    @property
    def discount_amount(self) -> int:
        return sum(line.discount_amount for line in self.lines)

    @property
    def post_payment_amount(self) -> int:
        return self.refund_amount + self.credit_amount + self.out_of_band_amount


@dataclass
class Meter:
    id: str
    created: int
    display_name: str
    event_name: str
    formula: str = "sum"
    customer_key: str = "stripe_customer_id"
    value_key: str = "value"
    status: str = "active"
    updated: int = 0


@dataclass
class MeterEvent:
    event_name: str
    identifier: str
    customer: str
    value: float
    timestamp: int
    created: int
    payload: dict[str, str] = field(default_factory=dict)


@dataclass
class TestClock:
    id: str
    created: int
    frozen_time: int
    name: str | None = None
    status: str = "ready"
    deleted: bool = False

    __test__ = False  # not a pytest class


@dataclass(slots=True)
class Event:
    """An event as it was sent: its object is kept serialised (JSON), as of the event.

    Bytes, not the rendered dict: the log only grows, and a dict of lists and dicts per event
    is what the cyclic collector walks on every request under load; one bytes object is not
    walked at all, and a webhook payload embeds it without serialising it again."""

    id: str
    type: str
    created: int
    object_json: bytes
    previous_attributes: dict[str, Any] | None = None
    request_id: str | None = None
    idempotency_key: str | None = None
    seq: int = 0

    @property
    def data(self) -> dict[str, Any]:
        """The event's object, decoded afresh (a copy: the event itself never changes)."""
        obj: dict[str, Any] = orjson.loads(self.object_json)
        return obj

    def as_json(self) -> dict[str, Any]:
        """The event as a JSON-able record (``restore`` takes it back)."""
        record = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "object_json"}
        return {**record, "data": self.data}

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> Event:
        values = dict(record)
        return cls(object_json=dumps_kept(values.pop("data")), **values)


@dataclass
class WebhookEndpointRecord:
    id: str
    created: int
    url: str
    enabled_events: list[str]
    secret: str
    status: str = "enabled"
    description: str | None = None
    api_version: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    deleted: bool = False


# --- pure arithmetic ----------------------------------------------------------------------
def period_end(anchor: int, recurring: Recurring, cycles: int) -> int:
    """End of the period after ``cycles`` renewals: computed from the anchor, so day clamping
    (Jan 31 → Feb 28) never drifts (Mar 31 follows, not Mar 28)."""
    n = (cycles + 1) * recurring.interval_count
    if recurring.interval == "month":
        return add_months(anchor, n)
    if recurring.interval == "year":
        return add_months(anchor, 12 * n)
    if recurring.interval == "week":
        return anchor + 7 * DAY * n
    return anchor + DAY * n


def proration(amount: int, start: int, end: int, at: int) -> int:
    """The share of ``amount`` for the unused time [at, end) of the period [start, end),
    to the second, rounded half-up per line (our documented choice)."""
    if not start <= at <= end or end <= start:
        raise ValueError("proration time must lie within the period")
    return div_round_half_up(amount * (end - at), end - start)


def apply_balance(total: int, balance: int) -> int:
    """How much of a customer balance an invoice of ``total`` uses (negative = credit used).

    A credit (negative balance) covers at most the total; a debt (positive) is added whole;
    a total of zero or less never draws on the balance — it adds credit when finalised."""
    if total <= 0:
        return 0
    if balance < 0:
        return max(balance, -total)
    return balance


def aggregate(values: list[float], formula: str) -> float:
    if formula == "count":
        return float(len(values))
    if formula == "last":
        return values[-1] if values else 0.0
    return float(sum(values))

"""The oracle's expected documents and figures, keyed by the names a scenario gives."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.oracle.arithmetic import add_months, earned_by_day


@dataclass(frozen=True)
class ExpectedLine:
    """One invoice line: ``kind`` is ``licensed`` (in advance), ``usage`` (in arrears) or
    ``proration`` (an unused-time credit or remaining-time debit)."""

    kind: str
    price: str  # the scenario's price key
    quantity: int
    amount_minor: int
    period_start: int
    period_end: int
    discount_minor: int = 0  # what the subscription's coupon takes off (not off prorations)
    tax_minor: int = 0  # every tax on the line, inclusive and exclusive
    exclusive_tax_minor: int = 0  # the part added on top of the amount

    @property
    def proration(self) -> bool:
        return self.kind == "proration"

    @property
    def earned_minor(self) -> int:
        """Revenue: the amount less the discount and the tax included in it."""
        inclusive = self.tax_minor - self.exclusive_tax_minor
        return self.amount_minor - self.discount_minor - inclusive

    @property
    def total_minor(self) -> int:
        return self.amount_minor - self.discount_minor + self.exclusive_tax_minor


@dataclass
class ExpectedCreditNote:
    n: int  # 1-based among the credit notes of its invoice
    created_at: int
    total_minor: int
    pre_payment_minor: int = 0
    refund_minor: int = 0
    credit_minor: int = 0  # to the customer balance
    out_of_band_minor: int = 0


@dataclass
class ExpectedInvoice:
    """A billing invoice of a subscription; ``n`` is its 1-based place among that
    subscription's invoices in creation order."""

    opportunity: str
    customer: str
    currency: str
    n: int
    billing_reason: str
    created_at: int
    period_start: int
    period_end: int
    lines: list[ExpectedLine]
    finalize_at: int  # when it leaves draft (renewal drafts wait an hour)
    status: str = "draft"
    finalized_at: int | None = None
    applied_balance_minor: int = 0  # negative: customer credit used
    amount_due_minor: int = 0
    amount_paid_minor: int = 0
    paid_at: int | None = None
    voided_at: int | None = None
    credit_notes: list[ExpectedCreditNote] = field(default_factory=list)
    collection: str = "send_invoice"  # or charge_automatically: paid when finalised

    @property
    def total_minor(self) -> int:
        """Σ line amounts − discounts + exclusive tax (inclusive tax is inside the amounts)."""
        return sum(line.total_minor for line in self.lines)

    @property
    def amount_remaining_minor(self) -> int:
        return (
            0 if self.status != "open" else max(0, self.amount_due_minor - self.amount_paid_minor)
        )

    @property
    def ref(self) -> str:
        return f"{self.opportunity}#{self.n}"


@dataclass
class ExpectedItem:
    price: str
    quantity: int


@dataclass
class ExpectedSubscription:
    """The subscription the integration creates when ``opportunity`` (new business) is won,
    or one made in billing (``opportunity`` is then the step's key)."""

    opportunity: str
    customer: str
    currency: str
    interval_months: int
    start_at: int
    items: list[ExpectedItem]
    cycles: int = 0  # renewals so far: the period is [anchor + cycles, anchor + cycles + 1)
    status: str = "active"
    cancel_at_period_end: bool = False
    ended_at: int | None = None
    amendments: list[str] = field(default_factory=list)  # opportunities applied to it
    pending: list[ExpectedLine] = field(default_factory=list)  # not yet invoiced
    collection: str = "send_invoice"  # the CRM flow invoices; a self-serve sign-up is charged
    tax_rates: list[str] = field(default_factory=list)  # fixture keys: default_tax_rates
    coupon: str | None = None  # fixture key: the subscription's discount
    coupon_used: bool = False  # a ``once`` coupon is spent by the first invoice it reduces

    @property
    def period_start(self) -> int:
        return add_months(self.start_at, self.cycles * self.interval_months)

    @property
    def period_end(self) -> int:
        return add_months(self.start_at, (self.cycles + 1) * self.interval_months)


@dataclass(frozen=True)
class Change:
    """A change of a subscription that its contract follows as a prospective modification
    effective at ``at`` (docs/reference-flow.md, points 2 and 8)."""

    opportunity: str  # the subscription's new-business opportunity
    kind: str  # amendment | renewal | update | cancel | cancel_at_period_end | concession
    at: int
    before: dict[str, int]  # price → quantity of the items before the change
    after: dict[str, int]  # and after it
    # price → net of the prorations billing made at the change (a concession: what a credit
    # note or void took back)
    prorations: dict[str, int]
    period_start: int  # the billing period the change falls in
    period_end: int


@dataclass(frozen=True)
class Consumption:
    """Metered usage of a subscription's usage price, recognised as it is consumed."""

    opportunity: str
    price: str
    at: int
    amount_minor: int


@dataclass(frozen=True)
class Segment:
    """How a contract line earns from ``effective_at`` on: ``base_minor`` earned before it,
    plus ``amount_minor`` spread by day over [start_at, end_at) (nothing more when
    ``start_at`` is None). A modification appends one; earlier ones are never edited, so
    revenue before a change is never restated."""

    effective_at: int
    base_minor: int
    amount_minor: int = 0
    start_at: int | None = None
    end_at: int | None = None


@dataclass
class ExpectedContractLine:
    """A performance obligation of a subledger contract, for one subscription item's price."""

    price: str  # the scenario's price key
    product: str
    pattern: str  # ratable | point_in_time | usage
    quantity: int
    unit_price_minor: int  # over the whole term
    unit_ssp_minor: int  # over what the line covers (the whole term when booked)
    service_start_at: int
    service_end_at: int
    amount_minor: int = 0  # the line's consideration: what the customer pays for it in all
    allocated_minor: int = 0  # its share of the transaction price, as last re-allocated
    terminated_at: int | None = None
    segments: list[Segment] = field(default_factory=list)
    billed: list[tuple[int, int]] = field(default_factory=list)  # (instant, signed minor)
    consumed: list[tuple[int, int]] = field(default_factory=list)  # usage: (instant, minor)
    schedule: dict[str, int] = field(default_factory=dict)  # YYYY-MM → minor, whole life

    def earned(self, before: int) -> int:
        """Revenue recognised before instant ``before``."""
        if self.pattern == "usage":
            return sum(amount for at, amount in self.consumed if at < before)
        segment = None
        for candidate in self.segments:
            if candidate.effective_at <= before - 1:
                segment = candidate
        if segment is None:
            return 0
        if segment.start_at is None or segment.end_at is None:
            return segment.base_minor
        return segment.base_minor + earned_by_day(
            segment.amount_minor, segment.start_at, segment.end_at, before
        )

    def billed_before(self, before: int) -> int:
        """Billed net of credits before instant ``before``."""
        return sum(amount for at, amount in self.billed if at < before)

    @property
    def last_at(self) -> int:
        """The last instant at which the line can still earn something."""
        instants = [self.service_start_at, *(at for at, _ in self.consumed)]
        for segment in self.segments:
            instants.append(segment.effective_at)
            if segment.end_at is not None:
                instants.append(segment.end_at)
        return max(instants)


@dataclass
class ExpectedContract:
    """The subledger contract booked for a new-business opportunity's subscription."""

    opportunity: str
    customer: str
    entity: str  # upper case, as the subledger names it
    currency: str
    booked_at: int
    lines: list[ExpectedContractLine]
    interval_months: int = 1
    term_months: int = 12
    predicted: bool = True  # False when the oracle cannot follow it (see ``Expected.notes``)

    def live(self, price: str) -> ExpectedContractLine | None:
        """The line that bills ``price`` now: the latest one for it not terminated."""
        found = [x for x in self.lines if x.price == price and x.terminated_at is None]
        return found[-1] if found else None

    @property
    def schedule(self) -> dict[str, int]:
        months: dict[str, int] = {}
        for line in self.lines:
            for month, amount in line.schedule.items():
                months[month] = months.get(month, 0) + amount
        return dict(sorted(months.items()))


@dataclass(frozen=True)
class ExpectedErpDocument:
    """An ERP document the integration owes: ``source`` names the billing document it
    mirrors (``<opportunity>#<n>`` for an invoice, ``…/cn<k>`` for a credit note)."""

    kind: str  # invoice | creditMemo | customerPayment
    source: str
    total_minor: int
    currency: str


@dataclass
class Expected:
    """Everything the oracle predicts for a scenario, by the scenario's own names."""

    scenario: str
    end_at: int
    subscriptions: dict[str, ExpectedSubscription] = field(default_factory=dict)
    invoices: dict[str, list[ExpectedInvoice]] = field(default_factory=dict)
    balances: dict[str, int] = field(default_factory=dict)  # customer → Stripe balance
    contracts: dict[str, ExpectedContract] = field(default_factory=dict)
    recognised: dict[tuple[str, str], int] = field(default_factory=dict)  # (ENTITY, YYYY-MM)
    deferred: dict[str, int] = field(default_factory=dict)  # ENTITY → deferred revenue at end
    erp: list[ExpectedErpDocument] = field(default_factory=list)
    root: dict[str, str] = field(default_factory=dict)  # any opportunity → its subscription's
    changes: list[Change] = field(default_factory=list)  # what the contracts had to follow
    notes: list[str] = field(default_factory=list)  # what the oracle did not predict, and why

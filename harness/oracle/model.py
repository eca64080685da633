"""The oracle's expected documents and figures, keyed by the names a scenario gives."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.oracle.arithmetic import add_months


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

    @property
    def proration(self) -> bool:
        return self.kind == "proration"


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
    credit_notes: list[ExpectedCreditNote] = field(default_factory=list)

    @property
    def total_minor(self) -> int:
        return sum(line.amount_minor for line in self.lines)

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
    """The subscription the integration creates when ``opportunity`` (new business) is won."""

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

    @property
    def period_start(self) -> int:
        return add_months(self.start_at, self.cycles * self.interval_months)

    @property
    def period_end(self) -> int:
        return add_months(self.start_at, (self.cycles + 1) * self.interval_months)


@dataclass
class ExpectedContractLine:
    price: str
    product: str
    pattern: str  # ratable | point_in_time | usage
    quantity: int
    unit_price_minor: int  # over the whole term
    unit_ssp_minor: int  # over the whole term
    service_start_at: int
    service_end_at: int
    allocated_minor: int = 0
    schedule: dict[str, int] = field(default_factory=dict)  # YYYY-MM → minor units

    @property
    def amount_minor(self) -> int:
        return self.quantity * self.unit_price_minor


@dataclass
class ExpectedContract:
    """The subledger contract booked for a new-business opportunity's subscription."""

    opportunity: str
    customer: str
    entity: str  # upper case, as the subledger names it
    currency: str
    booked_at: int
    lines: list[ExpectedContractLine]
    predicted: bool = True  # False once an amendment or renewal changed it (see docs)

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
    erp: list[ExpectedErpDocument] = field(default_factory=list)
    root: dict[str, str] = field(default_factory=dict)  # any opportunity → its subscription's
    notes: list[str] = field(default_factory=list)  # what the oracle did not predict, and why

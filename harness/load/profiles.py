"""The load profiles `harness load --profile NAME` runs: locustfile, defaults, calendar, faults."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The Locust suites live beside the harness in the repository (`loadtests/`); the harness
# names their files and never imports them (they run in Locust's own processes).
LOADTESTS = Path(__file__).resolve().parents[2] / "loadtests"

# Fault rules a profile turns on for the Locust run (POST /_sim/faults); they hit only the
# integration's traffic, never the load users (who act as the vendors' own staff), and are
# removed when the run ends so the integration can catch up before the verdict.
ERP_THROTTLE = {
    "system": "erp",
    "operation": "*",
    "kind": "throttle",
    "probability": 0.1,
    "should_retry": True,
    "retry_after_s": 1,
}
ERP_OUTAGE = {
    "system": "erp",
    "operation": "*",
    "kind": "outage",
    "probability": 0.03,
    "retry_after_s": 1,
}
BILLING_THROTTLE = {
    "system": "billing",
    "operation": "retrieve*",
    "kind": "throttle",
    "probability": 0.05,
    "should_retry": True,
    "retry_after_s": 1,
}
DUPLICATE_INVOICE_WEBHOOKS = {
    "system": "billing",
    "operation": "invoice.*",
    "kind": "duplicate",
    "copies": 2,
    "probability": 0.3,
}


@dataclass(frozen=True)
class Calendar:
    """How the clock user moves sim time: ``step`` every ``every_s`` wall seconds, and whether
    it closes each ended month in the subledger, as finance does."""

    step: str = "P7D"
    every_s: float = 2.0
    close_periods: bool = False


@dataclass(frozen=True)
class Profile:
    name: str
    locustfile: str  # a file of loadtests/profiles/
    summary: str
    users: int
    spawn_rate: float
    duration_s: int
    calendar: Calendar
    faults: list[dict[str, Any]] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return LOADTESTS / "profiles" / self.locustfile


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in [
        Profile(
            "closed-won-spike",
            "closed_won_spike.py",
            "sales ops close new business in a quarter-end spike (CRM → billing, ERP, subledger)",
            users=20,
            spawn_rate=10,
            duration_s=60,
            calendar=Calendar("P1D", 2.0),
        ),
        Profile(
            "renewal-storm",
            "renewal_storm.py",
            "a book of card subscriptions renewing together as the clock crosses month ends",
            users=20,
            spawn_rate=10,
            duration_s=60,
            calendar=Calendar("P7D", 2.0),
        ),
        Profile(
            "usage-flood",
            "usage_flood.py",
            "metered customers flooding meter events; usage invoices at each month end",
            users=20,
            spawn_rate=10,
            duration_s=60,
            calendar=Calendar("P7D", 3.0),
        ),
        Profile(
            "bulk-payments",
            "bulk_payments.py",
            "invoiced customers paying open invoices in waves (invoice.paid → ERP payments)",
            users=20,
            spawn_rate=20,
            duration_s=60,
            calendar=Calendar("P7D", 2.0),
        ),
        Profile(
            "period-close",
            "period_close.py",
            "deals booked while finance closes each ended month: period.closed → ERP journals",
            users=10,
            spawn_rate=5,
            duration_s=60,
            calendar=Calendar("P1M", 5.0, True),
        ),
        Profile(
            "month-end",
            "month_end.py",
            "all of the above at once, in the closed-won spike shape",
            users=30,
            spawn_rate=10,
            duration_s=120,
            calendar=Calendar("P7D", 3.0, True),
        ),
        Profile(
            "month-end-faults",
            "month_end.py",
            "month-end with ERP throttling and outages and duplicated invoice webhooks",
            users=30,
            spawn_rate=10,
            duration_s=120,
            calendar=Calendar("P7D", 3.0, True),
            faults=[ERP_THROTTLE, ERP_OUTAGE, BILLING_THROTTLE, DUPLICATE_INVOICE_WEBHOOKS],
        ),
        Profile(
            "smoke",
            "renewal_storm.py",
            "seconds of renewals with duplicated webhooks and ERP throttling",
            users=3,
            spawn_rate=3,
            duration_s=4,
            calendar=Calendar("P15D", 1.0),
            faults=[ERP_THROTTLE, DUPLICATE_INVOICE_WEBHOOKS],
        ),
    ]
}

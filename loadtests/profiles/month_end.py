"""Locustfile: the whole close period at once, in the spike shape."""

from loadtests.shapes import SpikeShape
from loadtests.users import (
    BillingPayerUser,
    BillingSubscriberUser,
    BillingUsageUser,
    CalendarUser,
    CrmSalesOpsUser,
)

__all__ = [
    "BillingPayerUser",
    "BillingSubscriberUser",
    "BillingUsageUser",
    "CalendarUser",
    "CrmSalesOpsUser",
    "SpikeShape",
]

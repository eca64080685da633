"""Locustfile: metered customers flooding meter events."""

from loadtests.shapes import RampHoldShape
from loadtests.users import BillingUsageUser, CalendarUser

__all__ = ["BillingUsageUser", "CalendarUser", "RampHoldShape"]

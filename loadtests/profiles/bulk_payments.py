"""Locustfile: invoiced customers paying open invoices in waves."""

from loadtests.shapes import BurstShape
from loadtests.users import BillingPayerUser, CalendarUser

__all__ = ["BillingPayerUser", "BurstShape", "CalendarUser"]

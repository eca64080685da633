"""Locustfile: card subscriptions piling up, then renewing together as months end."""

from loadtests.shapes import RampHoldShape
from loadtests.users import BillingSubscriberUser, CalendarUser

__all__ = ["BillingSubscriberUser", "CalendarUser", "RampHoldShape"]

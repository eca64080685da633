"""Locustfile: deals booked while finance closes every ended month in the subledger."""

from loadtests.shapes import RampHoldShape
from loadtests.users import CalendarUser, CrmSalesOpsUser

__all__ = ["CalendarUser", "CrmSalesOpsUser", "RampHoldShape"]

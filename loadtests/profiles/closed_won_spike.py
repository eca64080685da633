"""Locustfile: the quarter-end closed-won spike in the CRM."""

from loadtests.shapes import SpikeShape
from loadtests.users import CalendarUser, CrmSalesOpsUser

__all__ = ["CalendarUser", "CrmSalesOpsUser", "SpikeShape"]

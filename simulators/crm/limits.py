"""The org's API limits: a daily request quota per simulated UTC day and a concurrency cap."""

from __future__ import annotations

from typing import Any

from simulators.common.errors import SimError

DAY_S = 86_400


class ApiLimits:
    """Counts admitted API requests per simulated day; refuses past the quota or the cap.

    Salesforce counts over a rolling 24 hours; a calendar day of the simulated clock is our
    choice so a test can reset the count by moving the clock to the next day.
    """

    def __init__(self, daily_quota: int, concurrency_cap: int) -> None:
        if daily_quota < 1 or concurrency_cap < 1:
            raise ValueError("daily_quota and concurrency_cap must be positive")
        self.daily_quota = daily_quota
        self.concurrency_cap = concurrency_cap
        self.reset()

    def reset(self) -> None:
        self.day = -1
        self.used = 0

    def _roll(self, now_s: int) -> None:
        day = now_s // DAY_S
        if day != self.day:
            self.day, self.used = day, 0

    def admit(self, now_s: int, in_flight: int) -> SimError | None:
        """Count the request, or the 403 Salesforce answers when a limit is reached."""
        self._roll(now_s)
        if in_flight > self.concurrency_cap:
            return exceeded("ConcurrentRequests")
        if self.used >= self.daily_quota:
            return exceeded("TotalRequests")
        self.used += 1
        return None

    def usage(self, now_s: int) -> tuple[int, int]:
        self._roll(now_s)
        return self.used, self.daily_quota

    def snapshot(self) -> dict[str, Any]:
        return {"day": self.day, "used": self.used}

    def restore(self, data: dict[str, Any]) -> None:
        self.day = int(data.get("day", -1))
        self.used = int(data.get("used", 0))


def limit_info(used: int, quota: int) -> str:
    """The Sforce-Limit-Info header value."""
    return f"api-usage={used}/{quota}"


def exceeded(limit: str) -> SimError:
    return SimError(403, "REQUEST_LIMIT_EXCEEDED", f"{limit} Limit exceeded.")

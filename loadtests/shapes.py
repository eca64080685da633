"""Load shapes of the close period, scaled to Locust's own --users, --spawn-rate, --run-time."""

from __future__ import annotations

import time

from locust import LoadTestShape

DEFAULT_USERS = 10
DEFAULT_SPAWN_RATE = 5.0
DEFAULT_RUN_TIME_S = 30


class _CloseShape(LoadTestShape):
    """Reads the common options (so `harness load --users/--duration` mean what they say) and
    stops by itself at the run time: a load run never depends on a kill to end."""

    abstract = True
    use_common_options = True

    def options(self) -> tuple[int, float, float]:
        parsed = self.runner.environment.parsed_options if self.runner else None
        users = int(getattr(parsed, "num_users", None) or DEFAULT_USERS)
        rate = float(getattr(parsed, "spawn_rate", None) or DEFAULT_SPAWN_RATE)
        run_time = float(getattr(parsed, "run_time", None) or DEFAULT_RUN_TIME_S)
        return users, rate, run_time

    def fixed(self) -> int:
        # Fixed-count users (the calendar) come out of the total: add them on top.
        classes = self.runner.user_classes if self.runner else []
        return sum(cls.fixed_count for cls in classes)

    def tick(self) -> tuple[int, float] | None:
        users, rate, run_time = self.options()
        elapsed = time.perf_counter() - self.start_time
        if elapsed >= run_time:
            return None
        count = max(1, round(users * self.level(elapsed / run_time)))
        return count + self.fixed(), rate

    def level(self, progress: float) -> float:
        """Share of --users wanted at this point of the run (0 ≤ progress < 1)."""
        raise NotImplementedError


class RampHoldShape(_CloseShape):
    """Ramp to every user and hold: a renewal storm's load comes from the clock, not the ramp."""

    def level(self, progress: float) -> float:
        return 1.0


class SpikeShape(_CloseShape):
    """The quarter-end closed-won spike: a fifth of the users, all of them, then a fifth."""

    def level(self, progress: float) -> float:
        return 1.0 if 0.3 <= progress < 0.7 else 0.2


class BurstShape(_CloseShape):
    """Waves of payments: bursts of every user between quiet stretches of a few."""

    waves = 3

    def level(self, progress: float) -> float:
        phase = (progress * self.waves) % 1.0
        return 1.0 if phase < 0.5 else 0.1

"""Back-pressure: a throttled or unavailable vendor's Retry-After is honoured."""

from __future__ import annotations

from collections.abc import Iterator

from harness.books import Books
from harness.invariants.registry import invariant
from harness.violations import Violation

# Clocks and schedulers are coarse: a retry this early is still "as told".
TOLERANCE_S = 0.05


@invariant("INV-30", group="delivery", reads=("journal.*",))
def retry_after_is_honoured(books: Books) -> Iterator[Violation]:
    """After a response that carries Retry-After (a 429 or 503), the integration sends that
    system no request until that many seconds have passed since the response (wall time: sim
    time stands still while the integration works); requests already in flight when the
    answer went out are not early. Hammering a throttled vendor prolongs the
    throttle and, on a real Salesforce org, burns the daily API quota."""
    for system in sorted(books.journals):
        if not any(e.retry_after_s for e in books.journal(system)):
            continue  # nothing asked to wait: nothing to honour (and no sort of the journal)
        entries = sorted(
            (e for e in books.journal(system) if e.actor == "integration" and not e.control),
            key=lambda e: e.wall_at,
        )
        # (not before, request id, retry after, answered at): only a request sent once the
        # answer was out can have ignored it — one already in flight could not have known.
        hold: tuple[float, str, float, float] | None = None
        for entry in entries:
            if (
                hold is not None
                and entry.wall_at >= hold[3]
                and entry.wall_at + TOLERANCE_S < hold[0]
            ):
                early = hold[0] - entry.wall_at
                yield Violation(
                    "INV-30",
                    f"{system} asked to wait {hold[2]:g} s ({hold[1]}); {entry.request_id} "
                    f"({entry.method} {entry.path}) came {early:.2f} s early",
                    (f"{system}:{hold[1]}", f"{system}:{entry.request_id}"),
                    {"retry_after_s": hold[2], "early_s": round(early, 3)},
                )
                hold = None  # one violation per wait asked for
            if entry.retry_after_s:
                answered = entry.wall_at + entry.duration_ms / 1000
                until = answered + entry.retry_after_s
                if hold is None or until > hold[0]:
                    hold = (until, entry.request_id, entry.retry_after_s, answered)

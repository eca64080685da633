"""Back-pressure: a throttled or unavailable vendor's Retry-After is honoured."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from harness.books import Books
from harness.invariants.registry import invariant
from harness.violations import Violation
from simulators.common.journal import JournalEntry

# Clocks and schedulers are coarse: a retry this early is still "as told".
TOLERANCE_S = 0.05
# How long after an answer a request on another connection may still have been on its way: a
# client with several requests in flight sends some before it has read the answer, and they
# arrive after it went out (a worker that got it may wait its turn on a busy machine: 0.15 s
# was seen under month-end faults, and connections come and go under an outage). One such
# request per connection: on the answer's own connection there is no such time (HTTP/1.1
# sends the next request on a connection only once the answer is read), and a second request
# on a connection after the answer was sent after reading one answered after it.
IN_FLIGHT_S = 0.5
# Until the client has read the answer it cannot know of it: for this long after the answer,
# every request on another connection is let pass (a worker that finished another call sends
# its next before the one holding the answer has run; 1 ms apart was seen in a smoke run).
REACTION_S = 0.1


class _Hold(NamedTuple):
    until: float
    request_id: str
    retry_after_s: float
    answered: float
    connection: str


@invariant("INV-30", group="delivery", reads=("journal.*",))
def retry_after_is_honoured(books: Books) -> Iterator[Violation]:
    """After a response that carries Retry-After (a 429 or 503), the integration sends that
    system no request until that many seconds have passed since the response (wall time: sim
    time stands still while the integration works); requests already in flight when the
    answer went out are not early: those that arrived before it, any on another connection
    within REACTION_S of it, and the first on each other connection within IN_FLIGHT_S.
    Hammering a throttled vendor prolongs the throttle and, on a real Salesforce org, burns
    the daily API quota."""
    for system in sorted(books.journals):
        if not any(e.retry_after_s for e in books.journal(system)):
            continue  # nothing asked to wait: nothing to honour (and no sort of the journal)
        entries = sorted(
            (e for e in books.journal(system) if e.actor == "integration" and not e.control),
            key=lambda e: e.wall_at,
        )
        hold: _Hold | None = None
        excused: set[str] = set()  # connections whose one request in flight was let pass
        for entry in entries:
            if hold is not None and _early(entry, hold, excused):
                early = hold.until - entry.wall_at
                yield Violation(
                    "INV-30",
                    f"{system} asked to wait {hold.retry_after_s:g} s ({hold.request_id}); "
                    f"{entry.request_id} ({entry.method} {entry.path}) came {early:.2f} s early",
                    (f"{system}:{hold.request_id}", f"{system}:{entry.request_id}"),
                    {
                        "retry_after_s": hold.retry_after_s,
                        "early_s": round(early, 3),
                        "after_answer_s": round(entry.wall_at - hold.answered, 3),
                        "same_connection": entry.connection == hold.connection,
                    },
                )
                hold = None  # one violation per wait asked for
            if entry.retry_after_s:
                answered = entry.wall_at + entry.duration_ms / 1000
                until = answered + entry.retry_after_s
                if hold is None or until > hold.until:
                    hold = _Hold(
                        until, entry.request_id, entry.retry_after_s, answered, entry.connection
                    )
                    excused = set()


def _early(entry: JournalEntry, hold: _Hold, excused: set[str]) -> bool:
    """Sent once the answer was out (so it could have known), before the wait was over."""
    if entry.wall_at + TOLERANCE_S >= hold.until or entry.wall_at < hold.answered:
        return False
    # Unknown connections (a test transport) count as one: the stricter reading.
    connection = entry.connection
    if connection == hold.connection:
        return True
    if entry.wall_at < hold.answered + REACTION_S:
        return False
    if connection not in excused and entry.wall_at < hold.answered + IN_FLIGHT_S:
        excused.add(connection)
        return False
    return True

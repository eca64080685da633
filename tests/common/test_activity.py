"""Waiting for quiet: event-driven, honest about in-flight requests and the window."""

from __future__ import annotations

import threading

from simulators.common.activity import Activity


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_quiet_once_nothing_is_in_flight_for_the_window() -> None:
    clock = FakeTime()
    activity = Activity(clock)
    activity.begin()
    assert activity.wait_quiet(window_s=1.0, timeout_s=0.0) is False  # still in flight
    activity.end()
    assert activity.wait_quiet(window_s=1.0, timeout_s=0.0) is False  # window not yet over
    clock.now += 1.0
    assert activity.wait_quiet(window_s=1.0, timeout_s=0.0) is True


def test_a_waiter_wakes_when_the_last_request_ends() -> None:
    activity = Activity()
    activity.begin()
    result: list[bool] = []
    waiter = threading.Thread(
        target=lambda: result.append(activity.wait_quiet(window_s=0.05, timeout_s=5.0))
    )
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive()  # blocked while a request is in flight
    activity.end()
    waiter.join(5.0)
    assert result == [True] and activity.total == 1


def test_times_out_when_requests_never_stop() -> None:
    activity = Activity()
    activity.begin()
    assert activity.wait_quiet(window_s=0.01, timeout_s=0.1) is False


def test_the_harness_own_requests_start_no_quiet_window() -> None:
    clock = FakeTime()
    activity = Activity(clock)
    activity.begin()
    activity.end()  # the integration's last request
    clock.now += 5.0
    activity.begin()  # the harness plays a step: in flight, so not quiet…
    assert activity.wait_quiet(window_s=1.0, timeout_s=0.0) is False
    activity.end(touch=False)  # …and once it ends, nothing it did needs a window
    assert activity.wait_quiet(window_s=1.0, timeout_s=0.0) is True


def test_a_delivery_to_the_integration_starts_the_window() -> None:
    clock = FakeTime()
    activity = Activity(clock)
    clock.now += 5.0
    assert activity.wait_quiet(window_s=1.0, timeout_s=0.0) is True
    activity.touch()  # a webhook delivered: the receiver may act on it
    assert activity.wait_quiet(window_s=1.0, timeout_s=0.0) is False
    clock.now += 1.0
    assert activity.wait_quiet(window_s=1.0, timeout_s=0.0) is True

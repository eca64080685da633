"""The harness's vendor users: a vendor that does not answer is a clear step failure."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from harness.actors import Actors, StepFailed


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A port that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


def _actors(url: str, timeout_s: float) -> Actors:
    keys = {"billing": "api_key", "crm": "session_id", "erp": "token", "revrec": "token"}
    systems = {name: {"url": url, key: "k"} for name, key in keys.items()}
    return Actors({**systems, "control_token": "simctl_x"}, timeout_s=timeout_s)


def test_a_vendor_that_never_answers_fails_the_step_with_what_was_asked(silent_url: str) -> None:
    actors = _actors(silent_url, 0.2)
    try:
        with pytest.raises(
            StepFailed, match=r"billing GET /v1/customers did not answer within 0.2 s"
        ):
            actors.stripe("GET", "/v1/customers")
    finally:
        actors.close()


def test_nothing_listening_fails_the_step_too() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    actors = _actors(f"http://127.0.0.1:{port}", 0.2)
    try:
        with pytest.raises(StepFailed, match=r"erp GET .* failed"):
            actors.netsuite("GET", "/customer/1")
    finally:
        actors.close()

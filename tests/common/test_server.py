"""Real-socket tests for the multi-site uvicorn server, the local CA and connection aborts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import select
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from simulators.common.server import (
    ConnectionRegistry,
    MultiServer,
    Site,
    ThreadedServer,
    abort_connection,
)
from simulators.common.tls import LocalCA
from tests.conftest import SessionApps

REPO = Path(__file__).resolve().parents[2]
CONNECTION_ERRORS = (httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError)
TIMEOUT = httpx.Timeout(5.0)


class Recorder:
    """Per-test observations made inside the app, which runs on the server thread."""

    def __init__(self) -> None:
        self.aborted: list[bool] = []
        self.hanging = threading.Event()


def make_app(body: str, recorder: Recorder | None = None) -> Starlette:
    rec = recorder or Recorder()

    async def hello(request: Request) -> Response:
        return PlainTextResponse(body)

    async def abort(request: Request) -> Response:
        rec.aborted.append(abort_connection(request.scope))
        return PlainTextResponse("not aborted")

    async def hang(request: Request) -> Response:
        rec.hanging.set()
        await asyncio.Event().wait()
        return PlainTextResponse("unreachable")

    return Starlette(
        routes=[Route("/", hello), Route("/abort", abort), Route("/hang", hang)],
    )


@pytest.fixture
def ca(tmp_path: Path) -> LocalCA:
    return LocalCA.create(tmp_path / "ca")


def test_local_ca_writes_pem_files(ca: LocalCA) -> None:
    assert ca.ca_path.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert ca.cert_path.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert b"PRIVATE KEY" in ca.key_path.read_bytes()
    assert ca.ssl_context_for_clients().verify_mode == ssl.CERT_REQUIRED


def test_two_sites_served_from_one_loop() -> None:
    sites = [Site("stripe", make_app("from stripe")), Site("netsuite", make_app("from netsuite"))]
    with ThreadedServer(sites) as srv, httpx.Client(timeout=TIMEOUT) as client:
        ports = {name: httpx.URL(url).port for name, url in srv.urls.items()}
        assert set(ports) == {"stripe", "netsuite"}
        assert all(ports.values()) and ports["stripe"] != ports["netsuite"]
        assert client.get(srv.urls["stripe"]).text == "from stripe"
        assert client.get(srv.urls["netsuite"]).text == "from netsuite"

        async def running_loop() -> asyncio.AbstractEventLoop:
            return asyncio.get_running_loop()

        assert srv.run(running_loop(), timeout=5) is srv.loop


def test_tls_site_verifies_only_against_local_ca(ca: LocalCA) -> None:
    with ThreadedServer([Site("sf", make_app("secure"), tls=True)], ca=ca) as srv:
        url = srv.urls["sf"]
        assert url.startswith("https://127.0.0.1:")
        trusting = ssl.create_default_context(cafile=str(ca.ca_path))
        with httpx.Client(verify=trusting, timeout=TIMEOUT) as client:
            assert client.get(url).text == "secure"
        with (
            httpx.Client(timeout=TIMEOUT) as client,
            pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            client.get(url)


def test_tls_site_requires_ca() -> None:
    with pytest.raises(ValueError, match="LocalCA"):
        MultiServer([Site("sf", make_app("x"), tls=True)])


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_abort_connection_resets_only_that_connection(ca: LocalCA, tls: bool) -> None:
    rec = Recorder()
    with (
        ThreadedServer([Site("sim", make_app("ok", rec), tls=tls)], ca=ca) as srv,
        httpx.Client(verify=ca.ssl_context_for_clients(), timeout=TIMEOUT) as client,
    ):
        url = srv.urls["sim"]
        # Warm a keep-alive connection first so the abort hits a reused connection.
        assert client.get(url).text == "ok"
        assert len(srv.connections) == 1
        with pytest.raises(CONNECTION_ERRORS):
            client.get(f"{url}/abort")
        assert rec.aborted == [True]
        assert client.get(url).text == "ok"


def test_abort_connection_without_registry_is_false() -> None:
    assert abort_connection({"type": "http", "client": ("127.0.0.1", 1)}) is False
    unknown = {"type": "http", "server": ("127.0.0.1", 2), "client": ("127.0.0.1", 1)}
    assert ConnectionRegistry().abort_connection(unknown) is False

    rec = Recorder()

    async def in_process() -> str:
        transport = httpx.ASGITransport(app=make_app("ok", rec))
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            return (await client.get("/abort")).text

    assert asyncio.run(in_process()) == "not aborted"
    assert rec.aborted == [False]


def test_background_starts_after_startup_and_is_cancelled_at_stop() -> None:
    events: list[str] = []

    async def scenario() -> None:
        server: MultiServer

        async def poller() -> None:
            # Only possible if the sites are already accepting requests.
            async with httpx.AsyncClient(timeout=TIMEOUT) as client:
                events.append((await client.get(server.urls["sim"])).text)
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                events.append("cancelled")
                raise

        server = MultiServer([Site("sim", make_app("up"))], background=[poller])
        await server.start()
        for _ in range(50):
            if events:
                break
            await asyncio.sleep(0.1)
        assert events == ["up"]
        await asyncio.wait_for(server.stop(), timeout=5)
        assert events == ["up", "cancelled"]

    asyncio.run(scenario())


def test_exit_is_prompt_with_idle_keepalive_connections(ca: LocalCA) -> None:
    sites = [Site("plain", make_app("a")), Site("secure", make_app("b"), tls=True)]
    with httpx.Client(verify=ca.ssl_context_for_clients(), timeout=TIMEOUT) as client:
        # A generous deadline, so only waiting on idle clients (not the deadline) could pass.
        with ThreadedServer(sites, ca=ca, shutdown_timeout=5.0) as srv:
            urls = srv.urls
            assert client.get(urls["plain"]).text == "a"
            assert client.get(urls["secure"]).text == "b"
            assert len(srv.connections) == 2
            started = time.monotonic()
        assert time.monotonic() - started < 1.5
        with pytest.raises(CONNECTION_ERRORS):
            client.get(urls["plain"])


def test_exit_is_bounded_with_a_request_in_flight() -> None:
    rec = Recorder()
    outcomes: list[int | BaseException] = []
    with ThreadedServer([Site("sim", make_app("x", rec))], shutdown_timeout=0.5) as srv:
        url = f"{srv.urls['sim']}/hang"

        def call() -> None:
            try:
                outcomes.append(httpx.get(url, timeout=10.0).status_code)
            except httpx.HTTPError as exc:
                outcomes.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        assert rec.hanging.wait(5)
        started = time.monotonic()
    assert time.monotonic() - started < 3.0
    caller.join(5)
    assert not caller.is_alive()
    # uvicorn answers a request whose task it cancelled with a 500 when it still can.
    assert len(outcomes) == 1
    assert outcomes[0] == 500 or isinstance(outcomes[0], CONNECTION_ERRORS)


def test_port_in_use_propagates_from_startup() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        srv = ThreadedServer([Site("a", make_app("a")), Site("b", make_app("b"), port=port)])
        with pytest.raises(OSError), srv:
            pass
        assert not [t for t in threading.enumerate() if t.name == "sim-servers"]


SERVE_FOREVER_SCRIPT = textwrap.dedent(
    """
    import asyncio, signal
    from starlette.responses import PlainTextResponse
    from simulators.common.server import MultiServer, Site, new_event_loop

    async def main() -> None:
        server = MultiServer([Site("a", PlainTextResponse("up"))])
        await server.start()
        print(server.urls["a"], flush=True)
        await server.serve_forever()
        print("stopped", signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, flush=True)

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(main())
    """
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_forever_exits_cleanly_on_signal(sig: signal.Signals) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE_FOREVER_SCRIPT],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        assert ready, "child never printed its URL"
        url = proc.stdout.readline().strip()
        assert httpx.get(url, timeout=TIMEOUT).text == "up"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert out.strip() == "stopped True"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_a_request_that_is_not_http_gets_the_vendors_envelope(
    session_apps: SessionApps, http: Literal["httptools", "h11"]
) -> None:
    sites = [Site(name, session_apps.get(name).app) for name in ("erp", "revrec", "crm")]
    expected = {
        "erp": "application/vnd.oracle.resource+json",
        "revrec": "application/problem+json",
        "crm": "application/json",
    }
    with ThreadedServer(sites, http=http) as server:
        for name, url in server.urls.items():
            host, port = url.removeprefix("http://").split(":")
            with socket.create_connection((host, int(port)), timeout=5) as sock:
                sock.sendall(b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n")
                raw = b""
                while chunk := sock.recv(65536):
                    raw += chunk
            head, _, body = raw.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = dict(line.lower().split(": ", 1) for line in lines[1:])
            assert lines[0].startswith("HTTP/1.1 400"), (name, raw)
            assert headers["content-type"] == expected[name], (name, raw)
            assert "not valid HTTP" in json.dumps(json.loads(body)), (name, body)


def _held_app(started: threading.Event, release: threading.Event, chunks: int) -> ASGIApp:
    """A raw ASGI app: reads the body, sends the head, then ``chunks`` body chunks, the first
    only once the test sets ``release``."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        body = bytes((await receive()).get("body", b""))
        # One chunk: a sized body; more: chunked.
        sized = [(b"content-length", b"%d" % (len(body) + 2))] if chunks == 1 else []
        await send({"type": "http.response.start", "status": 200, "headers": sized})
        started.set()
        while not release.is_set():
            await asyncio.sleep(0.01)
        for n in range(chunks):
            chunk = body + b"|%d" % n
            await send({"type": "http.response.body", "body": chunk, "more_body": n < chunks - 1})

    return app


@contextlib.contextmanager
def _held_connection(
    chunks: int, *, released: bool = False
) -> Iterator[tuple[socket.socket, threading.Event, threading.Event]]:
    """A client socket to a server of ``_held_app``; yields it with the app's two events."""
    started, release = threading.Event(), threading.Event()
    if released:
        release.set()
    with ThreadedServer([Site("s", _held_app(started, release, chunks))]) as server:
        host, port = server.urls["s"].removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            yield sock, started, release


def _readable(sock: socket.socket, wait_s: float) -> bool:
    return bool(select.select([sock], [], [], wait_s)[0])


def _read_all(sock: socket.socket) -> bytes:
    raw = b""
    while chunk := sock.recv(65536):
        raw += chunk
    return raw


GET_AND_CLOSE = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def test_a_response_head_leaves_with_its_body_in_one_segment() -> None:
    # uvicorn writes the head when the app starts the response; the client must not see it
    # before the body (two writes, two wake-ups of the client), only then both at once.
    with _held_connection(1) as (sock, started, release):
        sock.sendall(GET_AND_CLOSE)
        assert started.wait(5)
        assert not _readable(sock, 0.3), "the head left before the body"
        release.set()
        assert _readable(sock, 5)
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200") and first.endswith(b"|0"), first
        assert _read_all(sock) == b""


def test_a_streamed_response_sends_each_later_chunk_as_it_comes() -> None:
    with _held_connection(3, released=True) as (sock, _, _):
        sock.sendall(GET_AND_CLOSE)
        raw = _read_all(sock)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in head.lower()
    assert body == b"2\r\n|0\r\n2\r\n|1\r\n2\r\n|2\r\n0\r\n\r\n"


def test_a_100_continue_is_not_held_back() -> None:
    # The client waits for the 100 before it sends the body: holding it would hang both.
    with _held_connection(1, released=True) as (sock, _, _):
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Expect: 100-continue\r\nContent-Length: 4\r\n\r\n"
        )
        assert _readable(sock, 5), "no 100 Continue"
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"ping")
        raw = _read_all(sock)
    assert raw.startswith(b"HTTP/1.1 200") and raw.endswith(b"ping|0"), raw

"""Serve several ASGI simulator apps, each on its own loopback port, from one uvicorn event loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import logging
import signal
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self, TypeVar, cast

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from simulators.common.tls import LocalCA

__all__ = [
    "CONNECTION_EXTENSION",
    "ConnectionRegistry",
    "MultiServer",
    "Site",
    "ThreadedServer",
    "abort_connection",
    "freeze_and_defer_full_collections",
    "new_event_loop",
]

T = TypeVar("T")
Address = tuple[str, int | None]
ConnectionKey = tuple[Address, Address]

CONNECTION_EXTENSION = "sim.connection"
# Load generators keep connections open between bursts; uvicorn's 5 s default would make them
# measure reconnect cost instead of the simulator.
KEEP_ALIVE_SECONDS = 30
_TLS_CLOSE_GRACE_SECONDS = 0.2
# The garbage collector while serving (see MultiServer, gc_tuning): no automatic full
# collections, which pause every request for a time that grows with the stores (about a
# second at a million objects); instead a full collection when every site has been idle.
GC_FULL_THRESHOLD = 1_000_000_000
GC_IDLE_CHECK_SECONDS = 0.5
GC_IDLE_QUIET_SECONDS = 1.0  # no request in flight for this long: the sites are idle
GC_IDLE_MIN_YOUNG = 50  # gen-1 collections since the last full one before it is worth it

logger = logging.getLogger(__name__)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop when uvloop is installed, else a stock asyncio loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


@dataclass
class Site:
    """One simulator app; port 0 picks a free port, tls serves the MultiServer CA's cert."""

    name: str
    app: ASGIApp
    port: int = 0
    tls: bool = False


class ConnectionRegistry:
    """Open transports of one MultiServer, so apps can reset the connection they are serving."""

    def __init__(self) -> None:
        # Keyed by local address too: a client may reuse one ephemeral port towards two sites.
        self._transports: dict[ConnectionKey, asyncio.Transport] = {}

    def __len__(self) -> int:
        return len(self._transports)

    def register(
        self, server: Address | None, client: Address | None, transport: asyncio.Transport
    ) -> None:
        if server is not None and client is not None:
            self._transports[(server, client)] = transport

    def unregister(
        self, server: Address | None, client: Address | None, transport: asyncio.Transport
    ) -> None:
        if server is None or client is None:
            return
        key = (server, client)
        if self._transports.get(key) is transport:
            del self._transports[key]

    def abort_connection(self, scope: Scope) -> bool:
        """Reset the TCP connection behind ``scope``; False if it is not one of ours."""
        key = _connection_key(scope)
        transport = self._transports.pop(key, None) if key is not None else None
        if transport is None:
            return False
        _reset(transport)
        return True

    def abort_all(self) -> int:
        transports = list(self._transports.values())
        self._transports.clear()
        for transport in transports:
            _reset(transport)
        return len(transports)


def abort_connection(scope: Scope) -> bool:
    """Reset the connection serving ``scope``; False outside a MultiServer (e.g. ASGI tests)."""
    registry = (scope.get("extensions") or {}).get(CONNECTION_EXTENSION)
    if not isinstance(registry, ConnectionRegistry):
        return False
    return registry.abort_connection(scope)


def _connection_key(scope: Scope) -> ConnectionKey | None:
    server, client = scope.get("server"), scope.get("client")
    if not server or not client:
        return None
    return (str(server[0]), server[1]), (str(client[0]), client[1])


def _reset(transport: asyncio.Transport) -> None:
    # For TLS transports this returns the raw TCP socket, and abort() tears down the underlying
    # transport without a close_notify, which is exactly the fault we want to inject.
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Linger 0 makes the kernel send RST instead of FIN, so the client sees a reset rather
        # than a clean EOF it might treat as a normal keep-alive close.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class _RegistryState(ServerState):
    # ServerState is the one object uvicorn hands to every protocol instance of a server, so it
    # is the natural carrier for the registry without module-level state.
    def __init__(self, registry: ConnectionRegistry) -> None:
        super().__init__()
        self.registry = registry


def _registry(state: ServerState) -> ConnectionRegistry | None:
    return state.registry if isinstance(state, _RegistryState) else None


_TrackedProtocol = HttpToolsProtocol | H11Protocol


def _track(protocol: _TrackedProtocol, transport: asyncio.Transport) -> None:
    if (registry := _registry(protocol.server_state)) is not None:
        registry.register(protocol.server, protocol.client, transport)


def _untrack(protocol: _TrackedProtocol) -> None:
    if (registry := _registry(protocol.server_state)) is not None:
        registry.unregister(protocol.server, protocol.client, protocol.transport)


def _finish_tls_close(protocol: _TrackedProtocol, was_idle: bool) -> None:
    # close() on TLS sends close_notify and then waits for the peer's, up to asyncio's 30 s
    # ssl_shutdown_timeout. Pooled keep-alive clients never read, so never answer, and uvicorn's
    # shutdown would sit on them until our deadline; a one-way close is allowed by TLS.
    if was_idle and protocol.scheme == "https":
        protocol.loop.call_later(_TLS_CLOSE_GRACE_SECONDS, protocol.transport.abort)


# An app may carry ``render_bad_request(message) -> (status, headers, body)``: how a request
# that is not even HTTP (a malformed request line, an overlong URL) is answered in its own
# envelope, where uvicorn would answer in plain text before any app sees the request.
BAD_REQUEST_RENDERER = "render_bad_request"
BadRequestRenderer = Callable[[str], tuple[int, dict[str, str], bytes]]


def _send_bad_request(protocol: _TrackedProtocol, msg: str) -> bool:
    """Write the app's own 400 for an unparseable request and close; False if it has none."""
    render: BadRequestRenderer | None = getattr(protocol.config.app, BAD_REQUEST_RENDERER, None)
    if render is None:
        return False
    status, headers, body = render(msg)
    lines = [f"HTTP/1.1 {status} Bad Request".encode()]
    lines += [name + b": " + value for name, value in protocol.server_state.default_headers]
    lines += [f"{k}: {v}".encode("latin-1") for k, v in headers.items()]
    lines += [f"content-length: {len(body)}".encode(), b"connection: close"]
    protocol.transport.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
    protocol.transport.close()
    return True


class _JoinedResponse:
    """The transport one response is written through, holding its status line and headers
    until the body's first write so that both leave in one segment. uvicorn writes them
    apart: two syscalls and two wake-ups of the client per response (with one, the HTTP
    benchmark serves 12–51 % more requests a second). Everything else is the connection's
    own. Only the default protocol (httptools) is served this way; h11 is left as it is."""

    __slots__ = ("_held", "_started", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._held = b""
        self._started = False

    def write(self, data: bytes) -> None:
        if not self._started and not data.startswith(b"HTTP/1.1 100 "):
            # The first write of a response is its head (never a 100 Continue: the client
            # waits for that one before it sends the body).
            self._started = True
            self._held = data
            return
        if self._held:
            data, self._held = self._held + data, b""
        self._transport.write(data)

    def writelines(self, chunks: Iterable[bytes]) -> None:
        self.write(b"".join(chunks))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def flush(self) -> None:
        if self._held:
            held, self._held = self._held, b""
            self._transport.write(held)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _RegisteringHttpTools(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        _track(self, transport)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self.cycle is not None:
            self.cycle.transport = cast(asyncio.Transport, _JoinedResponse(self.transport))

    def connection_lost(self, exc: Exception | None) -> None:
        _untrack(self)
        super().connection_lost(exc)

    def shutdown(self) -> None:
        was_idle = self.cycle is None or self.cycle.response_complete
        super().shutdown()
        _finish_tls_close(self, was_idle)

    def send_400_response(self, msg: str) -> None:
        if not _send_bad_request(self, msg):
            super().send_400_response(msg)


class _RegisteringH11(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        _track(self, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        _untrack(self)
        super().connection_lost(exc)

    def shutdown(self) -> None:
        was_idle = self.cycle is None or self.cycle.response_complete
        super().shutdown()
        _finish_tls_close(self, was_idle)

    def send_400_response(self, msg: str) -> None:
        if not _send_bad_request(self, msg):
            super().send_400_response(msg)


_PROTOCOLS: dict[str, type[asyncio.Protocol]] = {
    "httptools": _RegisteringHttpTools,
    "h11": _RegisteringH11,
}


class _Traffic:
    """Requests in flight across a MultiServer's sites and when one last began or ended."""

    __slots__ = ("changed_at", "in_flight")

    def __init__(self) -> None:
        self.in_flight = 0
        self.changed_at = time.monotonic()

    def quiet_for(self) -> float:
        """Seconds without any request in flight (0 while one is)."""
        return 0.0 if self.in_flight else time.monotonic() - self.changed_at


class _WithConnectionExtension:
    def __init__(self, app: ASGIApp, registry: ConnectionRegistry, traffic: _Traffic) -> None:
        self._app = app
        self._registry = registry
        self._traffic = traffic
        self.render_bad_request: BadRequestRenderer | None = getattr(
            app, BAD_REQUEST_RENDERER, None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # ASGI asks middleware to copy rather than mutate the scope it was given.
        extensions = {**(scope.get("extensions") or {}), CONNECTION_EXTENSION: self._registry}
        traffic = self._traffic
        traffic.in_flight += 1
        try:
            await self._app({**scope, "extensions": extensions}, receive, send)
        finally:
            traffic.in_flight -= 1
            traffic.changed_at = time.monotonic()


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        # Listening now (asyncio listens again later, harmlessly) claims the port: on Linux two
        # SO_REUSEADDR sockets may share a port until one of them listens.
        sock.listen(2048)
    except BaseException:
        sock.close()
        raise
    return sock


class _SiteServer(uvicorn.Server):
    """A uvicorn server driven piece by piece instead of through ``serve()``.

    ``Server.serve()`` wraps everything in ``capture_signals()``, which (in the main thread)
    replaces the SIGINT/SIGTERM handlers with ``signal.signal`` per server, restores them in
    whatever order the servers happen to finish, and finally *re-raises* every captured signal
    with the restored handler, so a SIGTERM'd process dies by signal instead of exiting 0. With
    several servers in one loop that is both racy and wrong for us, so we call the same public
    steps ``_serve()`` does (load, startup, main_loop, shutdown) and own signals in MultiServer.
    """

    def __init__(
        self, config: uvicorn.Config, registry: ConnectionRegistry, sock: socket.socket
    ) -> None:
        super().__init__(config)
        self.server_state = _RegistryState(registry)
        self.sock = sock
        self._ticker: asyncio.Task[None] | None = None

    async def begin(self) -> None:
        self.config.load()
        self.lifespan = self.config.lifespan_class(self.config)
        await self.startup(sockets=[self.sock])
        if not self.started:
            raise RuntimeError(f"uvicorn did not start on {self.sock.getsockname()}")
        # main_loop refreshes the Date/Server default headers once a second and watches
        # should_exit; without it responses would carry no Date header.
        self._ticker = asyncio.create_task(self.main_loop())

    async def end(self, timeout: float) -> None:
        self.should_exit = True
        if self._ticker is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._ticker, timeout=1.0)
        if not self.started:
            self.sock.close()
            return
        # Config.timeout_graceful_shutdown only bounds part of shutdown() and is int-only, so we
        # bound the whole call ourselves and then clean up whatever it left behind.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.shutdown(sockets=[self.sock]), timeout=timeout)
        tasks = list(self.server_state.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=0.5)
        for connection in list(self.server_state.connections):
            connection.transport.abort()


class MultiServer:
    """Several uvicorn servers, one per Site, sharing the running event loop."""

    def __init__(
        self,
        sites: list[Site],
        *,
        host: str = "127.0.0.1",
        ca: LocalCA | None = None,
        background: Sequence[Callable[[], Awaitable[None]]] = (),
        http: Literal["httptools", "h11"] = "httptools",
        shutdown_timeout: float = 2.0,
        gc_tuning: bool | None = None,
    ) -> None:
        names = [site.name for site in sites]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate site names in {names}")
        if ca is None and any(site.tls for site in sites):
            raise ValueError("TLS sites need a LocalCA (ca=...)")
        self.sites = list(sites)
        self.host = host
        self.ca = ca
        self.connections = ConnectionRegistry()
        self._background = tuple(background)
        self._protocol = _PROTOCOLS[http]
        self._shutdown_timeout = shutdown_timeout
        self._servers: list[_SiteServer] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._urls: dict[str, str] | None = None
        self._started = False
        self._stop_requested = asyncio.Event()
        self._stopping: asyncio.Task[None] | None = None
        # None: tune the collector when serving from the main thread, i.e. when this process is
        # a server (harness up, make bench) rather than a test run hosting one in a thread.
        self._gc_tuning = gc_tuning
        self._traffic = _Traffic()

    @property
    def urls(self) -> dict[str, str]:
        if self._urls is None:
            raise RuntimeError("MultiServer.urls is only known after start()")
        return dict(self._urls)

    async def start(self) -> None:
        if self._started:
            raise RuntimeError("MultiServer can only be started once")
        self._started = True
        # Bind every port before starting any server so a clash fails with nothing running.
        sockets: list[socket.socket] = []
        try:
            for site in self.sites:
                sockets.append(_bind(self.host, site.port))
        except BaseException:
            for sock in sockets:
                sock.close()
            raise
        self._servers = [
            _SiteServer(self._config(site), self.connections, sock)
            for site, sock in zip(self.sites, sockets, strict=True)
        ]
        try:
            for server in self._servers:
                await server.begin()
        except BaseException:
            await self.stop()
            raise
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._urls = {
            site.name: f"{'https' if site.tls else 'http'}://{host}:{sock.getsockname()[1]}"
            for site, sock in zip(self.sites, sockets, strict=True)
        }
        background = list(self._background)
        tune = self._gc_tuning
        if tune is None:
            tune = threading.current_thread() is threading.main_thread()
        if tune:
            freeze_and_defer_full_collections()
            background.append(self._collect_when_idle)
        for factory in background:
            task = asyncio.create_task(_run_background(factory))
            task.add_done_callback(_log_background_failure)
            self._tasks.append(task)

    async def _collect_when_idle(self) -> None:
        """A full collection (then a freeze) only while no site has a request in flight.

        Unfrozen first, so cycles among frozen objects that died since (a world reset drops
        a whole store) are reclaimed too: nothing leaks for longer than one busy spell."""
        while True:
            await asyncio.sleep(GC_IDLE_CHECK_SECONDS)
            if gc.get_count()[2] < GC_IDLE_MIN_YOUNG:
                continue
            if self._traffic.quiet_for() < GC_IDLE_QUIET_SECONDS:
                continue
            gc.unfreeze()
            gc.collect()
            gc.freeze()

    def _config(self, site: Site) -> uvicorn.Config:
        tls: dict[str, Any] = {}
        if site.tls:
            assert self.ca is not None  # checked in __init__
            tls = {"ssl_certfile": self.ca.cert_path, "ssl_keyfile": self.ca.key_path}
        return uvicorn.Config(
            _WithConnectionExtension(site.app, self.connections, self._traffic),
            http=self._protocol,
            # The HTTP protocol hands upgraded connections to a new protocol object whose
            # lifetime our registry would not see; simulators do not need websockets.
            ws="none",
            lifespan="off",
            access_log=False,
            # None stops every Config() from re-running logging.dictConfig over the host app's
            # logging setup; uvicorn then only sets its loggers' levels.
            log_config=None,
            log_level="warning",
            # Otherwise a client sending X-Forwarded-For from 127.0.0.1 would rewrite
            # scope["client"] and abort_connection could no longer find its transport.
            proxy_headers=False,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            **tls,
        )

    async def stop(self) -> None:
        """Cancel background tasks and shut every server down; bounded and idempotent."""
        if self._stopping is None:
            self._stopping = asyncio.get_running_loop().create_task(self._stop())
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        self._stop_requested.set()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self._shutdown_timeout)
        await asyncio.gather(*(server.end(self._shutdown_timeout) for server in self._servers))
        self.connections.abort_all()

    async def serve_forever(self) -> None:
        """Serve until stop() or, in the main thread, until SIGINT/SIGTERM."""
        if not self._started:
            await self.start()
        restore = self._handle_signals(asyncio.get_running_loop())
        try:
            await self._stop_requested.wait()
        finally:
            restore()
            await self.stop()

    def _handle_signals(self, loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous: dict[signal.Signals, Any] = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            handler = signal.getsignal(sig)
            try:
                loop.add_signal_handler(sig, self._stop_requested.set)
            except (NotImplementedError, RuntimeError, ValueError):
                continue
            previous[sig] = handler

        def restore() -> None:
            for sig, handler in previous.items():
                loop.remove_signal_handler(sig)
                # remove_signal_handler installs SIG_DFL, not whatever was there before us.
                if handler is not None:
                    signal.signal(sig, handler)

        return restore


def freeze_and_defer_full_collections() -> None:
    """Collect once, move every survivor (contracts, apps, seeded stores) to the permanent
    generation, and stop automatic full collections; young collections run as before.

    A full collection walks every tracked object — the whole store — while requests wait, so
    p99 would grow with the store. Request garbage is nearly all freed by reference counting
    or in young collections; what reaches the old generation is the store itself, which a full
    collection would only walk. MultiServer collects fully when the sites are idle."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, GC_FULL_THRESHOLD)


async def _run_background(factory: Callable[[], Awaitable[None]]) -> None:
    await factory()


def _log_background_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        logger.error("background task %s failed", task.get_name(), exc_info=exc)


class ThreadedServer:
    """Run a MultiServer on its own event loop in a daemon thread, for sync callers and tests."""

    def __init__(
        self,
        sites: list[Site],
        *,
        host: str = "127.0.0.1",
        ca: LocalCA | None = None,
        background: Sequence[Callable[[], Awaitable[None]]] = (),
        http: Literal["httptools", "h11"] = "httptools",
        shutdown_timeout: float = 2.0,
        startup_timeout: float = 10.0,
    ) -> None:
        self.server = MultiServer(
            sites,
            host=host,
            ca=ca,
            background=background,
            http=http,
            shutdown_timeout=shutdown_timeout,
        )
        self._startup_timeout = startup_timeout
        self._join_timeout = shutdown_timeout + 5.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._main: asyncio.Task[None] | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("ThreadedServer is not running")
        return self._loop

    @property
    def urls(self) -> dict[str, str]:
        return self.server.urls

    @property
    def connections(self) -> ConnectionRegistry:
        return self.server.connections

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the server loop from another thread and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("ThreadedServer can only be started once")
        loop = new_event_loop()
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        # Created before the thread exists so stop() always has a task to cancel, even if it
        # races a startup that has not been scheduled yet.
        self._main = loop.create_task(self._serve(ready))
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="sim-servers", daemon=True)
        self._thread.start()
        try:
            ready.result(timeout=self._startup_timeout)
        except BaseException:
            self.stop()
            raise

    def _run(self) -> None:
        assert self._loop is not None and self._main is not None
        asyncio.set_event_loop(self._loop)
        try:
            with contextlib.suppress(asyncio.CancelledError):
                self._loop.run_until_complete(self._main)
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        finally:
            self._loop.close()

    async def _serve(self, ready: concurrent.futures.Future[None]) -> None:
        try:
            await self.server.start()
        except BaseException as exc:
            ready.set_exception(exc)
            return
        ready.set_result(None)
        await self.server.serve_forever()

    def stop(self) -> None:
        """Stop the servers and join the thread, waiting at most shutdown_timeout + 5 s."""
        loop, thread, main = self._loop, self._thread, self._main
        if loop is None or thread is None or main is None:
            return
        # Cancelling the main task covers both phases: start() cleans up after itself when
        # cancelled, and serve_forever() stops the servers in its finally block.
        with contextlib.suppress(RuntimeError):  # loop already closed: thread has finished
            loop.call_soon_threadsafe(main.cancel)
        thread.join(self._join_timeout)
        if thread.is_alive():
            logger.warning("server thread still alive after %.1f s", self._join_timeout)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

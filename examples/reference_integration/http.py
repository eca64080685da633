"""Keep-alive HTTP to one vendor origin on urllib3, for every vendor client of the worker.

A request here cost ~0.4 ms of the worker's CPU against ~0.7 ms through httpx and ~1 ms
through requests (the worker is CPU-bound on two cores: its clients were two thirds of it
while it caught up after a month-end load).
"""

from __future__ import annotations

import json as jsonlib
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import certifi
import urllib3

from examples.reference_integration.retry import TransientError


class Answer:
    """A response, read whole: status, headers (case-insensitive) and body."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


class Http:
    """One origin (``url``, with an optional path prefix), one kept-alive connection; a
    transport failure (refused, reset, timed out, TLS refused) is a TransientError."""

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        verify: ssl.SSLContext | str | bool = True,
        timeout_s: float = 30.0,
    ) -> None:
        parsed = urllib3.util.parse_url(url.rstrip("/"))
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.origin = f"{parsed.scheme}://{parsed.netloc}"
        self.prefix = parsed.path or ""
        self.base = self.origin + self.prefix
        self.headers = dict(headers or {})
        options: dict[str, Any] = {
            "maxsize": 1,
            "timeout": urllib3.Timeout(timeout_s),
            "retries": False,  # the callers' retry loops decide, honouring Retry-After
        }
        self._pool: urllib3.HTTPConnectionPool
        if parsed.scheme == "https":
            self._pool = urllib3.HTTPSConnectionPool(
                parsed.host,
                parsed.port,
                ssl_context=tls_context(verify),
                assert_hostname=False if verify is False else None,
                **options,
            )
        else:
            self._pool = urllib3.HTTPConnectionPool(parsed.host, parsed.port, **options)

    def close(self) -> None:
        self._pool.close()

    def path_of(self, url: str) -> str | None:
        """``url``'s path (and query) below the base, None when it is elsewhere."""
        rest = url.removeprefix(self.base)
        return rest if rest != url and rest.startswith(("/", "?")) else None

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        sent = {**self.headers, **(headers or {})}
        if json is not None:
            body = jsonlib.dumps(json).encode()
            sent["Content-Type"] = "application/json"
        target = self.prefix + path
        if params:
            target += ("&" if "?" in target else "?") + urlencode(params, doseq=True)
        try:
            response = self._pool.urlopen(
                method, target, body=body, headers=sent, redirect=False, preload_content=True
            )
        except urllib3.exceptions.HTTPError as exc:
            raise TransientError(f"{method} {self.origin}{target}: {exc!r}") from exc
        return Answer(response.status, response.headers, response.data)


def tls_context(verify: ssl.SSLContext | str | bool) -> ssl.SSLContext:
    """The TLS context a ``verify`` setting means: a context as given, a CA bundle's path, the
    public roots (certifi, as requests and httpx use) for True, no verification for False."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=verify if isinstance(verify, str) else certifi.where())

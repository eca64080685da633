"""Contract routing with one compiled regex per router instead of a Python loop over every route.

Starlette's Router tries each route in turn (about 1.5 µs a route, a hundred routes per
contract). ``IndexedRouter`` finds the first route whose path matches with one alternation regex
and then follows Starlette's own rules from there, so the chosen route, the path parameters, the
405 for a wrong method and the trailing-slash redirect are exactly Starlette's.
"""

from __future__ import annotations

import re
import typing as t

from connexion.middleware.abstract import AbstractRoutingAPI
from connexion.middleware.routing import RoutingAPI, RoutingMiddleware, RoutingOperation
from connexion.spec import Specification
from starlette.routing import BaseRoute, Match, Router
from starlette.types import ASGIApp, Receive, Scope, Send

_NAMED_GROUP = re.compile(r"\(\?P<[^>]+>")


class IndexedRouter(Router):
    """A Starlette Router whose route search is one regex call per candidate route."""

    _indexed: tuple[int, list[re.Pattern[str] | None]] | None = None
    _plain: tuple[int, bool] = (-1, False)  # (route count, every route has a path regex)

    def _first(self, path: str, start: int) -> int:
        """Index of the first route at or after ``start`` whose path regex matches, or -1."""
        indexed = self._indexed
        if indexed is None or indexed[0] != len(self.routes):
            indexed = self._indexed = (len(self.routes), [None] * len(self.routes))
        combined = indexed[1]
        if start >= len(combined):
            return -1
        pattern = combined[start]
        if pattern is None:
            pattern = combined[start] = _combine(self.routes[start:])
        match = pattern.match(path)
        if match is None or match.lastindex is None:
            return -1
        return start + match.lastindex - 1

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._plain[0] != len(self.routes):
            self._plain = (len(self.routes), all(hasattr(r, "path_regex") for r in self.routes))
        if scope["type"] != "http" or not self._plain[1]:
            await super().app(scope, receive, send)
            return
        if "router" not in scope:
            scope["router"] = self
        path = _route_path(scope)
        partial: BaseRoute | None = None
        partial_scope: Scope = {}
        index = self._first(path, 0)
        while index >= 0:
            route = self.routes[index]
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope["route"] = route
                scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
            if match is Match.PARTIAL and partial is None:
                partial, partial_scope = route, child_scope
            index = self._first(path, index + 1)
        if partial is not None:
            scope["route"] = partial
            scope.update(partial_scope)
            await partial.handle(scope, receive, send)
            return
        if self.redirect_slashes and path != "/":
            other = path.rstrip("/") if path.endswith("/") else path + "/"
            if self._first(other, 0) >= 0:
                # Starlette's own loop answers with its redirect.
                await super().app(scope, receive, send)
                return
        await self.default(scope, receive, send)


def _combine(routes: t.Sequence[BaseRoute]) -> re.Pattern[str]:
    # Each route's regex becomes one capturing alternative (its own groups made non-capturing),
    # so match.lastindex names the first route, in order, whose path matches.
    parts = []
    for route in routes:
        pattern: str = route.path_regex.pattern  # type: ignore[attr-defined]
        parts.append("(" + _NAMED_GROUP.sub("(?:", pattern) + ")")
    return re.compile("|".join(parts))


def _route_path(scope: Scope) -> str:
    # starlette._utils.get_route_path, inlined.
    path: str = scope["path"]
    root_path = scope.get("root_path", "")
    if not root_path:
        return path
    if not path.startswith(root_path):
        return path
    if path == root_path:
        return ""
    if path[len(root_path)] == "/":
        return path[len(root_path) :]
    return path


class IndexedRoutingAPI(RoutingAPI):  # type: ignore[misc]
    def __init__(self, specification: Specification, *, next_app: ASGIApp, **kwargs: t.Any) -> None:
        self.next_app = next_app
        self.router = IndexedRouter(default=RoutingOperation(None, next_app))
        AbstractRoutingAPI.__init__(self, specification, **kwargs)


class IndexedRoutingMiddleware(RoutingMiddleware):  # type: ignore[misc]
    """connexion's RoutingMiddleware on IndexedRouters; the same routes, found faster."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app)
        self.router = IndexedRouter(default=RoutingOperation(None, self.app))

    def add_api(
        self,
        specification: Specification,
        base_path: str | None = None,
        arguments: dict[str, t.Any] | None = None,
        **kwargs: t.Any,
    ) -> None:
        api = IndexedRoutingAPI(
            specification,
            base_path=base_path,
            arguments=arguments,
            next_app=self.app,
            **kwargs,
        )
        # As connexion does: a second API on the same base path is the first one's fallback.
        from starlette.routing import Mount

        for route in self.router.routes:
            if isinstance(route, Mount) and route.path == api.base_path:
                route.app.default = api.router  # type: ignore[attr-defined]
        self.router.mount(api.base_path, app=api.router)

"""The route table behind one route that finds candidates by path segment.

Starlette's router tries its routes one after another, each with its regular expression.
With 82 routes a listener's heartbeat (route 53) cost 40 µs of matching before any of
its own work, about a fifth of the worker's time under a flood of them, and a request
refused for overload was matched once more for its metrics label
(docs/benchmarks.md, "Goodput under overload"). IndexedRoutes keeps the same answer,
the first route that matches fully, else the first that matches partially (a path
served for other methods: 405), but tries only the routes whose literal segments fit
the request's path, found in a trie of segments.

It is a BaseRoute, so the router sees one route: its match puts the chosen route in the
child scope (scope["route"]), and handle() hands the request to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, Match, NoMatchFound, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send

__all__ = ["IndexedRoutes", "route_path"]


@dataclass
class _Node:
    literal: dict[str, _Node] = field(default_factory=dict)
    wildcard: _Node | None = None
    ends: list[int] = field(default_factory=list)  # routes whose path ends here


class IndexedRoutes(BaseRoute):
    """Many routes, matched as the router would match them one by one, but faster."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.routes = list(routes)
        self._root = _Node()
        # Mounts and multi-segment parameters: tried for every path.
        self._everywhere: list[int] = []
        for index, route in enumerate(self.routes):
            segments = _segments_of(route)
            if segments is None:
                self._everywhere.append(index)
            else:
                self._insert(segments, index)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """(FULL or PARTIAL, child scope with "route") for the route the router would
        choose, or (NONE, {})."""
        partial: tuple[BaseRoute, Scope] | None = None
        for index in self.candidates(route_path(scope)):
            route = self.routes[index]
            match, child = route.matches(scope)
            if match is Match.FULL:
                return Match.FULL, {**child, "route": route}
            if match is Match.PARTIAL and partial is None:
                partial = (route, child)
        if partial is None:
            return Match.NONE, {}
        return Match.PARTIAL, {**partial[1], "route": partial[0]}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The router calls this after matches(), whose child scope named the route."""
        route = scope["route"]
        if route is self:
            raise RuntimeError("IndexedRoutes.handle() before matches()")
        await route.handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        for route in self.routes:
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                continue
        raise NoMatchFound(name, path_params)

    def _insert(self, segments: list[str | None], index: int) -> None:
        node = self._root
        for segment in segments:
            if segment is None:
                node.wildcard = node.wildcard or _Node()
                node = node.wildcard
            else:
                node = node.literal.setdefault(segment, _Node())
        node.ends.append(index)

    def candidates(self, path: str) -> list[int]:
        """Indexes of the routes that may match path, in table order."""
        found = list(self._everywhere)
        nodes = [self._root]
        for segment in path.split("/"):
            following: list[_Node] = []
            for node in nodes:
                exact = node.literal.get(segment)
                if exact is not None:
                    following.append(exact)
                # A parameter never matches an empty segment ("[^/]+" and the like).
                if node.wildcard is not None and segment:
                    following.append(node.wildcard)
            if not following:
                return sorted(found)
            nodes = following
        for node in nodes:
            found.extend(node.ends)
        return sorted(found)


def _segments_of(route: BaseRoute) -> list[str | None] | None:
    """The route's path as literal segments and parameters (None), or None when it can
    match more than one segment count (a Mount, a {name:path} parameter)."""
    if not isinstance(route, Route | WebSocketRoute):
        return None
    if ":path}" in route.path:
        return None
    return [None if "{" in part else part for part in route.path.split("/")]


def route_path(scope: Scope) -> str:
    """The path a route matches against: scope["path"] less the root path, as
    Starlette's routes take it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if not root or not path.startswith(root):
        return path
    if path == root:
        return ""
    return path[len(root) :] if path[len(root)] == "/" else path

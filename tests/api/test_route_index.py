"""The indexed route table (api/route_index.py) chooses exactly the route Starlette's
router would, trying a handful of routes instead of all of them."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.routing import BaseRoute, Match, Mount, Route, WebSocketRoute
from starlette.types import Scope

from majlis.api.route_index import IndexedRoutes, route_path

from .conftest import Harness, running_harness
from .test_metrics import scrape, value

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
FIXED_PATHS = (
    "",
    "/",
    "//",
    "/api",
    "/api/",
    "/api/v1",
    "/nope",
    "/api/v1/spaces//join",
    "/api/v1/spaces/a/b/join",
    "/hls/abc123/main.m3u8",
    "/hls/abc123/p1-2-3.m4s",
    "/hls",
    "/metrics/",
    "/api/v1/spaces/\u0645\u062c\u0644\u0633",
)


def linear(routes: list[BaseRoute], scope: Scope) -> tuple[Match, Scope]:
    """Starlette's router, as its rule reads: of all the routes, the first that matches
    fully, else the first that matches partially."""
    answers = [(route, *route.matches(scope)) for route in routes]
    for wanted in (Match.FULL, Match.PARTIAL):
        chosen = [(route, child) for route, match, child in answers if match is wanted]
        if chosen:
            route, child = chosen[0]
            return wanted, {**child, "route": route}
    return Match.NONE, {}


def filled(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, path)


def paths_to_try(routes: list[BaseRoute]) -> set[str]:
    """Each route's path with its parameters filled in, and the near misses around it:
    a trailing slash, a segment more, a segment less, an empty parameter."""
    paths = set(FIXED_PATHS)
    for route in routes:
        template = getattr(route, "path", "")
        for filler in ("abc123", "a.b", "x"):
            path = filled(template, filler)
            paths |= {path, path + "/", path + "/x", path.rsplit("/", 1)[0]}
        paths.add(filled(template, ""))
    return paths


def table_of(harness: Harness) -> IndexedRoutes:
    (table,) = harness.app.router.routes
    assert isinstance(table, IndexedRoutes)
    return table


async def test_it_chooses_the_route_the_router_would(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        table = table_of(h)
    kinds = {type(route) for route in table.routes}
    assert {Route, WebSocketRoute, Mount} <= kinds  # every kind of route is in the table
    compared = 0
    outcomes: set[Match] = set()
    for path in paths_to_try(table.routes):
        for kind, methods in (("http", METHODS), ("websocket", ("GET",))):
            for method in methods:
                for root in ("", "/base"):
                    scope = {"type": kind, "method": method, "path": root + path}
                    scope |= {"root_path": root, "headers": [], "query_string": b""}
                    found, child = table.matches(scope)
                    expected, expected_child = linear(table.routes, scope)
                    assert (found, child.get("route")) == (
                        expected,
                        expected_child.get("route"),
                    ), (kind, method, root + path)
                    assert child.get("path_params") == expected_child.get("path_params")
                    outcomes.add(found)
                    compared += 1
    assert outcomes == {Match.FULL, Match.PARTIAL, Match.NONE}
    assert compared > 5000


async def test_a_heartbeat_tries_a_handful_of_routes(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        table = table_of(h)
    assert len(table.routes) > 50
    tried = table.candidates("/api/v1/spaces/abc123/heartbeat")
    paths = [getattr(table.routes[index], "path", "") for index in tried]
    assert "/api/v1/spaces/{space_id}/heartbeat" in paths
    assert len(tried) <= 4, paths  # the mounts, and what shares the heartbeat's shape


def test_the_route_path_leaves_out_the_root_path() -> None:
    def of(path: str, root: str) -> str:
        return route_path({"path": path, "root_path": root})

    assert of("/api/v1/spaces", "") == "/api/v1/spaces"
    assert of("/base/api/v1/spaces", "/base") == "/api/v1/spaces"
    assert of("/base", "/base") == ""
    assert of("/basement/x", "/base") == "/basement/x"
    assert of("/other", "/base") == "/other"


async def test_through_the_app_wrong_methods_slashes_and_refusals(tmp_path: Path) -> None:
    async with running_harness(tmp_path, max_body_bytes=1024) as h:
        host = await h.account("host")
        sid = (await h.create_space(host))["id"]
        listener = await h.anonymous()
        beat = f"/spaces/{sid}/heartbeat"
        wrong = await h.call("GET", beat, listener)
        unknown = await h.call("GET", f"/spaces/{sid}/nothing-here", listener)
        slashed = await h.client().get("/api/v1/spaces/", follow_redirects=False)
        too_big = await h.call("POST", beat, listener, json={"pad": "x" * 4096})
        families = await scrape(h)

    assert wrong.status_code == 405
    assert "POST" in wrong.headers["allow"]
    assert unknown.status_code == 404
    assert slashed.status_code in (307, 308)
    assert slashed.headers["location"].endswith("/api/v1/spaces")
    # Refused before the router saw it, and still counted under its route.
    assert too_big.status_code == 413
    route = "/api/v1/spaces/{space_id}/heartbeat"
    assert value(families, "majlis_http_requests", route=route, status="413") == 1
    assert value(families, "majlis_http_requests", route=route, status="405") == 1

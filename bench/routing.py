"""Route matching: Starlette's one-by-one scan against the indexed table, side by side.

Builds the embedded server's app (media off) and times, for a few requests listeners
make, finding the route both ways on the same table, alternating the two in rounds so
that a busy moment of the machine falls on both. Medians of the rounds, in µs per
request, and their ratio.

    .venv/bin/python bench/routing.py --out bench/results/routing.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from majlis.api.route_index import IndexedRoutes
from majlis.app import build_app, build_services
from majlis.config import load_config
from mediabench import machine

REQUESTS = {
    "heartbeat": ("POST", "/api/v1/spaces/abc123def456/heartbeat"),
    "join": ("POST", "/api/v1/spaces/abc123def456/join"),
    "space": ("GET", "/api/v1/spaces/abc123def456"),
    "live playlist": ("GET", "/hls/abc123def456/main.m3u8"),
    "no such path": ("GET", "/api/v1/nothing/here"),
}


def scan(routes: list[BaseRoute], scope: Scope) -> object:
    """What Starlette's Router.app does before handing over."""
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
        if match is Match.PARTIAL and partial is None:
            partial = route
    return partial


def per_call_us(find: Callable[[], object], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        find()
    return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    data = tempfile.mkdtemp(prefix="majlis-routing-")
    config = load_config(environ={}, flags={"data_dir": data, "media": False})
    (table,) = build_app(build_services(config)).router.routes
    assert isinstance(table, IndexedRoutes)
    results: dict[str, Any] = {}
    for name, (method, path) in REQUESTS.items():
        scope = {"type": "http", "method": method, "path": path, "root_path": ""}
        scope |= {"headers": [], "query_string": b""}
        assert scan(table.routes, scope) is table.matches(scope)[1].get("route")
        scanned, indexed = [], []
        for _ in range(args.rounds):
            scanned.append(per_call_us(lambda s=scope: scan(table.routes, s), args.calls))
            indexed.append(per_call_us(lambda s=scope: table.matches(s), args.calls))
        results[name] = {
            "scan_us": round(statistics.median(scanned), 2),
            "indexed_us": round(statistics.median(indexed), 2),
            "ratio": round(statistics.median(scanned) / statistics.median(indexed), 1),
            "tried": len(table.candidates(path)),
        }
        print(name, json.dumps(results[name]))
    out = {"machine": machine(), "routes": len(table.routes), "requests": results}
    if args.out:
        args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()

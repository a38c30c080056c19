"""/metrics in Prometheus text format, answered only to loopback callers (operators scrape
from the host or through their own proxy); everyone else gets 404."""

from __future__ import annotations

import resource
import time
from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from majlis.plane import Sample

__all__ = ["metrics_route"]

_LOOPBACK = ("127.", "::1", "localhost")


def _render(samples: list[Sample]) -> str:
    lines = []
    for name, labels, value in samples:
        label_text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        lines.append(f"{name}{{{label_text}}} {value:.6g}" if labels else f"{name} {value:.6g}")
    return "\n".join(lines) + "\n"


def _process() -> list[Sample]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return [
        ("process_cpu_seconds_total", {}, usage.ru_utime + usage.ru_stime),
        ("process_max_rss_kib", {}, float(usage.ru_maxrss)),
        ("process_time_seconds", {}, time.time()),
    ]


def metrics_route(sources: Sequence[Callable[[], Awaitable[list[Sample]]]]) -> Route:
    async def metrics(request: Request) -> Response:
        host = request.client.host if request.client else ""
        if not host.startswith(_LOOPBACK):
            return PlainTextResponse("not found", status_code=404)
        samples = _process()
        for source in sources:
            # Sources in other processes (the media worker, the cluster) are asked.
            samples += await source()
        return PlainTextResponse(_render(samples), headers={"Cache-Control": "no-store"})

    return Route("/metrics", metrics)

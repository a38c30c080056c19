"""/metrics in the Prometheus text format, through prometheus_client, answered only to
loopback callers (operators scrape from the host or through their own proxy); everyone
else gets 404.

Two kinds of figures, each with its HELP and TYPE:
- what this worker counts as it answers: HTTP requests by route template, method and
  status, their latency (a histogram), and joins by outcome (admitted, queued, refused),
  kept in a registry of the app's own (no global state: two apps in one process, as the
  tests run them, count apart);
- what other parts know, asked for at each scrape: the media plane (a child process, a
  thread or the cluster's nodes), the overload controls, listeners per live space, event
  sockets. They arrive as plain samples (plane.Sample) and are typed here: a name ending
  in _total is a counter, anything else a gauge.
"""

from __future__ import annotations

import resource
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from majlis.api.route_index import IndexedRoutes
from majlis.plane import Sample

__all__ = ["CONTENT_TYPE", "HttpMetrics", "Metrics", "metrics_route"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LOOPBACK = ("127.", "::1", "localhost")
_JOIN = "/api/v1/spaces/{space_id}/join"
# From a cached answer to a blocking playlist reload that waited a whole segment.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Source = Callable[[], Awaitable[list[Sample]]]
JoinOutcome = Literal["admitted", "queued", "refused"]

# What the samples from elsewhere mean. A name missing here still gets a HELP line (its
# name), but tests/api/test_metrics.py fails until it is described.
HELP: dict[str, str] = {
    "process_cpu_seconds_total": "CPU seconds used by this worker (user and system)",
    "process_max_rss_kib": "the largest resident set of this worker so far, KiB",
    "process_time_seconds": "Unix time of this scrape",
    "majlis_loop_lag_seconds": "this worker's event loop's standing delay (its lag)",
    "majlis_shed_share": "the share of writes this worker refuses now (0-1), following its delay",
    "majlis_connection_holds_total": "connections held unread for ignoring a Retry-After",
    "majlis_http_in_flight": "HTTP requests this worker's application is answering now",
    "majlis_connections_closed_quiet_total": "connections closed for owing a whole request "
    "longer than the keep-alive (sent nothing, or part of a head)",
    "majlis_door_inside": "writes let into this worker's application and not yet answered",
    "majlis_door_waiting": "writes waiting at this worker's door, their connections unread",
    "majlis_door_waited_total": "writes that waited at the door for a place",
    "majlis_door_wait_seconds": "the standing wait at the door: the least of the last half "
    "second's, or the first in line's while none is let in",
    "majlis_shed_total": "writes refused for overload, by stage: as the connection read them "
    "(not in majlis_http_requests_total) or in the app",
    "majlis_admission_rate": "listeners per second the waiting room admits now, per space",
    "majlis_admission_behind": "1 while the waiting room's rate is cut for a late worker "
    "(its loop, or its door)",
    "majlis_listeners": "listeners of each live space, counted by presence",
    "majlis_waiting_room_depth": "tickets not yet admitted, per live space, as of its last join",
    "majlis_event_sockets": "event sockets open on this worker",
    "majlis_session": "this worker's identity (labels), always 1",
    "majlis_cluster_nodes": "media nodes this worker sees on the bus",
    "majlis_cluster_nodes_behind": "media nodes whose mixers run late: they take no new spaces",
    "majlis_cluster_spaces": "live spaces on each media node",
    "majlis_media_spaces": "spaces this media node runs",
    "majlis_media_late_ms": "how late its mixers' ticks start lately (90th percentile, "
    "last 10 s, worst space); from 20 ms it takes no new spaces",
    "majlis_media_standby_spaces": "spaces this media node holds ready for a handover",
    "majlis_media_worker_pid": "process id of the media worker",
    "majlis_media_worker_restarts_total": "times the media worker was restarted",
    "majlis_media_gc_collections_total": "full garbage collections the media worker ran",
    "majlis_media_gc_seconds_total": "seconds the media worker spent in them",
    "majlis_media_gc_longest_seconds": "the longest of them so far",
    "majlis_media_gc_freed_total": "unreachable objects they found",
    "majlis_media_gc_frozen": "objects frozen at the media worker's start (never collected)",
    "majlis_media_worker_cpu_seconds_total": "CPU seconds used by the media worker",
    "majlis_media_worker_max_rss_kib": "the media worker's largest resident set, KiB",
    "majlis_mixer_speakers": "speakers in each space's mix",
    "majlis_mixer_ticks_total": "20 ms mixer ticks run",
    "majlis_mixer_ticks_skipped_total": "mixer ticks skipped because the loop was late",
    "majlis_mixer_shared_encodes_total": "mix-minus encodes shared between listeners",
    "majlis_mixer_tick_late_max_ms": "the latest a mixer tick started, ms, recently",
    "majlis_mixer_tick_late_p50_ms": "how late mixer ticks start, ms, median, recently",
    "majlis_mixer_tick_late_p99_ms": "how late mixer ticks start, ms, 99th percentile",
    "majlis_mixer_tick_cost_p99_ms": "CPU time of a mixer tick, ms, 99th percentile",
    "majlis_packager_backlog_frames": "audio frames waiting to be packaged, per space",
    "majlis_packager_failed": "1 when a space's packager has failed",
    "majlis_packager_segments_total": "HLS segments written",
    "majlis_packager_overlap_dropped_total": "frames dropped as overlapping on resume",
    "majlis_packager_silenced_total": "frames recorded as silence: the writer was too far behind",
    "majlis_captions_failed": "1 when a space's captioner has failed",
    "majlis_captions_transcriptions_total": "utterances transcribed for live captions",
    "majlis_captions_whisper_seconds_total": "seconds spent in the speech model",
    "majlis_captions_dropped_frames_total": "audio frames the captioner could not keep up with",
}


class Metrics:
    """This worker's own counters, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "majlis_http_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "majlis_http_request_duration_seconds",
            "time to the end of the answer's headers, by route template",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.joins = Counter(
            "majlis_joins",
            "joins answered: admitted (a playback token), queued (a waiting-room ticket), "
            "refused (an error: overload, rate limit, bad request)",
            ["outcome"],
            registry=self.registry,
        )

    def answered(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)
        if route == _JOIN and method == "POST":
            self.joins.labels(_join_outcome(status)).inc()


def _join_outcome(status: int) -> JoinOutcome:
    if status == 200:
        return "admitted"
    return "queued" if status == 202 else "refused"


class HttpMetrics:
    """ASGI middleware: counts each HTTP answer by its route's template (so that ids do not
    make a series each). Early in the stack, so that the refusals of the middleware after
    it (overload, rate limits) count too, under the route they were refused for."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: IndexedRoutes) -> None:
        self._app = app
        self._metrics = metrics
        self._routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before any answer is a 500 to the client

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                route = _route_of(scope, self._routes)
                self._metrics.answered(
                    route, scope["method"], status, time.perf_counter() - started
                )
            await send(message)

        await self._app(scope, receive, sending)


def _route_of(scope: Scope, routes: IndexedRoutes) -> str:
    # Starlette's router puts the route it chose in the scope. A request refused before it
    # got there is matched here, through the same index.
    route = scope.get("route")
    if route is None:
        route = routes.matches(scope)[1].get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else "unmatched"


class _Sampled(Collector):
    """The samples asked for at one scrape, as typed metric families."""

    def __init__(self, samples: Iterable[Sample]) -> None:
        self._samples = list(samples)

    def collect(self) -> Iterable[Metric]:
        by_name: dict[str, list[Sample]] = defaultdict(list)
        for sample in self._samples:
            by_name[sample[0]].append(sample)
        for name, samples in by_name.items():
            keys = sorted({key for _, labels, _ in samples for key in labels})
            family: CounterMetricFamily | GaugeMetricFamily
            doc = HELP.get(name, name)
            if name.endswith("_total"):
                family = CounterMetricFamily(name, doc, labels=keys)
            else:
                family = GaugeMetricFamily(name, doc, labels=keys)
            for _, labels, value in samples:
                family.add_metric([str(labels.get(key, "")) for key in keys], value)
            yield family


def _process() -> list[Sample]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return [
        ("process_cpu_seconds_total", {}, usage.ru_utime + usage.ru_stime),
        ("process_max_rss_kib", {}, float(usage.ru_maxrss)),
        ("process_time_seconds", {}, time.time()),
    ]


def metrics_route(metrics: Metrics, sources: Sequence[Source]) -> Route:
    async def scrape(request: Request) -> Response:
        host = request.client.host if request.client else ""
        if not host.startswith(_LOOPBACK):
            return Response("not found", status_code=404, media_type="text/plain")
        samples = _process()
        for source in sources:
            # Sources in other processes (the media worker, the cluster) are asked.
            samples += await source()
        asked = CollectorRegistry(auto_describe=False)
        asked.register(_Sampled(samples))
        body = generate_latest(metrics.registry) + generate_latest(asked)
        return Response(body, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})

    return Route("/metrics", scrape)

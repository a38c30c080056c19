"""Issue 13: a worker that is behind sheds writes before doing their work. The standing
delay is the least, over half a second, of how late the event loop wakes a timer or comes
back to a task that yields (CoDel's idea)."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from majlis.api.overload import INTERVAL, LoopLag, ShedWrites


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_late_wake_up_is_not_a_standing_delay() -> None:
    clock = Clock()
    lag = LoopLag(clock)
    for late in (0.0, 0.4, 0.0):  # a garbage collection, say
        clock.now += 0.1
        lag.note(clock.now, late)
    assert lag.standing() == 0.0


def test_a_delay_that_lasts_the_interval_stands_and_goes_stale() -> None:
    clock = Clock()
    lag = LoopLag(clock)
    for _ in range(int(INTERVAL / 0.1) + 2):
        clock.now += 0.1
        lag.note(clock.now, 0.3)
    assert lag.standing() == 0.3
    clock.now += INTERVAL * 2  # the watcher stopped: no stale verdict
    assert lag.standing() == 0.0


async def ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("done")


def app_with(lag: LoopLag) -> tuple[ShedWrites, httpx.AsyncClient]:
    inner = Starlette(
        routes=[
            Route("/api/v1/thing", ok, methods=["GET", "POST"]),
            Route("/hls/x", ok, methods=["POST"]),
        ]
    )
    shed = ShedWrites(inner, lag, target_s=0.1)
    return shed, httpx.AsyncClient(transport=httpx.ASGITransport(app=shed), base_url="http://t")


async def test_a_busy_loop_sheds_api_writes_only() -> None:
    """The real measure on the real loop: a handler that blocks it 120 ms at a time."""
    lag = LoopLag()
    watching = asyncio.create_task(lag.watch())
    shed, client = app_with(lag)
    async with client:
        assert (await client.post("/api/v1/thing")).status_code == 200  # calm: served
        deadline = time.monotonic() + INTERVAL * 3
        while time.monotonic() < deadline:
            time.sleep(0.12)  # noqa: ASYNC251 (the point: a loop that is behind)
            await asyncio.sleep(0)
        assert lag.standing() > 0.1
        refused = await client.post("/api/v1/thing")
        assert refused.status_code == 503
        assert refused.json()["error"] == "overloaded"
        assert 1 <= int(refused.headers["retry-after"]) <= 3
        assert 1000 <= int(refused.headers["retry-after-ms"]) <= 3000
        assert (await client.get("/api/v1/thing")).status_code == 200  # reads go on
        assert (await client.post("/hls/x")).status_code == 200  # so does audio
        assert shed.shed == 1
        await asyncio.sleep(INTERVAL * 2)  # calm again: the delay no longer stands
        assert (await client.post("/api/v1/thing")).status_code == 200
    watching.cancel()


def test_the_standing_delay_is_a_whole_turn_of_a_busy_uvloop() -> None:
    """Eight sockets always readable, each read holding the loop 10 ms: every turn lasts
    80 ms or more, and a request waits a turn per step of its handler. uvloop fires due
    timers at the start of a turn, before the sockets are read, so a 25 ms timer is only
    ~55 ms late here; the standing delay must count the whole turn."""
    import uvloop

    async def main() -> float:
        loop = asyncio.get_running_loop()
        pairs = [socket.socketpair() for _ in range(8)]
        for ours, theirs in pairs:
            theirs.send(b"x")  # never read: readable on every turn
            loop.add_reader(ours, time.sleep, 0.01)
        lag = LoopLag()
        watching = asyncio.create_task(lag.watch())
        await asyncio.sleep(INTERVAL * 3)
        standing = lag.standing()
        watching.cancel()
        for ours, theirs in pairs:
            loop.remove_reader(ours)
            ours.close()
            theirs.close()
        return standing

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(main()) >= 0.075

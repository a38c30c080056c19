"""Shed writes early when this worker is behind, instead of answering them late.

The worker's queueing delay is read from its own event loop: a task asks to sleep for a
short tick and notes how late it wakes up, then yields once and notes how long the loop
took to come back to it (one whole turn: reading every socket that is ready, and every
task step queued ahead). Lateness alone under-reads: uvloop runs due timers at the start
of a turn, so a timer waits only for the rest of the turn it fell due in, while a request
waits for whole turns, one per step of its handler. Like CoDel, what counts is the *least* delay
over the last interval: one slow moment (a garbage collection, a burst) passes, but a
delay that stands for a whole interval means requests are queueing, and adding more only
makes every answer later. While it stands above the target, writes under /api/ get 503
with a jittered Retry-After before any of their work is done; reads, HLS and the event
sockets go on (a listener's audio is the last thing to shed).

Joins are spared up to SPARE_FACTOR times the target: the waiting room reads the same
delay and answers them with tickets (services/admission.py), a place in line the client
keeps, where a 503 sends it back to the end. Past that the worker is so far behind that
even a ticket makes every other answer later, and joins are refused like other writes.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from majlis.api.middleware import WRITE_METHODS, send_error
from majlis.errors import Overloaded

__all__ = ["SPARE_FACTOR", "LoopLag", "ShedWrites", "is_join_path"]

TICK = 0.025  # seconds between looks at the loop
INTERVAL = 0.5  # the least delay over this long is the standing delay
SPARE_FACTOR = 3.0  # spared writes (joins) are shed only past this many times the target


def is_join_path(path: str) -> bool:
    """POST /api/v1/spaces/{id}/join: answered with a ticket, not a 503, when busy."""
    return path.startswith("/api/v1/spaces/") and path.endswith("/join")


class LoopLag:
    """The event loop's standing delay, measured on the loop it runs on."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._samples: deque[tuple[float, float]] = deque()  # (when, how late)

    def note(self, at: float, late: float) -> None:
        self._samples.append((at, late))
        while self._samples and self._samples[0][0] < at - INTERVAL:
            self._samples.popleft()

    def standing(self) -> float:
        """The least lateness over the last interval, in seconds (0.0 before any)."""
        if not self._samples:
            return 0.0
        newest = self._samples[-1][0]
        if newest < self._clock() - INTERVAL:
            return 0.0  # stale: the watcher is not running
        return min(late for _, late in self._samples)

    async def watch(self) -> None:
        while True:
            asked = self._clock()
            await asyncio.sleep(TICK)
            woke = self._clock()
            await asyncio.sleep(0)
            turn = self._clock() - woke
            self.note(woke, max(0.0, woke - asked - TICK, turn))


class ShedWrites:
    """503 with Retry-After for writes while the standing delay is over `target_s`
    (over SPARE_FACTOR times that for paths `spare` accepts)."""

    def __init__(
        self,
        app: ASGIApp,
        lag: LoopLag,
        target_s: float,
        spare: Callable[[str], bool] = lambda path: False,
    ) -> None:
        self.app = app
        self.lag = lag
        self.target_s = target_s
        self.spare = spare
        self.shed = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and self.target_s > 0
            and scope["method"] in WRITE_METHODS
            and scope["path"].startswith("/api/")
            and self.lag.standing() > self._limit(scope["path"])
        ):
            self.shed += 1
            # Jittered, so the refused do not all come back in the same instant.
            wait_ms = int(random.uniform(1000, 3000))
            await send_error(send, Overloaded("the server is busy; try again shortly", wait_ms))
            return
        await self.app(scope, receive, send)

    def _limit(self, path: str) -> float:
        return self.target_s * SPARE_FACTOR if self.spare(path) else self.target_s

"""Shed writes early when this worker is behind, instead of answering them late.

The worker's queueing delay is read from its own event loop: a task asks to sleep for a
short tick and notes how late it wakes up, then yields once and notes how long the loop
took to come back to it (one whole turn: reading every socket that is ready, and every
task step queued ahead). Lateness alone under-reads: uvloop runs due timers at the start
of a turn, so a timer waits only for the rest of the turn it fell due in, while a request
waits for whole turns, one per step of its handler.

Writes under /api/ are refused with 503 and a jittered Retry-After before any of their
work is done, each with a probability that follows the delay (api/shed_share.py, PIE):
it rises while the delay is over the target and decays while it is under, so the worker
goes on serving what it can while it refuses the rest. Reads, HLS and the event sockets
go on (a listener's audio is the last thing to shed). The same rule (`Shedding`) is put
to each request twice: first as its connection reads it, before uvicorn parses it
(majlis/serving/early.py), where those it can judge are answered for a fraction of the
cost; then in the application, for the rest (about half under a flood: the first writes
of a burst, and those on a connection with a request in progress). Each refused client
is told to the connection holds (majlis/serving/holds.py): one refused again within the
wait it was given has its connection held unread until the wait is over, so that a
flood that ignores Retry-After waits it out anyway.

Joins are spared up to SPARE_FACTOR times the target, by the *standing* delay: like
CoDel, the least delay over the last interval, so one slow moment (a garbage collection,
a burst) passes. The waiting room reads the same standing delay and answers joins with
tickets (services/admission.py), a place in line the client keeps, where a 503 sends it
back to the end. Past that the worker is so far behind that even a ticket makes every
other answer later, and joins are refused like other writes.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from majlis.api.middleware import WRITE_METHODS, error_parts, send_error
from majlis.api.shed_share import ShedShare
from majlis.errors import Overloaded
from majlis.serving.early import Refusal

__all__ = ["SPARE_FACTOR", "LoopLag", "ShedWrites", "Shedding", "Told", "is_join_path"]

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
        self._asleep_since: float | None = None  # the watcher's tick, while it waits

    def note(self, at: float, late: float) -> None:
        self._samples.append((at, late))
        while self._samples and self._samples[0][0] < at - INTERVAL:
            self._samples.popleft()

    def latest(self) -> float:
        """The delay now, in seconds: the last lateness seen or, while the watcher's own
        wake-up is overdue, how overdue it is (a turn too long for the watcher to have
        seen it end). 0.0 before any, or when the watcher is not running."""
        overdue = self._overdue()
        if not self._fresh():
            return overdue
        return max(self._samples[-1][1], overdue)

    def standing(self) -> float:
        """The least lateness over the last interval, in seconds (0.0 before any, or when
        the watcher is not running); a wake-up overdue all interval long is what stood."""
        if not self._fresh():
            return self._overdue()
        return min(late for _, late in self._samples)

    def _fresh(self) -> bool:
        return bool(self._samples) and self._samples[-1][0] >= self._clock() - INTERVAL

    def _overdue(self) -> float:
        if self._asleep_since is None:
            return 0.0
        return max(0.0, self._clock() - self._asleep_since - TICK)

    async def watch(self) -> None:
        try:
            while True:
                await self._look()
        finally:
            self._asleep_since = None

    async def _look(self) -> None:
        asked = self._asleep_since = self._clock()
        await asyncio.sleep(TICK)
        woke = self._clock()
        self._asleep_since = None
        await asyncio.sleep(0)
        turn = self._clock() - woke
        self.note(woke, max(0.0, woke - asked - TICK, turn))


class Told(Protocol):
    """Told of each client refused, and the wait it was asked for (it may hold the
    connection of a client that comes back sooner: majlis/serving/holds.py)."""

    def __call__(self, client: tuple[str, int], wait_s: float, /) -> None: ...


class Shedding:
    """Which writes to refuse now: the `share` of writes (None: never shed), and for
    paths `spare` accepts, all of them while the standing delay is over SPARE_FACTOR
    times the share's target. The one rule for both places a write is refused: as the
    connection reads it (`early`), and in the application (ShedWrites)."""

    def __init__(
        self,
        lag: LoopLag,
        share: ShedShare | None,
        spare: Callable[[str], bool] = lambda path: False,
    ) -> None:
        self.lag = lag
        self.share = share
        self.spare = spare
        self.shed = 0  # writes refused, in all
        self.shed_early = 0  # of which as they were read
        self.methods = frozenset(method.encode() for method in WRITE_METHODS)

    def armed(self) -> bool:
        """Whether `refusal` may refuse anything now: the share is above 0, or the delay
        is over the target (below it, neither the share nor the spared paths' rule can
        refuse). Cheaper than asking, and the same answer."""
        share = self.share
        return share is not None and (share.share > 0.0 or self.lag.latest() > share.target_s)

    def refusal(self, method: str, path: str, waited_s: float = 0.0) -> Overloaded | None:
        """The answer to a request to refuse, with its jittered wait; None to serve it.
        `waited_s`: how long it waited at the door (serving/door.py); one that waited
        longer than the target is refused whatever the loop's delay, except on the paths
        `spare` accepts: a join that waited is answered with a ticket, since the waiting
        room follows the door's wait (app._delay), where a 503 would send it to the back."""
        share = self.share
        if share is None or method not in WRITE_METHODS or not path.startswith("/api/"):
            return None
        if self.spare(path):
            refuse = self.lag.standing() > share.target_s * SPARE_FACTOR
        else:
            refuse = waited_s > share.target_s
            refuse = refuse or random.random() < share.update(self.lag.latest())
        if not refuse:
            return None
        self.shed += 1
        # Jittered, so the refused do not all come back in the same instant.
        return Overloaded("the server is busy; try again shortly", int(random.uniform(1000, 3000)))

    def early(self, method: str, path: str, waited_s: float) -> Refusal | None:
        """`refusal`, as the answer a connection writes itself (Shedding is the
        serving.early.Gate: `methods` are the ones it may refuse)."""
        error = self.refusal(method, path, waited_s)
        if error is None:
            return None
        self.shed_early += 1
        status, headers, body = error_parts(error)
        return Refusal(status, tuple(headers), body, error.retry_after_ms / 1000)


class ShedWrites:
    """503 with Retry-After for the writes `shedding` refuses, before any of their work;
    each refused client is `told`."""

    def __init__(self, app: ASGIApp, shedding: Shedding, told: Told | None = None) -> None:
        self.app = app
        self.shedding = shedding
        self.told = told

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            error = self.shedding.refusal(scope["method"], scope["path"])
            if error is not None:
                client = scope.get("client")
                if client and self.told is not None:
                    self.told((client[0], client[1]), error.retry_after_ms / 1000)
                await send_error(send, error)
                return
        await self.app(scope, receive, send)

"""Writes let into the application a few at a time; the rest wait at the door, unread.

A write read whole on a connection with nothing else in progress goes on to the
application only while fewer than `limit` are in hand. Otherwise that connection is read
no further and waits its turn, in order, with the bytes of its request kept. The backlog
waits where it costs nothing (one request per connection here, the rest in the kernel's
socket buffers), and the loop's turns stay short: a served write is answered within a
few of them, however many connections wait. (It was meant to win back what a worker
loses with many connections, 330 with no pause served ~10 % fewer a second than 32, and
does not: docs/benchmarks.md, "The door".)

Waiting writes are let in by the batch: once answers have freed half the places, as
many as fill them. Let in one at a time, as each answer went out, the door served 15 %
fewer a second (docs/benchmarks.md, "The door"), and writing each answer to its socket
took twice as long; why is not settled.

The wait at the door is a queueing delay the shedding rule is told of: a write that
waited longer than the target is refused as it is let in (api/overload.py), so that the
refused hear it within about the target, and those who do as told come back later (a
join goes on instead, to the waiting room's ticket). Its standing value (`standing`) is
the worker's delay for whoever paces by it, the waiting room first: a door keeps the
event loop calm through an overload, so the loop's own delay no longer says the worker
is behind.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

__all__ = ["Door", "Waiting"]

# The least wait over this long is the standing wait, as for the loop's delay
# (api/overload.py): a queue that emptied once in it was not standing.
INTERVAL = 0.5


class Waiting(Protocol):
    """A connection with a request waiting at the door."""

    def let_in(self, waited_s: float, /) -> bool:
        """Hand the request on after `waited_s` at the door: True, or False if it was
        refused instead or its connection has gone (it then takes no place inside)."""
        ...


class Door:
    """At most `limit` writes in the application at once; the others wait in order."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1:
            raise ValueError("the door must let at least one write in at a time")
        self.limit = limit
        self.low_water = limit // 2  # waiting writes go in once no more than this are inside
        self._clock = clock
        self.inside = 0  # writes in the application now
        self._waiting: deque[tuple[Waiting, float]] = deque()
        self.waited = 0  # writes that had to wait, in all
        self._walked_in_at = -INTERVAL  # when a write last went in without waiting
        # (let in at, after waiting) of the last interval's let-ins, each wait shorter than
        # those after it: a longer one let in before a shorter is never the least again,
        # so the least is the first, however many are let in (a join asks each time).
        self._waits: deque[tuple[float, float]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def enter(self) -> bool:
        """Whether a write may go in now (it then takes a place until `left`). Not while
        others wait: they go first."""
        if self.inside >= self.limit or self._waiting:
            return False
        self.inside += 1
        self._walked_in_at = self._clock()
        return True

    def wait(self, who: Waiting) -> None:
        """`who` waits for a place (`enter` said no); it is let in when one frees."""
        self.waited += 1
        self._waiting.append((who, self._clock()))

    def standing(self) -> float:
        """The wait at the door that stood over the last interval, in seconds: 0.0 if a
        write walked straight in during it; else the least wait of those let in during
        it; else, with none let in, how long the first in line has waited."""
        now = self._clock()
        if now - self._walked_in_at <= INTERVAL:
            return 0.0
        self._forget(now)
        if self._waits:
            return self._waits[0][1]
        if self._waiting:
            return now - self._waiting[0][1]
        return 0.0

    def left(self) -> None:
        """A write inside was answered, or its connection went: once half the places
        are free, the next writes waiting go in, as many as there are places."""
        self.inside = max(0, self.inside - 1)
        if self.inside > self.low_water or not self._waiting:
            return
        now = self._clock()
        while self.inside < self.limit and self._waiting:
            who, since = self._waiting.popleft()
            self.inside += 1  # before let_in, which may answer at once and leave
            self._note(now, now - since)
            if not who.let_in(now - since):
                self.inside -= 1

    def _note(self, now: float, waited: float) -> None:
        waits = self._waits
        while waits and waits[-1][1] >= waited:
            waits.pop()
        waits.append((now, waited))
        self._forget(now)

    def _forget(self, now: float) -> None:
        """Drop the waits let in before the last interval."""
        while self._waits and self._waits[0][0] < now - INTERVAL:
            self._waits.popleft()

"""The live edge of one space's playlist, shared between the packager thread (writer) and
the origin's asyncio loops (readers).

The packager publishes an immutable FeedSnapshot after every part it writes, holding both
the full playlist and its delta update (RFC 8216bis 6.2.5.1), each rendered once however
many listeners ask. Readers either take the newest snapshot or await one that contains a
given part (LL-HLS blocking playlist reload, 6.2.5.2). Waking crosses threads with
loop.call_soon_threadsafe, one future per loop, so any number of loops can wait.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["FeedSnapshot", "PlaylistFeed"]


@dataclass(frozen=True, slots=True)
class FeedSnapshot:
    """One published state of the playlist.

    msn/part name the newest part written: part is -1 while segment msn has none yet.
    complete_msn is the newest segment listed with its URI (-1 when none). delta is the
    Playlist Delta Update of `playlist` (the answer to _HLS_skip), None when the full
    playlist is the answer: once ended, or while nothing is old enough to skip.
    """

    playlist: bytes
    life: int
    msn: int
    part: int
    complete_msn: int
    parts_per_segment: int
    target_duration: int
    part_target: float
    ended: bool
    delta: bytes | None = None

    @property
    def advance_part_limit(self) -> int:
        """How far ahead a client may ask for a part (RFC 8216bis 6.2.5.2)."""
        if self.part_target < 1.0:
            return math.floor(3.0 / self.part_target)
        return 3

    def has(self, msn: int, part: int | None) -> bool:
        """True once the playlist answers a blocking reload for (msn, part).

        A part index past a segment's last part means part 0 of the next segment
        (RFC 8216bis 6.2.5.2); directives are moot once the playlist has ended.
        """
        if self.ended:
            return True
        if part is None:
            return self.complete_msn >= msn
        if part >= self.parts_per_segment:
            msn, part = msn + 1, 0
        return (self.msn, self.part) >= (msn, part)

    def parts_ahead(self, msn: int, part: int) -> int:
        """How many parts (msn, part) lies beyond the newest part (<= 0: already there)."""
        return (msn - self.msn) * self.parts_per_segment + (part - self.part)


class PlaylistFeed:
    """Thread-safe holder of the newest snapshot, awaitable from any asyncio loop."""

    def __init__(self, initial: FeedSnapshot) -> None:
        self._lock = threading.Lock()
        self._snapshot = initial
        self._waiters: dict[asyncio.AbstractEventLoop, asyncio.Future[None]] = {}
        # Called with every snapshot published, on the publishing thread: the media
        # worker process forwards snapshots to the origin in its parent through it.
        self.on_publish: Callable[[FeedSnapshot], None] | None = None

    def snapshot(self) -> FeedSnapshot:
        with self._lock:
            return self._snapshot

    def publish(self, snapshot: FeedSnapshot) -> None:
        """Replace the snapshot and wake every loop that has a waiter. Any thread."""
        with self._lock:
            self._snapshot = snapshot
            loops = list(self._waiters)
            forward = self.on_publish
        if forward is not None:
            forward(snapshot)
        for loop in loops:
            try:
                loop.call_soon_threadsafe(self._wake, loop)
            except RuntimeError:
                # The loop was closed with a waiter registered: forget it.
                with self._lock:
                    self._waiters.pop(loop, None)

    async def wait_for(self, msn: int, part: int | None) -> FeedSnapshot:
        """The first snapshot that has (msn, part). Bound it with asyncio.timeout()."""
        loop = asyncio.get_running_loop()
        while True:
            # Register before checking, so a publish in between still wakes us.
            waiter = self._waiter(loop)
            snapshot = self.snapshot()
            if snapshot.has(msn, part):
                return snapshot
            # shield: a cancelled waiter must not cancel the future other tasks share.
            await asyncio.shield(waiter)

    def _waiter(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        with self._lock:
            future = self._waiters.get(loop)
            if future is None or future.done():
                future = loop.create_future()
                self._waiters[loop] = future
            return future

    def _wake(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            future = self._waiters.pop(loop, None)
        if future is not None and not future.done():
            future.set_result(None)

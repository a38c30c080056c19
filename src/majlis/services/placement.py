"""The reconciler: every live space runs on some media node (scaled mode).

A node that dies stops renewing its spaces' leases; once they expire, the reconciler
sends those spaces' StartSpace again and the nodes place them as they place a new space.
It also covers a StartSpace published while no node was up. One control-plane worker
at a time does this (a lease of its own); a round reads the live spaces from SQL
and one lease per space from the bus.
"""

from __future__ import annotations

import asyncio
import logging

from majlis.bus.base import Bus
from majlis.clock import Clock
from majlis.plane import space_lease
from majlis.services.events import Events
from majlis.services.spaces import Spaces

__all__ = ["Reconciler"]

log = logging.getLogger(__name__)

_LEASE = "reconciler"


class Reconciler:
    def __init__(
        self,
        spaces: Spaces,
        bus: Bus,
        events: Events,
        clock: Clock,
        worker_id: str,
        interval: float,
    ) -> None:
        self._spaces = spaces
        self._bus = bus
        self._events = events
        self._clock = clock
        self._worker_id = worker_id
        self._interval = interval

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("placing orphaned spaces failed; trying again")
            await asyncio.sleep(self._interval)

    async def tick(self) -> list[str]:
        """One round; the spaces sent to be placed again."""
        now = self._clock.now()
        if not await self._bus.acquire_lease(_LEASE, self._worker_id, self._interval * 3, now):
            return []
        orphans = []
        for start in await self._spaces.live_starts():
            if await self._bus.lease_owner(space_lease(start.space_id), now) is None:
                await self._events.media(start)
                orphans.append(start.space_id)
        if orphans:
            log.info("placing %d space(s) with no media node: %s", len(orphans), orphans)
        return orphans

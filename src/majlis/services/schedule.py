"""Scheduled spaces whose time has passed: one that its host has not started
`missed_after_s` after its time is marked missed, and its subscribers are told in the app.
Each round also delivers reminders of live spaces that were left undelivered.

One control-plane worker at a time sweeps (a bus lease, as continuity and the reconciler
do); the space's compare-and-set (scheduled → ended) and the reminders' claim make a
sweep by a second worker, after a lease changed hands, harmless.
"""

from __future__ import annotations

import logging

from majlis.bus.base import Bus
from majlis.clock import Clock
from majlis.services.reminders import Reminders
from majlis.services.rounds import in_rounds
from majlis.services.spaces import Spaces
from majlis.store.base import Store

__all__ = ["MissedSpaces"]

log = logging.getLogger(__name__)

_LEASE = "missed-spaces"
ROUND_S = 30.0  # a space is marked at most this late; the limit is tens of minutes
_BATCH = 100  # spaces a round marks at most; the next round takes the rest


class MissedSpaces:
    def __init__(
        self,
        store: Store,
        bus: Bus,
        spaces: Spaces,
        reminders: Reminders,
        clock: Clock,
        missed_after_s: float,
        worker_id: str,
    ) -> None:
        self._store = store
        self._bus = bus
        self._spaces = spaces
        self._reminders = reminders
        self._clock = clock
        self._missed_after_s = missed_after_s
        self._worker_id = worker_id

    async def run(self) -> None:
        await in_rounds(self.tick, ROUND_S, lambda: None, "marking missed spaces")

    async def tick(self) -> list[str]:
        """One round; the spaces this worker marked missed."""
        now = self._clock.now()
        if not await self._bus.acquire_lease(_LEASE, self._worker_id, ROUND_S * 3, now):
            return []
        await self._catch_up()
        marked = []
        for space_id in await self._store.overdue_scheduled(now - self._missed_after_s, _BATCH):
            space = await self._spaces.mark_missed(space_id)
            if space is not None:
                told = await self._reminders.missed(space)
                log.info("space %s missed; %d subscribers told", space_id, len(told))
                marked.append(space_id)
        return marked

    async def _catch_up(self) -> None:
        """Reminders of live spaces left undelivered (the starting worker died before its
        claim, or someone asked in the moment the space started) are delivered now."""
        for space_id in await self._store.undelivered_live(_BATCH):
            space = await self._spaces.get(space_id)
            told = await self._reminders.started(space, webhook=False)
            if told:
                log.info("space %s: %d reminders delivered late", space_id, len(told))

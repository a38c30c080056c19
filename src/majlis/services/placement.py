"""The reconciler: every live space runs on some media node (scaled mode).

A space whose lease has no holder is sent to be placed again (its StartSpace published),
and the nodes place it as they place a new space. That covers a StartSpace published
while no node was up, and a node that died and stopped renewing its leases.

Lease expiry alone would leave a space silent for up to a whole lease after its node
dies. A node also holds a subscription on its own channel for as long as it lives
(`node_alive_channel`); a killed process's bus connection closes at once and the
subscription goes with it. A node whose channel has been empty for two rounds in a
row is taken for dead: its announcement and its leases are removed, and its spaces
are placed again at once. Should it be alive after all (cut off from the bus for a
moment), it loses its leases at its next renewal and closes those spaces, as it
would after a lease expired.

One control-plane worker at a time does this (a lease of its own). A round reads the
live spaces from SQL and one lease per space from the bus. The first rounds after the
worker takes that lease, or after the bus failed, judge nobody dead: the nodes need a
moment to subscribe again after the bus itself came back.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from majlis.bus.base import Bus
from majlis.clock import Clock
from majlis.plane import StartSpace, node_alive_channel, node_key, space_lease
from majlis.services.rounds import in_rounds

__all__ = ["Reconciler"]

log = logging.getLogger(__name__)

_LEASE = "reconciler"


class Reconciler:
    def __init__(
        self,
        live: Callable[[], Awaitable[list[StartSpace]]],
        place: Callable[[StartSpace], Awaitable[None]],
        bus: Bus,
        clock: Clock,
        worker_id: str,
        interval: float,
        *,
        warm_up: float,
    ) -> None:
        self._live = live
        self._place = place
        self._bus = bus
        self._clock = clock
        self._worker_id = worker_id
        self._interval = interval
        self._warm_up = warm_up
        self._since: float | None = None  # holding the lease, bus answering, since
        self._absent: set[str] = set()  # nodes whose channel was empty last round

    async def run(self) -> None:
        await in_rounds(self.tick, self._interval, self._forget, "placing orphaned spaces")

    async def tick(self) -> list[str]:
        """One round; the spaces sent to be placed again."""
        now = self._clock.now()
        if not await self._bus.acquire_lease(_LEASE, self._worker_id, self._interval * 3, now):
            self._forget()
            return []
        if self._since is None:
            self._since = now
        starts = await self._live()
        owners = {
            s.space_id: await self._bus.lease_owner(space_lease(s.space_id), now) for s in starts
        }
        dead = await self._dead({o for o in owners.values() if o is not None}, now)
        orphans = []
        for start in starts:
            owner = owners[start.space_id]
            if owner in dead:
                await self._bus.release_lease(space_lease(start.space_id), owner)
            elif owner is not None:
                continue
            await self._place(start)
            orphans.append(start.space_id)
        if orphans:
            log.info("placing %d space(s) with no media node: %s", len(orphans), orphans)
        return orphans

    async def _dead(self, owners: set[str], now: float) -> set[str]:
        """Nodes absent from the bus this round and the one before; their announcements
        are removed first so that no node chooses them for the spaces placed next."""
        absent = {n for n in owners if await self._bus.subscribers(node_alive_channel(n)) == 0}
        warm = self._since is not None and now - self._since >= self._warm_up
        dead = absent & self._absent if warm else set()
        self._absent = absent
        for node_id in sorted(dead):
            log.warning("media node %s is gone (its bus connection closed)", node_id)
            await self._bus.delete_value(node_key(node_id))
        return dead

    def _forget(self) -> None:
        self._since = None
        self._absent = set()

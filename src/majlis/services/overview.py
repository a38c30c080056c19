"""The operator's page: what runs now. Live spaces with their listeners and waiting
rooms, the media nodes and their load, and this worker's queueing delay. For site
moderators (who are the operator's people) alone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from majlis.plane import NodeInfo
from majlis.services.audience import Audience
from majlis.services.auth import Caller
from majlis.services.moderators import Moderators
from majlis.store.base import Store
from majlis.types import Space, SpaceState

__all__ = ["LiveSpace", "Overview", "SiteOverview"]

# The page lists this many live spaces, the most recently started first.
LIVE_LISTED = 200


@dataclass(frozen=True, slots=True)
class LiveSpace:
    space: Space
    listeners: int
    waiting: int


@dataclass(frozen=True, slots=True)
class SiteOverview:
    spaces: list[LiveSpace]
    nodes: list[NodeInfo]  # empty in the embedded mode: the media runs in this worker
    loop_lag_s: float  # this worker's standing queueing delay


class Overview:
    def __init__(
        self,
        store: Store,
        audience: Audience,
        moderators: Moderators,
        lag: Callable[[], float],
        nodes: Callable[[], Awaitable[list[NodeInfo]]] | None,
    ) -> None:
        self._store = store
        self._audience = audience
        self._moderators = moderators
        self._lag = lag
        self._nodes = nodes

    async def now(self, caller: Caller) -> SiteOverview:
        await self._moderators.require(caller)
        live = await self._store.list_spaces(
            state=SpaceState.LIVE,
            query=None,
            host_id=None,
            include_unlisted=True,
            limit=LIVE_LISTED,
            offset=0,
        )
        counts = await self._audience.listeners_now()
        spaces = [LiveSpace(s, *counts.get(s.id, (0, 0))) for s in live]
        nodes = [] if self._nodes is None else await self._nodes()
        return SiteOverview(spaces, nodes, self._lag())

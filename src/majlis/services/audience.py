"""The audience over time: every live space's listeners (and reactions so far) sampled
every `audience_sample_s` seconds into the store.

The peak follows from the samples: before them it was raised only when someone read the
state document, so three listeners who came and went unobserved left a peak of 0. One
control-plane worker at a time samples (a lease, as continuity does); presence lives on
the bus, so any worker counts every listener. A round costs one presence count, one tally
read and one small write per live space.
"""

from __future__ import annotations

from dataclasses import dataclass

from majlis.bus.base import Bus
from majlis.clock import Clock
from majlis.services.listeners import joins_so_far, reactions_key
from majlis.services.rounds import in_rounds
from majlis.services.spaces import Spaces
from majlis.store.base import Store
from majlis.types import AudienceSample

__all__ = ["MAX_SAMPLES", "Audience", "AudienceCurve", "leaves_so_far"]

_LEASE = "audience"
# A day of samples at the default 10 s: longer spaces keep their first day's curve.
MAX_SAMPLES = 8640


@dataclass(frozen=True, slots=True)
class AudienceCurve:
    space_id: str
    every_s: float
    samples: list[AudienceSample]
    peak_listeners: int
    # Departures up to each sample, a running total beside `samples` (leaves_so_far).
    leaves: list[int]


def leaves_so_far(samples: list[AudienceSample]) -> list[int]:
    """Departures up to each sample: whoever was there or arrived since the last sample and
    is not counted now has left. Needs only the counts, not a record per person."""
    out: list[int] = []
    listeners, joins, left = 0, 0, 0
    for sample in samples:
        arrived = max(0, sample.joins - joins)
        left += max(0, listeners + arrived - sample.listeners)
        out.append(left)
        listeners, joins = sample.listeners, sample.joins
    return out


class Audience:
    def __init__(
        self,
        store: Store,
        bus: Bus,
        spaces: Spaces,
        clock: Clock,
        *,
        every_s: float,
        presence_window: float,
        worker_id: str,
    ) -> None:
        self._store = store
        self._bus = bus
        self._spaces = spaces
        self._clock = clock
        self._every = every_s
        self._window = presence_window
        self._worker_id = worker_id

    async def run(self) -> None:
        await in_rounds(self.tick, self._every, lambda: None, "sampling the audience")

    async def tick(self) -> dict[str, AudienceSample]:
        """One round: a sample of every live space, by space (none without the lease)."""
        now = self._clock.now()
        if not await self._bus.acquire_lease(_LEASE, self._worker_id, self._every * 3, now):
            return {}
        taken: dict[str, AudienceSample] = {}
        for start in await self._spaces.live_starts():
            space_id = start.space_id
            listeners = await self._bus.count_presence(space_id, now, self._window)
            tally = await self._bus.get_tally(reactions_key(space_id))
            joins = await joins_so_far(self._bus, space_id)
            sample = AudienceSample(now, listeners, sum(tally.values()), joins)
            await self._store.add_audience_sample(space_id, sample)
            taken[space_id] = sample
        return taken

    async def listeners_now(self) -> dict[str, tuple[int, int]]:
        """Every live space's listeners and waiting-room depth at this moment (/metrics)."""
        now = self._clock.now()
        return {
            start.space_id: (
                await self._bus.count_presence(start.space_id, now, self._window),
                await self._bus.waiting(start.space_id),
            )
            for start in await self._spaces.live_starts()
        }

    async def curve(self, space_id: str) -> AudienceCurve:
        """Anyone who may see the space may see its audience (the count is in its state
        document already)."""
        space = await self._spaces.get(space_id)
        samples = await self._store.list_audience(space_id, MAX_SAMPLES)
        return AudienceCurve(
            space_id, self._every, samples, space.peak_listeners, leaves_so_far(samples)
        )

"""A host deletes their ended space's replay: its recording (files and stored objects, by
the media side through plane.Recordings), its transcript and its clips. What is left is
the space's page and its audit log, which records the deletion."""

from __future__ import annotations

from majlis.clock import Clock
from majlis.errors import Conflict, NotFound
from majlis.plane import Recordings
from majlis.services.auth import Caller
from majlis.services.spaces import Spaces
from majlis.store.base import Store
from majlis.types import AuditEntry, SpaceState

__all__ = ["Replays"]


class Replays:
    def __init__(self, store: Store, spaces: Spaces, recordings: Recordings, clock: Clock) -> None:
        self._store = store
        self._spaces = spaces
        self._recordings = recordings
        self._clock = clock

    async def delete(self, caller: Caller, space_id: str) -> None:
        space = await self._spaces.owned(caller, space_id, "delete the replay of")
        if space.state is not SpaceState.ENDED:
            raise Conflict(
                f"the space is {space.state}: a replay is deleted after the end",
                code="not_ended",
            )
        files = await self._recordings.delete(space_id)
        if not files and not await self._has_records(space_id):
            raise NotFound(
                "this space has no replay (deleted, or never recorded)", code="no_replay"
            )
        audit = AuditEntry(space_id, space.host_id, "replay_delete", self._clock.now())
        await self._store.delete_replay_records(space_id, audit=audit)

    async def _has_records(self, space_id: str) -> bool:
        transcript = await self._store.get_transcript(space_id)
        return transcript is not None or bool(await self._store.list_clips(space_id, 1))

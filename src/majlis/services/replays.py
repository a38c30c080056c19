"""Where a space's replay plays, and its deletion.

A private space's replay URLs carry a playback token in the path, as live audio does, so
the origin (and an edge) checks them on every request; other replays are open. A host
deletes their ended space's replay: its recording (files and stored objects, by the media
side through plane.Recordings), its transcript and its clips. What is left is the space's
page and its audit log, which records the deletion."""

from __future__ import annotations

from dataclasses import dataclass

from majlis.clock import Clock
from majlis.errors import Conflict, NotFound
from majlis.plane import Recordings
from majlis.services.auth import Caller
from majlis.services.spaces import Spaces
from majlis.services.tokens import TokenService
from majlis.signing import PLAYBACK
from majlis.store.base import Store
from majlis.types import AuditEntry, SpaceState, Visibility

__all__ = ["REPLAY_TOKEN_TTL", "ReplayUrls", "Replays"]

# Long enough to listen to a long space through, with pauses.
REPLAY_TOKEN_TTL = 6 * 3600.0


@dataclass(frozen=True, slots=True)
class ReplayUrls:
    playlist_url: str  # HLS, with the space's live timeline
    audio_url: str  # the whole replay as one .m4a
    expires_at: float | None  # when the token in them expires; None: no token


class Replays:
    def __init__(
        self,
        store: Store,
        spaces: Spaces,
        recordings: Recordings,
        clock: Clock,
        tokens: TokenService,
        media_url: str,
    ) -> None:
        self._store = store
        self._spaces = spaces
        self._recordings = recordings
        self._clock = clock
        self._tokens = tokens
        self._media_url = media_url

    async def where(self, caller: Caller, space_id: str) -> ReplayUrls:
        space = await self._spaces.get(space_id)
        if space.state is not SpaceState.ENDED:
            raise Conflict(f"the space is {space.state}: no replay yet", code="not_ended")
        if space.started_at is None or not space.recording:
            raise NotFound("this space was not recorded", code="not_recorded")
        base = f"{self._media_url}/hls/{space_id}"
        if space.visibility is not Visibility.PRIVATE:
            return ReplayUrls(f"{base}/index.m3u8", f"{base}/replay.m4a", None)
        await self._spaces.require_admitted(space, caller.member)
        member = caller.require_member()
        token = self._tokens.sign_compact(PLAYBACK, (space_id, member), REPLAY_TOKEN_TTL)
        expires = self._clock.now() + REPLAY_TOKEN_TTL
        return ReplayUrls(f"{base}/{token}/index.m3u8", f"{base}/{token}/replay.m4a", expires)

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

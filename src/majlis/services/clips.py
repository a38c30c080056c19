"""Clips: up to a minute of a live space (its last N seconds) or of a replay.

A clip is a row: a range on the replay's clock. Its audio is cut from the recording when
it is asked for (`ClipAudio`, the media plane's side), so clips cost no storage of their
own, and a clip made while a space is live plays the same audio after it has ended, when
the replay holds the same positions.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass

from majlis.bus.base import Bus
from majlis.clock import Clock
from majlis.errors import BadRequest, Conflict, Forbidden, NotFound, RateLimited
from majlis.plane import ClipAudio
from majlis.services.accounts import clean_text
from majlis.services.auth import Caller
from majlis.services.roles import ban_key
from majlis.services.spaces import Spaces
from majlis.store.base import Store
from majlis.types import Clip, SpaceState, Visibility

__all__ = ["MAX_CLIP_SECONDS", "ClipPolicy", "Clips"]

MAX_CLIP_SECONDS = 60.0
MIN_CLIP_SECONDS = 1.0
MAX_TITLE = 100
LIST_LIMIT = 100
# A range may end this far past what the recording holds: the live edge moves while the
# request is on its way, and float seconds do not add up exactly.
_SLACK_S = 0.05


@dataclass(frozen=True, slots=True)
class ClipPolicy:
    rate: float  # clips per second per member
    burst: int


class Clips:
    def __init__(
        self,
        store: Store,
        spaces: Spaces,
        audio: ClipAudio,
        bus: Bus,
        clock: Clock,
        policy: ClipPolicy,
    ) -> None:
        self._store = store
        self._spaces = spaces
        self._audio = audio
        self._bus = bus
        self._clock = clock
        self._policy = policy

    async def create(
        self, caller: Caller, space_id: str, start: float | None, duration: float, title: str
    ) -> Clip:
        """`start` None: the last `duration` seconds recorded (a live space's latest)."""
        member = caller.require_member()
        space = await self._spaces.get(space_id)
        if space.state is SpaceState.SCHEDULED:
            raise Conflict("the space has not started yet", code="not_started")
        if not space.recording:
            raise Conflict("the host is not recording this space", code="not_recorded")
        if space.visibility is Visibility.PRIVATE:
            # A clip is made to be shared: none of a private conversation.
            raise Conflict("a private space cannot be clipped", code="private_space")
        if await self._bus.get_value(ban_key(space_id, member)):
            raise Forbidden("you are banned from this space", code="banned")
        _check_duration(duration)
        await self._limit(member)
        recorded = await self._audio.recorded(space_id)
        if start is None:
            start = max(0.0, recorded - duration)
        _check_range(start, duration, recorded)
        clip = Clip(
            id=secrets.token_hex(6),
            space_id=space_id,
            created_by=member,
            start=round(start, 3),
            duration=round(duration, 3),
            title=clean_text(title, "title", MAX_TITLE, allow_empty=True) or space.title,
            created_at=self._clock.now(),
        )
        await self._store.add_clip(clip)
        return clip

    async def get(self, clip_id: str) -> Clip:
        clip = await self._store.get_clip(clip_id)
        if clip is None:
            raise NotFound("no such clip", code="clip_not_found")
        return clip

    async def audio(self, clip_id: str) -> tuple[Clip, bytes]:
        clip = await self.get(clip_id)
        return clip, await self._audio.cut(clip.space_id, clip.start, clip.duration)

    async def of_space(self, space_id: str) -> list[Clip]:
        await self._spaces.get(space_id)  # 404 for an unknown space
        return await self._store.list_clips(space_id, LIST_LIMIT)

    async def delete(self, caller: Caller, clip_id: str) -> None:
        """By the space's host, or by whoever made the clip."""
        member = caller.require_member()
        clip = await self.get(clip_id)
        space = await self._spaces.get(clip.space_id)
        if member not in (space.host_id, clip.created_by):
            raise Forbidden("only the host or the clip's maker can delete it", code="not_yours")
        await self._store.delete_clip(clip_id)

    async def _limit(self, member: str) -> None:
        policy = self._policy
        wait = await self._bus.hit_rate_limit(
            f"clip:{member}", policy.rate, policy.burst, self._clock.now()
        )
        if wait > 0:
            raise RateLimited("too many clips; try again later", math.ceil(wait * 1000))


def _check_duration(duration: float) -> None:
    if not math.isfinite(duration) or not MIN_CLIP_SECONDS <= duration <= MAX_CLIP_SECONDS:
        raise BadRequest(
            f"a clip lasts {MIN_CLIP_SECONDS:g} to {MAX_CLIP_SECONDS:g} seconds", code="bad_range"
        )


def _check_range(start: float, duration: float, recorded: float) -> None:
    if recorded <= 0:
        raise Conflict("nothing has been recorded yet", code="nothing_recorded")
    if not math.isfinite(start) or start < 0 or start + duration > recorded + _SLACK_S:
        raise BadRequest(
            f"the recording holds 0 to {recorded:.2f} s; {start:g} + {duration:g} s is outside it",
            code="bad_range",
        )

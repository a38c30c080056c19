"""Speakers' WebRTC offers: check the caller may send audio, then hand the offer to the
media plane that runs the space (in a thread, a child process or another machine)."""

from __future__ import annotations

from majlis.errors import Conflict, Forbidden, Overloaded
from majlis.offers import validate_offer
from majlis.plane import MediaPlane
from majlis.services.auth import Caller
from majlis.services.spaces import Spaces
from majlis.store.base import Store
from majlis.types import SpaceState

__all__ = ["Rtc"]


class Rtc:
    def __init__(self, store: Store, spaces: Spaces, gateway: MediaPlane | None) -> None:
        self._store = store
        self._spaces = spaces
        self._gateway = gateway

    async def offer(self, caller: Caller, space_id: str, sdp: str) -> str:
        user_id = caller.require_user()
        space = await self._spaces.get(space_id)
        if space.state is not SpaceState.LIVE:
            raise Conflict(f"the space is {space.state}, not live", code="not_live")
        if await self._store.is_banned(space_id, user_id):
            raise Forbidden("you are banned from this space", code="banned")
        participant = await self._store.get_participant(space_id, user_id)
        if participant is None:
            raise Forbidden("only the host, co-hosts and speakers send audio", code="not_on_stage")
        # Checked here, after who may send but before the media node: a malformed offer
        # is refused at once even while the node is busy starting spaces.
        validate_offer(sdp)
        if self._gateway is None:
            raise Overloaded("no media node is available", 5000)
        started_at = space.started_at or space.created_at
        return await self._gateway.offer(space_id, user_id, sdp, participant.muted, started_at)

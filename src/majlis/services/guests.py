"""A private space's guest list: the host and co-hosts name who may listen, by username.
Each change is one audit entry. A guest taken off the list is refused at their next
heartbeat (within a playback token's life) and cannot join again."""

from __future__ import annotations

from majlis.bus.base import Bus
from majlis.clock import Clock
from majlis.errors import Conflict, Forbidden, NotFound
from majlis.services.auth import Caller
from majlis.services.spaces import Spaces
from majlis.store.base import Store
from majlis.types import AuditEntry, Space, User, Visibility

__all__ = ["GUEST_LIMIT", "Guests"]

# A private space is a room, not an audience: a bound keeps the list a list.
GUEST_LIMIT = 1000


class Guests:
    def __init__(self, store: Store, bus: Bus, spaces: Spaces, clock: Clock) -> None:
        self._store = store
        self._bus = bus
        self._spaces = spaces
        self._clock = clock

    async def list(self, caller: Caller, space_id: str) -> list[User]:
        await self._moderated(caller, space_id)
        return await self._store.list_guests(space_id)

    async def add(self, caller: Caller, space_id: str, username: str) -> User:
        actor, space = await self._moderated(caller, space_id)
        guest = await self._store.get_user_by_username(username)
        if guest is None:
            raise NotFound(f"no user named {username!r}", code="user_not_found")
        if guest.id == space.host_id:
            raise Conflict("the host is always in", code="is_host")
        if len(await self._store.list_guests(space_id)) >= GUEST_LIMIT:
            raise Conflict(f"a space has at most {GUEST_LIMIT} guests", code="too_many_guests")
        now = self._clock.now()
        audit = AuditEntry(space_id, actor, "guest_add", now, guest.id)
        if not await self._store.add_guest(space_id, guest.id, actor, now, audit=audit):
            raise Conflict(f"{guest.username} is a guest already", code="already_guest")
        return guest

    async def remove(self, caller: Caller, space_id: str, user_id: str) -> None:
        actor, _ = await self._moderated(caller, space_id)
        audit = AuditEntry(space_id, actor, "guest_remove", self._clock.now(), user_id)
        if not await self._store.remove_guest(space_id, user_id, audit=audit):
            raise NotFound("that user is not a guest of this space", code="not_guest")
        await self._bus.drop_presence(space_id, user_id)

    async def _moderated(self, caller: Caller, space_id: str) -> tuple[str, Space]:
        """(the caller, the space) if the caller is its host or a co-host."""
        user_id = caller.require_user()
        space = await self._spaces.get(space_id)
        participant = await self._store.get_participant(space_id, user_id)
        if participant is None or not participant.role.can_moderate:
            raise Forbidden(
                "only the host and co-hosts manage the guest list", code="not_moderator"
            )
        if space.visibility is not Visibility.PRIVATE:
            raise Conflict("only a private space has a guest list", code="not_private")
        return user_id, space

"""The site moderator role.

It is site-wide and granted by the operator (`majlis moderate grant`), never through the
API: whoever holds the server holds the first grant.
"""

from __future__ import annotations

from majlis.clock import Clock
from majlis.errors import Forbidden, NotFound
from majlis.services.auth import Caller
from majlis.store.base import Store
from majlis.types import AuditAction, AuditEntry

__all__ = ["Moderators"]


class Moderators:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def require(self, caller: Caller) -> str:
        """The caller's user id, if they are a site moderator; Forbidden otherwise."""
        user_id = caller.require_user()
        if not await self._store.is_moderator(user_id):
            raise Forbidden("only site moderators can do this", code="not_site_moderator")
        return user_id

    async def is_moderator(self, user_id: str) -> bool:
        return await self._store.is_moderator(user_id)

    async def grant(self, username: str, on: bool) -> bool:
        """The operator grants (on) or revokes the role; False if it was so already."""
        user = await self._store.get_user_by_username(username)
        if user is None:
            raise NotFound(f"no user named {username!r}", code="user_not_found")
        action: AuditAction = "moderator_grant" if on else "moderator_revoke"
        audit = AuditEntry(None, None, action, self._clock.now(), target_id=user.id)
        return await self._store.set_moderator(user.id, on, audit=audit)

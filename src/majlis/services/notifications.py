"""A user's in-app notifications (reminders delivered: a space started, a space missed),
read at GET /api/v1/notifications and marked read by the user."""

from __future__ import annotations

from dataclasses import dataclass

from majlis.clock import Clock
from majlis.services.auth import Caller
from majlis.store.base import Store
from majlis.types import Notification

__all__ = ["NotificationPage", "Notifications"]


@dataclass(frozen=True, slots=True)
class NotificationPage:
    notifications: list[Notification]  # newest first
    unread: int  # all the user's unread ones, not only this page's: the badge
    next_cursor: int | None  # pass as `before` for older ones; None: no more


class Notifications:
    """Read by a suspended account too: being told a space started harms nobody."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def mine(self, caller: Caller, before: int | None, limit: int) -> NotificationPage:
        user_id = caller.require_account()
        found = await self._store.list_notifications(user_id, before=before, limit=limit + 1)
        page = found[:limit]
        more = len(found) > limit
        return NotificationPage(
            notifications=page,
            unread=await self._store.count_unread(user_id),
            next_cursor=page[-1].seq if more else None,
        )

    async def unread(self, caller: Caller) -> int:
        return await self._store.count_unread(caller.require_account())

    async def read(self, caller: Caller, up_to: int | None) -> int:
        """Mark the caller's notifications up to `up_to` (all: None) read; how many were."""
        return await self._store.mark_read(caller.require_account(), up_to, self._clock.now())

"""Suspending an account without a report (a moderator's own finding, an order), and
lifting a suspension early. Decisions on reports suspend through services/reports.py."""

from __future__ import annotations

from majlis.clock import Clock
from majlis.errors import Conflict, NotFound
from majlis.services.audit import clean_reason
from majlis.services.auth import Caller
from majlis.services.moderation import Restrictions, check_until
from majlis.services.moderators import Moderators
from majlis.services.notices import terms_notice
from majlis.store.base import Store
from majlis.types import Act, AuditEntry, ReasonCategory, User

__all__ = ["Suspensions"]


class Suspensions:
    def __init__(
        self, store: Store, moderators: Moderators, restrictions: Restrictions, clock: Clock
    ) -> None:
        self._store = store
        self._moderators = moderators
        self._restrictions = restrictions
        self._clock = clock

    async def suspend(
        self,
        caller: Caller,
        username: str,
        until: float,
        category: ReasonCategory,
        reason: str | None,
    ) -> User:
        moderator = await self._moderators.require(caller)
        user = await self._user(username)
        now = self._clock.now()
        until = check_until(until, now)
        why = clean_reason(reason)
        audit = AuditEntry(None, moderator, "suspend", now, user.id, why)
        notice = terms_notice(user.id, None, "suspend", category, why, at=now, actor_id=moderator)
        await self._restrictions.apply(Act(audit, notice, suspend_until=until), "changed meanwhile")
        return user

    async def lift(self, caller: Caller, username: str, reason: str | None) -> User:
        moderator = await self._moderators.require(caller)
        user = await self._user(username)
        now = self._clock.now()
        if await self._store.suspended_until(user.id, now) is None:
            raise Conflict("that account is not suspended", code="not_suspended")
        audit = AuditEntry(None, moderator, "unsuspend", now, user.id, clean_reason(reason))
        await self._restrictions.apply(Act(audit, unsuspend=True), "changed meanwhile")
        return user

    async def _user(self, username: str) -> User:
        user = await self._store.get_user_by_username(username)
        if user is None:
            raise NotFound(f"no user named {username!r}", code="user_not_found")
        return user

"""The restrictions site moderators impose.

A restriction is one store `Act` (the decision, its audit entry and statement of
reasons, together), and then its effects where the request path looks: the bus and the
media plane.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from majlis.bus.base import Bus
from majlis.clock import Clock
from majlis.errors import BadRequest, Conflict
from majlis.services.auth import suspended_key
from majlis.services.roles import Roles, ban_key
from majlis.services.spaces import Spaces
from majlis.store.base import Store
from majlis.types import Act, Space, SpaceState

__all__ = ["MAX_SUSPENSION_S", "Restrictions", "check_until", "live_space"]

# A suspension ends: a year is the longest one moderator can decide alone.
MAX_SUSPENSION_S = 366 * 86400.0


def check_until(until: float, now: float) -> float:
    if not math.isfinite(until) or until <= now:
        raise BadRequest("until must be a time in the future", code="bad_until")
    if until > now + MAX_SUSPENSION_S:
        raise BadRequest("a suspension lasts at most a year", code="bad_until")
    return until


@dataclass(frozen=True, slots=True)
class Restrictions:
    """Writes a moderator's act and carries out what it means for the running system."""

    store: Store
    bus: Bus
    spaces: Spaces
    roles: Roles
    clock: Clock

    async def apply(self, act: Act, stale: str) -> None:
        """Write `act` and carry it out; Conflict (`stale`) if it lost a race."""
        audit = act.audit
        target, space_id = audit.target_id, audit.space_id
        before = None if space_id is None else await self.spaces.get(space_id)
        suspends = target is not None and act.suspend_until is not None
        stages = await self.store.live_spaces_of(target) if suspends and target else []
        if not await self.store.act(act):
            raise Conflict(stale, code="already_decided")
        if act.ban and target is not None and space_id is not None:
            await self.roles.expel(space_id, target, act.notice, banned=True)
        if act.unban and target is not None and space_id is not None:
            await self.bus.delete_value(ban_key(space_id, target))
        if act.end_space and before is not None:
            await self.spaces.closed(before, "moderator")
        if act.suspend_until is not None and target is not None:
            ttl = max(1.0, act.suspend_until - self.clock.now())
            await self.bus.set_value(suspended_key(target), repr(act.suspend_until), ttl)
            for stage in stages:
                await self._off_stage(stage, target)
        if act.unsuspend and target is not None:
            await self.bus.delete_value(suspended_key(target))

    async def _off_stage(self, space_id: str, user_id: str) -> None:
        """A suspended speaker leaves every live stage (a host keeps their space: ending it
        is a decision of its own)."""
        space = await self.spaces.get(space_id)
        if space.host_id == user_id or space.state is not SpaceState.LIVE:
            return
        await self.store.remove_member(space_id, user_id)
        await self.roles.expel(space_id, user_id, None, banned=False)


async def live_space(spaces: Spaces, space_id: str | None) -> Space:
    if space_id is None:
        raise Conflict("this report names no space", code="no_space")
    space = await spaces.get(space_id)
    if space.state is not SpaceState.LIVE:
        raise Conflict("the space is not live", code="space_not_live")
    return space

"""Security state survives restarts: revoked sessions, bans and suspensions are kept in
SQL, and the bus, where the request path looks them up, is rebuilt from SQL whenever it
lost them.

That is at every start in the embedded mode (its in-memory bus starts empty) and after
a Redis restart in the scaled mode. A marker value on the bus says "rebuilt"; every
worker looks for it every few seconds and rebuilds if it is gone. The marker is set
last, so a rebuild cut short is done again. A ban or a logout made between a Redis
restart and the rebuild is written to both places and so is kept; for those few
seconds the request path may not see older ones.
"""

from __future__ import annotations

import asyncio
import logging

from majlis.bus.base import Bus
from majlis.clock import Clock
from majlis.services.auth import revoked_key, suspended_key
from majlis.services.roles import ban_key
from majlis.store.base import Store

__all__ = ["SecurityState"]

log = logging.getLogger(__name__)

_MARKER = "security:restored"


class SecurityState:
    def __init__(self, store: Store, bus: Bus, clock: Clock, interval: float) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._interval = interval

    async def ensure(self) -> bool:
        """Rebuild the bus's copy if it has none; True if it did."""
        if await self._bus.get_value(_MARKER) is not None:
            return False
        await self.restore()
        return True

    async def restore(self) -> tuple[int, int]:
        """Copy every revocation and suspension in force and every ban of a space not
        ended from SQL to the bus; (revocations, bans) copied."""
        now = self._clock.now()
        await self._store.prune_revocations(now)
        revocations = await self._store.list_revocations(now)
        for token_id, expires_at in revocations:
            await self._bus.set_value(revoked_key(token_id), "1", max(1.0, expires_at - now))
        bans = await self._store.list_bans()
        for space_id, user_id in bans:
            await self._bus.set_value(ban_key(space_id, user_id), "1", None)
        suspensions = await self._store.list_suspensions(now)
        for user_id, until in suspensions:
            await self._bus.set_value(suspended_key(user_id), repr(until), max(1.0, until - now))
        await self._bus.set_value(_MARKER, f"{now:.3f}", None)
        log.info(
            "security state on the bus: %d logouts, %d bans, %d suspensions",
            len(revocations),
            len(bans),
            len(suspensions),
        )
        return len(revocations), len(bans)

    async def watch(self) -> None:
        """Scaled mode: rebuild whenever the bus has lost the state (Redis restarted)."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                if await self.ensure():
                    log.warning("the bus had lost its security state (restarted?); rebuilt it")
            except Exception as exc:
                log.warning("cannot check the bus's security state: %s", exc)

"""Spaces nobody is running: a new host when the host's audio is gone, an end when the
stage is abandoned.

What counts is audio, not a page or a socket: a connected speaker's levels reach the bus
a few times a second (they expire in 2 s), so a member of the stage whose levels are
missing has no audio connection to the space.

- The host's audio gone for `host_absence_s`: the senior co-host (on stage longest) whose
  audio is connected becomes host, and everyone is told; the old host stays a co-host.
  Only a host who was heard can be gone: one still finding the microphone button is not
  replaced (an empty stage still ends, below).
- No such co-host: after `host_grace_s` more, the space ends, its replay intact.
- Nobody on stage with audio for `empty_stage_s`: the space ends (a space left running
  with its stage empty records silence for as long as nobody notices).

One control-plane worker at a time judges (a lease, as the reconciler does). It counts
absences from what it has seen itself: a worker that has just taken the lease starts
counting then, so a takeover can postpone a verdict by at most one absence, never bring
it forward. That a host was heard at all is kept on the bus, for the next judge.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from majlis.bus.base import Bus
from majlis.clock import Clock
from majlis.services.roles import Roles
from majlis.services.rounds import in_rounds
from majlis.services.spaces import Spaces
from majlis.store.base import Store
from majlis.types import LEVEL_PREFIX, EndReason, Participant, Role

__all__ = ["Continuity", "ContinuityPolicy", "Verdict", "host_heard_key"]

log = logging.getLogger(__name__)

_LEASE = "continuity"
_HEARD_TTL = 86400.0  # longer than any space: a marker outliving one is harmless
ROUND_S = 5.0  # at most this long between rounds

Verdict = Literal["host_handed_over", "ended_host_absent", "ended_empty_stage"]


@dataclass(frozen=True, slots=True)
class ContinuityPolicy:
    host_absence_s: float  # 0: an absent host is never replaced, nor the space ended
    host_grace_s: float
    empty_stage_s: float  # 0: an empty stage never ends a space


class Continuity:
    def __init__(
        self,
        store: Store,
        bus: Bus,
        spaces: Spaces,
        roles: Roles,
        clock: Clock,
        policy: ContinuityPolicy,
        worker_id: str,
    ) -> None:
        self._store = store
        self._bus = bus
        self._spaces = spaces
        self._roles = roles
        self._clock = clock
        self._policy = policy
        self._worker_id = worker_id
        # Often enough to act within a quarter of the shortest limit, short ones included.
        limits = [t for t in (policy.host_absence_s, policy.empty_stage_s) if t > 0]
        self._interval = min([ROUND_S, *(max(0.5, t / 4) for t in limits)])
        self._since: float | None = None  # holding the lease since
        self._host_heard: dict[str, float] = {}  # space: the host's audio last seen
        self._stage_heard: dict[str, float] = {}  # space: anyone's audio on stage last seen
        self._marked: set[tuple[str, str]] = set()  # (space, host) heard, noted on the bus

    async def run(self) -> None:
        await in_rounds(self.tick, self._interval, self._forget, "looking after unattended spaces")

    async def tick(self) -> dict[str, Verdict]:
        """One round; what was done, by space."""
        now = self._clock.now()
        if not await self._bus.acquire_lease(_LEASE, self._worker_id, self._interval * 3, now):
            self._forget()
            return {}
        if self._since is None:
            self._since = now
        verdicts: dict[str, Verdict] = {}
        live = await self._spaces.live_starts()
        for start in live:
            since = max(start.started_at, self._since)
            verdict = await self._judge(start.space_id, since, now)
            if verdict is not None:
                verdicts[start.space_id] = verdict
                log.info("space %s: %s", start.space_id, verdict.replace("_", " "))
        keep = {start.space_id for start in live} - set(verdicts)
        for seen in (self._host_heard, self._stage_heard):
            for space_id in set(seen) - keep:
                del seen[space_id]
        self._marked = {m for m in self._marked if m[0] in keep}
        return verdicts

    async def _judge(self, space_id: str, since: float, now: float) -> Verdict | None:
        stage = await self._store.list_participants(space_id)
        heard = await self._connected(space_id)
        host = next((p for p in stage if p.role is Role.HOST), None)
        if host is None:
            return None
        if host.user_id in heard:
            self._host_heard[space_id] = now
            await self._mark_heard(space_id, host.user_id)
        if heard:
            self._stage_heard[space_id] = now
        policy = self._policy
        stage_silent = now - self._stage_heard.get(space_id, since)
        if policy.empty_stage_s > 0 and stage_silent >= policy.empty_stage_s:
            return await self._end(space_id, "ended_empty_stage")
        host_gone = now - self._host_heard.get(space_id, since)
        if policy.host_absence_s <= 0 or host_gone < policy.host_absence_s:
            return None
        if not await self._was_heard(space_id, host.user_id):
            return None
        successor = _senior_cohost(stage, heard)
        if successor is not None:
            if await self._roles.succeed(space_id, host.user_id, successor, "host_absent"):
                self._host_heard[space_id] = now  # the new host was heard just now
                return "host_handed_over"
            return None
        if host_gone >= policy.host_absence_s + policy.host_grace_s:
            return await self._end(space_id, "ended_host_absent")
        return None

    async def _end(self, space_id: str, verdict: Verdict) -> Verdict | None:
        why: EndReason = "empty_stage" if verdict == "ended_empty_stage" else "host_absent"
        return verdict if await self._spaces.end_unattended(space_id, why) else None

    async def _mark_heard(self, space_id: str, user_id: str) -> None:
        if (space_id, user_id) not in self._marked:
            await self._bus.set_value(host_heard_key(space_id, user_id), "1", _HEARD_TTL)
            self._marked.add((space_id, user_id))

    async def _was_heard(self, space_id: str, user_id: str) -> bool:
        if (space_id, user_id) in self._marked:
            return True
        return await self._bus.get_value(host_heard_key(space_id, user_id)) is not None

    async def _connected(self, space_id: str) -> set[str]:
        """Members of the stage whose audio reached the space in the last 2 s."""
        prefix = f"{LEVEL_PREFIX}{space_id}:"
        return {key[len(prefix) :] for key in await self._bus.get_values(prefix)}

    def _forget(self) -> None:
        self._since = None
        self._host_heard.clear()
        self._stage_heard.clear()
        self._marked.clear()


def host_heard_key(space_id: str, user_id: str) -> str:
    """Set once the host `user_id` of `space_id` has been heard."""
    return f"host-heard:{space_id}:{user_id}"


def _senior_cohost(stage: list[Participant], heard: set[str]) -> str | None:
    cohosts = [p for p in stage if p.role is Role.COHOST and p.user_id in heard]
    return min(cohosts, key=lambda p: (p.joined_at, p.user_id)).user_id if cohosts else None

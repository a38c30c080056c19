"""The bus's interface: pub/sub, rate limits, presence, tallies, admission, leases.

`services/` depends on this, never on an implementation. Two implementations:
memory (embedded, one process) and redis (scaled out, any number of workers).
All times are wall-clock seconds passed in by the caller, so tests can use a fake clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from majlis.types import BusMessage

__all__ = ["Admission", "Bus", "Subscription"]


@dataclass(frozen=True, slots=True)
class Admission:
    """Answer of the waiting room.

    admitted: the caller may listen now.
    ticket:   the caller's place in line (0 when admitted without queueing).
    position: how many tickets are ahead of or at this one (0 when admitted).
    """

    admitted: bool
    ticket: int
    position: int


class Subscription(Protocol):
    def __aiter__(self) -> AsyncIterator[BusMessage]: ...

    async def close(self) -> None: ...


class Bus(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    # pub/sub -----------------------------------------------------------------------------
    async def publish(self, channel: str, message: BusMessage) -> None:
        """Deliver to every current subscriber of `channel`, on any worker. At most once."""
        ...

    async def subscribe(self, channel: str) -> Subscription:
        """Messages published after this returns are delivered in publish order."""
        ...

    async def subscribers(self, channel: str) -> int:
        """How many processes subscribe to `channel` now. A process that dies loses its
        subscriptions as soon as its connection closes, so this is a quick liveness test
        that needs no timeout to pass."""
        ...

    # rate limits -------------------------------------------------------------------------
    async def hit_rate_limit(self, key: str, rate: float, burst: int, now: float) -> float:
        """GCRA: one request against `key` allowed at `rate` per second with `burst`.
        Returns 0.0 if allowed (and counts it), else seconds until one would be allowed
        (and counts nothing)."""
        ...

    # presence ----------------------------------------------------------------------------
    async def touch_presence(self, space_id: str, member: str, now: float) -> bool:
        """Mark `member` active in `space_id` at `now`. True when they were not counted
        there before (they joined, or came back after presence forgot them)."""
        ...

    async def count_presence(self, space_id: str, now: float, window: float) -> int:
        """Distinct members touched in (now - window, now]. Forgets older ones."""
        ...

    async def drop_presence(self, space_id: str, member: str) -> None: ...

    async def list_presence(
        self, space_id: str, now: float, window: float, limit: int
    ) -> list[str]:
        """Up to `limit` members touched in (now - window, now], most recent first."""
        ...

    # tallies (reaction counts) -----------------------------------------------------------
    async def incr_tally(self, key: str, field: str, amount: int = 1) -> int: ...

    async def get_tally(self, key: str) -> dict[str, int]: ...

    # small values with expiry (speaking levels, revoked token ids, node ownership) ------
    async def set_value(self, key: str, value: str, ttl: float | None) -> None: ...

    async def get_value(self, key: str) -> str | None: ...

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        """The values of `keys` in their order, None where absent: one round trip for
        checks that every request makes together (a session's revocation and suspension)."""
        ...

    async def get_values(self, prefix: str) -> dict[str, str]:
        """All live keys starting with `prefix` (small sets only: levels of one space)."""
        ...

    async def delete_value(self, key: str) -> None: ...

    # admission (waiting room) ------------------------------------------------------------
    async def admit(
        self, space_id: str, ticket: int | None, rate: float, burst: int, now: float
    ) -> Admission:
        """FIFO waiting room with a token bucket of `burst` refilled at `rate`/s.

        Per space the state is: tokens, last refill time, issued (last ticket handed
        out) and served (tickets <= served are admitted). Atomically:
          1. add (now - last) * rate to tokens;
          2. advance served by min(issued - served, floor(tokens)), spending those tokens,
             then cap what is left at burst (so a waiting line moves at the rate however
             seldom it is polled, and only idle capacity is capped);
          3. ticket None: if issued == served and tokens >= 1, spend one and admit
             (Admission(True, 0, 0)); else issued += 1 and answer
             Admission(False, issued, issued - served).
             ticket t: if t <= served, Admission(True, t, 0); if t > issued raise
             ValueError; else Admission(False, t, t - served).
        A ticket that is never polled again still consumes its slot, so a crowd that
        walks away never stalls the line.
        """
        ...

    async def waiting(self, space_id: str) -> int:
        """Tickets handed out and not yet admitted, as of the last admit() of the space
        (its line moves only when someone asks): the waiting room's depth, for /metrics."""
        ...

    # leases (which media node owns a space) ---------------------------------------------
    async def acquire_lease(self, name: str, owner: str, ttl: float, now: float) -> bool:
        """Take or renew `name` for `owner` if free, expired, or already `owner`'s."""
        ...

    async def release_lease(self, name: str, owner: str) -> None: ...

    async def lease_owner(self, name: str, now: float) -> str | None: ...

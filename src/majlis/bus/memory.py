"""The bus for the embedded mode: one process, one event loop, everything in dicts.

The arithmetic of rate limits and admission lives in small pure functions at the top so it
can be read next to the Lua of the redis bus, which must give the same answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Self

from majlis.bus.base import Admission
from majlis.types import BusMessage

__all__ = [
    "DEFAULT_QUEUE_SIZE",
    "TIME_SLACK",
    "TOKEN_SLACK",
    "Fanout",
    "MemoryBus",
    "QueueSubscription",
    "Room",
    "answer_ticket",
    "check_rate",
    "gcra",
    "refill_room",
]

# Float timestamps near 1.7e9 carry ~2e-7 s of rounding. A request that lands exactly on
# its slot must not be refused by that noise, or every limit drifts slower than asked.
TIME_SLACK = 1e-4
TOKEN_SLACK = 1e-3

DEFAULT_QUEUE_SIZE = 1000
_VALUE_SWEEP_EVERY = 30.0  # seconds of real time between full sweeps of expired values
_TAT_SWEEP_EVERY = 4096  # least rate-limit hits between sweeps of stale limiter state


# pure arithmetic ---------------------------------------------------------------------------


def check_rate(rate: float, burst: int) -> None:
    if not (rate > 0 and math.isfinite(rate)):
        raise ValueError(f"rate must be a positive finite number, got {rate!r}")
    if burst < 1:
        raise ValueError(f"burst must be at least 1, got {burst!r}")


def gcra(tat: float | None, now: float, rate: float, burst: int) -> tuple[float, float]:
    """One request against a limiter whose theoretical arrival time is `tat`.

    Returns (tat to store, wait): wait 0.0 means allowed and counted; otherwise the
    seconds until a request would be allowed, and the stored tat is unchanged."""
    interval = 1.0 / rate
    start = now if tat is None or tat < now else tat
    new_tat = start + interval
    allow_at = new_tat - burst * interval
    if now < allow_at - TIME_SLACK:
        # refused implies start > now, i.e. start is the old tat: nothing is counted
        return start, allow_at - now
    return new_tat, 0.0


@dataclass(frozen=True, slots=True)
class Room:
    """Waiting room state of one space; see Bus.admit."""

    tokens: float
    last: float
    issued: int = 0
    served: int = 0


def refill_room(room: Room, now: float, rate: float, burst: int) -> Room:
    """Steps 1 and 2 of Bus.admit: refill the bucket, then serve waiting tickets from it."""
    # Workers' clocks disagree a little; never let time run backwards and mint tokens later.
    elapsed = max(0.0, now - room.last)
    accrued = room.tokens + elapsed * rate
    # The line is served from everything accrued since the last call, and only what is
    # left is capped at the burst: capping first would lose the slots of every interval
    # in which nobody asked, and a line polled every half second would move at burst per
    # poll instead of at the rate.
    moved = min(room.issued - room.served, math.floor(accrued + TOKEN_SLACK))
    tokens = min(float(burst), accrued - moved)
    return Room(tokens, max(room.last, now), room.issued, room.served + moved)


def answer_ticket(room: Room, ticket: int | None) -> tuple[Room, Admission]:
    """Step 3 of Bus.admit, on a room already refilled."""
    if ticket is None:
        if room.issued == room.served and room.tokens >= 1.0 - TOKEN_SLACK:
            return replace(room, tokens=room.tokens - 1.0), Admission(True, 0, 0)
        room = replace(room, issued=room.issued + 1)
        return room, Admission(False, room.issued, room.issued - room.served)
    if ticket < 0 or ticket > room.issued:
        raise ValueError(f"ticket {ticket} was never issued (last issued: {room.issued})")
    if ticket <= room.served:
        return room, Admission(True, ticket, 0)
    return room, Admission(False, ticket, ticket - room.served)


# subscriptions -----------------------------------------------------------------------------


class QueueSubscription:
    """One local subscriber: a bounded queue the bus pushes into without ever blocking.

    When the consumer falls behind by `maxsize` messages the oldest is dropped, so a slow
    reader loses its own backlog and never slows the publisher or other subscribers."""

    def __init__(
        self,
        channel: str,
        detach: Callable[[QueueSubscription], Awaitable[None]],
        maxsize: int = DEFAULT_QUEUE_SIZE,
    ) -> None:
        self.channel = channel
        self.dropped = 0
        self._detach = detach
        self._queue: asyncio.Queue[BusMessage | None] = asyncio.Queue(maxsize)
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def deliver(self, message: BusMessage) -> None:
        if not self._closed:
            self._push(message)

    def end(self) -> None:
        """Stop delivery and wake the consumer; pending messages are discarded."""
        if self._closed:
            return
        self._closed = True
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    async def close(self) -> None:
        if self._closed:
            return
        self.end()
        await self._detach(self)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> BusMessage:
        item = await self._queue.get()
        if item is None:
            # put the end marker back so every later iteration stops too
            self._queue.put_nowait(None)
            raise StopAsyncIteration
        return item

    def _push(self, item: BusMessage) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(item)


class Fanout:
    """Local subscribers per channel, in subscription order."""

    def __init__(self) -> None:
        self._subs: dict[str, dict[QueueSubscription, None]] = {}

    def add(self, sub: QueueSubscription) -> bool:
        """Register; True when it is the first subscriber of its channel."""
        subs = self._subs.setdefault(sub.channel, {})
        subs[sub] = None
        return len(subs) == 1

    def remove(self, sub: QueueSubscription) -> bool:
        """Unregister; True when it was the last subscriber of its channel."""
        subs = self._subs.get(sub.channel)
        if subs is None or sub not in subs:
            return False
        del subs[sub]
        if subs:
            return False
        del self._subs[sub.channel]
        return True

    def has(self, channel: str) -> bool:
        return channel in self._subs

    def count(self, channel: str) -> int:
        return len(self._subs.get(channel, ()))

    def deliver(self, channel: str, message: BusMessage) -> None:
        for sub in tuple(self._subs.get(channel, ())):
            sub.deliver(message)

    def end_all(self) -> None:
        for subs in self._subs.values():
            for sub in subs:
                sub.end()
        self._subs.clear()


# the bus -----------------------------------------------------------------------------------


class MemoryBus:
    """Bus for a single process. Call everything from the loop it was opened on, except
    `publish_threadsafe`. Subscribers share the published dict: treat messages as read-only.
    """

    def __init__(self, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self._queue_size = queue_size
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._fanout = Fanout()
        self._tats: dict[str, float] = {}
        self._hits_since_sweep = 0
        self._presence: dict[str, OrderedDict[str, float]] = {}
        self._tallies: dict[str, dict[str, int]] = {}
        self._values: dict[str, tuple[str, float | None]] = {}
        self._next_value_sweep = time.monotonic() + _VALUE_SWEEP_EVERY
        self._rooms: dict[str, Room] = {}
        self._leases: dict[str, tuple[str, float]] = {}

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        self._fanout.end_all()

    # pub/sub -------------------------------------------------------------------------------
    async def publish(self, channel: str, message: BusMessage) -> None:
        self._deliver(channel, message)

    def publish_threadsafe(self, channel: str, message: BusMessage) -> None:
        """Publish from another thread (the media node's); delivery happens on the bus loop.
        Dropped silently once the loop is gone, as pub/sub is at most once anyway."""
        if self._loop is None:
            raise RuntimeError("MemoryBus.publish_threadsafe called before open()")
        with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
            self._loop.call_soon_threadsafe(self._deliver, channel, message)

    async def subscribe(self, channel: str) -> QueueSubscription:
        sub = QueueSubscription(channel, self._detach, self._queue_size)
        if self._closed:
            sub.end()
        else:
            self._fanout.add(sub)
        return sub

    async def subscribers(self, channel: str) -> int:
        # one process: it counts as one subscriber however many local subscriptions
        return min(1, self._fanout.count(channel))

    def _deliver(self, channel: str, message: BusMessage) -> None:
        if not self._closed:
            self._fanout.deliver(channel, message)

    async def _detach(self, sub: QueueSubscription) -> None:
        self._fanout.remove(sub)

    # rate limits ---------------------------------------------------------------------------
    async def hit_rate_limit(self, key: str, rate: float, burst: int, now: float) -> float:
        check_rate(rate, burst)
        tat, wait = gcra(self._tats.get(key), now, rate, burst)
        self._tats[key] = tat
        self._hits_since_sweep += 1
        # sweeping no more often than there are keys keeps the cost O(1) per hit
        if self._hits_since_sweep >= max(_TAT_SWEEP_EVERY, len(self._tats)):
            self._sweep_tats(now)
        return wait

    def _sweep_tats(self, now: float) -> None:
        # a tat in the past is the same as no state at all
        self._hits_since_sweep = 0
        self._tats = {key: tat for key, tat in self._tats.items() if tat > now}

    # presence ------------------------------------------------------------------------------
    async def touch_presence(self, space_id: str, member: str, now: float) -> bool:
        members = self._presence.setdefault(space_id, OrderedDict())
        # Keeping the dict ordered by time is what makes counting O(expired); a touch that
        # arrives late never moves a member back in time.
        last = members.get(member)
        members[member] = now if last is None else max(last, now)
        members.move_to_end(member)
        return last is None

    async def count_presence(self, space_id: str, now: float, window: float) -> int:
        members = self._presence.get(space_id)
        if members is None:
            return 0
        cutoff = now - window
        while members:
            member, seen = next(iter(members.items()))
            if seen > cutoff:
                break
            del members[member]
        if not members:
            del self._presence[space_id]
        return len(members)

    async def drop_presence(self, space_id: str, member: str) -> None:
        members = self._presence.get(space_id)
        if members is not None:
            members.pop(member, None)

    async def list_presence(
        self, space_id: str, now: float, window: float, limit: int
    ) -> list[str]:
        members = self._presence.get(space_id, OrderedDict())
        cutoff = now - window
        out: list[str] = []
        for member, seen in reversed(members.items()):  # kept in order of time
            if seen <= cutoff or len(out) >= limit:
                break
            out.append(member)
        return out

    # tallies -------------------------------------------------------------------------------
    async def incr_tally(self, key: str, field: str, amount: int = 1) -> int:
        fields = self._tallies.setdefault(key, {})
        fields[field] = fields.get(field, 0) + amount
        return fields[field]

    async def get_tally(self, key: str) -> dict[str, int]:
        return dict(self._tallies.get(key, {}))

    # values --------------------------------------------------------------------------------
    async def set_value(self, key: str, value: str, ttl: float | None) -> None:
        clock = time.monotonic()
        if ttl is not None and ttl <= 0:
            self._values.pop(key, None)  # already expired
        else:
            self._values[key] = (value, None if ttl is None else clock + ttl)
        if clock >= self._next_value_sweep:
            self._sweep_values(clock)

    async def get_value(self, key: str) -> str | None:
        return self._live_value(key)

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        return [self._live_value(key) for key in keys]

    def _live_value(self, key: str) -> str | None:
        entry = self._values.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and expires <= time.monotonic():
            del self._values[key]
            return None
        return value

    async def get_values(self, prefix: str) -> dict[str, str]:
        clock = time.monotonic()
        return {
            key: value
            for key, (value, expires) in self._values.items()
            if key.startswith(prefix) and (expires is None or expires > clock)
        }

    async def delete_value(self, key: str) -> None:
        self._values.pop(key, None)

    def _sweep_values(self, clock: float) -> None:
        self._next_value_sweep = clock + _VALUE_SWEEP_EVERY
        expired = [k for k, (_, exp) in self._values.items() if exp is not None and exp <= clock]
        for key in expired:
            del self._values[key]

    # admission -----------------------------------------------------------------------------
    async def admit(
        self, space_id: str, ticket: int | None, rate: float, burst: int, now: float
    ) -> Admission:
        check_rate(rate, burst)
        room = self._rooms.get(space_id)
        if room is None:
            room = Room(tokens=float(burst), last=now)
        room = refill_room(room, now, rate, burst)
        # keep the refill even when the ticket is refused: serving happened either way
        self._rooms[space_id] = room
        room, answer = answer_ticket(room, ticket)
        self._rooms[space_id] = room
        return answer

    async def waiting(self, space_id: str) -> int:
        room = self._rooms.get(space_id)
        return 0 if room is None else room.issued - room.served

    # leases --------------------------------------------------------------------------------
    async def acquire_lease(self, name: str, owner: str, ttl: float, now: float) -> bool:
        if ttl <= 0:
            raise ValueError(f"lease ttl must be positive, got {ttl!r}")
        current = self._leases.get(name)
        if current is not None and current[0] != owner and current[1] > now:
            return False
        self._leases[name] = (owner, now + ttl)
        return True

    async def release_lease(self, name: str, owner: str) -> None:
        current = self._leases.get(name)
        if current is not None and current[0] == owner:
            del self._leases[name]

    async def lease_owner(self, name: str, now: float) -> str | None:
        current = self._leases.get(name)
        if current is None or current[1] <= now:
            return None
        return current[0]

"""The bus for the scaled mode: any number of workers sharing one Redis.

Pub/sub: one PubSub connection per bus, read by one task that fans messages out to local
subscribers, so a worker with ten thousand listeners of one space holds one SUBSCRIBE, not
ten thousand. Rate limits, admission and leases are Lua scripts, atomic across workers;
their arithmetic mirrors the pure functions of `majlis.bus.memory` line for line.

Every key and channel lives under `prefix`, so tests can isolate themselves with a random
one. Key layout: {prefix}ch:<channel>, rl:<key>, pr:<space>, ta:<key>, v:<key>,
adm:<space>, ls:<name>.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.connection import parse_url
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from majlis.bus.base import Admission
from majlis.bus.memory import (
    DEFAULT_QUEUE_SIZE,
    TIME_SLACK,
    TOKEN_SLACK,
    Fanout,
    QueueSubscription,
    check_rate,
)
from majlis.types import BusMessage

__all__ = ["RedisBus"]

log = logging.getLogger(__name__)

SUBSCRIBE_TIMEOUT = 10.0
_RECONNECT_DELAY = 0.5
# Real-time expiry is only garbage collection: the logic compares the caller's `now`, so
# keys are kept a little past their logical end (and presence for an idle hour).
_GRACE_MS = 1000
_PRESENCE_IDLE_S = 3600
_ROOM_IDLE_S = 3600

# KEYS[1] tat; ARGV now, rate, burst, slack, grace ms. Mirrors memory.gcra.
_GCRA = """
local now = tonumber(ARGV[1])
local interval = 1.0 / tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local slack = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]))
local start = now
if tat and tat > now then start = tat end
local new_tat = start + interval
local allow_at = new_tat - burst * interval
if now < allow_at - slack then
  return string.format('%.17g', allow_at - now)
end
local ttl = math.ceil((new_tat - now) * 1000) + tonumber(ARGV[5])
redis.call('SET', KEYS[1], string.format('%.17g', new_tat), 'PX', ttl)
return '0'
"""

# KEYS[1] room hash; ARGV now, rate, burst, ticket ('' for none), slack, idle seconds.
# Mirrors memory.refill_room then memory.answer_ticket. Returns {admitted, ticket,
# position}, or {-1, issued, 0} when the ticket was never issued.
_ADMIT = """
local now = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local slack = tonumber(ARGV[5])
local s = redis.call('HMGET', KEYS[1], 'tokens', 'last', 'issued', 'served')
local tokens = tonumber(s[1]) or burst
local last = tonumber(s[2]) or now
local issued = tonumber(s[3]) or 0
local served = tonumber(s[4]) or 0

local accrued = tokens + math.max(0, now - last) * rate
last = math.max(last, now)
local moved = math.min(issued - served, math.floor(accrued + slack))
served = served + moved
tokens = math.min(burst, accrued - moved)

local answer
if ARGV[4] == '' then
  if issued == served and tokens >= 1 - slack then
    tokens = tokens - 1
    answer = {1, 0, 0}
  else
    issued = issued + 1
    answer = {0, issued, issued - served}
  end
else
  local ticket = tonumber(ARGV[4])
  if ticket > issued then
    answer = {-1, issued, 0}
  elseif ticket <= served then
    answer = {1, ticket, 0}
  else
    answer = {0, ticket, ticket - served}
  end
end

local f = '%.17g'
redis.call('HSET', KEYS[1], 'tokens', string.format(f, tokens), 'last', string.format(f, last),
  'issued', string.format(f, issued), 'served', string.format(f, served))
local drain = (issued - served + burst) / rate
redis.call('PEXPIRE', KEYS[1], math.ceil((drain + tonumber(ARGV[6])) * 1000))
return answer
"""

# KEYS[1] lease hash; ARGV owner, now, ttl, grace ms.
_ACQUIRE = """
local cur = redis.call('HMGET', KEYS[1], 'owner', 'expires')
if cur[1] and cur[1] ~= ARGV[1] and tonumber(cur[2]) > tonumber(ARGV[2]) then
  return 0
end
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'owner', ARGV[1],
  'expires', string.format('%.17g', tonumber(ARGV[2]) + ttl))
redis.call('PEXPIRE', KEYS[1], math.ceil(ttl * 1000) + tonumber(ARGV[4]))
return 1
"""

# KEYS[1] lease hash; ARGV owner.
_RELEASE = """
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return 0
"""

_GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")


@dataclass(frozen=True, slots=True)
class _Scripts:
    gcra: AsyncScript
    admit: AsyncScript
    acquire: AsyncScript
    release: AsyncScript

    @classmethod
    def register(cls, client: Redis) -> _Scripts:
        # register_script only hashes; EVALSHA falls back to loading on first use
        return cls(
            gcra=client.register_script(_GCRA),
            admit=client.register_script(_ADMIT),
            acquire=client.register_script(_ACQUIRE),
            release=client.register_script(_RELEASE),
        )


def _text(value: bytes | str) -> str:
    # the client decodes responses; redis-py's types cannot know that
    return value.decode() if isinstance(value, bytes) else value


class RedisBus:
    def __init__(
        self, url: str, *, prefix: str = "majlis:", queue_size: int = DEFAULT_QUEUE_SIZE
    ) -> None:
        self._url = url
        self._prefix = prefix
        # Keys live in the URL's database, but pub/sub channels are server-wide: two
        # deployments on one Redis server with different databases would hear each
        # other's commands. Channels carry the database number.
        self._channels = f"{prefix}{parse_url(url).get('db', 0)}:ch:"
        self._queue_size = queue_size
        self._client: Redis | None = None
        self._scripts: _Scripts | None = None
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._fanout = Fanout()
        # Serialises SUBSCRIBE/UNSUBSCRIBE so "first local subscriber" stays true.
        self._sub_lock = asyncio.Lock()
        self._confirmations: dict[str, asyncio.Future[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._publishing: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        client = Redis.from_url(self._url, decode_responses=True)
        await client.ping()  # fail at startup, not at the first request
        self._client = client
        self._scripts = _Scripts.register(client)
        self._loop = asyncio.get_running_loop()

    async def close(self) -> None:
        self._fanout.end_all()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.wait([self._reader])
            self._reader = None
        if self._pubsub is not None:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
            self._scripts = None

    @property
    def _redis(self) -> Redis:
        if self._client is None:
            raise RuntimeError("RedisBus used before open() or after close()")
        return self._client

    @property
    def _lua(self) -> _Scripts:
        if self._scripts is None:
            raise RuntimeError("RedisBus used before open() or after close()")
        return self._scripts

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}{kind}:{name}"

    def _channel(self, name: str) -> str:
        return f"{self._channels}{name}"

    # pub/sub -------------------------------------------------------------------------------
    async def publish(self, channel: str, message: BusMessage) -> None:
        await self._redis.publish(self._channel(channel), orjson.dumps(message))

    def publish_threadsafe(self, channel: str, message: BusMessage) -> None:
        """Publish from another thread (the media node's), like MemoryBus.publish_threadsafe.
        Failures are logged, not raised: the caller has long moved on."""
        if self._loop is None:
            raise RuntimeError("RedisBus.publish_threadsafe called before open()")
        with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
            self._loop.call_soon_threadsafe(self._spawn_publish, channel, message)

    def _spawn_publish(self, channel: str, message: BusMessage) -> None:
        if self._client is None:
            return  # closed meanwhile; pub/sub is at most once
        task = asyncio.create_task(self.publish(channel, message))
        # hold a reference until done, or the task may be collected mid-flight
        self._publishing.add(task)
        task.add_done_callback(self._published)

    def _published(self, task: asyncio.Task[None]) -> None:
        self._publishing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("bus publish from another thread failed: %s", task.exception())

    async def subscribe(self, channel: str) -> QueueSubscription:
        full = self._channel(channel)
        sub = QueueSubscription(full, self._detach, self._queue_size)
        async with self._sub_lock:
            if not self._fanout.has(full):
                await self._listen(full)
            self._fanout.add(sub)
        return sub

    async def subscribers(self, channel: str) -> int:
        # one SUBSCRIBE per process and channel, so this counts processes
        counts = await self._redis.pubsub_numsub(self._channel(channel))
        return int(counts[0][1]) if counts else 0

    async def _listen(self, channel: str) -> None:
        """SUBSCRIBE and wait for Redis to confirm, so a publish from any worker after we
        return is seen (without the wait it could overtake our SUBSCRIBE)."""
        if self._pubsub is None:
            self._pubsub = self._redis.pubsub()
        confirmed = asyncio.get_running_loop().create_future()
        self._confirmations[channel] = confirmed
        try:
            await self._pubsub.subscribe(channel)
            if self._reader is None:
                self._reader = asyncio.create_task(self._read(self._pubsub))
            await asyncio.wait_for(confirmed, SUBSCRIBE_TIMEOUT)
        finally:
            self._confirmations.pop(channel, None)

    async def _detach(self, sub: QueueSubscription) -> None:
        async with self._sub_lock:
            if self._fanout.remove(sub) and self._pubsub is not None:
                # best effort: a dead connection forgets the subscription anyway
                with contextlib.suppress(RedisError, OSError):
                    await self._pubsub.unsubscribe(sub.channel)

    async def _read(self, pubsub: PubSub) -> None:
        while True:
            try:
                message = await pubsub.get_message(timeout=None)
            except (RedisError, OSError) as exc:
                # redis-py reconnects and re-subscribes on the next read
                log.warning("bus pub/sub connection lost, retrying: %s", exc)
                await asyncio.sleep(_RECONNECT_DELAY)
                continue
            if message is None:
                continue
            try:
                self._on_message(message)
            except Exception:
                # one bad message must not silence every subscriber of this worker
                log.exception("bus failed to dispatch a pub/sub message")

    def _on_message(self, message: dict[str, Any]) -> None:
        kind, channel = message["type"], message["channel"]
        if kind == "subscribe":
            confirmed = self._confirmations.get(channel)
            if confirmed is not None and not confirmed.done():
                confirmed.set_result(None)
        elif kind == "message":
            try:
                payload = orjson.loads(message["data"])
            except orjson.JSONDecodeError:
                log.warning("dropping non-JSON message on %s", channel)
                return
            if isinstance(payload, dict):
                self._fanout.deliver(channel, payload)

    # rate limits ---------------------------------------------------------------------------
    async def hit_rate_limit(self, key: str, rate: float, burst: int, now: float) -> float:
        check_rate(rate, burst)
        args = [now, rate, burst, TIME_SLACK, _GRACE_MS]
        wait = await self._lua.gcra(keys=[self._key("rl", key)], args=args)
        return float(wait)

    # presence ------------------------------------------------------------------------------
    async def touch_presence(self, space_id: str, member: str, now: float) -> bool:
        key = self._key("pr", space_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(key, {member: now}, gt=True)  # a late touch never moves back in time
            pipe.expire(key, _PRESENCE_IDLE_S)
            added, _ = await pipe.execute()
        return bool(added)  # ZADD counts the members it added, not those it updated

    async def count_presence(self, space_id: str, now: float, window: float) -> int:
        key = self._key("pr", space_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", now - window)
            pipe.zcard(key)
            _, count = await pipe.execute()
        return int(count)

    async def drop_presence(self, space_id: str, member: str) -> None:
        await self._redis.zrem(self._key("pr", space_id), member)

    async def list_presence(
        self, space_id: str, now: float, window: float, limit: int
    ) -> list[str]:
        key = self._key("pr", space_id)
        members = await self._redis.zrevrangebyscore(
            key, "+inf", f"({now - window}", start=0, num=limit
        )
        return [m.decode() if isinstance(m, bytes) else str(m) for m in members]

    # tallies -------------------------------------------------------------------------------
    async def incr_tally(self, key: str, field: str, amount: int = 1) -> int:
        return int(await self._redis.hincrby(self._key("ta", key), field, amount))

    async def get_tally(self, key: str) -> dict[str, int]:
        fields = await self._redis.hgetall(self._key("ta", key))
        return {_text(field): int(value) for field, value in fields.items()}

    # values --------------------------------------------------------------------------------
    async def set_value(self, key: str, value: str, ttl: float | None) -> None:
        full = self._key("v", key)
        if ttl is None:
            await self._redis.set(full, value)
        elif ttl <= 0:
            await self._redis.delete(full)  # already expired; PX refuses 0
        else:
            await self._redis.set(full, value, px=max(1, math.ceil(ttl * 1000)))

    async def get_value(self, key: str) -> str | None:
        value = await self._redis.get(self._key("v", key))
        return None if value is None else _text(value)

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        values = await self._redis.mget([self._key("v", key) for key in keys])
        return [None if value is None else _text(value) for value in values]

    async def get_values(self, prefix: str) -> dict[str, str]:
        full = self._key("v", prefix)
        pattern = _GLOB_SPECIAL.sub(r"\\\1", full) + "*"
        keys = [key async for key in self._redis.scan_iter(match=pattern, count=1000)]
        if not keys:
            return {}
        values = await self._redis.mget(keys)
        strip = len(self._key("v", ""))
        return {
            _text(key)[strip:]: _text(value)
            for key, value in zip(keys, values, strict=True)
            if value is not None  # expired between SCAN and MGET
        }

    async def delete_value(self, key: str) -> None:
        await self._redis.delete(self._key("v", key))

    # admission -----------------------------------------------------------------------------
    async def admit(
        self, space_id: str, ticket: int | None, rate: float, burst: int, now: float
    ) -> Admission:
        check_rate(rate, burst)
        if ticket is not None and ticket < 0:
            raise ValueError(f"ticket {ticket} was never issued")
        args: list[str | float] = [now, rate, burst, "" if ticket is None else ticket]
        args += [TOKEN_SLACK, _ROOM_IDLE_S]
        admitted, number, position = await self._lua.admit(
            keys=[self._key("adm", space_id)], args=args
        )
        if admitted == -1:
            raise ValueError(f"ticket {ticket} was never issued (last issued: {number})")
        return Admission(bool(admitted), int(number), int(position))

    # leases --------------------------------------------------------------------------------

    async def waiting(self, space_id: str) -> int:
        issued, served = await self._redis.hmget(self._key("adm", space_id), "issued", "served")
        return int(float(issued or 0)) - int(float(served or 0))

    async def acquire_lease(self, name: str, owner: str, ttl: float, now: float) -> bool:
        if ttl <= 0:
            raise ValueError(f"lease ttl must be positive, got {ttl!r}")
        args: list[str | float] = [owner, now, ttl, _GRACE_MS]
        return bool(await self._lua.acquire(keys=[self._key("ls", name)], args=args))

    async def release_lease(self, name: str, owner: str) -> None:
        await self._lua.release(keys=[self._key("ls", name)], args=[owner])

    async def lease_owner(self, name: str, now: float) -> str | None:
        owner, expires = await self._redis.hmget(self._key("ls", name), ["owner", "expires"])
        if owner is None or expires is None or float(expires) <= now:
            return None
        return str(owner)

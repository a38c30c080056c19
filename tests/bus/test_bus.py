"""The bus contract, run against both implementations (memory and a real Redis)."""

from __future__ import annotations

import asyncio
import functools
import sys
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import redis
import redis.asyncio

from conftest import REDIS_URL, redis_url, require_service
from majlis.bus import Admission, Bus, MemoryBus, Subscription, open_bus
from majlis.bus.redis import RedisBus
from majlis.clock import FakeClock
from majlis.types import BusMessage

T0 = 1_700_000_000.0
RECEIVE_TIMEOUT = 2.0


@functools.cache
def redis_reachable() -> bool:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


@asynccontextmanager
async def redis_buses(count: int) -> AsyncIterator[list[RedisBus]]:
    """`count` buses sharing one random key prefix, like workers of one deployment."""
    require_service("redis", redis_reachable())
    prefix = f"majlis-test:{uuid.uuid4().hex}:"
    buses = [RedisBus(REDIS_URL, prefix=prefix) for _ in range(count)]
    for bus in buses:
        await bus.open()
    try:
        yield buses
    finally:
        for bus in buses:
            await bus.close()
        await delete_keys(prefix)


async def delete_keys(prefix: str) -> None:
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    if request.param == "memory":
        memory = MemoryBus()
        await memory.open()
        yield memory
        await memory.close()
        return
    async with redis_buses(1) as (one,):
        yield one


@pytest.fixture
async def memory_bus() -> AsyncIterator[MemoryBus]:
    memory = MemoryBus(queue_size=3)
    await memory.open()
    yield memory
    await memory.close()


async def receive(sub: Subscription, count: int) -> list[BusMessage]:
    iterator = aiter(sub)
    return [await asyncio.wait_for(anext(iterator), RECEIVE_TIMEOUT) for _ in range(count)]


async def nothing_arrives(sub: Subscription, wait: float = 0.1) -> bool:
    try:
        await asyncio.wait_for(anext(aiter(sub)), wait)
    except TimeoutError:
        return True
    return False


# pub/sub ---------------------------------------------------------------------------------


async def test_publish_fans_out_in_order(bus: Bus) -> None:
    first = await bus.subscribe("space:1")
    second = await bus.subscribe("space:1")
    other = await bus.subscribe("space:2")
    messages: list[BusMessage] = [{"n": n, "kind": "reaction"} for n in range(20)]
    for message in messages:
        await bus.publish("space:1", message)
    assert await receive(first, 20) == messages
    assert await receive(second, 20) == messages
    assert await nothing_arrives(other)


async def test_close_stops_delivery(bus: Bus) -> None:
    leaving = await bus.subscribe("space:1")
    staying = await bus.subscribe("space:1")
    await bus.publish("space:1", {"n": 1})
    await leaving.close()
    await bus.publish("space:1", {"n": 2})
    assert await receive(staying, 2) == [{"n": 1}, {"n": 2}]
    assert [message async for message in leaving] == []


async def test_resubscribe_after_last_subscriber_left(bus: Bus) -> None:
    sub = await bus.subscribe("space:1")
    await sub.close()
    again = await bus.subscribe("space:1")
    await bus.publish("space:1", {"n": 3})
    assert await receive(again, 1) == [{"n": 3}]


async def test_redis_workers_see_each_others_messages() -> None:
    async with redis_buses(2) as (one, two):
        sub = await two.subscribe("space:1")
        await one.publish("space:1", {"from": "one"})
        assert await receive(sub, 1) == [{"from": "one"}]


async def test_bus_close_ends_subscriptions(bus: Bus) -> None:
    sub = await bus.subscribe("space:1")
    await bus.close()
    assert [message async for message in sub] == []


async def test_slow_subscriber_loses_its_oldest(memory_bus: MemoryBus) -> None:
    slow = await memory_bus.subscribe("space:1")
    for n in range(5):
        await memory_bus.publish("space:1", {"n": n})  # never blocks on the full queue
    assert await receive(slow, 3) == [{"n": 2}, {"n": 3}, {"n": 4}]
    assert slow.dropped == 2


async def test_publish_threadsafe_from_another_thread(bus: Bus) -> None:
    if not isinstance(bus, MemoryBus | RedisBus):
        pytest.fail(f"unexpected bus {bus!r}")
    sub = await bus.subscribe("space:1")
    thread = threading.Thread(target=bus.publish_threadsafe, args=("space:1", {"n": 7}))
    thread.start()
    await asyncio.to_thread(thread.join)
    assert await receive(sub, 1) == [{"n": 7}]


# rate limits ------------------------------------------------------------------------------


async def test_gcra_allows_the_rate_over_time(bus: Bus) -> None:
    clock = FakeClock(T0)
    allowed = 0
    for _ in range(300):  # 100 tries per second for 3 simulated seconds
        if await bus.hit_rate_limit("ip:1", rate=10, burst=1, now=clock.now()) == 0.0:
            allowed += 1
        clock.advance(0.01)
    assert 27 <= allowed <= 33


async def test_gcra_honours_burst(bus: Bus) -> None:
    results = [await bus.hit_rate_limit("ip:1", rate=1, burst=5, now=T0) for _ in range(6)]
    assert results[:5] == [0.0] * 5
    assert results[5] == pytest.approx(1.0, abs=1e-3)
    assert await bus.hit_rate_limit("ip:1", rate=1, burst=5, now=T0 + 1.0) == 0.0
    assert await bus.hit_rate_limit("ip:1", rate=1, burst=5, now=T0 + 1.0) > 0.0


async def test_gcra_retry_after_and_refusals_count_nothing(bus: Bus) -> None:
    assert await bus.hit_rate_limit("user:1", rate=10, burst=1, now=T0) == 0.0
    wait = await bus.hit_rate_limit("user:1", rate=10, burst=1, now=T0 + 0.03)
    assert wait == pytest.approx(0.07, abs=1e-3)
    for _ in range(10):  # hammering while refused must not push the slot further out
        await bus.hit_rate_limit("user:1", rate=10, burst=1, now=T0 + 0.05)
    assert await bus.hit_rate_limit("user:1", rate=10, burst=1, now=T0 + 0.1) == 0.0
    assert await bus.hit_rate_limit("user:2", rate=10, burst=1, now=T0 + 0.03) == 0.0


async def test_gcra_rejects_nonsense_limits(bus: Bus) -> None:
    with pytest.raises(ValueError):
        await bus.hit_rate_limit("k", rate=0, burst=1, now=T0)
    with pytest.raises(ValueError):
        await bus.hit_rate_limit("k", rate=1, burst=0, now=T0)


# admission --------------------------------------------------------------------------------


async def test_admit_immediately_while_tokens_and_no_queue(bus: Bus) -> None:
    answers = [await bus.admit("s1", None, rate=2, burst=3, now=T0) for _ in range(3)]
    assert answers == [Admission(True, 0, 0)] * 3
    assert await bus.admit("s1", None, rate=2, burst=3, now=T0) == Admission(False, 1, 1)
    assert await bus.admit("s1", None, rate=2, burst=3, now=T0) == Admission(False, 2, 2)
    assert await bus.admit("s1", 2, rate=2, burst=3, now=T0) == Admission(False, 2, 2)
    assert await bus.admit("s2", None, rate=2, burst=3, now=T0) == Admission(True, 0, 0)


async def test_admit_serves_tickets_in_order_at_the_rate(bus: Bus) -> None:
    async def admit(ticket: int | None, now: float) -> Admission:
        return await bus.admit("s1", ticket, rate=1, burst=1, now=now)

    assert await admit(None, T0) == Admission(True, 0, 0)
    assert await admit(None, T0) == Admission(False, 1, 1)
    assert await admit(None, T0) == Admission(False, 2, 2)
    assert await admit(1, T0 + 0.5) == Admission(False, 1, 1)
    # a newcomer with a token in the bucket still queues behind the line
    assert await admit(None, T0 + 1) == Admission(False, 3, 2)
    assert await admit(1, T0 + 1) == Admission(True, 1, 0)
    assert await admit(2, T0 + 1) == Admission(False, 2, 1)
    assert await admit(2, T0 + 2) == Admission(True, 2, 0)
    assert await admit(3, T0 + 2) == Admission(False, 3, 1)
    assert await admit(3, T0 + 3) == Admission(True, 3, 0)
    assert await admit(1, T0 + 3) == Admission(True, 1, 0)  # admitted stays admitted
    # the line is empty and the bucket refilled: walk straight in again
    assert await admit(None, T0 + 4) == Admission(True, 0, 0)


async def test_admit_rejects_tickets_never_issued(bus: Bus) -> None:
    await bus.admit("s1", None, rate=1, burst=1, now=T0)
    assert await bus.admit("s1", None, rate=1, burst=1, now=T0) == Admission(False, 1, 1)
    with pytest.raises(ValueError):
        await bus.admit("s1", 2, rate=1, burst=1, now=T0)
    with pytest.raises(ValueError):
        await bus.admit("s1", -1, rate=1, burst=1, now=T0)


async def test_abandoned_tickets_still_consume_slots(bus: Bus) -> None:
    await bus.admit("s1", None, rate=1, burst=1, now=T0)
    tickets = [(await bus.admit("s1", None, rate=1, burst=1, now=T0)).ticket for _ in range(3)]
    assert tickets == [1, 2, 3]
    # tickets 1 and 2 walked away; only ticket 3 keeps polling
    assert await bus.admit("s1", 3, rate=1, burst=1, now=T0 + 1) == Admission(False, 3, 2)
    assert await bus.admit("s1", 3, rate=1, burst=1, now=T0 + 2) == Admission(False, 3, 1)
    assert await bus.admit("s1", 3, rate=1, burst=1, now=T0 + 3) == Admission(True, 3, 0)


async def test_the_depth_of_a_line(bus: Bus) -> None:
    assert await bus.waiting("s1") == 0
    await bus.admit("s1", None, rate=1, burst=1, now=T0)  # walks in
    for _ in range(3):
        await bus.admit("s1", None, rate=1, burst=1, now=T0)
    assert await bus.waiting("s1") == 3
    await bus.admit("s1", 1, rate=1, burst=1, now=T0 + 2)  # two slots accrued
    assert await bus.waiting("s1") == 1


async def test_a_line_polled_seldom_still_moves_at_the_rate(bus: Bus) -> None:
    # Burst 2 at 10/s; 20 wait and everyone polls only once a second: the line must move
    # 10 a second, not the burst's 2 per poll.
    for _ in range(2):
        assert (await bus.admit("s1", None, rate=10, burst=2, now=T0)).admitted
    tickets = [(await bus.admit("s1", None, rate=10, burst=2, now=T0)).ticket for _ in range(20)]
    assert tickets == list(range(1, 21))
    assert await bus.admit("s1", 10, rate=10, burst=2, now=T0 + 1) == Admission(True, 10, 0)
    assert await bus.admit("s1", 11, rate=10, burst=2, now=T0 + 1) == Admission(False, 11, 1)
    assert await bus.admit("s1", 20, rate=10, burst=2, now=T0 + 2) == Admission(True, 20, 0)
    # The line is empty: idle capacity is capped at the burst again.
    answers = [await bus.admit("s1", None, rate=10, burst=2, now=T0 + 5) for _ in range(3)]
    assert [a.admitted for a in answers] == [True, True, False]


async def test_redis_concurrent_admission_hands_out_unique_tickets() -> None:
    async with redis_buses(2) as workers:
        calls = [workers[n % 2].admit("crowded", None, rate=1, burst=1, now=T0) for n in range(200)]
        answers = await asyncio.gather(*calls)
    assert sum(answer.admitted for answer in answers) == 1
    tickets = sorted(answer.ticket for answer in answers if not answer.admitted)
    assert tickets == list(range(1, 200))
    assert sorted(answer.position for answer in answers if not answer.admitted) == tickets


# presence ---------------------------------------------------------------------------------


async def test_presence_lists_members_newest_first_within_the_window(bus: Bus) -> None:
    for offset, member in enumerate(["a", "b", "c", "d"]):
        await bus.touch_presence("s1", member, T0 + offset)
    await bus.touch_presence("s1", "a", T0 + 5)  # a again, most recent now
    assert await bus.list_presence("s1", T0 + 5, window=10, limit=10) == ["a", "d", "c", "b"]
    assert await bus.list_presence("s1", T0 + 5, window=10, limit=2) == ["a", "d"]
    # b was last seen at T0 + 1: exactly one window ago is outside
    assert await bus.list_presence("s1", T0 + 11, window=10, limit=10) == ["a", "d", "c"]
    assert await bus.list_presence("nobody", T0, window=10, limit=10) == []


async def test_presence_counts_within_window(bus: Bus) -> None:
    await bus.touch_presence("s1", "a", T0)
    await bus.touch_presence("s1", "b", T0)
    await bus.touch_presence("s1", "a", T0 + 1)  # re-touch is one member
    await bus.touch_presence("s1", "c", T0 + 5)
    await bus.touch_presence("s2", "z", T0 + 5)
    assert await bus.count_presence("s1", T0 + 5, window=10) == 3
    # b was last seen at T0: exactly one window ago is outside (now - window, now]
    assert await bus.count_presence("s1", T0 + 10, window=10) == 2
    assert await bus.count_presence("s1", T0 + 11, window=10) == 1
    assert await bus.count_presence("s2", T0 + 11, window=10) == 1
    assert await bus.count_presence("empty", T0, window=10) == 0


async def test_presence_retouch_keeps_member_and_late_touch_does_not_rewind(bus: Bus) -> None:
    await bus.touch_presence("s1", "a", T0)
    await bus.touch_presence("s1", "b", T0)
    await bus.touch_presence("s1", "a", T0 + 8)
    await bus.touch_presence("s1", "b", T0 + 9)
    await bus.touch_presence("s1", "b", T0 + 2)  # delivered late
    assert await bus.count_presence("s1", T0 + 15, window=10) == 2
    assert await bus.count_presence("s1", T0 + 18.5, window=10) == 1


async def test_presence_drop(bus: Bus) -> None:
    await bus.touch_presence("s1", "a", T0)
    await bus.touch_presence("s1", "b", T0)
    await bus.drop_presence("s1", "a")
    await bus.drop_presence("s1", "nobody")
    assert await bus.count_presence("s1", T0, window=10) == 1


# tallies ----------------------------------------------------------------------------------


async def test_tallies(bus: Bus) -> None:
    assert await bus.get_tally("r:s1") == {}
    assert await bus.incr_tally("r:s1", "clap") == 1
    assert await bus.incr_tally("r:s1", "clap", 4) == 5
    assert await bus.incr_tally("r:s1", "heart") == 1
    assert await bus.incr_tally("r:s1", "heart", -1) == 0
    assert await bus.get_tally("r:s1") == {"clap": 5, "heart": 0}
    assert await bus.get_tally("r:s2") == {}


# values -----------------------------------------------------------------------------------


async def test_values_set_get_delete(bus: Bus) -> None:
    assert await bus.get_value("node:s1") is None
    await bus.set_value("node:s1", "n1", None)
    await bus.set_value("node:s1", "n2", None)
    assert await bus.get_value("node:s1") == "n2"
    await bus.delete_value("node:s1")
    await bus.delete_value("node:s1")
    assert await bus.get_value("node:s1") is None


async def test_values_expire(bus: Bus) -> None:
    await bus.set_value("level:s1:a", "0.5", 0.15)
    await bus.set_value("level:s1:b", "0.7", None)
    await bus.set_value("level:s1:c", "0.9", 0)  # born expired
    assert await bus.get_value("level:s1:a") == "0.5"
    assert await bus.get_value("level:s1:c") is None
    await asyncio.sleep(0.25)
    assert await bus.get_value("level:s1:a") is None
    assert await bus.get_values("level:s1:") == {"level:s1:b": "0.7"}


async def test_get_values_by_prefix(bus: Bus) -> None:
    await bus.set_value("level:s1:a", "1", 10)
    await bus.set_value("level:s1:b", "2", None)
    await bus.set_value("level:s10:a", "3", None)
    await bus.set_value("level:[s]*:a", "4", None)
    assert await bus.get_values("level:s1:") == {"level:s1:a": "1", "level:s1:b": "2"}
    assert await bus.get_values("level:[s]*") == {"level:[s]*:a": "4"}
    assert await bus.get_values("nothing:") == {}


# leases -----------------------------------------------------------------------------------


async def test_leases(bus: Bus) -> None:
    assert await bus.lease_owner("space:s1", T0) is None
    assert await bus.acquire_lease("space:s1", "node-a", ttl=10, now=T0)
    assert await bus.lease_owner("space:s1", T0 + 1) == "node-a"
    assert not await bus.acquire_lease("space:s1", "node-b", ttl=10, now=T0 + 1)
    assert await bus.acquire_lease("space:s1", "node-a", ttl=10, now=T0 + 5)  # renew
    assert not await bus.acquire_lease("space:s1", "node-b", ttl=10, now=T0 + 14)
    assert await bus.lease_owner("space:s1", T0 + 15) is None  # expired at T0 + 15
    assert await bus.acquire_lease("space:s1", "node-b", ttl=10, now=T0 + 15)
    await bus.release_lease("space:s1", "node-a")  # not the owner: no effect
    assert await bus.lease_owner("space:s1", T0 + 16) == "node-b"
    await bus.release_lease("space:s1", "node-b")
    assert await bus.lease_owner("space:s1", T0 + 16) is None
    assert await bus.acquire_lease("space:s1", "node-a", ttl=10, now=T0 + 16)


async def test_lease_needs_positive_ttl(bus: Bus) -> None:
    with pytest.raises(ValueError):
        await bus.acquire_lease("space:s1", "node-a", ttl=0, now=T0)


# liveness ---------------------------------------------------------------------------------


async def test_subscribers_counts_processes_not_subscriptions(bus: Bus) -> None:
    assert await bus.subscribers("node-alive:a") == 0
    first = await bus.subscribe("node-alive:a")
    second = await bus.subscribe("node-alive:a")
    assert await bus.subscribers("node-alive:a") == 1
    await first.close()
    assert await bus.subscribers("node-alive:a") == 1
    await second.close()
    assert await bus.subscribers("node-alive:a") == 0


async def test_a_killed_subscriber_is_gone_at_once() -> None:
    """What the reconciler relies on: kill -9 closes the process's socket, and Redis
    forgets its subscriptions without waiting for any timeout."""
    require_service("redis", redis_reachable())
    prefix = f"majlis-test:{uuid.uuid4().hex}:"
    script = (
        "import asyncio, sys\n"
        "from majlis.bus.redis import RedisBus\n"
        "async def main():\n"
        "    bus = RedisBus(sys.argv[1], prefix=sys.argv[2])\n"
        "    await bus.open()\n"
        "    await bus.subscribe('node-alive:doomed')\n"
        "    print('in', flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, REDIS_URL, prefix, stdout=asyncio.subprocess.PIPE
    )
    bus = RedisBus(REDIS_URL, prefix=prefix)
    await bus.open()
    try:
        assert child.stdout is not None
        assert await asyncio.wait_for(child.stdout.readline(), 20) == b"in\n"
        assert await bus.subscribers("node-alive:doomed") == 1
        child.kill()
        await child.wait()
        for _ in range(100):  # Redis reads the closed socket on its next loop turn
            if await bus.subscribers("node-alive:doomed") == 0:
                break
            await asyncio.sleep(0.02)
        assert await bus.subscribers("node-alive:doomed") == 0
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        await bus.close()


async def test_deployments_in_different_databases_do_not_hear_each_other() -> None:
    """Redis pub/sub ignores SELECT: without the database in the channel name, a cluster
    on db 11 would take the StartSpace commands of a cluster on db 12."""
    require_service("redis", redis_reachable())
    one, other = RedisBus(redis_url(6)), RedisBus(redis_url(7))
    for bus in (one, other):
        await bus.open()
    try:
        heard = await other.subscribe("media")
        await one.publish("media", {"type": "start", "space_id": "s1"})
        await other.publish("media", {"type": "start", "space_id": "s2"})
        message = await asyncio.wait_for(anext(aiter(heard)), RECEIVE_TIMEOUT)
        assert message["space_id"] == "s2"  # s1 was never delivered here
        assert await one.subscribers("media") == 0
        await heard.close()
    finally:
        for bus in (one, other):
            await bus.close()


# factory ----------------------------------------------------------------------------------


def test_open_bus_picks_implementation() -> None:
    assert isinstance(open_bus("memory://"), MemoryBus)
    assert isinstance(open_bus("redis://127.0.0.1:6379/0", prefix="x:"), RedisBus)
    with pytest.raises(ValueError, match="memory://"):
        open_bus("postgres://localhost/db")


async def test_get_many_in_order(bus: Bus) -> None:
    await bus.set_value("revoked:t1", "1", 10)
    await bus.set_value("suspended:u1", "1900000000", None)
    await bus.set_value("revoked:gone", "1", 0)  # born expired
    got = await bus.get_many(("suspended:u1", "revoked:t2", "revoked:t1", "revoked:gone"))
    assert got == ["1900000000", None, "1", None]
    assert await bus.get_many(()) == []

"""The per-worker cache of the hot read paths: one store query per key however many
requests miss at once (a storm arriving as an entry expires), and never a stale value
kept after an invalidation."""

from __future__ import annotations

import asyncio

import pytest

from majlis.clock import FakeClock
from majlis.services.cache import TtlCache


class Store:
    """A load the test releases when it chooses, counting how often it was asked."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.value = "v1"

    async def load(self) -> str:
        self.calls += 1
        await self.release.wait()
        return self.value


async def test_requests_that_miss_together_share_one_load() -> None:
    clock, store = FakeClock(), Store()
    cache: TtlCache[str] = TtlCache(clock, ttl=1.0)
    waiting = [asyncio.ensure_future(cache.get("space", store.load)) for _ in range(200)]
    await asyncio.sleep(0)
    store.release.set()
    assert await asyncio.gather(*waiting) == ["v1"] * 200
    assert store.calls == 1
    assert await cache.get("space", store.load) == "v1" and store.calls == 1  # kept
    clock.advance(1.0)
    store.value = "v2"
    assert await cache.get("space", store.load) == "v2" and store.calls == 2  # expired


async def test_one_caller_giving_up_does_not_cancel_the_others_load() -> None:
    store = Store()
    cache: TtlCache[str] = TtlCache(FakeClock(), ttl=1.0)
    impatient = asyncio.ensure_future(cache.get("space", store.load))
    patient = asyncio.ensure_future(cache.get("space", store.load))
    await asyncio.sleep(0)
    impatient.cancel()
    store.release.set()
    assert await patient == "v1"
    with pytest.raises(asyncio.CancelledError):
        await impatient


async def test_a_failed_load_is_not_kept() -> None:
    calls = 0

    async def failing() -> str:
        nonlocal calls
        calls += 1
        raise RuntimeError("store down")

    cache: TtlCache[str] = TtlCache(FakeClock(), ttl=1.0)
    results = await asyncio.gather(
        cache.get("k", failing), cache.get("k", failing), return_exceptions=True
    )
    assert [type(r) for r in results] == [RuntimeError, RuntimeError] and calls == 1
    with pytest.raises(RuntimeError):
        await cache.get("k", failing)
    assert calls == 2


async def test_an_invalidation_during_a_load_discards_what_it_read() -> None:
    store = Store()
    cache: TtlCache[str] = TtlCache(FakeClock(), ttl=1.0)
    before = asyncio.ensure_future(cache.get("space", store.load))
    await asyncio.sleep(0)
    cache.invalidate("space")  # the space changed while the old read was in flight
    store.release.set()
    assert await before == "v1"
    store.value = "v2"
    assert await cache.get("space", store.load) == "v2" and store.calls == 2

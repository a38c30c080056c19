"""A tiny per-worker cache with a time-to-live, for the hot read paths (join, state document).

Rules that decide who may do what always read the store; only the paths every listener
hits read through this, and they tolerate data up to `ttl` seconds old.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from majlis.clock import Clock

__all__ = ["TtlCache"]

V = TypeVar("V")


class TtlCache(Generic[V]):
    def __init__(self, clock: Clock, ttl: float, max_entries: int = 10_000) -> None:
        self._clock = clock
        self._ttl = ttl
        self._max = max_entries
        self._entries: dict[str, tuple[float, V]] = {}
        self._loading: dict[str, asyncio.Future[V]] = {}

    async def get(self, key: str, load: Callable[[], Awaitable[V]]) -> V:
        now = self._clock.now()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        # One load per key at a time. When an entry expires under a storm, every request in
        # flight misses at once; each querying the store would queue up to one identical
        # query per open connection behind the others, on the worker that is busiest.
        loading = self._loading.get(key)
        if loading is None:
            loading = asyncio.ensure_future(load())
            self._loading[key] = loading
            loading.add_done_callback(lambda done: self._loaded(key, done, now))
        # Shielded: a caller that gives up must not cancel the load the others wait for.
        return await asyncio.shield(loading)

    def _loaded(self, key: str, done: asyncio.Future[V], now: float) -> None:
        if self._loading.get(key) is not done:
            return  # invalidated while loading: what it read may be older than the change
        del self._loading[key]
        if done.cancelled() or done.exception() is not None:
            return  # the callers get the error; nothing is kept
        if len(self._entries) >= self._max:
            self._entries.clear()  # crude, but bounded; hot keys refill at once
        self._entries[key] = (now + self._ttl, done.result())

    def invalidate(self, key: str) -> None:
        self._entries.pop(key, None)
        # A load already under way read the store before the change: do not keep it.
        self._loading.pop(key, None)

"""A tiny per-worker cache with a time-to-live, for the hot read paths (join, state document).

Rules that decide who may do what always read the store; only the paths every listener
hits read through this, and they tolerate data up to `ttl` seconds old.
"""

from __future__ import annotations

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

    async def get(self, key: str, load: Callable[[], Awaitable[V]]) -> V:
        now = self._clock.now()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = await load()
        if len(self._entries) >= self._max:
            self._entries.clear()  # crude, but bounded; hot keys refill at once
        self._entries[key] = (now + self._ttl, value)
        return value

    def invalidate(self, key: str) -> None:
        self._entries.pop(key, None)

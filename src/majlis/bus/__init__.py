"""The bus: pub/sub, rate limits, presence, tallies, admission and leases.

`open_bus` picks the implementation from a URL; `services/` only sees the `Bus` protocol.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from majlis.bus.base import Admission, Bus, Subscription
from majlis.bus.memory import MemoryBus

__all__ = ["Admission", "Bus", "MemoryBus", "Subscription", "open_bus"]


def open_bus(url: str, *, prefix: str = "majlis:") -> Bus:
    """`memory://` (one process) or `redis://host:port/db` (any number of workers).

    The bus is returned unopened: the caller awaits `open()` on its event loop."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        return MemoryBus()
    if scheme in ("redis", "rediss", "unix"):
        # imported here so the embedded mode never loads the redis client
        from majlis.bus.redis import RedisBus

        return RedisBus(url, prefix=prefix)
    raise ValueError(f"unsupported bus URL {url!r}: use memory:// or redis://host:port/db")

"""Deliveries to other people's servers (SMTP, an operator's webhook), tried again with
exponential backoff and full jitter a bounded number of times. A delivery that still fails
is logged once and dropped: whatever asked for it (a space starting) has already happened
and must not wait for, or fail with, someone else's server."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["Backoff", "retried"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Backoff:
    first_s: float  # the first wait; each next one doubles
    attempts: int = 5
    cap_s: float = 300.0

    def delay(self, failures: int, rng: random.Random) -> float:
        """Full jitter (a uniform wait up to the doubled delay): many workers that failed
        together do not all come back together."""
        return rng.uniform(0, min(self.cap_s, self.first_s * 2 ** (failures - 1)))


_rng = random.Random()


async def retried(send: Callable[[], Awaitable[None]], backoff: Backoff, what: str) -> bool:
    """Call `send` until it returns, at most `backoff.attempts` times; True if it did."""
    for attempt in range(1, backoff.attempts + 1):
        try:
            await send()
            return True
        except Exception as exc:
            if attempt == backoff.attempts:
                log.warning("%s failed %d times, giving up: %r", what, attempt, exc)
                return False
            await asyncio.sleep(backoff.delay(attempt, _rng))
    return False

"""How the CLI's clients retry: the server's Retry-After first, else full-jitter exponential
backoff with a cap, and always inside a retry budget.

The budget is the one Finagle and gRPC use against retry storms: every request a client
makes deposits `ratio` of a retry (10 %), every retry withdraws one, and deposits are
forgotten after `ttl` seconds; `reserve` retries per `ttl` are allowed on top, so that a
client that has made few requests can still retry once. In a rolling `ttl` window a client
therefore retries at most ``reserve + ratio * requests``: when the server is down for a
minute, a crowd of clients keeps sending what it sends anyway (its heartbeats and polls)
plus about a tenth, instead of multiplying it by its retry count.

One budget per client process, shared by all of its retry paths (API calls, heartbeats,
the player's relay).
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Callable, Mapping

__all__ = [
    "RetryBudget",
    "full_jitter",
    "retry_after_s",
    "retry_delay",
]

Clock = Callable[[], float]
# A Retry-After longer than this is taken as this (a broken proxy must not park a client).
MAX_RETRY_AFTER_S = 300.0


class RetryBudget:
    """Retries allowed in any `ttl` window: ``reserve + ratio * requests`` in that window."""

    def __init__(
        self,
        *,
        ratio: float = 0.1,
        reserve: float = 1.0,
        ttl: float = 60.0,
        clock: Clock = time.monotonic,
    ) -> None:
        if ratio < 0 or reserve < 0 or ttl <= 0:
            raise ValueError("ratio and reserve must be >= 0 and ttl > 0")
        self.ratio = ratio
        self.reserve = reserve
        self.ttl = ttl
        self._clock = clock
        self._requests: deque[float] = deque()
        self._retries: deque[float] = deque()
        self.requests = 0  # totals, for reports
        self.retries = 0
        self.denied = 0

    def _forget(self, now: float) -> None:
        horizon = now - self.ttl
        for times in (self._requests, self._retries):
            while times and times[0] <= horizon:
                times.popleft()

    def balance(self) -> float:
        """Retries the budget holds now (may be fractional)."""
        self._forget(self._clock())
        return self.reserve + self.ratio * len(self._requests) - len(self._retries)

    def request(self) -> None:
        """Count a first attempt (not a retry)."""
        self._requests.append(self._clock())
        self.requests += 1

    def try_retry(self) -> bool:
        """Take one retry from the budget if it holds one; False: do not retry now."""
        now = self._clock()
        self._forget(now)
        if self.reserve + self.ratio * len(self._requests) - len(self._retries) < 1.0:
            self.denied += 1
            return False
        self._retries.append(now)
        self.retries += 1
        return True

    def wait_s(self) -> float:
        """Seconds until a retry would be allowed if no further requests were made (0 now)."""
        now = self._clock()
        self._forget(now)
        short = 1.0 - (self.reserve + self.ratio * len(self._requests) - len(self._retries))
        if short <= 0:
            return 0.0
        # Retries leaving the window give back a whole retry each; requests leaving take
        # back `ratio` each. Walk the window in time order until the balance reaches 1.
        events = sorted(
            [(t, 1.0) for t in self._retries] + [(t, -self.ratio) for t in self._requests]
        )
        for moment, change in events:
            short -= change
            if short <= 1e-9:
                return max(0.0, moment + self.ttl - now)
        return self.ttl


def full_jitter(
    attempt: int, base: float, cap: float, rng: Callable[[], float] = random.random
) -> float:
    """Seconds before retry `attempt` (0, 1, …): uniform in [0, min(cap, base * 2^attempt)].

    Full jitter (AWS's name): a crowd that failed together comes back spread over the whole
    interval, not in step."""
    return rng() * min(cap, base * 2.0 ** min(attempt, 62))


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """The server's wait in seconds: Retry-After-Ms (Majlis), else Retry-After in seconds."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            continue  # an HTTP date or garbage: fall back to our own backoff
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    return None


def retry_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: Callable[[], float] = random.random,
) -> float:
    """The server's Retry-After when it sent one (at most MAX_RETRY_AFTER_S), else full
    jitter."""
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER_S)
    return full_jitter(attempt, base, cap, rng)

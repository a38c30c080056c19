"""How late the mixer's ticks run and how long they take, for /metrics.

A tick that runs late delays every speaker and listener, so lateness and cost are kept
over the last few minutes (p50, p99) and as an all-time maximum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Recent", "TickStats"]


@dataclass(frozen=True, slots=True)
class TickStats:
    ticks: int
    late_p50_ms: float
    late_p99_ms: float
    late_max_ms: float
    cost_p50_ms: float
    cost_p99_ms: float
    cost_max_ms: float
    skipped: int


class Recent:
    """The last `size` values of a measurement (a ring), plus the maximum ever seen."""

    def __init__(self, size: int = 15_000) -> None:
        self._values = np.zeros(size, dtype=np.float64)
        self.count = 0
        self.max = 0.0

    def add(self, value: float) -> None:
        self._values[self.count % self._values.size] = value
        self.count += 1
        self.max = max(self.max, value)

    def percentile(self, q: float, last: int | None = None) -> float:
        """The q-th percentile of everything kept, or of the `last` values added."""
        filled = min(self.count, self._values.size)
        if last is not None:
            filled = min(filled, last)
        if filled == 0:
            return 0.0
        end = self.count % self._values.size
        if filled <= end:
            window = self._values[end - filled : end]
        else:  # wraps around the ring's end
            window = np.concatenate((self._values[end - filled :], self._values[:end]))
        return float(np.percentile(window, q))

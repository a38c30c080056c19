"""What share of writes to refuse, following the worker's queueing delay (PIE, RFC 8033).

Refusing every write while the delay stands over the target works only while a refusal
is dear: once it is cheap, clients that ignore Retry-After come straight back, keep the
delay up by themselves, and the worker spends its core refusing (docs/benchmarks.md,
"Goodput under overload"). PIE refuses a share instead, and steers that share so the
delay sits at the target: every update it adds a term for how far the delay is over
(or under) the target and one for how fast it is moving, so the share settles where the
work let in is what the worker can do. While the delay stays well under the target the
share decays to nothing.

The terms are relative to the target, so one tuning serves targets from tens to hundreds
of milliseconds, and, as in the RFC, they are scaled down while the share is small: a
burst that lifts the delay for a moment costs a few refusals, not a wave of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["UPDATE_S", "ShedShare"]

UPDATE_S = 0.025  # seconds between updates of the share, at least
ALPHA = 0.125  # per second, per unit of (delay - target) / target
BETA = 0.5  # per unit of (change in delay) / target, per update
DECAY = 0.98  # per update while the delay stays under half the target
MAX_STEP = 0.02  # the most one update may add once the share is over a tenth
MAX_UPDATES = 8  # updates made up for after a quiet spell, at most
# (share below, step divided by): RFC 8033's auto-tuning
SCALES = ((1e-6, 2048), (1e-5, 512), (1e-4, 128), (1e-3, 32), (1e-2, 8), (0.1, 2))


class ShedShare:
    """The probability with which a write is refused, updated from the measured delay."""

    def __init__(self, target_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if target_s <= 0:
            raise ValueError("the target delay must be positive")
        self.target_s = target_s
        self._clock = clock
        self._last = clock()
        self._old_delay = 0.0
        self.share = 0.0

    def update(self, delay_s: float) -> float:
        """The share after taking `delay_s` (the delay now, in seconds) into account; the
        share changes at most once per UPDATE_S, however often this is called."""
        now = self._clock()
        updates = (now - self._last) / UPDATE_S
        if updates < 0.999:  # (not 1: clocks that tick by UPDATE_S add up inexactly)
            return self.share
        self._last = now
        updates = min(updates, MAX_UPDATES)
        error = (delay_s - self.target_s) / self.target_s
        trend = (delay_s - self._old_delay) / self.target_s
        step = (ALPHA * UPDATE_S * updates * error + BETA * trend) * _scale(self.share)
        if delay_s <= self.target_s:
            step = min(step, 0.0)  # a delay rising towards the target is no reason yet
        elif self.share >= 0.1:
            step = min(step, MAX_STEP)
        share = self.share + step
        half = self.target_s / 2
        if delay_s < half and self._old_delay < half:
            share *= DECAY ** round(updates)
        self._old_delay = delay_s
        self.share = min(1.0, max(0.0, share))
        return self.share


def _scale(share: float) -> float:
    """Smaller steps while the share is small (RFC 8033, 5.2): at 1 % a step of the size
    that suits 50 % would overshoot many times over."""
    for below, divisor in SCALES:
        if share < below:
            return 1 / divisor
    return 1.0

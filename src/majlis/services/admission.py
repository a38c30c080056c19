"""How fast the waiting room lets new listeners in: as fast as this worker keeps up.

The configured `admission_rate` is a ceiling, not a promise: one worker may be able to do
far less when it is also answering a login flood, hashing passwords or serving a storm of
polls. The controller reads the worker's standing queueing delay (how late its event loop
wakes, measured by the API layer and handed in as a function) and runs AIMD on the rate:

- behind (delay above the target): halve the rate at once, then at most once per interval,
  never below the floor (the line must always move), and shrink the burst to half a
  second's worth of that rate, so a full bucket cannot pour a thousand listeners onto a
  worker that is already late;
- keeping up: add a twentieth of the ceiling per interval, never above the ceiling.

Everyone the rate does not admit at once gets a ticket (202): a place in line the client
polls with, never a slow answer or an error page. Time comes from the injected clock, so
tests drive every decision without sleeping.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from majlis.clock import Clock

__all__ = ["DECREASE", "INCREASE", "INTERVAL", "AdmissionControl", "AdmissionSettings", "Limits"]

# One decision per this many seconds: the delay it reads is the least over the last half
# second (api/overload.py), so deciding faster would act on the same sample twice.
INTERVAL = 0.5
# Halving drains a standing queue within a few intervals; a gentler cut lets it grow.
DECREASE = 0.5
# Share of the ceiling added per calm interval: from the floor back to the ceiling in about
# ten seconds, slow enough that the next overload is met before it is reached.
INCREASE = 0.05


@dataclass(frozen=True, slots=True)
class AdmissionSettings:
    ceiling: float  # admission_rate: new listeners per second per space, at most
    burst: int  # admission_burst: admitted at once while the worker keeps up
    floor: float  # admission_min_rate: the least the rate falls to
    target_s: float  # standing delay above which the worker is behind; 0: never adapt


@dataclass(frozen=True, slots=True)
class Limits:
    rate: float
    burst: int
    behind: bool


class AdmissionControl:
    """AIMD on the admission rate, driven by this worker's measured queueing delay."""

    def __init__(
        self, settings: AdmissionSettings, lateness: Callable[[], float], clock: Clock
    ) -> None:
        self._settings = settings
        self._lateness = lateness
        self._clock = clock
        self._rate = settings.ceiling
        self._behind = False
        self._decided_at: float | None = None

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def behind(self) -> bool:
        return self._behind

    def limits(self) -> Limits:
        """The rate and burst to admit with now (deciding first if it is time)."""
        if self._settings.target_s > 0:
            self._decide(self._clock.now())
        return Limits(self._rate, self._burst(), self._behind)

    def _decide(self, now: float) -> None:
        behind = self._lateness() > self._settings.target_s
        # The first sign of falling behind is acted on at once; waiting out the interval
        # would admit another half second of listeners into a queue that already stands.
        onset = behind and not self._behind
        if not onset and self._decided_at is not None and now - self._decided_at < INTERVAL:
            return
        self._decided_at = now
        self._behind = behind
        self._rate = self._cut() if behind else self._raise()

    def _burst(self) -> int:
        configured = self._settings.burst
        if not self._behind:
            return configured
        # Not 1: the bucket's cap also bounds how many waiting tickets one poll can move
        # the line by, so a burst below one interval's worth would slow the line below
        # the rate it is promised to move at.
        return max(1, min(configured, math.ceil(self._rate * INTERVAL)))

    def _cut(self) -> float:
        return max(self._floor(), self._rate * DECREASE)

    def _raise(self) -> float:
        ceiling = self._settings.ceiling
        return min(ceiling, self._rate + ceiling * INCREASE)

    def _floor(self) -> float:
        # A floor configured above the ceiling would make the ceiling a lie.
        return min(self._settings.floor, self._settings.ceiling)

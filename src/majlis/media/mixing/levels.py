"""Speakers' levels and who is speaking, as the web page shows them.

The mixer measures every speaker on every tick but reports only a few times a second, so
each speaker's power is averaged between reports; the speaking flag has hysteresis so it
does not flicker between words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from majlis.media.audio import FULL_SCALE

__all__ = ["SILENCE_DB", "Speaking"]

SILENCE_DB = -100.0
SPEAKING_ON_DB = -40.0
SPEAKING_OFF_DB = -50.0
SPEAKING_HOLD_TICKS = 20  # 400 ms below OFF before the flag drops


@dataclass(slots=True)
class Speaking:
    """Per-speaker level accumulation and the speaking flag with hysteresis."""

    speaking: bool = False
    quiet_ticks: int = 0
    power_sum: float = 0.0
    ticks: int = 0

    def add(self, power: float) -> None:
        """One tick's mean power (int16 scale, squared)."""
        self.power_sum += power
        self.ticks += 1
        level_db = _power_to_db(power)
        if level_db >= SPEAKING_ON_DB:
            self.speaking = True
            self.quiet_ticks = 0
        elif level_db < SPEAKING_OFF_DB:
            self.quiet_ticks += 1
            if self.quiet_ticks >= SPEAKING_HOLD_TICKS:
                self.speaking = False
        else:
            self.quiet_ticks = 0

    def report(self) -> tuple[float, bool] | None:
        """The mean level since the last report (None if no tick since) and the flag."""
        ticks, power_sum = self.ticks, self.power_sum
        self.power_sum = 0.0
        self.ticks = 0
        if not ticks:
            return None
        return round(_power_to_db(power_sum / ticks), 1), self.speaking


def _power_to_db(power: float) -> float:
    if power <= 0.0:
        return SILENCE_DB
    return max(SILENCE_DB, 10.0 * math.log10(power / FULL_SCALE**2))

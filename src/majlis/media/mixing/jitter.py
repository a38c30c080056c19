"""A jitter buffer per speaker: frames come in when the network delivers them, the mixer pulls
exactly one 20 ms frame per tick.

Frames are placed in slots by their pts (48 kHz units, 960 per slot). Playout runs at a
"virtual delay" D: how long after the earliest-possible arrival of a slot (the minimum observed
transit time plus the slot's position) the mixer plays it. D is steered toward a target delay
that follows the observed arrival jitter:

- a slot that is missing while newer frames are there was lost (or hopelessly reordered): it is
  concealed by repeating the last real frame with a fade, then silence, and play moves on;
- a slot that is missing with nothing newer is an underrun: conceal and hold the slot (D grows
  by one frame); the held ticks are paid back by skipping over missing slots later;
- D staying above target by more than a frame drops one frame; staying below target holds one
  (this is also what absorbs the sender's clock drifting against ours);
- frames for slots already played are dropped as late, repeated slots as duplicates.

Pure and deterministic: times are passed in, nothing sleeps or reads a clock.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from majlis.media.audio import FRAME_SAMPLES, FRAME_SECONDS

__all__ = ["JitterBuffer", "JitterConfig", "JitterStats", "PullKind"]

Pcm = npt.NDArray[np.int16]


@dataclass(frozen=True, slots=True)
class JitterConfig:
    initial_delay: float = 0.060
    min_delay: float = 0.040
    max_delay: float = 0.200
    # Added to the measured jitter: arrival stamps and tick times are a few ms noisy.
    margin: float = 0.010
    # Arrival history the jitter estimate looks at (250 frames = 5 s).
    window: int = 250
    # How often (in pushes) the target and minimum transit are recomputed from the window.
    recompute_every: int = 25
    # How far the target may fall per recompute: grow at once, shrink slowly.
    shrink_step: float = 0.005
    # Pulls D must stay off target before a frame is dropped or held.
    settle_pulls: int = 25
    # End gains of successive concealed frames; silence after the last one.
    conceal_gains: tuple[float, ...] = (0.8, 0.5, 0.2, 0.0)
    # A pts jump this far (in frames) ahead of the newest frame, or behind the play point,
    # means the sender restarted its timeline (or paused): start over and buffer again.
    reset_ahead_frames: int = 50
    reset_behind_frames: int = 250


class PullKind(enum.Enum):
    WAITING = "waiting"  # not started yet: buffering up to the target delay
    PLAYED = "played"
    CONCEALED = "concealed"  # a faded repeat of the last frame
    SILENCE = "silence"  # concealment ran out


@dataclass(slots=True)
class JitterStats:
    pushed: int = 0
    played: int = 0
    concealed: int = 0
    silent: int = 0
    late: int = 0
    duplicates: int = 0
    drift_drops: int = 0
    drift_holds: int = 0
    overflow_drops: int = 0
    resets: int = 0


class JitterBuffer:
    def __init__(self, config: JitterConfig | None = None) -> None:
        self.config = config or JitterConfig()
        self.stats = JitterStats()
        self._target = self.config.initial_delay
        self._capacity = math.ceil(2 * self.config.max_delay / FRAME_SECONDS)
        self._transits: deque[float] = deque(maxlen=self.config.window)
        self._last: Pcm = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        self._conceal_run = len(self.config.conceal_gains)
        self.last_kind = PullKind.WAITING
        self.last_delay: float | None = None
        # D at the last pull that played or concealed (None before playout starts).
        self.playout_delay: float | None = None
        self._clear_timeline()

    def _clear_timeline(self) -> None:
        self._base_pts: int | None = None
        self._frames: dict[int, tuple[Pcm, float]] = {}
        self._newest = -1
        self._play: int | None = None
        self._min_transit = math.inf
        self._transits.clear()
        self._since_recompute = 0
        self._held = 0
        self._over = 0
        self._under = 0

    def restart(self) -> None:
        """Start over with the next frame pushed, as after a reset of the sender's timeline
        (the delay target learned so far is kept)."""
        self._clear_timeline()
        self.stats.resets += 1

    @property
    def target_delay(self) -> float:
        return self._target

    @property
    def buffered(self) -> int:
        return len(self._frames)

    def delay(self, now: float) -> float | None:
        """The virtual delay D at `now` for the next slot to play, None before playout starts."""
        if self._play is None or math.isinf(self._min_transit):
            return None
        return now - (self._min_transit + self._play * FRAME_SECONDS)

    # --- arrivals -------------------------------------------------------------------------

    def push(self, pts: int, samples: Pcm, arrival: float) -> bool:
        """Store one 960-sample frame; False if it was dropped (late, duplicate)."""
        if samples.shape != (FRAME_SAMPLES,):
            raise ValueError(f"a frame has {FRAME_SAMPLES} samples, got {samples.shape}")
        self.stats.pushed += 1
        slot = self._slot(pts)
        if self._is_discontinuity(slot):
            self._clear_timeline()
            self.stats.resets += 1
            slot = self._slot(pts)
        if self._play is not None and slot < self._play:
            self.stats.late += 1
            return False
        if slot in self._frames:
            self.stats.duplicates += 1
            return False
        self._frames[slot] = (samples, arrival)
        self._newest = max(self._newest, slot)
        self._observe_transit(arrival - slot * FRAME_SECONDS)
        self._trim()
        return True

    def _slot(self, pts: int) -> int:
        if self._base_pts is None:
            self._base_pts = pts
        return (pts - self._base_pts + FRAME_SAMPLES // 2) // FRAME_SAMPLES

    def _is_discontinuity(self, slot: int) -> bool:
        if self._newest < 0:
            return False
        reference = self._play if self._play is not None else self._newest
        return slot > self._newest + self.config.reset_ahead_frames or (
            slot < reference - self.config.reset_behind_frames
        )

    def _observe_transit(self, transit: float) -> None:
        self._transits.append(transit)
        if transit < self._min_transit:
            self._min_transit = transit
        # A frame later than the target allows raises the target at once.
        needed = transit - self._min_transit + self.config.margin
        if needed > self._target:
            self._target = min(self.config.max_delay, needed)
        self._since_recompute += 1
        if self._since_recompute >= self.config.recompute_every:
            self._since_recompute = 0
            self._recompute_target()

    def _recompute_target(self) -> None:
        # The window forgets old minima, so a sender whose clock runs slow moves the floor up.
        self._min_transit = min(self._transits)
        jitter = max(self._transits) - self._min_transit
        wanted = jitter + self.config.margin
        wanted = min(self.config.max_delay, max(self.config.min_delay, wanted))
        if wanted < self._target:
            wanted = max(wanted, self._target - self.config.shrink_step)
        self._target = wanted

    def _trim(self) -> None:
        """Keep at most `capacity` slots between the play point and the newest frame."""
        lowest = self._play if self._play is not None else min(self._frames)
        while self._newest - lowest >= self._capacity:
            if self._frames.pop(lowest, None) is not None:
                self.stats.overflow_drops += 1
            lowest += 1
        if self._play is not None:
            self._play = lowest

    # --- playout --------------------------------------------------------------------------

    def pull(self, now: float) -> Pcm:
        """Exactly one frame for the tick at `now`; see `last_kind` for what it was."""
        self.last_delay = None
        if self._play is None and not self._try_start(now):
            return self._waiting()
        delay = self.delay(now)
        self.playout_delay = delay
        if delay is not None and self._should_hold(delay):
            return self._conceal()
        if delay is not None and self._should_drop(delay):
            self._drop_one()
        return self._play_slot(now)

    def _try_start(self, now: float) -> bool:
        if not self._frames:
            return False
        oldest = min(self._frames)
        if now - (self._min_transit + oldest * FRAME_SECONDS) < self._target:
            return False
        self._play = oldest
        return True

    def _should_hold(self, delay: float) -> bool:
        self._under = self._under + 1 if delay < self._target else 0
        if self._under < self.config.settle_pulls:
            return False
        self._under = 0
        self.stats.drift_holds += 1
        return True

    def _should_drop(self, delay: float) -> bool:
        self._over = self._over + 1 if delay > self._target + FRAME_SECONDS else 0
        if self._over < self.config.settle_pulls:
            return False
        self._over = 0
        return True

    def _drop_one(self) -> None:
        if self._play is None or self._play + 1 not in self._frames:
            return  # dropping now would only turn into a concealment
        self._frames.pop(self._play, None)
        self._play += 1
        self.stats.drift_drops += 1

    def _play_slot(self, now: float) -> Pcm:
        if self._play is None:
            return self._waiting()
        if self._play not in self._frames:
            if self._newest < self._play:
                self._held += 1  # underrun: wait for the slot, D grows by a frame
                return self._conceal()
            self._skip_paid_slots()
        entry = self._frames.pop(self._play, None)
        self._play += 1
        self._held = 0
        if entry is None:
            return self._conceal()  # lost: its slot passes, a late copy will be dropped
        samples, arrival = entry
        self.last_delay = now - arrival
        return self._played(samples)

    def _skip_paid_slots(self) -> None:
        """Jump over missing slots already covered by held (underrun) ticks."""
        if self._play is None:
            return
        while self._held > 0 and self._play not in self._frames and self._play < self._newest:
            self._play += 1
            self._held -= 1

    # --- output ---------------------------------------------------------------------------

    def _played(self, samples: Pcm) -> Pcm:
        self.stats.played += 1
        self.last_kind = PullKind.PLAYED
        self._last = samples
        self._conceal_run = 0
        return samples

    def _waiting(self) -> Pcm:
        return self._conceal(silent_kind=PullKind.WAITING)

    def _conceal(self, silent_kind: PullKind = PullKind.SILENCE) -> Pcm:
        gains = self.config.conceal_gains
        if self._conceal_run >= len(gains):
            self.last_kind = silent_kind
            if silent_kind is PullKind.SILENCE:
                self.stats.silent += 1
            return np.zeros(FRAME_SAMPLES, dtype=np.int16)
        start = 1.0 if self._conceal_run == 0 else gains[self._conceal_run - 1]
        end = gains[self._conceal_run]
        self._conceal_run += 1
        self.stats.concealed += 1
        self.last_kind = PullKind.CONCEALED
        # A linear fade inside the frame, so successive repeats do not step in level.
        ramp = np.linspace(start, end, FRAME_SAMPLES, endpoint=False, dtype=np.float32)
        faded: Pcm = np.rint(self._last * ramp).astype(np.int16)
        return faded

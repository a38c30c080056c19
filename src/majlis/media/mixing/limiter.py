"""The limiter every mix goes through before it is encoded.

Summing up to 13 speakers overshoots int16 easily; a hard clip would be heard as
distortion, so each output row is brought under the threshold with a smooth gain instead.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import numpy as np
import numpy.typing as npt

from majlis.media.audio import FRAME_SAMPLES, FULL_SCALE, SAMPLE_RATE
from majlis.media.formats.convert import Pcm

__all__ = ["Limiter"]

Floats = npt.NDArray[np.float32]


class Limiter:
    """Keeps each output row below `threshold_dbfs` with a smooth gain, never a clip.

    Gain is computed per block of 48 samples (1 ms) from the block's peak. Output is delayed by
    one block, which is the limiter's lookahead: the gain at every block edge is low enough for
    both blocks around it, and the gain moves linearly inside a block, so no sample exceeds the
    threshold (1 ms attack). It recovers exponentially (`release_seconds`). State is kept per
    row key, so the listener mix and each mix-minus limit independently. A hard clip remains
    as the last resort and is counted in `hard_clipped` (it should stay 0).
    """

    def __init__(
        self,
        *,
        threshold_dbfs: float = -1.0,
        release_seconds: float = 0.150,
        block: int = 48,
    ) -> None:
        if FRAME_SAMPLES % block:
            raise ValueError(f"block must divide {FRAME_SAMPLES}")
        self.threshold = FULL_SCALE * 10.0 ** (threshold_dbfs / 20.0)
        self._block = block
        self._blocks = FRAME_SAMPLES // block
        release = math.exp(-block / (SAMPLE_RATE * release_seconds))
        steps = np.arange(self._blocks + 1, dtype=np.float64)
        self._grow = release**-steps
        self._decay = release**steps
        self._ramp = (np.arange(block, dtype=np.float32) / block).astype(np.float32)
        self._state: dict[Hashable, tuple[float, Floats]] = {}
        self.hard_clipped = 0
        self.limited_frames = 0

    def gain(self, key: Hashable) -> float:
        """The gain reached at the end of the last frame for `key` (1.0: not limiting)."""
        return self._state.get(key, (1.0, None))[0]

    def process(self, keys: Sequence[Hashable], frames: Floats) -> Pcm:
        """Limit each row of `frames` (rows × 960, int16 scale) under its key; keys missing
        from this call are forgotten."""
        rows = len(keys)
        start_gains = np.ones(rows, dtype=np.float64)
        tails = np.zeros((rows, self._block), dtype=np.float32)
        for row, key in enumerate(keys):
            state = self._state.get(key)
            if state is not None:
                start_gains[row], tails[row] = state
        combined = np.concatenate((tails, frames), axis=1)
        out = combined[:, :FRAME_SAMPLES]
        peaks = np.abs(combined).reshape(rows, self._blocks + 1, self._block).max(axis=2)
        if rows and (peaks.max() > self.threshold or start_gains.min() < 1.0):
            out, end_gains = self._apply_gain(out, peaks, start_gains)
        else:
            end_gains = start_gains
        self._state = {
            key: (float(end_gains[row]), combined[row, FRAME_SAMPLES:].copy())
            for row, key in enumerate(keys)
        }
        return self._to_int16(out)

    def _apply_gain(
        self, out: Floats, peaks: npt.NDArray[np.float32], start_gains: npt.NDArray[np.float64]
    ) -> tuple[Floats, npt.NDArray[np.float64]]:
        self.limited_frames += 1
        rows = out.shape[0]
        wanted = np.minimum(1.0, self.threshold / np.maximum(peaks, 1.0).astype(np.float64))
        # Edge k sits between blocks k-1 and k: its gain must suit both.
        edges = np.minimum(wanted[:, :-1], wanted[:, 1:])
        depth = np.empty((rows, self._blocks + 1), dtype=np.float64)
        depth[:, 0] = 1.0 - start_gains
        depth[:, 1:] = 1.0 - edges
        # Release: depth_k = max(wanted_k, depth_{k-1} · r), solved for all edges at once.
        depth = np.maximum.accumulate(depth * self._grow, axis=1) * self._decay
        gains = (1.0 - depth).astype(np.float32)
        slopes = gains[:, 1:] - gains[:, :-1]
        envelope = gains[:, :-1, None] + slopes[:, :, None] * self._ramp
        limited = (out * envelope.reshape(rows, FRAME_SAMPLES)).astype(np.float32)
        return limited, 1.0 - depth[:, -1]

    def _to_int16(self, out: Floats) -> Pcm:
        rounded = np.rint(out)
        if rounded.size and (rounded.max() > FULL_SCALE or rounded.min() < -FULL_SCALE):
            self.hard_clipped += int(np.count_nonzero(np.abs(rounded) > FULL_SCALE))
            rounded = np.clip(rounded, -FULL_SCALE, FULL_SCALE)
        return rounded.astype(np.int16)

"""48 kHz down to the 16 kHz that Whisper and Silero take, streaming and sample-exact.

A plain windowed-sinc low-pass and every third sample, rather than libswresample through
PyAV: the segmenter maps 16 kHz sample indices back to capture times, so output sample j must
stand exactly for input sample 3j, with no delay or priming to account for. The filter looks
ahead instead, so output lags input by half the filter (1 ms), which live captions never see.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from majlis.media.audio import SAMPLE_RATE

__all__ = ["MODEL_RATE", "Decimator", "Pcm", "to_model_rate"]

Pcm = npt.NDArray[np.float32]

MODEL_RATE = 16_000
FACTOR = SAMPLE_RATE // MODEL_RATE

# Cut-off at the new Nyquist (8 kHz), Kaiser beta 6: about 60 dB down from 9 kHz, whose
# alias would land at 7 kHz, so the band speech models use (below 7 kHz) stays clean.
_TAPS = 97
_HALF = _TAPS // 2


def _design() -> Pcm:
    n = np.arange(_TAPS) - _HALF
    cutoff = 0.5 / FACTOR  # cycles per input sample
    taps = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(_TAPS, 6.0)
    normalized: Pcm = (taps / np.sum(taps)).astype(np.float32)
    return normalized


_FILTER = _design()


class Decimator:
    """One stream's 48 kHz → 16 kHz: output sample j stands for input sample 3j."""

    def __init__(self) -> None:
        # Input from sample 3 * (outputs so far) - _HALF on; zeros stand before the start.
        self._buffer: Pcm = np.zeros(_HALF, dtype=np.float32)

    def push(self, samples: Pcm) -> Pcm:
        """The 16 kHz samples that `samples` (48 kHz float) completes."""
        self._buffer = np.concatenate([self._buffer, samples.astype(np.float32, copy=False)])
        count = (self._buffer.size - _TAPS) // FACTOR + 1
        if count <= 0:
            return np.zeros(0, dtype=np.float32)
        windows = np.lib.stride_tricks.sliding_window_view(self._buffer, _TAPS)[::FACTOR]
        out = windows[:count] @ _FILTER  # the filter is symmetric: no flip needed
        self._buffer = self._buffer[count * FACTOR :].copy()
        return out.astype(np.float32, copy=False)

    def flush(self) -> Pcm:
        """The last samples, filtered against zeros after the end; the stream starts anew."""
        out = self.push(np.zeros(_HALF, dtype=np.float32))
        self._buffer = np.zeros(_HALF, dtype=np.float32)
        return out


def to_model_rate(samples: Pcm, sample_rate: int) -> Pcm:
    """A whole utterance at 16 kHz, from 16 kHz (copied) or 48 kHz (decimated)."""
    if sample_rate == MODEL_RATE:
        return samples.astype(np.float32, copy=True)
    if sample_rate == SAMPLE_RATE:
        decimator = Decimator()
        return np.concatenate([decimator.push(samples), decimator.flush()])
    raise ValueError(f"sample_rate must be {MODEL_RATE} or {SAMPLE_RATE}, not {sample_rate}")

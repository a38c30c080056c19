"""av.AudioFrame ↔ numpy: the media plane works on int16 mono 48 kHz frames of 960 samples.

aiortc's Opus decoder hands out packed s16 stereo at 48 kHz even when the sender's microphone is
mono, so the common case is a cheap numpy downmix; anything else (other rates, float formats,
planar layouts) goes through an av.AudioResampler. Output frames are s16 mono, which aiortc's
Opus encoder accepts as is.
"""

from __future__ import annotations

import fractions

import av
import numpy as np
import numpy.typing as npt

from majlis.media.audio import FRAME_SAMPLES, SAMPLE_RATE

__all__ = [
    "TIME_BASE",
    "MonoConverter",
    "Pcm",
    "Reframer",
    "mono_to_frame",
    "silence",
]

Pcm = npt.NDArray[np.int16]
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)

# Formats whose samples numpy can downmix directly; everything else is resampled.
_FAST_FORMATS = ("s16", "s16p")


def silence(samples: int = FRAME_SAMPLES) -> Pcm:
    return np.zeros(samples, dtype=np.int16)


def _pts_in_samples(frame: av.AudioFrame) -> int | None:
    """The frame's pts in 48 kHz sample units, or None when the frame carries no timing."""
    if frame.pts is None:
        return None
    time_base = frame.time_base
    if time_base is None:
        return int(frame.pts)
    seconds = fractions.Fraction(time_base.numerator, time_base.denominator) * frame.pts
    return round(seconds * SAMPLE_RATE)


def _downmix(frame: av.AudioFrame) -> Pcm:
    """Average the channels of an s16 / s16p frame into one int16 channel."""
    channels = len(frame.layout.channels)
    data = frame.to_ndarray()
    # Packed audio comes as one row of interleaved samples, planar as one row per channel.
    rows = data.reshape(-1, channels).T if not frame.format.is_planar else data
    if channels == 1:
        return np.array(rows[0], dtype=np.int16)
    # Sum in int32 so two loud channels cannot wrap around before the division.
    summed = rows.astype(np.int32).sum(axis=0)
    mono: Pcm = (summed // channels).astype(np.int16)
    return mono


class MonoConverter:
    """Turns decoded frames of one stream into int16 mono 48 kHz chunks.

    Keep one per input stream: the resampler carries filter state between frames.
    """

    def __init__(self) -> None:
        self._resampler: av.AudioResampler | None = None

    def convert(self, frame: av.AudioFrame) -> list[tuple[int | None, Pcm]]:
        """(pts in 48 kHz samples or None, samples) chunks; usually exactly one."""
        if frame.format.name in _FAST_FORMATS and frame.sample_rate == SAMPLE_RATE:
            return [(_pts_in_samples(frame), _downmix(frame))]
        return [(_pts_in_samples(out), _downmix(out)) for out in self._resample(frame)]

    def _resample(self, frame: av.AudioFrame) -> list[av.AudioFrame]:
        if self._resampler is None:
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        return self._resampler.resample(frame)


class Reframer:
    """Cuts chunks of any length into 960-sample frames, each with its pts.

    Opus packets of 20 ms pass straight through. Other packet sizes (10, 40, 60 ms) and
    resampler output are regrouped; a pts jump (lost packet) pads the partial frame with
    silence and restarts framing at the new pts, so pts stay true to the sender's timeline.
    """

    def __init__(self) -> None:
        self._pending = silence(0)
        self._pending_pts = 0
        self._next_pts: int | None = None

    def push(self, pts: int | None, samples: Pcm) -> list[tuple[int, Pcm]]:
        if pts is None:
            pts = self._next_pts if self._next_pts is not None else 0
        if self._pending.size == 0 and samples.size == FRAME_SAMPLES:
            self._next_pts = pts + FRAME_SAMPLES
            return [(pts, samples)]
        out: list[tuple[int, Pcm]] = []
        if pts != self._next_pts:
            out.extend(self._flush_padded())
            self._pending_pts = pts
        self._pending = np.concatenate((self._pending, samples))
        self._next_pts = pts + samples.size
        while self._pending.size >= FRAME_SAMPLES:
            out.append((self._pending_pts, self._pending[:FRAME_SAMPLES].copy()))
            self._pending = self._pending[FRAME_SAMPLES:]
            self._pending_pts += FRAME_SAMPLES
        return out

    def _flush_padded(self) -> list[tuple[int, Pcm]]:
        if self._pending.size == 0:
            return []
        frame = silence()
        frame[: self._pending.size] = self._pending
        self._pending = silence(0)
        return [(self._pending_pts, frame)]


def mono_to_frame(samples: Pcm, pts: int, *, stereo: bool = False) -> av.AudioFrame:
    """An s16 frame at 48 kHz with pts in 1/48000 units, ready for an aiortc sender."""
    if stereo:
        # Packed stereo is one row of interleaved L/R samples.
        frame = av.AudioFrame.from_ndarray(
            np.repeat(samples, 2).reshape(1, -1), format="s16", layout="stereo"
        )
    else:
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = SAMPLE_RATE
    frame.pts = pts
    frame.time_base = TIME_BASE
    return frame

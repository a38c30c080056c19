"""ToneTrack: a sine (optionally in on/off bursts) as a live audio track, for tests and the
`majlis speak --tone` CLI. Paced in real time like aiortc's MediaPlayer: one 20 ms frame per
20 ms, pts in 48 kHz units, so it can feed an RTCPeerConnection or the mixer directly."""

from __future__ import annotations

import asyncio
import math
import time

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from majlis.media.audio import FRAME_SAMPLES, SAMPLE_RATE
from majlis.media.formats.convert import mono_to_frame

__all__ = ["ToneTrack", "tone_samples"]

FULL_SCALE = 32767


def tone_samples(
    frequency: float,
    level_dbfs: float,
    start: int,
    count: int,
    *,
    burst: tuple[float, float] | None = None,
) -> npt.NDArray[np.int16]:
    """Samples `start`..`start+count` of the tone; the phase only depends on the sample index."""
    index = np.arange(start, start + count, dtype=np.float64)
    amplitude = FULL_SCALE * 10.0 ** (level_dbfs / 20.0)
    wave = amplitude * np.sin(2.0 * math.pi * frequency * index / SAMPLE_RATE)
    if burst is not None:
        on, off = burst
        position = np.mod(index / SAMPLE_RATE, on + off)
        wave[position >= on] = 0.0
    samples: npt.NDArray[np.int16] = np.clip(np.rint(wave), -FULL_SCALE, FULL_SCALE).astype(
        np.int16
    )
    return samples


class ToneTrack(MediaStreamTrack):
    """A sine at `frequency` Hz and `level_dbfs`; `burst=(on_s, off_s)` gates it on and off
    (bursts start at pts 0, which makes onsets easy to find for latency measurements).

    Frames are stereo with equal channels by default: aiortc's Opus encoder upmixes mono with
    swresample's -3 dB centre gain, which would make the tone arrive 3 dB low."""

    kind = "audio"

    def __init__(
        self,
        frequency: float = 440.0,
        level_dbfs: float = -20.0,
        *,
        burst: tuple[float, float] | None = None,
        stereo: bool = True,
    ) -> None:
        super().__init__()
        if level_dbfs > 0.0:
            raise ValueError("a tone cannot be louder than 0 dBFS")
        if burst is not None and (burst[0] <= 0.0 or burst[1] < 0.0):
            raise ValueError("a burst needs a positive on time and a non-negative off time")
        self.frequency = frequency
        self.level_dbfs = level_dbfs
        self.burst = burst
        self.stereo = stereo
        self._start: float | None = None
        self._timestamp = 0

    @property
    def started_at(self) -> float | None:
        """time.monotonic() at which pts 0 was due, once the first frame was read."""
        return self._start

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._timestamp += FRAME_SAMPLES
            # Absolute schedule: a late wake-up shortens the next wait instead of adding up.
            wait = self._start + self._timestamp / SAMPLE_RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        samples = tone_samples(
            self.frequency, self.level_dbfs, self._timestamp, FRAME_SAMPLES, burst=self.burst
        )
        return mono_to_frame(samples, self._timestamp, stereo=self.stereo)

"""AAC-LC encoder for the listener side: 20 ms PCM frames in, 1024-sample access units out.

The mixer delivers 960-sample frames but AAC codes 1024 samples per access unit, so the
encoder keeps a small FIFO and re-cuts the stream. Each access unit carries the position
(pts) of its first sample in the input stream, counted in samples. FFmpeg's encoder primes
itself with one frame of silence, so the very first access unit has a negative pts
(-1024): it decodes to the silence before the first input sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from majlis.media.audio import SAMPLE_RATE

__all__ = ["AAC_FRAME_SAMPLES", "DEFAULT_BITRATE", "AacEncoder", "AccessUnit", "silent_frame"]

AAC_FRAME_SAMPLES = 1024
DEFAULT_BITRATE = 64_000

# int16 full scale, to map samples onto the [-1, 1) floats the encoder wants.
_INT16_SCALE = 32768.0


@dataclass(frozen=True, slots=True)
class AccessUnit:
    """One encoded AAC frame: always AAC_FRAME_SAMPLES samples long once decoded."""

    data: bytes
    pts: int


class AacEncoder:
    """Mono 48 kHz AAC-LC through PyAV's CodecContext. Not thread-safe: one owner thread."""

    def __init__(self, bitrate: int = DEFAULT_BITRATE) -> None:
        if bitrate < 8_000 or bitrate > 320_000:
            raise ValueError(f"AAC bit rate {bitrate} is outside 8000..320000 b/s")
        self._context = _open_context(bitrate)
        self._fifo: npt.NDArray[np.float32] = np.zeros(0, dtype=np.float32)
        self._next_input_pts = 0
        self._flushed = False

    @property
    def audio_specific_config(self) -> bytes:
        """The AudioSpecificConfig (ISO 14496-3) that goes into the init segment's esds."""
        return bytes(self._context.extradata or b"")

    def encode(self, pcm: npt.NDArray[np.int16]) -> list[AccessUnit]:
        """Queue int16 mono samples; return the access units that became ready."""
        if self._flushed:
            raise RuntimeError("the encoder was flushed and cannot take more audio")
        samples = pcm.astype(np.float32) / _INT16_SCALE
        self._fifo = np.concatenate((self._fifo, samples))
        units: list[AccessUnit] = []
        while self._fifo.size >= AAC_FRAME_SAMPLES:
            units += self._encode_frame(self._fifo[:AAC_FRAME_SAMPLES])
            self._fifo = self._fifo[AAC_FRAME_SAMPLES:]
        return units

    def flush(self) -> list[AccessUnit]:
        """Encode what is left (a short last frame) and drain the encoder's delay."""
        if self._flushed:
            return []
        self._flushed = True
        units: list[AccessUnit] = []
        if self._fifo.size:
            units += self._encode_frame(self._fifo)
            self._fifo = np.zeros(0, dtype=np.float32)
        for packet in self._context.encode(None):
            units.append(_access_unit(packet))
        return units

    def _encode_frame(self, samples: npt.NDArray[np.float32]) -> list[AccessUnit]:
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples.reshape(1, -1)), format="fltp", layout="mono"
        )
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._next_input_pts
        frame.time_base = Fraction(1, SAMPLE_RATE)
        self._next_input_pts += samples.size
        return [_access_unit(packet) for packet in self._context.encode(frame)]


def _open_context(bitrate: int) -> av.AudioCodecContext:
    context = av.CodecContext.create("aac", "w")
    context.sample_rate = SAMPLE_RATE
    context.layout = "mono"
    context.format = "fltp"
    context.bit_rate = bitrate
    context.time_base = Fraction(1, SAMPLE_RATE)
    context.open()
    return context


def _access_unit(packet: av.Packet[Any]) -> AccessUnit:
    if packet.pts is None:
        raise RuntimeError("the AAC encoder returned a packet without a timestamp")
    return AccessUnit(data=bytes(packet), pts=int(packet.pts))


def silent_frame(bitrate: int = DEFAULT_BITRATE) -> bytes:
    """One AAC frame of silence, to stand for time nobody recorded. Taken from the middle
    of encoded silence, so it holds no priming and no edge of a sound."""
    encoder = AacEncoder(bitrate)
    units = encoder.encode(np.zeros(8 * AAC_FRAME_SAMPLES, dtype=np.int16))
    return units[len(units) // 2].data

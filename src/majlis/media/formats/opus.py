"""Opus for the speakers' side, done on the media loop instead of inside aiortc.

aiortc encodes every outgoing frame in a thread pool (two thread hand-offs per packet, plus
a resampler pass even when nothing needs resampling) as 96 kb/s stereo, and decodes every
incoming packet in a thread per receiver as stereo. For 13 speakers that is 1,300 thread
hand-offs a second and twice the codec work speech needs. Here both directions are mono
and synchronous: the mixer's mix-minus tracks hand aiortc ready `av.Packet`s (its sender
passes them straight to RTP), and ingest decodes payloads as they come out of the reorder
window.

libopus is called directly through ctypes, into and out of numpy buffers: PyAV's codec
wrappers build frame and packet objects around every call, which costs more than the
decoding itself (bench/opus_cost.py). The library is the one PyAV ships in its wheel (so
it is there wherever PyAV is), else the system's.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fractions
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import av
import numpy as np

from majlis.media.audio import SAMPLE_RATE
from majlis.media.formats.convert import Pcm

__all__ = [
    "APPLICATION",
    "BITRATE",
    "COMPLEXITY",
    "PACKET_TICKS",
    "PTIME_MS",
    "FrameGrouper",
    "OpusDecoder",
    "OpusEncoder",
    "OpusError",
    "RtpTimeline",
    "packet_of",
    "ticks_for_ptime",
]

TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
# Mono speech: 32 kb/s is what browsers send from a microphone; it is transparent for voice.
BITRATE = 32_000
# Opus's restricted low-delay mode (CELT only) at complexity 5: about 40 µs per 20 ms frame
# here against 120-170 µs for the default speech mode (SILK/hybrid) at any complexity
# (bench/opus_cost.py). At 32 kb/s CELT carries speech full band, and it drops the 4 ms
# SILK look-ahead from the speakers' path.
APPLICATION = "lowdelay"
COMPLEXITY = 5
# Packets carry 40 ms (two mixer ticks) both ways: half the packets to encode, protect,
# send, receive and decode, for 20 ms more latency each way (speaker to speaker about
# 66 → 86 ms p50 with 40 ms mix-minus packets, against a 250 ms goal). Browsers and aiortc
# decode any Opus frame size; the node's answer asks speakers to send 40 ms with
# a=ptime:40, which browsers and SpeakerClient honour.
PACKET_TICKS = 2
PTIME_MS = PACKET_TICKS * 20

_APPLICATIONS = {"voip": 2048, "audio": 2049, "lowdelay": 2051}
_SET_BITRATE = 4002
_RESET_STATE = 4028
_SET_COMPLEXITY = 4010
_MAX_PACKET = 1_500  # bytes; one Opus packet is at most 1275 (RFC 6716, 3.2.1)
_MAX_FRAME = 5_760  # samples: 120 ms at 48 kHz, the longest an Opus packet decodes to


class OpusError(ValueError):
    """libopus refused a packet or a setting; the message is libopus's own."""


def _library_path() -> str:
    av_dir = Path(av.__file__).resolve().parent
    # manylinux wheels put bundled libraries in av.libs, macOS wheels in av/.dylibs.
    for folder in (av_dir.parent / "av.libs", av_dir / ".dylibs"):
        for candidate in sorted(folder.glob("libopus*")):
            return str(candidate)
    found = ctypes.util.find_library("opus")
    if found is None:
        raise ImportError("libopus was not found (neither in PyAV's wheel nor on the system)")
    return found


def _load() -> ctypes.CDLL:
    lib = ctypes.CDLL(_library_path())
    c_int, c_void_p, c_int32 = ctypes.c_int, ctypes.c_void_p, ctypes.c_int32
    lib.opus_strerror.argtypes = [c_int]
    lib.opus_strerror.restype = ctypes.c_char_p
    lib.opus_encoder_create.argtypes = [c_int32, c_int, c_int, ctypes.POINTER(c_int)]
    lib.opus_encoder_create.restype = c_void_p
    lib.opus_encoder_destroy.argtypes = [c_void_p]
    lib.opus_encoder_get_size.argtypes = [c_int]
    lib.opus_encoder_get_size.restype = c_int
    lib.opus_encode.argtypes = [c_void_p, c_void_p, c_int, c_void_p, c_int32]
    lib.opus_encode.restype = c_int32
    lib.opus_decoder_create.argtypes = [c_int32, c_int, ctypes.POINTER(c_int)]
    lib.opus_decoder_create.restype = c_void_p
    lib.opus_decoder_destroy.argtypes = [c_void_p]
    lib.opus_decode.argtypes = [c_void_p, ctypes.c_char_p, c_int32, c_void_p, c_int, c_int]
    lib.opus_decode.restype = c_int
    lib.opus_decoder_ctl.restype = c_int
    # opus_encoder_ctl is variadic: its arguments are passed as explicit c_ints.
    return lib


_lib = _load()
_MONO_ENCODER_SIZE = _lib.opus_encoder_get_size(1)


def packet_of(data: bytes, pts: int) -> av.Packet[Any]:
    """An encoded Opus packet stamped with `pts` in 1/48000 s, as aiortc's sender takes it."""
    packet = av.Packet(data)
    packet.pts = pts
    packet.time_base = TIME_BASE
    return packet


def _check(code: int, what: str) -> int:
    if code < 0:
        reason = _lib.opus_strerror(code).decode("ascii", "replace")
        raise OpusError(f"{what}: {reason}")
    return code


class OpusEncoder:
    """int16 mono 48 kHz frames in, one Opus packet per frame out. One owner thread."""

    def __init__(
        self,
        bitrate: int = BITRATE,
        complexity: int = COMPLEXITY,
        application: str = APPLICATION,
    ) -> None:
        if not 6_000 <= bitrate <= 510_000:
            raise ValueError(f"Opus bit rate {bitrate} is outside 6000..510000 b/s")
        if not 0 <= complexity <= 10:
            raise ValueError(f"Opus complexity {complexity} is outside 0..10")
        if application not in _APPLICATIONS:
            raise ValueError(f"Opus application {application!r} is not one of {_APPLICATIONS}")
        error = ctypes.c_int()
        handle = _lib.opus_encoder_create(
            SAMPLE_RATE, 1, _APPLICATIONS[application], ctypes.byref(error)
        )
        _check(error.value, "cannot create an Opus encoder")
        self._handle = ctypes.c_void_p(handle)
        weakref.finalize(self, _lib.opus_encoder_destroy, self._handle)
        for request, value in ((_SET_BITRATE, bitrate), (_SET_COMPLEXITY, complexity)):
            code = _lib.opus_encoder_ctl(self._handle, ctypes.c_int(request), ctypes.c_int(value))
            _check(code, f"cannot set Opus encoder option {request} to {value}")
        self._out = ctypes.create_string_buffer(_MAX_PACKET)

    def encode(self, samples: Pcm, pts: int) -> av.Packet[Any]:
        """The packet for `samples` (a whole Opus frame: 2.5 to 60 ms, usually 20),
        stamped with `pts` in 1/48000 s, as aiortc's sender takes it."""
        return packet_of(self.encode_bytes(samples), pts)

    def encode_bytes(self, samples: Pcm) -> bytes:
        pcm = np.ascontiguousarray(samples, dtype=np.int16)
        size = _check(
            _lib.opus_encode(self._handle, pcm.ctypes.data, pcm.size, self._out, _MAX_PACKET),
            f"cannot encode {pcm.size} samples",
        )
        return self._out.raw[:size]

    def copy_state_from(self, other: OpusEncoder) -> None:
        """Continue exactly where `other` is: its whole state, settings included (libopus
        documents an encoder's state as one position-independent block that may be copied).
        A decoder that followed `other`'s packets then follows ours without a seam."""
        ctypes.memmove(self._handle, other._handle, _MONO_ENCODER_SIZE)


class OpusDecoder:
    """Opus payloads in, int16 mono 48 kHz samples out (libopus downmixes a stereo stream).
    One owner thread. Raises OpusError for a payload that is not Opus."""

    def __init__(self) -> None:
        error = ctypes.c_int()
        handle = _lib.opus_decoder_create(SAMPLE_RATE, 1, ctypes.byref(error))
        _check(error.value, "cannot create an Opus decoder")
        self._handle = ctypes.c_void_p(handle)
        weakref.finalize(self, _lib.opus_decoder_destroy, self._handle)
        self._pcm = np.empty(_MAX_FRAME, dtype=np.int16)

    def decode(self, payload: bytes) -> Pcm:
        if not payload:
            return np.zeros(0, dtype=np.int16)
        samples = _check(
            _lib.opus_decode(
                self._handle, payload, len(payload), self._pcm.ctypes.data, _MAX_FRAME, 0
            ),
            f"cannot decode a {len(payload)}-byte Opus packet",
        )
        return self._pcm[:samples].copy()

    def reset(self) -> None:
        """Forget the stream so far: the next packet decodes as a stream's first."""
        _check(_lib.opus_decoder_ctl(self._handle, ctypes.c_int(_RESET_STATE)), "cannot reset")


def ticks_for_ptime(ptime_ms: float | None) -> int:
    """20 ms frames per packet for a requested ptime: 1 to 3 (Opus frames of 20-60 ms)."""
    if ptime_ms is None:
        return 1
    return min(3, max(1, round(ptime_ms / 20)))


class FrameGrouper:
    """Groups consecutive 20 ms frames into the samples of one packet.

    `next_frame()` gives (position, samples); frames are consecutive when their positions
    differ by `step` (1 for mixer ticks, 960 for pts in samples). A gap ends a packet early
    and the frame after it starts the next one, so a packet never spans a gap and its
    timestamp stays true.
    """

    def __init__(
        self,
        next_frame: Callable[[], Awaitable[tuple[int, Pcm]]],
        step: int = 1,
        *,
        aligned: bool = False,
    ) -> None:
        """`aligned`: packets end where a multiple of `frames` frames does (positions
        counted in steps from 0), so every grouper fed the same positions cuts the same
        packets, whenever it started."""
        self._next_frame = next_frame
        self._step = step
        self._aligned = aligned
        self._held: tuple[int, Pcm] | None = None  # read, but the start of the next packet

    async def next(self, frames: int) -> tuple[int, Pcm]:
        """(position of the first frame, samples of up to `frames` consecutive frames)."""
        first, samples = await self._take()
        if self._aligned:
            frames -= (first // self._step) % frames
        chunks = [samples]
        while len(chunks) < frames:
            position, more = await self._take()
            if position != first + len(chunks) * self._step:
                self._held = (position, more)
                break
            chunks.append(more)
        return first, chunks[0] if len(chunks) == 1 else np.concatenate(chunks)

    async def _take(self) -> tuple[int, Pcm]:
        held, self._held = self._held, None
        if held is not None:
            return held
        return await self._next_frame()


class RtpTimeline:
    """32-bit RTP timestamps → sample positions counted from the stream's first packet,
    across wrap-around (aiortc's receiver does the same for the frames it decodes)."""

    def __init__(self) -> None:
        self._origin: int | None = None
        self._last = 0

    def position(self, timestamp: int) -> int:
        if self._origin is None:
            self._origin = timestamp
            self._last = timestamp
            return 0
        delta = (timestamp - self._last + 0x8000_0000) % 0x1_0000_0000 - 0x8000_0000
        self._last += delta
        return self._last - self._origin

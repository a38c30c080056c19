"""The track a speaker receives: the mix without their own voice.

aiortc's sender pulls it with recv(). It hands out ready Opus packets, encoded on the media
loop, because aiortc's own encoder would run every packet through a thread pool, as stereo.
"""

from __future__ import annotations

import asyncio
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from majlis.media.audio import FRAME_SAMPLES
from majlis.media.formats.convert import Pcm, mono_to_frame
from majlis.media.formats.opus import FrameGrouper, OpusEncoder, packet_of
from majlis.media.mixing.shared_mix import SharedMix

__all__ = ["MixMinusTrack"]


class MixMinusTrack(MediaStreamTrack):
    """What one speaker hears: every tick's mix without their own voice, as an audio track.

    With an encoder, recv() returns Opus packets (what the speaker's aiortc sender gets: it
    sends packets as they are), each carrying `ticks_per_packet` consecutive ticks; without
    one, it returns each tick as an s16 stereo frame. pts count 960 per tick since the first
    tick read, so a reader that falls behind (older ticks are dropped past `max_queued`)
    sees a pts gap, as after a loss; a packet never spans a gap. With `shared`, packets are
    cut at the same ticks on every track, and a packet whose ticks were all delivered
    flagged shared (the listener mix, to a muted speaker) is encoded once for every track
    that gets it (media/mixing/shared_mix.py). Lives on the media loop: deliver() and recv() must
    run there.
    """

    kind = "audio"

    def __init__(
        self,
        speaker_id: str,
        *,
        encoder: OpusEncoder | None = None,
        ticks_per_packet: int = 1,
        max_queued: int = 5,
        shared: SharedMix | None = None,
    ) -> None:
        super().__init__()
        if not 1 <= ticks_per_packet <= 3 or (encoder is None and ticks_per_packet != 1):
            raise ValueError("1 to 3 ticks per packet (Opus frames of 20 to 60 ms), encoded")
        self.speaker_id = speaker_id
        self.dropped = 0
        self._encoder = encoder
        self._ticks_per_packet = ticks_per_packet
        self._queue: asyncio.Queue[tuple[int, Pcm] | None] = asyncio.Queue(
            max(max_queued, 2 * ticks_per_packet)
        )
        self._grouper = FrameGrouper(self._next_tick, aligned=shared is not None)
        self._first_tick: int | None = None
        self._shared = shared if encoder is not None else None
        self._shared_ticks: set[int] = set()
        self._on_shared = False  # the last packet came from the shared stream

    def deliver(self, tick: int, samples: Pcm, shared: bool = False) -> None:
        if self.readyState != "live":
            return
        if shared and self._shared is not None:
            self._shared_ticks.add(tick)
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait((tick, samples))

    async def recv(self) -> av.AudioFrame | av.Packet[Any]:
        first_tick, samples = await self._grouper.next(self._ticks_per_packet)
        if self._first_tick is None:
            self._first_tick = first_tick
        pts = (first_tick - self._first_tick) * FRAME_SAMPLES
        if self._encoder is None:
            # Stereo with equal channels: aiortc's encoder would upmix mono at -3 dB
            # (swresample's centre mix level); the speaker hears the others at their level.
            return mono_to_frame(samples, pts, stereo=True)
        return packet_of(self._encode(self._encoder, first_tick, samples), pts)

    def _encode(self, encoder: OpusEncoder, first_tick: int, samples: Pcm) -> bytes:
        shared = self._shared
        if shared is not None:
            end = first_tick + samples.size // FRAME_SAMPLES
            flagged = all(tick in self._shared_ticks for tick in range(first_tick, end))
            self._shared_ticks = {tick for tick in self._shared_ticks if tick >= end}
            data = shared.packet(first_tick, samples, encoder) if flagged else None
            if data is not None:
                self._on_shared = True
                return data
            if self._on_shared:
                shared.hand_over(encoder)
                self._on_shared = False
        return encoder.encode_bytes(samples)

    async def _next_tick(self) -> tuple[int, Pcm]:
        if self.readyState != "live":
            raise MediaStreamError
        item = await self._queue.get()
        if item is None:
            raise MediaStreamError
        return item

    def stop(self) -> None:
        if self.readyState == "live":
            # Wake a pending recv() so the reader sees the end.
            if self._queue.full():
                self._queue.get_nowait()
            self._queue.put_nowait(None)
        super().stop()

"""The speaker's side of a WebRTC session, for `majlis speak` and for tests.

It sends one audio track (a ToneTrack, or `MediaPlayer(path).audio`), hands its offer to
`send_offer` (an HTTP call in the CLI, the node's ingest directly in tests) and records the
mix-minus it receives, placed by pts so lost packets show up as silence in the recording.
"""

from __future__ import annotations

import asyncio
import contextlib
import wave
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from majlis.media import audio_level
from majlis.media.audio import SAMPLE_RATE
from majlis.media.convert import MonoConverter
from majlis.media.ingest import use_reorder_window

__all__ = ["SendOffer", "SpeakerClient"]

SendOffer = Callable[[str], Awaitable[str]]
audio_level.install()


class SpeakerClient:
    """Runs on the caller's event loop; every method must be called from that loop."""

    def __init__(
        self,
        send_offer: SendOffer,
        source: MediaStreamTrack,
        *,
        ice_servers: Sequence[RTCIceServer] = (),
        max_record_seconds: float = 600.0,
    ) -> None:
        if source.kind != "audio":
            raise ValueError("a speaker sends an audio track")
        self._send_offer = send_offer
        self._source = source
        self._pc = RTCPeerConnection(RTCConfiguration(iceServers=list(ice_servers)))
        self._max_samples = int(max_record_seconds * SAMPLE_RATE)
        self._chunks: list[npt.NDArray[np.int16]] = []
        self._recorded = 0
        self._next_pts: int | None = None
        self._recorder: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self.frames_received = 0
        self._pc.on("track", self._on_track)
        self._pc.on("connectionstatechange", self._on_connection_state)

    @property
    def peer_connection(self) -> RTCPeerConnection:
        return self._pc

    @property
    def connection_state(self) -> str:
        return str(self._pc.connectionState)

    async def connect(self) -> None:
        """Offer, get the answer through `send_offer`, apply it. Errors from send_offer
        (e.g. BadRequest) propagate after the peer is closed."""
        transceiver = self._pc.addTransceiver(self._source, direction="sendrecv")
        # Hear the mix-minus as soon as packets arrive, like the node hears speakers.
        use_reorder_window(transceiver.receiver)
        await self._pc.setLocalDescription(await self._pc.createOffer())
        local = self._pc.localDescription
        if local is None:
            raise RuntimeError("aiortc produced no local description")
        try:
            answer = await self._send_offer(str(local.sdp))
            await self._pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        except BaseException:
            await self.close()
            raise

    async def wait_connected(self, seconds: float = 10.0) -> None:
        """Wait until ICE and DTLS are up; TimeoutError after `seconds`."""
        async with asyncio.timeout(seconds):
            await self._connected.wait()

    def recording(self) -> npt.NDArray[np.int16]:
        """Everything received so far, int16 mono 48 kHz."""
        if not self._chunks:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self._chunks)

    def save_wav(self, path: str | Path) -> None:
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(SAMPLE_RATE)
            out.writeframes(self.recording().astype("<i2").tobytes())

    async def close(self) -> None:
        if self._recorder is not None:
            self._recorder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recorder
        await self._pc.close()
        self._source.stop()

    def _on_connection_state(self) -> None:
        if self._pc.connectionState == "connected":
            self._connected.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._recorder is None:
            self._recorder = asyncio.get_running_loop().create_task(self._record(track))

    async def _record(self, track: MediaStreamTrack) -> None:
        converter = MonoConverter()
        try:
            while True:
                frame = await track.recv()
                if isinstance(frame, av.AudioFrame):
                    self.frames_received += 1
                    for pts, samples in converter.convert(frame):
                        self._append(pts, samples)
        except MediaStreamError:
            pass

    def _append(self, pts: int | None, samples: npt.NDArray[np.int16]) -> None:
        if pts is not None and self._next_pts is not None:
            if pts < self._next_pts:
                return  # overlaps what we already have
            # Lost packets: keep the timeline by filling their place with silence.
            gap = min(pts - self._next_pts, max(0, self._max_samples - self._recorded))
            self._store(np.zeros(gap, dtype=np.int16))
        self._store(samples)
        base = pts if pts is not None else (self._next_pts or 0)
        self._next_pts = base + samples.size

    def _store(self, samples: npt.NDArray[np.int16]) -> None:
        room = self._max_samples - self._recorded
        if room <= 0 or samples.size == 0:
            return
        kept = samples[:room]
        self._chunks.append(kept)
        self._recorded += kept.size

"""The speaker's side of a WebRTC session, for `majlis speak` and for tests.

It sends one audio track (a ToneTrack, or `MediaPlayer(path).audio`), hands its offer to
`send_offer` (an HTTP call in the CLI, the node's ingest directly in tests) and records the
mix-minus it receives, placed by pts so lost packets show up as silence in the recording.

It encodes what it sends itself, as the node does its mix-minus (media/formats/opus.py): mono
Opus, in packets as long as the answer's a=ptime asks (the node asks for 40 ms; 20 ms
without one), handed to aiortc's sender ready to go.

A connection can die under a speaker (the media node restarted, the network went away):
`wait_lost()` notices, because the node sends the mix-minus without pause, even as
silence, and `reconnect()` offers again on a new peer connection with the same source. The
source is played live: what it produced while nobody was sending is dropped, as a
microphone's would be, instead of reaching the node as one burst after the reconnect.

A node that hands its space over asks the speaker to move on the control channel
(media/rtc/control.py); `wait_lost()` returns then too, with `asked_to_move` set, and
`move()` connects to the new node while the old connection still sends: the source goes
to both until the new one carries audio both ways, then the old node is told and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import wave
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.frame import Frame
from av.packet import Packet

from majlis.media.audio import FRAME_SAMPLES, SAMPLE_RATE
from majlis.media.formats.convert import MonoConverter, Pcm, Reframer
from majlis.media.formats.opus import FrameGrouper, OpusEncoder, ticks_for_ptime
from majlis.media.rtc.control import CONTROL_LABEL, encode_control, parse_control
from majlis.media.rtc.ingest import sdp_ptime, use_reorder_window

__all__ = ["LiveSource", "SendOffer", "SpeakerClient"]

SendOffer = Callable[[str], Awaitable[str]]


class LiveSource(MediaStreamTrack):
    """Passes a source's frames on, dropping those already more than `max_late` seconds
    behind the source's own schedule (its first frame's arrival plus pts): after an outage
    the source resumes at "now", not with the backlog it produced meanwhile."""

    kind = "audio"

    def __init__(self, source: MediaStreamTrack, max_late: float = 0.5) -> None:
        super().__init__()
        self.source = source
        self.dropped = 0
        self._max_late = max_late
        self._origin: float | None = None

    async def recv(self) -> Frame | Packet[Any]:
        while True:
            frame = await self.source.recv()
            if not isinstance(frame, av.AudioFrame) or frame.time is None:
                return frame
            now = time.monotonic()
            if self._origin is None:
                self._origin = now - frame.time
            if now - (self._origin + frame.time) <= self._max_late:
                return frame
            self.dropped += 1

    def stop(self) -> None:
        super().stop()
        self.source.stop()


class _Fanout:
    """The live source, read once and handed to every connection sending it: two while a
    speaker moves between nodes. Frames produced while no connection sends are dropped."""

    QUEUE_FRAMES = 50  # one second of 20 ms frames: a connection that falls further behind
    #                   loses its oldest, as a live microphone would

    def __init__(self, source: LiveSource) -> None:
        self._source = source
        self._queues: list[asyncio.Queue[Frame | None]] = []
        self._pump: asyncio.Task[None] | None = None

    def subscribe(self) -> asyncio.Queue[Frame | None]:
        queue: asyncio.Queue[Frame | None] = asyncio.Queue(self.QUEUE_FRAMES)
        self._queues.append(queue)
        if self._pump is None:
            self._pump = asyncio.get_running_loop().create_task(self._run())
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Frame | None]) -> None:
        with contextlib.suppress(ValueError):
            self._queues.remove(queue)

    async def close(self) -> None:
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    async def _run(self) -> None:
        try:
            while True:
                frame = await self._source.recv()
                if isinstance(frame, av.AudioFrame):
                    self._hand_out(frame)
        except MediaStreamError:
            self._hand_out(None)  # the source ended

    def _hand_out(self, frame: Frame | None) -> None:
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(frame)


class _SpeakerPackets(MediaStreamTrack):
    """One peer connection's sending track: the live source as mono Opus packets of
    `ticks` × 20 ms, encoded here like the node's mix-minus (media/formats/opus.py). One per
    connection, because aiortc's sender stops its track when its connection closes, which
    must not end the speaker's source."""

    kind = "audio"

    def __init__(self, source: _Fanout) -> None:
        super().__init__()
        self.ticks = 1  # set from the answer's a=ptime before the first packet is read
        self._source = source
        self._frames: asyncio.Queue[Frame | None] | None = None
        self._encoder = OpusEncoder()
        self._converter = MonoConverter()
        self._reframer = Reframer()
        self._ready: deque[tuple[int, Pcm]] = deque()
        self._grouper = FrameGrouper(self._next_frame, step=FRAME_SAMPLES)

    async def recv(self) -> Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        pts, samples = await self._grouper.next(self.ticks)
        return self._encoder.encode(samples, pts)

    def stop(self) -> None:
        super().stop()
        if self._frames is not None:
            self._source.unsubscribe(self._frames)

    async def _next_frame(self) -> tuple[int, Pcm]:
        if self._frames is None:
            self._frames = self._source.subscribe()
        while not self._ready:
            frame = await self._frames.get()
            if frame is None or self.readyState != "live":
                raise MediaStreamError
            if isinstance(frame, av.AudioFrame):
                for pts, samples in self._converter.convert(frame):
                    self._ready.extend(self._reframer.push(pts, samples))
        return self._ready.popleft()


class SpeakerClient:
    """Runs on the caller's event loop; every method must be called from that loop."""

    # The node sends a mix-minus packet every 20-40 ms; this long without one is a dead link.
    SILENCE_IS_LOST = 3.0
    # After a move, how long the old node has to close the old connection itself.
    RETIRE_SECONDS = 5.0
    # A move sends to both nodes this long after the new one answers with audio, before
    # the old one is told to close: the new node's jitter buffer must be playing by then.
    MOVE_OVERLAP = 0.3

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
        self._source = LiveSource(source)
        self._fanout = _Fanout(self._source)
        self._ice_servers = list(ice_servers)
        self._max_samples = int(max_record_seconds * SAMPLE_RATE)
        self._chunks: list[npt.NDArray[np.int16]] = []
        self._recorded = 0
        self._next_pts: int | None = None
        self._recorder: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._hearing = asyncio.Event()  # a mix-minus frame came on the current connection
        self._move = asyncio.Event()
        self._control: RTCDataChannel | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self._last_heard: float | None = None  # monotonic time of the last mix-minus frame
        self._outage_from: float | None = None
        self.frames_received = 0
        self.connections = 0
        self.moves = 0
        self._pc = self._new_peer()

    @property
    def peer_connection(self) -> RTCPeerConnection:
        return self._pc

    @property
    def connection_state(self) -> str:
        return str(self._pc.connectionState)

    @property
    def asked_to_move(self) -> bool:
        return self._move.is_set()

    def _new_peer(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=self._ice_servers))
        pc.on("track", lambda track: self._on_track(pc, track))
        pc.on("connectionstatechange", lambda: self._on_connection_state(pc))
        return pc

    async def connect(self) -> None:
        """Offer, get the answer through `send_offer`, apply it. Errors from send_offer
        (e.g. BadRequest) propagate after the peer is closed (the source keeps running, so
        reconnect() may try again)."""
        self.connections += 1
        packets = _SpeakerPackets(self._fanout)
        transceiver = self._pc.addTransceiver(packets, direction="sendrecv")
        # Hear the mix-minus as soon as packets arrive, like the node hears speakers.
        use_reorder_window(transceiver.receiver)
        self._control = self._pc.createDataChannel(CONTROL_LABEL)
        self._control.on("message", self._on_control)
        await self._pc.setLocalDescription(await self._pc.createOffer())
        local = self._pc.localDescription
        if local is None:
            raise RuntimeError("aiortc produced no local description")
        try:
            answer = await self._send_offer(str(local.sdp))
            packets.ticks = ticks_for_ptime(sdp_ptime(answer))
            await self._pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        except BaseException:
            await self._close_peer()
            raise

    async def reconnect(self) -> None:
        """Drop the current peer connection and connect() again with the same source; the
        recording keeps the outage as silence."""
        await self._close_peer()
        self._fresh_peer()
        await self.connect()

    async def move(self, seconds: float = 10.0) -> None:
        """Connect again (the API now sends the offer to the node taking the space over)
        while the current connection keeps sending; once the new one carries audio both
        ways, tell the old node, which closes the old connection. If the new connection
        fails, the old one stays and the error propagates."""
        self._move.clear()
        old_pc, old_control = self._pc, self._control
        await self._stop_recorder()
        self._fresh_peer()
        try:
            await self.connect()
            async with asyncio.timeout(seconds):
                await self._connected.wait()
                await self._hearing.wait()
            await asyncio.sleep(self.MOVE_OVERLAP)
        except BaseException:
            await self._close_peer()
            self._pc, self._control = old_pc, old_control
            raise
        self.moves += 1
        if old_control is not None and old_control.readyState == "open":
            old_control.send(encode_control("moved"))
        retiring = asyncio.get_running_loop().create_task(self._retire(old_pc))
        self._retiring.add(retiring)
        retiring.add_done_callback(self._retiring.discard)

    async def wait_lost(self, silence: float | None = None) -> str:
        """Return (with the reason) once the connection is dead: ICE or DTLS failed or
        closed, or no mix-minus arrived for `silence` s (SILENCE_IS_LOST) while connected;
        or once its node asks the speaker to move (`asked_to_move`)."""
        limit = self.SILENCE_IS_LOST if silence is None else silence
        pc = self._pc
        while True:
            if self._move.is_set():
                return "the media node hands the space over"
            state = pc.connectionState
            if state in ("failed", "closed"):
                return f"the connection {state}"
            heard = self._last_heard
            if state == "connected" and heard is not None:
                quiet = time.monotonic() - heard
                if quiet > limit:
                    return f"nothing heard from the server for {quiet:.1f} s"
            await asyncio.sleep(0.05)

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
        await self._close_peer()
        for retiring in list(self._retiring):
            retiring.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retiring
        await self._fanout.close()
        self._source.stop()

    def _fresh_peer(self) -> None:
        if self._last_heard is not None:
            self._outage_from = self._last_heard
        self._next_pts = None
        self._connected = asyncio.Event()
        self._hearing = asyncio.Event()
        self._control = None
        self._pc = self._new_peer()

    async def _close_peer(self) -> None:
        await self._stop_recorder()
        await self._pc.close()

    async def _stop_recorder(self) -> None:
        recorder, self._recorder = self._recorder, None
        if recorder is not None:
            recorder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recorder

    async def _retire(self, pc: RTCPeerConnection) -> None:
        """The old node closes the connection once its speakers moved; close it here if
        it does not in time."""
        ended = asyncio.Event()

        def check() -> None:
            if pc.connectionState in ("closed", "failed"):
                ended.set()

        pc.on("connectionstatechange", check)
        check()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.RETIRE_SECONDS):
                await ended.wait()
        await pc.close()

    def _on_control(self, message: object) -> None:
        if parse_control(message) == "move":
            self._move.set()

    def _on_connection_state(self, pc: RTCPeerConnection) -> None:
        if pc is self._pc and pc.connectionState == "connected":
            self._last_heard = time.monotonic()  # the silence clock starts at connection
            self._connected.set()

    def _on_track(self, pc: RTCPeerConnection, track: MediaStreamTrack) -> None:
        if pc is self._pc and track.kind == "audio" and self._recorder is None:
            self._recorder = asyncio.get_running_loop().create_task(self._record(track))

    async def _record(self, track: MediaStreamTrack) -> None:
        converter = MonoConverter()
        try:
            while True:
                frame = await track.recv()
                if isinstance(frame, av.AudioFrame):
                    self.frames_received += 1
                    self._last_heard = time.monotonic()
                    self._hearing.set()
                    self._fill_outage()
                    for pts, samples in converter.convert(frame):
                        self._append(pts, samples)
        except MediaStreamError:
            pass

    def _fill_outage(self) -> None:
        """Silence for the time no connection carried the mix-minus, so the recording stays
        on the wall clock across a reconnect."""
        if self._outage_from is None or self._last_heard is None:
            return
        missing = int((self._last_heard - self._outage_from) * SAMPLE_RATE)
        self._outage_from = None
        self._store(np.zeros(max(0, missing), dtype=np.int16))

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

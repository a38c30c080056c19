"""WebRTC ingest: one aiortc RTCPeerConnection per speaker, on the media loop.

The speaker's offer is checked (majlis/offers.py) before aiortc sees it, so a bad offer gets
a clear 400 reason (and anything aiortc still rejects becomes a 400 too, never a 500). The
answer sends the speaker their mix-minus and feeds their audio into the space's mixer.
Closing a peer takes the speaker out of the mix at once; a new offer from the same speaker
replaces the old peer. A speaker's offer may open the control channel
(media/rtc/control.py), over which a node handing its space over asks its speakers to move,
and hears that they did.

aiortc's own audio receive buffer (capacity 16, prefetch 4, at most one frame out per packet
in) stalls for ~240 ms at the first lost packet and from then on keeps the stream ~300 ms late,
and under reordering it overflows and drops real packets (aiortc issue #543). Playout timing,
loss concealment and drift are our JitterBuffer's job, so each speaker's receiver gets a
ReorderWindow instead: it only puts packets back in order and never waits on a gap.

On the node the window also takes over decoding: it hands each payload to the speaker's peer,
which decodes it (mono, on the media loop) straight into the speaker's mixer input, and
aiortc's decoder thread gets nothing to do. The mix-minus goes back as ready Opus packets
(see media/formats/opus.py for why both directions bypass aiortc's codec threads), and the answer
asks the speaker for 40 ms packets (a=ptime:40).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Sequence

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecCapability
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import RtpPacket

from majlis.errors import BadRequest
from majlis.media.formats.opus import PTIME_MS, OpusDecoder, OpusError, RtpTimeline
from majlis.media.mixing.mixer import Mixer, MixerInput
from majlis.media.mixing.mixminus import MixMinusTrack
from majlis.media.rtc.control import CONTROL_LABEL, encode_control, parse_control
from majlis.offers import validate_offer

__all__ = [
    "Ingest",
    "ReorderWindow",
    "SpeakerPeer",
    "sdp_ptime",
    "use_reorder_window",
    "with_ptime",
]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 30.0

# (RTP timestamp, Opus payload) of each packet, in sequence order
Deliver = Callable[[int, bytes], None]


_OPUS_RTPMAP = re.compile(r"^a=rtpmap:\d+ opus/48000(?:/2)?\r?\n", re.MULTILINE | re.IGNORECASE)
_PTIME = re.compile(r"^a=ptime:(\d+(?:\.\d+)?)\s*$", re.MULTILINE)


def sdp_ptime(sdp: str) -> float | None:
    """The a=ptime (ms) an SDP asks its peer to send, if any."""
    match = _PTIME.search(sdp)
    return float(match.group(1)) if match else None


def with_ptime(sdp: str, ptime_ms: int = PTIME_MS) -> str:
    """`sdp` asking its peer to send packets of `ptime_ms` (RFC 4566 a=ptime, in the
    audio section after Opus's rtpmap). Chromium and SpeakerClient honour it: 40 ms halves
    the packets the node receives, protects and decodes per speaker."""
    if sdp_ptime(sdp) is not None:
        return sdp
    newline = "\r\n" if "\r\n" in sdp else "\n"
    return _OPUS_RTPMAP.sub(lambda m: f"{m.group(0)}a=ptime:{ptime_ms}{newline}", sdp, count=1)


class ReorderWindow:
    """Stands in for aiortc's audio JitterBuffer on a speaker's receiver (same `add` seam).

    One packet in, at most one Opus frame out, in sequence order. It holds up to `window`
    packets to undo reordering; the window starts at 0 (no added delay) and grows by one,
    up to MAX_WINDOW, each time a packet shows up after a newer one was already let out.
    A gap is never waited on: the lost packet shows up downstream as a pts gap.
    """

    MAX_WINDOW = 3
    # A sequence jump this far back is a restarted stream, not a late packet.
    RESTART_DISTANCE = 1_000

    def __init__(self, deliver: Deliver | None = None) -> None:
        """With `deliver`, each ordered packet goes to deliver(rtp_timestamp, opus_payload)
        and aiortc is handed nothing to decode."""
        self._deliver = deliver
        self.window = 0
        self.late = 0
        self.duplicates = 0
        self._held: dict[int, RtpPacket] = {}
        self._highest: int | None = None
        self._last_out: int | None = None

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        """aiortc's JitterBuffer.add contract: (send a PLI?, complete frame or None)."""
        seq = self._extend(packet.sequence_number)
        if self._last_out is not None and self._last_out - seq > self.RESTART_DISTANCE:
            self._restart(packet.sequence_number)
            seq = packet.sequence_number
        if (self._last_out is not None and seq <= self._last_out) or seq in self._held:
            self._count_late_or_duplicate(seq)
            return False, None
        self._held[seq] = packet
        if len(self._held) <= self.window:
            return False, None
        oldest = min(self._held)
        out = self._held.pop(oldest)
        self._last_out = oldest
        # The receiver stores the depayloaded Opus payload on the packet as `_data`.
        data = getattr(out, "_data", b"")
        if self._deliver is None:
            return False, JitterFrame(data=data, timestamp=out.timestamp)
        self._deliver(out.timestamp, data)
        return False, None

    def _extend(self, seq: int) -> int:
        """16-bit sequence number → monotonic extended one (survives wrap-around)."""
        if self._highest is None:
            self._highest = seq
            return seq
        delta = (seq - self._highest + 0x8000) % 0x10000 - 0x8000
        extended = self._highest + delta
        self._highest = max(self._highest, extended)
        return extended

    def _restart(self, seq: int) -> None:
        self._held.clear()
        self._highest = seq
        self._last_out = None

    def _count_late_or_duplicate(self, seq: int) -> None:
        if seq == self._last_out or seq in self._held:
            self.duplicates += 1
            return
        self.late += 1
        if self.window < self.MAX_WINDOW:
            self.window += 1


def use_reorder_window(receiver: RTCRtpReceiver, deliver: Deliver | None = None) -> bool:
    """Put a ReorderWindow in place of the receiver's audio buffer; False if this aiortc has
    no such buffer (the receiver then keeps its own and decodes as usual)."""
    attribute = "_RTCRtpReceiver__jitter_buffer"
    if not hasattr(receiver, attribute):
        log.warning("aiortc has no %s to replace: keeping its audio buffer", attribute)
        return False
    setattr(receiver, attribute, ReorderWindow(deliver))
    return True


def _opus_preferences() -> list[RTCRtpCodecCapability]:
    codecs = RTCRtpSender.getCapabilities("audio").codecs
    return [codec for codec in codecs if codec.mimeType.lower() == "audio/opus"]


class SpeakerPeer:
    """One speaker's peer connection. All methods run on the media loop."""

    def __init__(
        self,
        space_id: str,
        speaker_id: str,
        mixer: Mixer,
        *,
        ice_servers: Sequence[RTCIceServer] = (),
        connect_timeout: float = CONNECT_TIMEOUT,
        on_closed: Callable[[SpeakerPeer], None] | None = None,
    ) -> None:
        """`on_closed` is called when the peer closes on its own (failed, timed out), not
        after an explicit close()."""
        self.space_id = space_id
        self.speaker_id = speaker_id
        self._mixer = mixer
        self._on_closed = on_closed
        self._connect_timeout = connect_timeout
        self._pc = RTCPeerConnection(RTCConfiguration(iceServers=list(ice_servers)))
        self._input: MixerInput | None = None
        self._output: MixMinusTrack | None = None
        # Set when the reorder window hands us the payloads; else aiortc decodes them.
        self._decoder: OpusDecoder | None = None
        self._timeline = RtpTimeline()
        self.skipped_while_muted = 0
        self._resume_on_unmute = False
        self._closed = False
        self._closing: asyncio.Task[None] | None = None
        self._timeout: asyncio.TimerHandle | None = None
        self._control: RTCDataChannel | None = None
        self._gone = asyncio.Event()  # moved elsewhere, or closed
        self._pc.on("track", self._on_track)
        self._pc.on("connectionstatechange", self._on_connection_state)
        self._pc.on("datachannel", self._on_datachannel)

    @property
    def connection_state(self) -> str:
        return "closed" if self._closed else str(self._pc.connectionState)

    @property
    def closed(self) -> bool:
        return self._closed

    async def answer(self, offer_sdp: str) -> str:
        """Validate the offer, wire the peer into the mixer and return the answer SDP (with
        all ICE candidates: aiortc gathers them in setLocalDescription)."""
        if self._output is not None or self._closed:
            raise RuntimeError("a SpeakerPeer answers one offer; make a new one to renegotiate")
        validate_offer(offer_sdp)
        self._output = self._mixer.mix_minus_track(self.speaker_id, encoded=True)
        transceiver = self._pc.addTransceiver(self._output, direction="sendrecv")
        # Opus only: the mixer assumes 48 kHz speech, and G.711 would be a needless downgrade
        # (and the mix-minus packets are Opus already).
        transceiver.setCodecPreferences(_opus_preferences())
        if use_reorder_window(transceiver.receiver, self._on_payload):
            self._decoder = OpusDecoder()
        try:
            await self._pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
            await self._pc.setLocalDescription(await self._pc.createAnswer())
        except Exception as exc:
            await self.close()
            reason = str(exc) or type(exc).__name__
            raise BadRequest(f"the SDP offer was rejected: {reason}") from exc
        local = self._pc.localDescription
        if local is None:
            await self.close()
            raise BadRequest("no answer could be created for the SDP offer")
        self._timeout = asyncio.get_running_loop().call_later(
            self._connect_timeout, self._on_connect_timeout
        )
        return with_ptime(str(local.sdp))

    async def close(self) -> None:
        """Take the speaker out of the mix at once, then tear down the connection."""
        if not self._closed:
            self._closed = True
            self._gone.set()
            self._release_media()
        await self._pc.close()

    def ask_to_move(self) -> bool:
        """Tell the speaker to connect to the node taking the space over (media/rtc/
        control.py); False if they cannot be told (no control channel open)."""
        control = self._control
        if self._closed or control is None or control.readyState != "open":
            return False
        control.send(encode_control("move"))
        return True

    async def wait_gone(self) -> None:
        """Until the speaker says they moved, or this connection closes."""
        await self._gone.wait()

    async def _close_on_its_own(self) -> None:
        """The connection failed or never came up: close, and tell the owner."""
        if self._closed:
            return
        await self.close()
        if self._on_closed is not None:
            self._on_closed(self)

    def _release_media(self) -> None:
        if self._timeout is not None:
            self._timeout.cancel()
        if self._input is not None:
            self._mixer.remove_input(self.speaker_id, self._input)
        if self._output is not None:
            self._mixer.release_mix_minus(self.speaker_id, self._output)

    def _on_track(self, track: MediaStreamTrack) -> None:
        # validate_offer allows one audio m-line and no video, so this is the speaker's voice.
        if track.kind != "audio" or self._input is not None or self._closed:
            return
        if self._decoder is not None:
            self._input = self._mixer.add_feed(self.speaker_id)
        else:
            self._input = self._mixer.add_input(self.speaker_id, track)

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label != CONTROL_LABEL or self._control is not None:
            return
        self._control = channel
        channel.on("message", self._on_control)

    def _on_control(self, message: object) -> None:
        if parse_control(message) == "moved":
            log.info("speaker %s in %s moved to another node", self.speaker_id, self.space_id)
            self._gone.set()

    def _on_payload(self, timestamp: int, payload: bytes) -> None:
        entry, decoder = self._input, self._decoder
        if entry is None or decoder is None or self._closed:
            return
        if self._mixer.is_muted(self.speaker_id):
            # Their voice reaches nobody: not decoding it saves what it would cost.
            self.skipped_while_muted += 1
            self._resume_on_unmute = True
            return
        if self._resume_on_unmute:
            # A fresh start, as after a new connection: no stale decoder state, and the
            # jitter buffer does not wait for what was never pushed.
            self._resume_on_unmute = False
            decoder.reset()
            entry.restart()
        try:
            samples = decoder.decode(payload)
        except OpusError:
            entry.count_error("cannot decode an Opus packet")
            return
        if samples.size:
            entry.push_samples(self._timeline.position(timestamp), samples)

    def _on_connection_state(self) -> None:
        state = self._pc.connectionState
        log.debug("speaker %s in %s: connection %s", self.speaker_id, self.space_id, state)
        if state == "connected" and self._timeout is not None:
            self._timeout.cancel()
        if state in ("failed", "closed") and not self._closed:
            self._schedule_close()

    def _on_connect_timeout(self) -> None:
        if self._pc.connectionState != "connected" and not self._closed:
            log.info("speaker %s in %s never connected", self.speaker_id, self.space_id)
            self._schedule_close()

    def _schedule_close(self) -> None:
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close_on_its_own())


class Ingest:
    """The speakers' peers of one space, feeding one Mixer. All methods run on the media loop
    (from the HTTP loop: `await media_loop.run(ingest.accept_offer(...))`)."""

    def __init__(
        self,
        space_id: str,
        mixer: Mixer,
        *,
        ice_servers: Sequence[RTCIceServer] = (),
        connect_timeout: float = CONNECT_TIMEOUT,
        on_peer_closed: Callable[[str], None] | None = None,
    ) -> None:
        """`on_peer_closed(speaker_id)` reports a connection that dropped on its own (failed
        or never connected); it runs on the media loop."""
        self.space_id = space_id
        self.mixer = mixer
        self._ice_servers = tuple(ice_servers)
        self._connect_timeout = connect_timeout
        self._on_peer_closed = on_peer_closed
        self._peers: dict[str, SpeakerPeer] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def speakers(self) -> list[str]:
        return list(self._peers)

    def peer(self, speaker_id: str) -> SpeakerPeer | None:
        return self._peers.get(speaker_id)

    async def accept_offer(self, speaker_id: str, offer_sdp: str) -> str:
        """Answer `speaker_id`'s offer; an existing peer of theirs is closed first.
        Raises BadRequest for an unusable offer."""
        validate_offer(offer_sdp)
        lock = self._locks.setdefault(speaker_id, asyncio.Lock())
        async with lock:
            old = self._peers.pop(speaker_id, None)
            if old is not None:
                await old.close()
            peer = SpeakerPeer(
                self.space_id,
                speaker_id,
                self.mixer,
                ice_servers=self._ice_servers,
                connect_timeout=self._connect_timeout,
                on_closed=self._forget_peer,
            )
            self._peers[speaker_id] = peer
            try:
                return await peer.answer(offer_sdp)
            except BaseException:
                if self._peers.get(speaker_id) is peer:
                    del self._peers[speaker_id]
                raise

    async def close_speaker(self, speaker_id: str) -> bool:
        """Close a speaker's peer (removed from stage, left, kicked). False if none."""
        peer = self._peers.pop(speaker_id, None)
        if peer is None:
            return False
        await peer.close()
        return True

    async def hand_over(self, patience: float) -> int:
        """Ask every speaker to move to the node taking the space over, and wait (at most
        `patience` s) until each of those who could be asked has moved or left. Returns
        how many were asked."""
        asked = [peer for peer in self._peers.values() if peer.ask_to_move()]
        if asked:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(patience):
                    await asyncio.gather(*(peer.wait_gone() for peer in asked))
        return len(asked)

    async def close(self) -> None:
        peers = list(self._peers.values())
        self._peers.clear()
        await asyncio.gather(*(peer.close() for peer in peers), return_exceptions=True)

    def _forget_peer(self, peer: SpeakerPeer) -> None:
        if self._peers.get(peer.speaker_id) is not peer:
            return  # already replaced or closed by us
        del self._peers[peer.speaker_id]
        if self._on_peer_closed is not None:
            self._on_peer_closed(peer.speaker_id)

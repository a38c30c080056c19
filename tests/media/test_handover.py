"""A drain's handover, make-before-break, with two real media nodes on one recording: the
old node asks its speaker to move, the speaker connects to the new node (which runs the
mix on standby) while still sending to the old one, and the recording continues there.

The speaker sends a chirp, a tone whose frequency rises 200 Hz a second, so the
frequency heard at any moment of the replay says which moment of the source it is. Across
the handover, the source time between the last audio of the old node and the first of the
new one must be one analysis step: audio lost there would make the frequency jump ahead,
audio recorded twice would make it fall back. (A pause, where the encoder restarts, moves
neither.)

A busy node's jitter buffers run deep. The node taking over starts its buffers as deep
as the draining node plays (StandBy.delays), or the seam would skip the difference: the
second test makes the first node's buffers deep with a sender that stutters.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import av
import m3u8
import numpy as np
import numpy.typing as npt
import pytest
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from e2e.signal_tools import RATE, decode
from majlis.media.audio import FRAME_SAMPLES, SAMPLE_RATE
from majlis.media.formats.convert import mono_to_frame
from majlis.media.hls.origin import SpaceRegistry
from majlis.media.recording.directory import REPLAY_NAME
from majlis.media.rtc.speaker_client import SpeakerClient
from majlis.media.runtime.node import MediaNode, NodeSettings
from majlis.plane import HandOver, StandBy, StartSpace

pytestmark = pytest.mark.realtime  # the seam is measured in ms of source time

SPACE = "handover1"
F0, RISE = 300.0, 200.0  # Hz, Hz per second
WINDOW, HOP = 0.02, 0.005


BURST = 6  # frames a stuttering sender holds back and then sends at once (120 ms)


class ChirpTrack(MediaStreamTrack):
    """A -12 dBFS sine from F0 rising RISE Hz a second, paced in real time; for its first
    `stutter` seconds, in bursts of BURST frames (the arrival jitter of a busy network or
    sender)."""

    kind = "audio"

    def __init__(self, stutter: float = 0.0) -> None:
        super().__init__()
        self._start: float | None = None
        self._sent = 0
        self._stutter_frames = round(stutter * SAMPLE_RATE / FRAME_SAMPLES)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        frame = self._sent // FRAME_SAMPLES
        due = frame
        if frame < self._stutter_frames:
            due = (frame // BURST + 1) * BURST  # held until its burst is complete
        wait = self._start + due * FRAME_SAMPLES / SAMPLE_RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        t = (self._sent + np.arange(FRAME_SAMPLES)) / SAMPLE_RATE
        phase = 2 * np.pi * (F0 * t + RISE * t * t / 2)
        samples = (np.sin(phase) * 0.25 * 32767).astype(np.int16)
        frame = mono_to_frame(samples, self._sent, stereo=True)
        self._sent += FRAME_SAMPLES
        return frame


def frequencies(audio: npt.NDArray[np.float64]) -> tuple[list[float], list[float]]:
    """(replay time, frequency) of every analysis window loud with one clear tone."""
    size, step = int(WINDOW * RATE), int(HOP * RATE)
    taper = np.hanning(size)
    times, found = [], []
    loudest = np.sqrt(np.mean(audio**2)) * np.sqrt(2)
    for start in range(0, len(audio) - size, step):
        chunk = audio[start : start + size]
        # Silence, or the edge of a sound: a window whose end is silent still averages
        # loud enough, and its truncated tone reads tens of Hz off (a CI run or two in a
        # hundred lost "143 ms" at the seam that way). Every quarter must be loud.
        quarters = chunk[: size - size % 4].reshape(4, -1)
        if np.sqrt(np.mean(quarters**2, axis=1)).min() < loudest * 0.5:
            continue
        spectrum = np.abs(np.fft.rfft(chunk * taper, 16 * size))
        peak = int(np.argmax(spectrum[1:-1])) + 1
        a, b, c = np.log(spectrum[peak - 1 : peak + 2] + 1e-12)
        offset = 0.5 * (a - c) / (a - 2 * b + c)
        times.append(start / RATE)
        found.append((peak + offset) * RATE / (16 * size))
    return times, found


# Audio lost at the seam, at most: three 20 ms frames. With the playout depth carried,
# 37 runs lost 7-40 ms (docs/benchmarks.md, "The seam of a handover"); without it, 60-130
# ms (median 119): this bound catches that in most runs, not all; the bench has the figures.
LOST_MS = 60


@pytest.fixture
async def two_nodes(tmp_path: Path) -> AsyncIterator[tuple[MediaNode, MediaNode]]:
    nodes = [MediaNode(NodeSettings(tmp_path), SpaceRegistry()) for _ in range(2)]
    for node in nodes:
        await node.start()
    yield nodes[0], nodes[1]
    for node in nodes:
        await node.stop()


async def test_a_handed_over_space_loses_no_audio_and_repeats_none(
    two_nodes: tuple[MediaNode, MediaNode], tmp_path: Path
) -> None:
    old, new = two_nodes
    await hand_over(old, new, ChirpTrack())
    lost, twice = seam(tmp_path / SPACE)
    assert lost.ms < LOST_MS, lost
    # The two nodes' jitter buffers may play the speaker a few tens of ms apart (deeper on
    # a busy machine): a moment may be heard twice, which loses nothing.
    assert twice.ms > -80, twice


async def test_the_seam_holds_when_the_old_node_played_deep(
    two_nodes: tuple[MediaNode, MediaNode], tmp_path: Path
) -> None:
    old, new = two_nodes
    delays = await hand_over(old, new, ChirpTrack(stutter=2.0))
    # The stutter made the old node play the speaker deep; the new one heard only a
    # steady sender, and would have started at its usual 60 ms.
    assert delays["speaker"] > 0.1, delays
    lost, twice = seam(tmp_path / SPACE)
    assert lost.ms < LOST_MS, lost
    assert twice.ms > -80, twice


async def hand_over(
    old: MediaNode, new: MediaNode, track: ChirpTrack, *, carry: bool = True
) -> dict[str, float]:
    """2.5 s on `old`, a drain's handover to `new` as Membership runs it, 2.5 s on `new`;
    the playout delays `old` had. `carry=False`: `new` starts its buffers at their usual
    depth instead (as before StandBy carried them; bench/handover_seam.py compares)."""
    started_at = time.time()
    serving = {"node": old}

    async def send_offer(sdp: str) -> str:
        return await serving["node"].offer(SPACE, "speaker", sdp, False, started_at)

    client = SpeakerClient(send_offer, track)
    try:
        await client.connect()
        await client.wait_connected()
        await asyncio.sleep(2.5)
        # The control plane sends offers to the node taking over, which stands by as
        # deep as the old node plays.
        delays = await old.playout_delays(SPACE)
        await new.handle(StandBy(SPACE, started_at, delays if carry else {}))
        serving["node"] = new
        handing = asyncio.create_task(old.handle(HandOver(SPACE)))
        reason = await asyncio.wait_for(client.wait_lost(), 5.0)
        assert client.asked_to_move, reason
        await client.move()
        await asyncio.wait_for(handing, 10.0)
        await new.handle(StartSpace(SPACE, started_at))
        await asyncio.sleep(2.5)
    finally:
        await client.close()
    await new.end_space(SPACE)
    assert client.moves == 1 and client.connections == 2
    return delays


@dataclass(frozen=True)
class Skip:
    """Source time passed between two consecutive loud windows at the seam, less the one
    step expected: > 0 lost, < 0 heard twice."""

    ms: float
    at: float  # replay seconds
    cut: float  # where the new life starts in the replay


def seam(directory: Path) -> tuple[Skip, Skip]:
    """The most source time lost, and the most heard twice, within 0.25 s of the cut."""
    cut = handover_position(directory)
    times, heard = frequencies(decode((directory / REPLAY_NAME).read_bytes()))
    assert len(times) > 400, "the chirp is missing from the replay"
    near = [i for i in range(len(times) - 1) if abs(times[i] - cut) < 0.25]
    assert near, f"no audio around the handover at {cut:.3f} s"
    skips = [Skip(((heard[i + 1] - heard[i]) / RISE - HOP) * 1e3, times[i + 1], cut) for i in near]
    return max(skips, key=lambda s: s.ms), min(skips, key=lambda s: s.ms)


def handover_position(directory: Path) -> float:
    """Where the second life starts in the replay, whose first life's priming is hidden."""
    playlist = m3u8.load(str(directory / "index.m3u8"))
    discontinuities = [i for i, s in enumerate(playlist.segments) if s.discontinuity]
    assert len(discontinuities) == 1, "one handover, one new life"
    before = playlist.segments[: discontinuities[0]]
    return sum(s.duration for s in before) - 1024 / SAMPLE_RATE

"""A drain's handover, make-before-break, with two real media nodes on one recording: the
old node asks its speaker to move, the speaker connects to the new node (which runs the
mix on standby) while still sending to the old one, and the recording continues there.

The speaker sends a chirp, a tone whose frequency rises 200 Hz a second, so the
frequency heard at any moment of the replay says which moment of the source it is. Across
the handover, the source time between the last audio of the old node and the first of the
new one must be one analysis step: audio lost there would make the frequency jump ahead,
audio recorded twice would make it fall back. (A pause, where the encoder restarts, moves
neither.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
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


class ChirpTrack(MediaStreamTrack):
    """A -12 dBFS sine from F0 rising RISE Hz a second, paced in real time."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._start: float | None = None
        self._sent = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._sent / SAMPLE_RATE - time.monotonic()
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
        if np.sqrt(np.mean(chunk**2)) < loudest * 0.5:
            continue  # silence, or the edge of a sound
        spectrum = np.abs(np.fft.rfft(chunk * taper, 16 * size))
        peak = int(np.argmax(spectrum[1:-1])) + 1
        a, b, c = np.log(spectrum[peak - 1 : peak + 2] + 1e-12)
        offset = 0.5 * (a - c) / (a - 2 * b + c)
        times.append(start / RATE)
        found.append((peak + offset) * RATE / (16 * size))
    return times, found


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
    started_at = time.time()
    serving = {"node": old}

    async def send_offer(sdp: str) -> str:
        return await serving["node"].offer(SPACE, "speaker", sdp, False, started_at)

    client = SpeakerClient(send_offer, ChirpTrack())
    try:
        await client.connect()
        await client.wait_connected()
        await asyncio.sleep(2.5)
        # The control plane sends offers to the node taking over, which stands by.
        await new.handle(StandBy(SPACE, started_at))
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
    directory = tmp_path / SPACE
    cut = handover_position(directory)
    times, heard = frequencies(decode((directory / REPLAY_NAME).read_bytes()))
    assert len(times) > 400, "the chirp is missing from the replay"
    # Source time passed between consecutive loud windows around the cut, less the one
    # step expected.
    near = [i for i in range(len(times) - 1) if abs(times[i] - cut) < 0.25]
    assert near, f"no audio around the handover at {cut:.3f} s"
    skipped = {times[i + 1]: (heard[i + 1] - heard[i]) / RISE - HOP for i in near}
    lost_at, lost = max(skipped.items(), key=lambda item: item[1])
    twice_at, twice = min(skipped.items(), key=lambda item: item[1])
    assert lost < 0.035, (
        f"{lost * 1000:.0f} ms of source time lost at {lost_at:.3f} s of the replay, by "
        f"the handover at {cut:.3f} s"
    )
    # The two nodes' jitter buffers may play the speaker a few tens of ms apart (deeper on
    # a busy machine): a moment may be heard twice, which loses nothing.
    assert twice > -0.08, (
        f"{-twice * 1000:.0f} ms recorded twice at {twice_at:.3f} s of the replay, by the "
        f"handover at {cut:.3f} s"
    )


def handover_position(directory: Path) -> float:
    """Where the second life starts in the replay, whose first life's priming is hidden."""
    playlist = m3u8.load(str(directory / "index.m3u8"))
    discontinuities = [i for i, s in enumerate(playlist.segments) if s.discontinuity]
    assert len(discontinuities) == 1, "one handover, one new life"
    before = playlist.segments[: discontinuities[0]]
    return sum(s.duration for s in before) - 1024 / SAMPLE_RATE

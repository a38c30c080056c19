"""LiveSource: after nobody read it for a while, a source resumes at "now"."""

from __future__ import annotations

import asyncio
import time

import av

from majlis.media.audio import FRAME_SAMPLES, SAMPLE_RATE
from majlis.media.rtc.speaker_client import LiveSource
from majlis.media.rtc.tone import ToneTrack


async def test_frames_on_schedule_pass_and_a_backlog_is_dropped() -> None:
    live = LiveSource(ToneTrack(440.0, -20.0), max_late=0.2)
    frames = [await live.recv() for _ in range(10)]
    assert [f.pts for f in frames] == [i * FRAME_SAMPLES for i in range(10)]
    assert live.dropped == 0

    started = time.monotonic()
    await asyncio.sleep(1.0)  # an outage: the sender did not read
    # Read before recv(): its own decision comes later, so this can only under-read how
    # late the frame it passes is (a clock read after it over-read by the time recv took
    # to return, and failed at 0.202 on a busy machine).
    asked = time.monotonic()
    frame = await live.recv()
    assert isinstance(frame, av.AudioFrame) and frame.pts is not None
    behind = (asked - started) - (frame.pts - 9 * FRAME_SAMPLES) / SAMPLE_RATE
    assert behind <= 0.2  # within max_late of the source's own schedule
    assert live.dropped >= 35  # ~1 s of 20 ms frames less the 0.2 s allowance
    live.stop()
    assert live.source.readyState == "ended"

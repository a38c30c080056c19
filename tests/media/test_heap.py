"""Heap snapshots of the media worker on SIGUSR2, only when the environment asks."""

from __future__ import annotations

import asyncio
import os
import signal
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from majlis.media.runtime.heap import HEAP_SNAPSHOTS_ENV, snapshot_on_signal


@pytest.fixture
def untraced() -> Iterator[None]:
    was_tracing = tracemalloc.is_tracing()
    yield
    if not was_tracing:
        tracemalloc.stop()


async def test_off_unless_asked(monkeypatch: pytest.MonkeyPatch, untraced: None) -> None:
    monkeypatch.delenv(HEAP_SNAPSHOTS_ENV, raising=False)
    loop = asyncio.get_running_loop()
    assert snapshot_on_signal(loop) is None
    assert not loop.remove_signal_handler(signal.SIGUSR2)


async def test_a_snapshot_per_signal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, untraced: None
) -> None:
    monkeypatch.setenv(HEAP_SNAPSHOTS_ENV, str(tmp_path / "heaps"))
    loop = asyncio.get_running_loop()
    assert snapshot_on_signal(loop) == tmp_path / "heaps"
    try:
        kept = [bytearray(4096) for _ in range(64)]  # a known allocation, traced
        for taken in (1, 2):
            os.kill(os.getpid(), signal.SIGUSR2)
            for _ in range(100):
                await asyncio.sleep(0.01)
                if len(list((tmp_path / "heaps").glob("*.heap"))) == taken:
                    break
    finally:
        loop.remove_signal_handler(signal.SIGUSR2)
    heaps = sorted((tmp_path / "heaps").glob("*.heap"))
    assert [p.name for p in heaps] == [
        f"media-{os.getpid()}-001.heap",
        f"media-{os.getpid()}-002.heap",
    ]
    snapshot = tracemalloc.Snapshot.load(str(heaps[0]))
    here = snapshot.filter_traces([tracemalloc.Filter(True, __file__)])
    assert sum(stat.size for stat in here.statistics("filename")) >= 64 * 4096
    assert len(kept) == 64

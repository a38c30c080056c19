"""Heap snapshots of the media worker, on request, for finding what its memory holds.

A worker that grows slowly over hours (docs/benchmarks.md, "A one-hour soak") cannot be
explained from its resident size: that counts the allocator's arenas as much as live
objects. With _MAJLIS_HEAP_SNAPSHOTS set to a directory, the worker traces its Python
allocations from the start (tracemalloc, FRAMES deep) and writes a snapshot there each
time it gets SIGUSR2; comparing two (`tracemalloc.Snapshot.load`, `compare_to`) names
the lines whose objects grew. Unset, nothing is traced and the signal is not handled:
tracing costs every allocation.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import tracemalloc
from pathlib import Path

__all__ = ["HEAP_SNAPSHOTS_ENV", "snapshot_on_signal"]

HEAP_SNAPSHOTS_ENV = "_MAJLIS_HEAP_SNAPSHOTS"  # not a config key: a diagnostic
FRAMES = 12

log = logging.getLogger(__name__)


def snapshot_on_signal(loop: asyncio.AbstractEventLoop) -> Path | None:
    """Start tracing and write a snapshot on each SIGUSR2, if the environment asks for it.
    Returns the directory snapshots go to, or None when off."""
    where = os.environ.get(HEAP_SNAPSHOTS_ENV)
    if not where:
        return None
    directory = Path(where)
    directory.mkdir(parents=True, exist_ok=True)
    if not tracemalloc.is_tracing():
        tracemalloc.start(FRAMES)
    taken = 0

    def take() -> None:
        nonlocal taken
        taken += 1
        path = directory / f"media-{os.getpid()}-{taken:03d}.heap"
        tracemalloc.take_snapshot().dump(str(path))
        log.warning("heap snapshot written to %s", path)

    loop.add_signal_handler(signal.SIGUSR2, take)
    return directory

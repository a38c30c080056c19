"""The media worker's cyclic garbage, collected once a minute.

An ended space leaves reference cycles behind (aiortc's peer connections, the codecs and
buffers around them) that hold far more native memory than Python objects: PyAV codec
contexts of ~200 KB, OpenSSL's DTLS state, numpy buffers. Python's collector sees only
the objects, and a generation-2 collection runs only once the survivors have grown by a
quarter of the long-lived heap: twice in 36 minutes of a soak, in which the worker grew
by 14 MB, all of it in glibc's arenas and in use. One full collection then freed 6,013
objects and 10 MB (docs/benchmarks.md, "Whose memory").

A full collection walks every tracked object, ~54,000 after the imports, and took 60 to
70 ms on a busy 2-core machine: long enough to make a 20 ms mixer tick late. So what
exists once the worker has started is frozen first (gc.freeze: never collected, never
walked), and a full collection then walks only what the spaces made, in a few ms.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Mapping

from majlis.plane import Sample

__all__ = ["EVERY_S", "GC_EVERY_ENV", "Collector", "collector_from_env"]

EVERY_S = 60.0
# For benchmarks only: seconds between collections, "0" for none (Python's own schedule),
# so that a soak can run both side by side (bench/soak.py --env).
GC_EVERY_ENV = "_MAJLIS_MEDIA_GC_EVERY_S"


class Collector:
    """Freezes the startup heap, then collects everything else every `every_s`."""

    def __init__(
        self,
        every_s: float = EVERY_S,
        collect: Callable[[], int] = gc.collect,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.every_s = every_s
        self._collect = collect
        self._timer = timer
        self.collections = 0
        self.seconds = 0.0  # spent collecting, in all
        self.longest_s = 0.0
        self.freed = 0  # unreachable objects found, in all

    def freeze_startup(self) -> None:
        """Everything alive now lives as long as the worker: out of every collection."""
        self._collect()  # not to freeze startup's own garbage
        gc.freeze()

    def collect(self) -> None:
        started = self._timer()
        self.freed += self._collect()
        took = self._timer() - started
        self.collections += 1
        self.seconds += took
        self.longest_s = max(self.longest_s, took)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            self.collect()

    def samples(self) -> list[Sample]:
        return [
            ("majlis_media_gc_collections_total", {}, float(self.collections)),
            ("majlis_media_gc_seconds_total", {}, self.seconds),
            ("majlis_media_gc_longest_seconds", {}, self.longest_s),
            ("majlis_media_gc_freed_total", {}, float(self.freed)),
            ("majlis_media_gc_frozen", {}, float(gc.get_freeze_count())),
        ]


def collector_from_env(environ: Mapping[str, str]) -> Collector | None:
    """The worker's collector; None where GC_EVERY_ENV turns it off."""
    text = environ.get(GC_EVERY_ENV, str(EVERY_S))
    try:
        every_s = float(text)
    except ValueError:
        raise ValueError(f"{GC_EVERY_ENV} must be a number of seconds, not {text!r}") from None
    return Collector(every_s) if every_s > 0 else None

"""Issue 13, R6: cycles an ended space leaves behind (holding codec contexts, DTLS state,
buffers) are collected within a minute, not whenever generation 2 next fills up."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import av
import pytest

from majlis.media.runtime.collector import EVERY_S, GC_EVERY_ENV, Collector, collector_from_env


class Space:
    """Stands for an ended space's objects: a cycle around a native resource."""

    def __init__(self) -> None:
        self.me = self
        self.codec = av.CodecContext.create("aac", "w")


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the test process goes on collecting as before


def test_a_cycle_that_grew_old_waits_for_a_full_collection() -> None:
    space = Space()
    gone = weakref.ref(space)
    gc.collect()  # alive while the space ran: promoted to the oldest generation
    del space
    gc.collect(1)  # what runs on its own, often
    assert gone() is not None
    collector = Collector()
    collector.collect()
    assert gone() is None
    assert collector.collections == 1
    assert collector.freed >= 1


def test_the_startup_heap_is_frozen_out_of_collections(unfrozen: None) -> None:
    before = len(gc.get_objects())
    Collector().freeze_startup()
    assert gc.get_freeze_count() >= before // 2
    assert len(gc.get_objects()) < before // 2  # what a full collection now walks


def test_its_samples_count_collections_and_their_time() -> None:
    ticks = iter([10.0, 10.004, 70.0, 70.010])
    found = iter([5, 7])
    collector = Collector(collect=lambda: next(found), timer=lambda: next(ticks))
    collector.collect()
    collector.collect()
    samples = {name: value for name, _, value in collector.samples()}
    assert samples["majlis_media_gc_collections_total"] == 2
    assert samples["majlis_media_gc_seconds_total"] == pytest.approx(0.014)
    assert samples["majlis_media_gc_longest_seconds"] == pytest.approx(0.010)
    assert samples["majlis_media_gc_freed_total"] == 12


def test_the_schedule_comes_from_the_environment_for_benchmarks() -> None:
    made = collector_from_env({})
    assert made is not None and made.every_s == EVERY_S
    assert collector_from_env({GC_EVERY_ENV: "0"}) is None  # Python's own schedule
    with pytest.raises(ValueError, match=GC_EVERY_ENV):
        collector_from_env({GC_EVERY_ENV: "often"})

"""Playlist Delta Updates (RFC 8216bis 6.2.5.1): the delta of every published snapshot
follows the rules, merges back into an earlier copy to give exactly the full playlist, and
stays the same size however long the space runs. Synthetic capture times throughout: no
test waits for the wall clock."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from majlis.media.audio import FRAME_SECONDS
from majlis.media.formats.encoder import AAC_FRAME_SAMPLES
from majlis.media.formats.fmp4 import TIMESCALE
from majlis.media.hls.feed import FeedSnapshot
from majlis.media.hls.packager import HlsPackager
from majlis.media.hls.playlist import MediaPlaylist, PlaylistPart, PlaylistSegment, PlaylistTiming

from . import hls_rules
from .audio_analysis import tone

T0 = 1_700_000_000.0
# A 1 kHz period is 48 samples and a mixer frame 960: every frame of the tone is the same.
FRAME = tone(1000, FRAME_SECONDS)
# Default layout: 10 AAC frames a part, 10 parts a segment (2.13 s), target duration 2.
PART_SECONDS = 10 * AAC_FRAME_SAMPLES / TIMESCALE
SKIP_BOUNDARY = 12.0  # six target durations
# A client asks for a delta only with a copy younger than half the boundary (6.3.7).
YOUNG_COPY_PARTS = int(SKIP_BOUNDARY / 2 / PART_SECONDS)
# Whatever the duration: header, skip tag, six segments, three target durations of parts.
DELTA_BOUND = 4096


def push_seconds(packager: HlsPackager, seconds: float, *, start: float) -> None:
    """Push `seconds` of tone captured from `start` on, as fast as the packager takes it."""
    for index in range(round(seconds / FRAME_SECONDS)):
        packager.push(FRAME, start + index * FRAME_SECONDS)
    assert packager.sync(timeout=300)


def record_publications(packager: HlsPackager) -> list[FeedSnapshot]:
    """Every snapshot the packager publishes from now on, in order."""
    published: list[FeedSnapshot] = []
    publish = packager.feed.publish

    def record(snapshot: FeedSnapshot) -> None:
        published.append(snapshot)
        publish(snapshot)

    packager.feed.publish = record  # type: ignore[method-assign]
    return published


def text(data: bytes | None) -> str:
    assert data is not None
    return data.decode()


def assert_deltas_merge_back(published: list[FeedSnapshot]) -> int:
    """Each delta, merged into copies 1 part, 10 parts and half the skip boundary older,
    gives exactly the full playlist of its snapshot. Returns how many deltas there were."""
    deltas = 0
    for index, snapshot in enumerate(published):
        if snapshot.delta is None:
            continue
        deltas += 1
        for lag in (1, 10, YOUNG_COPY_PARTS):
            if index >= lag:
                merged = hls_rules.merge_delta(
                    text(published[index - lag].playlist), text(snapshot.delta)
                )
                assert merged == text(snapshot.playlist), f"snapshot {index}, copy {lag} older"
    return deltas


def test_every_delta_follows_the_rules_and_merges_back(tmp_path: Path) -> None:
    packager = HlsPackager(tmp_path, space_started_at=T0)
    published = record_publications(packager)
    push_seconds(packager, 40.0, start=T0)

    first_delta: FeedSnapshot | None = None
    for snapshot in published:
        full = hls_rules.check(text(snapshot.playlist), ended=False)
        assert full.skipped is None
        assert full.attribute("EXT-X-SERVER-CONTROL", "CAN-SKIP-UNTIL") == "12"
        if snapshot.delta is None:
            # Nothing to skip yet: every complete segment but the oldest fits in 12 s.
            assert sum(segment.duration or 0.0 for segment in full.complete[1:]) <= SKIP_BOUNDARY
            continue
        first_delta = first_delta or snapshot
        delta = hls_rules.check(text(snapshot.delta), ended=False)
        assert delta.skipped and full.uris()[delta.skipped :] == delta.uris()
        # what follows the skip is the full playlist's tail, byte for byte
        last_skipped = full.complete[delta.skipped - 1].uri
        tail = text(snapshot.playlist).split(f"\n{last_skipped}\n", 1)[1]
        assert text(snapshot.delta).endswith(tail)
    assert first_delta is not None
    assert first_delta.complete_msn == 6  # seven segments: the oldest ends 12.8 s before the end
    assert assert_deltas_merge_back(published) > 100

    latest = published[-1]
    with pytest.raises(AssertionError, match="reload in full"):
        hls_rules.merge_delta(text(published[0].playlist), text(latest.delta))
    packager.end()
    assert packager.feed.snapshot().delta is None  # ended: _HLS_skip is ignored


def test_a_skipped_discontinuity_merges_back(tmp_path: Path) -> None:
    """A resumed recording: the EXT-X-DISCONTINUITY of the new life goes with its segment
    when that is skipped, and is kept when that segment is the first one listed."""
    first = HlsPackager(tmp_path, space_started_at=T0)
    push_seconds(first, 7.0, start=T0)
    first.close()
    second = HlsPackager(tmp_path, space_started_at=T0)
    published = record_publications(second)
    push_seconds(second, 24.0, start=T0 + 10)
    second.end()

    full = hls_rules.parse(text(published[-2].playlist))
    new_life = [segment.discontinuity for segment in full.complete].index(True)
    skips = set()
    for snapshot in published:
        if snapshot.delta is not None:
            delta = hls_rules.check(text(snapshot.delta), ended=False)
            assert delta.skipped is not None
            skips.add(delta.skipped)
            # the new life's segment listed first keeps its EXT-X-DISCONTINUITY
            assert delta.segments[0].discontinuity == (delta.skipped == new_life)
    assert new_life in skips and max(skips) > new_life + 1
    assert assert_deltas_merge_back(published) > 20


@dataclass
class Sizes:
    full: int
    delta: int


def test_a_long_recording_keeps_the_delta_small(tmp_path: Path) -> None:
    """Ten minutes pushed through the packager: the full playlist grows with the duration,
    the delta does not."""
    packager = HlsPackager(tmp_path, space_started_at=T0)
    # By complete_msn, the snapshot published as that segment completed: no parts open.
    sizes: dict[int, Sizes] = {}
    publish = packager.feed.publish

    def measure(snapshot: FeedSnapshot) -> None:
        delta = len(snapshot.delta) if snapshot.delta is not None else 0
        sizes.setdefault(snapshot.complete_msn, Sizes(len(snapshot.playlist), delta))
        publish(snapshot)

    packager.feed.publish = measure  # type: ignore[method-assign]
    push_seconds(packager, 600.0, start=T0)
    before = packager.feed.snapshot()

    one_minute, ten_minutes = sizes[28], sizes[max(sizes)]
    print(f"\nafter 1 min: full {one_minute.full} B, delta {one_minute.delta} B")
    print(f"after 10 min: full {ten_minutes.full} B, delta {ten_minutes.delta} B")
    assert max(size.delta for size in sizes.values()) <= DELTA_BOUND
    # only the digits of larger sequence numbers and dates may add a few bytes
    assert ten_minutes.delta - one_minute.delta < 64
    assert ten_minutes.full > 5 * one_minute.full
    assert ten_minutes.full > 6 * ten_minutes.delta

    push_seconds(packager, 1.0, start=T0 + 600)
    after = packager.feed.snapshot()
    hls_rules.check(text(after.delta), ended=False)
    merged = hls_rules.merge_delta(text(before.playlist), text(after.delta))
    assert merged == text(after.playlist)
    packager.end()


class SyntheticSpace:
    """Drives the playlist renderer the way the packager does, without encoding audio:
    enough to reach three hours in a second."""

    PARTS = 10

    def __init__(self) -> None:
        timing = PlaylistTiming(target_duration=2, part_target=PART_SECONDS)
        self.playlist = MediaPlaylist(timing, map_uri="init.mp4")
        self.msn = 0

    def run(self, seconds: float, *, sample: Callable[[int], None]) -> None:
        """Add segments for `seconds`, calling sample(part) at each part of the last one."""
        segments = round(seconds / (self.PARTS * PART_SECONDS))
        for _ in range(segments - 1):
            self.add_segment(lambda _: None)
        self.add_segment(sample)

    def add_segment(self, at_part: Callable[[int], None]) -> None:
        start = T0 + self.msn * self.PARTS * PART_SECONDS
        for index in range(self.PARTS):
            self.playlist.set_open_segment(self.segment(start, index + 1, complete=False))
            following = (self.msn, index + 1) if index + 1 < self.PARTS else (self.msn + 1, 0)
            self.playlist.set_preload_hint(f"p1-{following[0]}-{following[1]}.m4s")
            at_part(index)
        self.playlist.append_segment(self.segment(start, self.PARTS, complete=True))
        self.playlist.set_open_segment(None)
        self.msn += 1

    def segment(self, start: float, parts: int, *, complete: bool) -> PlaylistSegment:
        return PlaylistSegment(
            uri=f"s{self.msn}.m4s" if complete else None,
            duration=parts * PART_SECONDS,
            program_date_time=start,
            discontinuity=False,
            parts=tuple(PlaylistPart(f"p1-{self.msn}-{i}.m4s", PART_SECONDS) for i in range(parts)),
        )


def test_three_hours_of_playlist_keep_the_delta_small() -> None:
    space = SyntheticSpace()
    renders: dict[str, list[tuple[str, str]]] = {"10 min": [], "3 h": []}

    def render(label: str) -> Callable[[int], None]:
        def at_part(_: int) -> None:
            delta = space.playlist.render_delta()
            assert delta is not None
            renders[label].append((space.playlist.render_live(), delta))

        return at_part

    space.run(600.0, sample=render("10 min"))
    space.run(3 * 3600.0 - 600.0, sample=render("3 h"))

    for label, rendered in renders.items():
        full, delta = rendered[-1]
        print(f"\n{label}: full {len(full.encode())} B, delta {len(delta.encode())} B")
        assert max(len(delta) for _, delta in rendered) <= DELTA_BOUND
    ten_minutes_full, ten_minutes_delta = renders["10 min"][-1]
    three_hours_full, three_hours_delta = renders["3 h"][-1]
    assert len(three_hours_full) > 15 * len(ten_minutes_full)
    assert len(three_hours_delta) - len(ten_minutes_delta) < 64
    hls_rules.check(three_hours_full, ended=False)
    hls_rules.check(three_hours_delta, ended=False)
    copy = renders["3 h"][0][0]  # nine parts older
    assert hls_rules.merge_delta(copy, three_hours_delta) == three_hours_full


def test_an_hour_of_playlist_holds_little_per_segment() -> None:
    """A segment that has left the part window keeps its text and its duration, not its
    parts: a space live for hours must not hold the name of every part it ever had."""
    space = SyntheticSpace()

    def render(part: int) -> None:
        if part == SyntheticSpace.PARTS - 1:
            space.playlist.render_live()

    space.run(60.0, sample=render)
    segments = round(3600.0 / (SyntheticSpace.PARTS * PART_SECONDS))
    tracemalloc.start()
    try:
        gc.collect()  # empties the free lists, which tracemalloc counts as held
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(segments):
            space.add_segment(render)
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    per_segment = (held - before) / segments
    print(f"\n{segments} segments: {per_segment:.0f} B held per segment")
    # Its text (about 90 B), its object, its URI and list slot; ten parts would add 1 KB.
    assert per_segment < 500


def test_no_delta_until_a_segment_is_past_the_boundary() -> None:
    space = SyntheticSpace()
    deltas: list[str | None] = []

    def at_part(_: int) -> None:
        deltas.append(space.playlist.render_delta())

    for _ in range(7):
        space.add_segment(at_part)
    # six complete segments (12.8 s) during the seventh: s0 ends 10.67 s before the end
    assert all(delta is None for delta in deltas)
    space.add_segment(at_part)  # seven complete during the eighth: s0 ends 12.8 s before
    assert all(delta is not None and "SKIPPED-SEGMENTS=1\n" in delta for delta in deltas[70:])
    space.playlist.end()
    assert space.playlist.render_delta() is None

"""The LL-HLS media playlist of a space: model and renderer (RFC 8216bis).

It is an EVENT playlist: every segment ever listed stays listed, so the playlist is the
recording's index and, once EXT-X-ENDLIST is appended, its replay. Three renderings exist:

- live: with EXT-X-SERVER-CONTROL, EXT-X-PART-INF, EXT-X-PART lines for the last three
  target durations plus the segment in progress, and an EXT-X-PRELOAD-HINT;
- delta: the live one with the segments older than the skip boundary replaced by one
  EXT-X-SKIP tag (Playlist Delta Update, RFC 8216bis 6.2.5.1), the answer to _HLS_skip;
  its size depends on the boundary, not on how long the space has run;
- recording: the durable file on disk, complete segments only.

Once ended live and recording are the same: no parts, hints, blocking or deltas (nothing
changes any more). Segments that have left the part window never render differently
again, so their text is cached and each live render only formats the tail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime

__all__ = [
    "DELTA_PLAYLIST_VERSION",
    "PLAYLIST_VERSION",
    "MediaPlaylist",
    "PlaylistPart",
    "PlaylistSegment",
    "PlaylistTiming",
    "format_date_time",
]

# EXT-X-MAP without EXT-X-I-FRAMES-ONLY needs version 6 (RFC 8216bis section 8). Nothing
# else in a full playlist (parts, hints, server control with CAN-SKIP-UNTIL, program date
# time) raises it, and a server SHOULD NOT claim more than it needs (6.2.1).
PLAYLIST_VERSION = 6
# Section 8 ties version 9 to the EXT-X-SKIP tag itself, so only delta updates carry it
# (10 would be for skipping EXT-X-DATERANGE tags, which we never list).
DELTA_PLAYLIST_VERSION = 9
# CAN-SKIP-UNTIL in target durations: the least 4.4.3.8 allows. A nearer boundary makes
# every delta smaller; clients ask for deltas only while their copy is younger than half of
# it (6.3.7), which a client following blocking reloads always is.
SKIP_BOUNDARY_TARGET_DURATIONS = 6
# Parts stay listed for segments within this many target durations of the live edge.
PART_WINDOW_TARGET_DURATIONS = 3


@dataclass(frozen=True, slots=True)
class PlaylistPart:
    uri: str
    duration: float


@dataclass(frozen=True, slots=True)
class PlaylistSegment:
    """A media segment; uri is None while it is still being produced (parts only)."""

    uri: str | None
    duration: float
    program_date_time: float
    discontinuity: bool
    parts: tuple[PlaylistPart, ...]


@dataclass(frozen=True, slots=True)
class PlaylistTiming:
    target_duration: int
    part_target: float

    @property
    def part_target_text(self) -> str:
        # Rounded up so that no part, printed rounded to nearest, exceeds it.
        return _ceil_decimal(self.part_target, 5)

    @property
    def part_hold_back_text(self) -> str:
        # Three part targets: the SHOULD of RFC 8216bis 4.4.3.8 (the MUST is two).
        return _ceil_decimal(3 * float(self.part_target_text), 3)

    @property
    def hold_back(self) -> int:
        return 3 * self.target_duration

    @property
    def can_skip_until(self) -> int:
        return SKIP_BOUNDARY_TARGET_DURATIONS * self.target_duration


class MediaPlaylist:
    """Mutable playlist state; single writer (the packager thread)."""

    def __init__(self, timing: PlaylistTiming, *, map_uri: str, media_sequence: int = 0) -> None:
        self._timing = timing
        self._map_uri = map_uri
        self._media_sequence = media_sequence
        self._segments: list[PlaylistSegment] = []
        self._open: PlaylistSegment | None = None
        self._hint: str | None = None
        self._ended = False
        # Rendered text of segments that left the part window, and how many they are.
        self._frozen_text: list[str] = []
        self._frozen_count = 0

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def segment_count(self) -> int:
        return len(self._segments)

    def append_segment(self, segment: PlaylistSegment) -> None:
        if segment.uri is None:
            raise ValueError("a complete segment needs a URI")
        if self._ended:
            raise ValueError("the playlist has ended")
        self._segments.append(segment)

    def set_open_segment(self, segment: PlaylistSegment | None) -> None:
        """The segment in progress (parts so far), or None between segments."""
        self._open = segment

    def set_preload_hint(self, uri: str | None) -> None:
        self._hint = uri

    def end(self) -> None:
        self._ended = True
        self._open = None
        self._hint = None

    def render_live(self) -> str:
        if self._ended:
            return self.render_recording()
        window_start = self._advance_part_window()
        return "".join(self._header(live=True) + self._live_lines(0, window_start))

    def render_delta(self) -> str | None:
        """The Playlist Delta Update of render_live(), or None when the full playlist is the
        answer: once ended (6.2.5.1: _HLS_skip is then ignored) or while no segment is old
        enough to skip (a delta would only add the EXT-X-SKIP line)."""
        if self._ended:
            return None
        window_start = self._advance_part_window()
        # Skippable segments end six target durations or more before the edge, far outside
        # the part window (three), so their text is frozen; min() keeps that true should
        # either window change.
        skipped = min(self._skippable_count(), window_start)
        if skipped == 0:
            return None
        lines = self._header(live=True, version=DELTA_PLAYLIST_VERSION)
        # EXT-X-MAP stays above the skip, where it applies to every segment after it
        # (4.4.4.5); what the skip replaces is only the skipped segments' own tags
        # (4.4.5.2), and each listed segment keeps its EXT-X-PROGRAM-DATE-TIME and
        # EXT-X-DISCONTINUITY. No EXT-X-DISCONTINUITY-SEQUENCE is added: skipping does not
        # change it (4.4.5.2), and the full playlist has none.
        lines.append(f"#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}\n")
        return "".join(lines + self._live_lines(skipped, window_start))

    def render_recording(self) -> str:
        lines = self._header(live=False)
        # Frozen segments already render without parts: reuse their text.
        lines += self._frozen_text
        tail = self._segments[self._frozen_count :]
        lines += [_segment_text(seg, with_parts=False) for seg in tail]
        if self._ended:
            lines.append("#EXT-X-ENDLIST\n")
        return "".join(lines)

    def _header(self, *, live: bool, version: int = PLAYLIST_VERSION) -> list[str]:
        lines = [
            "#EXTM3U\n",
            f"#EXT-X-VERSION:{version}\n",
            f"#EXT-X-TARGETDURATION:{self._timing.target_duration}\n",
        ]
        if live:
            lines += [
                "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,"
                f"CAN-SKIP-UNTIL={self._timing.can_skip_until},"
                f"PART-HOLD-BACK={self._timing.part_hold_back_text},"
                f"HOLD-BACK={self._timing.hold_back}\n",
                f"#EXT-X-PART-INF:PART-TARGET={self._timing.part_target_text}\n",
            ]
        lines += [
            "#EXT-X-PLAYLIST-TYPE:EVENT\n",
            f"#EXT-X-MEDIA-SEQUENCE:{self._media_sequence}\n",
            "#EXT-X-INDEPENDENT-SEGMENTS\n",
            f'#EXT-X-MAP:URI="{self._map_uri}"\n',
        ]
        return lines

    def _live_lines(self, start: int, window_start: int) -> list[str]:
        """Text of the segments from index start on (start <= window_start), then the
        segment in progress and the preload hint."""
        lines = self._frozen_text[start:]
        lines += [_segment_text(seg, with_parts=True) for seg in self._segments[window_start:]]
        if self._open is not None and self._open.parts:
            lines.append(_segment_text(self._open, with_parts=True))
        if self._hint is not None:
            lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{self._hint}"\n')
        return lines

    def _advance_part_window(self) -> int:
        """Freeze what has left the part window; return the window's first index."""
        window_start = self._part_window_start()
        self._freeze_until(window_start)
        return window_start

    def _skippable_count(self) -> int:
        """How many leading segments a delta replaces: those that end more than the skip
        boundary before the end of the last complete segment, which is "the end of the
        last (Parent) Media Segment" of 6.2.5.1. Measuring to a segment's end, not its
        start, keeps every skipped second beyond the boundary."""
        boundary = self._timing.can_skip_until
        index = len(self._segments) - 1
        after = 0.0  # duration of the segments after `index`
        while index >= 0 and after <= boundary:
            after += self._segments[index].duration
            index -= 1
        return index + 1

    def _part_window_start(self) -> int:
        """Index of the oldest complete segment whose parts are still listed."""
        horizon = PART_WINDOW_TARGET_DURATIONS * self._timing.target_duration
        covered = self._open.duration if self._open is not None else 0.0
        index = len(self._segments)
        while index > self._frozen_count and covered < horizon:
            index -= 1
            covered += self._segments[index].duration
        return index

    def _freeze_until(self, index: int) -> None:
        while self._frozen_count < index:
            segment = self._segments[self._frozen_count]
            self._frozen_text.append(_segment_text(segment, with_parts=False))
            # Its parts are never listed again; a space that runs for hours would otherwise
            # hold every part's name (1.2 KB a segment, most of what the worker's Python
            # heap gained in an hour's soak).
            self._segments[self._frozen_count] = replace(segment, parts=())
            self._frozen_count += 1


def format_date_time(timestamp: float) -> str:
    """ISO 8601 UTC with milliseconds and a 'Z', as EXT-X-PROGRAM-DATE-TIME wants."""
    millis = round(timestamp * 1000)
    moment = datetime.fromtimestamp(millis // 1000, tz=UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis % 1000:03d}Z"


def _segment_text(segment: PlaylistSegment, *, with_parts: bool) -> str:
    lines: list[str] = []
    if segment.discontinuity:
        lines.append("#EXT-X-DISCONTINUITY\n")
    lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{format_date_time(segment.program_date_time)}\n")
    if with_parts:
        lines += [
            f'#EXT-X-PART:DURATION={_decimal(part.duration)},URI="{part.uri}",INDEPENDENT=YES\n'
            for part in segment.parts
        ]
    if segment.uri is not None:
        lines.append(f"#EXTINF:{_decimal(segment.duration)},\n{segment.uri}\n")
    return "".join(lines)


def _decimal(seconds: float) -> str:
    return f"{seconds:.5f}"


def _ceil_decimal(value: float, places: int) -> str:
    scale = 10**places
    # The small epsilon keeps an exact value (0.2 * 3) from being pushed up a step.
    return f"{math.ceil(value * scale - 1e-9) / scale:.{places}f}"

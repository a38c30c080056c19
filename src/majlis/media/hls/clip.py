"""Clips: a stretch of a space's recording as one classic .m4a, cut without re-encoding.

A clip is named by a range on the recording's clock: seconds from an origin, the wall
time of the first listed segment's EXT-X-PROGRAM-DATE-TIME. The playlist says which
segments hold the range, their PDTs say where each AAC frame sits (a segment's k-th frame
at PDT + k * 1024 / 48000, its fragments counted together), and the clip is remuxed like
the replay (replay.py): ftyp, a moov with full sample tables, one mdat.

Frames are whole 1024-sample units, so a clip holds every frame that overlaps its range,
plus the frame before as pre-roll: AAC overlaps each frame with the previous one, and a
decoder that starts cold makes the first frame's output wrong. The edit list skips the
pre-roll and the part of the first frame before the range, and presents exactly the
range's length, so the file lasts what was asked, to the sample.

Between two lives of the packager the PDTs jump over the downtime; like the replay, the
clip fills it with frames of silence, so its clock stays the wall clock.

The first segment's PDT is the time of its first sample, which is the encoder's priming
frame: the first captured sample is 1024 samples (21.3 ms) later. The replay hides that
frame, so replay position p is wall time origin + priming + p; a caller who wants a clip
to match the replay to the sample passes origin + priming / 48000 to cut_clip.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import accumulate

from majlis.media.formats.encoder import silent_frame
from majlis.media.formats.fmp4 import (
    SAMPLE_DURATION,
    TIMESCALE,
    Mp4FormatError,
    SampleTables,
    iter_boxes,
    parse_fragments,
)
from majlis.media.hls.replay import classic_start

__all__ = [
    "ClipRangeError",
    "ListedSegment",
    "Listing",
    "audio_specific_config",
    "cut_clip",
    "parse_listing",
    "segments_for",
]

# PDTs are printed to the millisecond and EXTINFs to 10 us, so a range computed from them
# (the last ten seconds, say) may end a hair past the listed end.
_SLACK_SECONDS = 0.001
_SLACK_SAMPLES = round(_SLACK_SECONDS * TIMESCALE)

# Where the children of these boxes start, past their own fields (ISO/IEC 14496-12):
# stsd has version/flags and an entry count, an AudioSampleEntry 28 bytes of fields, esds
# version/flags before its ES_Descriptor.
_STSD_FIELDS = 8
_AUDIO_SAMPLE_ENTRY_FIELDS = 28
_ESDS_FIELDS = 4
_SAMPLE_TABLE_PATH = (b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd")

# MPEG-4 systems descriptors (ISO/IEC 14496-1 7.2.6).
_ES_DESCRIPTOR = 0x03
_DECODER_CONFIG = 0x04
_DECODER_SPECIFIC_INFO = 0x05
_DECODER_CONFIG_FIELDS = 13
_STREAM_DEPENDENCE = 0x80
_URL = 0x40
_OCR_STREAM = 0x20


class ClipRangeError(ValueError):
    """A clip range that the recording (or the segments given) does not hold."""


@dataclass(frozen=True, slots=True)
class ListedSegment:
    uri: str
    start: float  # wall clock (Unix seconds) of its first sample: EXT-X-PROGRAM-DATE-TIME
    duration: float  # EXTINF

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass(frozen=True, slots=True)
class Listing:
    """What a recording's media playlist says about cutting it."""

    init_uri: str
    segments: tuple[ListedSegment, ...]
    ended: bool

    @property
    def origin(self) -> float:
        """Wall time of position 0."""
        return self.segments[0].start

    @property
    def length(self) -> float:
        return self.segments[-1].end - self.origin


# --- the playlist ----------------------------------------------------------------------


def parse_listing(playlist: bytes) -> Listing:
    """The complete segments of a media playlist, live or ended; parts, hints and the
    segment in progress are left out. ValueError says why a playlist cannot be cut."""
    try:
        text = playlist.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the playlist is not UTF-8 text") from None
    lines = text.splitlines()
    if not lines or lines[0].strip() != "#EXTM3U":
        raise ValueError("not an HLS playlist: it does not start with #EXTM3U")
    reader = _PlaylistReader()
    for line in lines[1:]:
        reader.read(line.strip())
    return reader.listing()


@dataclass(slots=True)
class _PlaylistReader:
    init_uri: str | None = None
    segments: list[ListedSegment] = field(default_factory=list)
    ended: bool = False
    # tags seen since the last URI, which belong to the next one
    start: float | None = None
    duration: float | None = None

    def read(self, line: str) -> None:
        if not line:
            return
        if not line.startswith("#"):
            self._segment(line)
            return
        name, _, value = line[1:].partition(":")
        handler = self._handlers().get(name)
        if handler is not None:
            handler(value)

    def listing(self) -> Listing:
        if self.init_uri is None:
            raise ValueError("the playlist has no EXT-X-MAP: no init segment to cut with")
        if not self.segments:
            raise ValueError("the playlist lists no complete segment yet")
        return Listing(self.init_uri, tuple(self.segments), self.ended)

    def _handlers(self) -> dict[str, Callable[[str], None]]:
        return {
            "EXT-X-MAP": self._map,
            "EXT-X-PROGRAM-DATE-TIME": self._date_time,
            "EXTINF": self._duration,
            "EXT-X-ENDLIST": self._end,
            "EXT-X-SKIP": _refuse_delta,
            "EXT-X-BYTERANGE": _refuse_byte_range,
        }

    def _map(self, value: str) -> None:
        self.init_uri = _quoted_attribute(value, "URI")

    def _date_time(self, value: str) -> None:
        self.start = _wall_clock(value)

    def _duration(self, value: str) -> None:
        text = value.partition(",")[0]
        try:
            seconds = float(text)
        except ValueError:
            raise ValueError(f"EXTINF {text[:20]!r} is not a number of seconds") from None
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"EXTINF {text[:20]!r} is not a duration")
        self.duration = seconds

    def _end(self, _: str) -> None:
        self.ended = True

    def _segment(self, uri: str) -> None:
        if self.duration is None:
            raise ValueError(f"segment {uri[:64]!r} has no EXTINF")
        # Our playlists date every segment; deriving a missing date would be wrong after
        # a discontinuity, so there is no guessing.
        if self.start is None:
            raise ValueError(f"segment {uri[:64]!r} has no EXT-X-PROGRAM-DATE-TIME")
        self.segments.append(ListedSegment(uri, self.start, self.duration))
        self.start = None
        self.duration = None


def _refuse_delta(_: str) -> None:
    raise ValueError("a delta update leaves out the oldest segments: ask for the full playlist")


def _refuse_byte_range(_: str) -> None:
    raise ValueError("EXT-X-BYTERANGE segments are not ours: cannot cut them")


def _quoted_attribute(value: str, name: str) -> str:
    for item in value.split(","):
        key, _, quoted = item.partition("=")
        if key.strip() == name and len(quoted) >= 2 and quoted[0] == quoted[-1] == '"':
            return quoted[1:-1]
    raise ValueError(f"{name} is missing from {value[:64]!r}")


def _wall_clock(value: str) -> float:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"EXT-X-PROGRAM-DATE-TIME {value[:40]!r} is not a date") from None
    if moment.tzinfo is None:
        raise ValueError(f"EXT-X-PROGRAM-DATE-TIME {value[:40]!r} has no time zone")
    return moment.timestamp()


def segments_for(listing: Listing, start: float, duration: float) -> list[ListedSegment]:
    """The segments to fetch for a clip of [start, start + duration) on the listing's
    clock: those that overlap it, the one before (its last frame is the pre-roll), and,
    should the range end in the downtime between two lives, the one after (its date says
    where the silence ends)."""
    _check_range(start, duration, listing.length)
    begin = listing.origin + start
    end = begin + duration
    segments = listing.segments
    first = next((i for i, segment in enumerate(segments) if segment.end > begin), None)
    if first is None:
        raise ClipRangeError(f"{start:.1f} s is at the end: nothing is recorded after it")
    stop = next((i for i, segment in enumerate(segments) if segment.start >= end), len(segments))
    if stop < len(segments) and segments[stop - 1].end < end - _SLACK_SECONDS:
        stop += 1
    return list(segments[max(first - 1, 0) : stop])


def _check_range(start: float, duration: float, length: float | None) -> None:
    if not (math.isfinite(start) and math.isfinite(duration)):
        raise ClipRangeError("a clip's start and duration must be numbers of seconds")
    if start < 0:
        raise ClipRangeError(f"a clip cannot start before the recording (start {start:g} s)")
    if duration <= 0:
        raise ClipRangeError(f"a clip must last more than 0 s, not {duration:g} s")
    if length is not None and start + duration > length + _SLACK_SECONDS:
        raise ClipRangeError(
            f"{start:.1f}-{start + duration:.1f} s is past the end: "
            f"the recording holds 0-{length:.1f} s"
        )


# --- the init segment ------------------------------------------------------------------


def audio_specific_config(init: bytes) -> bytes:
    """The AudioSpecificConfig in init.mp4: stsd -> mp4a -> esds -> DecoderSpecificInfo."""
    start, end = 0, len(init)
    for kind in _SAMPLE_TABLE_PATH:
        start, end = _child(init, start, end, kind)
    start, end = _child(init, start + _STSD_FIELDS, end, b"mp4a")
    start, end = _child(init, start + _AUDIO_SAMPLE_ENTRY_FIELDS, end, b"esds")
    start, end = _only_descriptor(init, start + _ESDS_FIELDS, end, _ES_DESCRIPTOR)
    start, end = _find_descriptor(init, _es_fields_end(init, start, end), end, _DECODER_CONFIG)
    start, end = _find_descriptor(init, start + _DECODER_CONFIG_FIELDS, end, _DECODER_SPECIFIC_INFO)
    return init[start:end]


def _child(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int]:
    for found, payload, stop in iter_boxes(data, start, end):
        if found == kind:
            return payload, stop
    raise Mp4FormatError(f"the init segment has no {kind.decode('latin-1')} box where expected")


def _es_fields_end(data: bytes, start: int, end: int) -> int:
    """Past ES_ID, the flags and the optional fields they announce (14496-1 7.2.6.5)."""
    if end - start < 3:
        raise Mp4FormatError("the ES_Descriptor is truncated")
    flags = data[start + 2]
    position = start + 3
    if flags & _STREAM_DEPENDENCE:
        position += 2
    if flags & _URL:
        if position >= end:
            raise Mp4FormatError("the ES_Descriptor's URL is truncated")
        position += 1 + data[position]
    if flags & _OCR_STREAM:
        position += 2
    return position


def _find_descriptor(data: bytes, start: int, end: int, tag: int) -> tuple[int, int]:
    position = start
    while position < end:
        found, body, stop = _descriptor(data, position, end)
        if found == tag:
            return body, stop
        position = stop
    raise Mp4FormatError(f"the esds has no descriptor with tag {tag:#04x}")


def _only_descriptor(data: bytes, start: int, end: int, tag: int) -> tuple[int, int]:
    found, body, stop = _descriptor(data, start, end)
    if found != tag:
        raise Mp4FormatError(f"the esds starts with tag {found:#04x}, not {tag:#04x}")
    return body, stop


def _descriptor(data: bytes, start: int, end: int) -> tuple[int, int, int]:
    """(tag, body start, body end): the size is 7 bits a byte, high bit = more follow."""
    if start >= end:
        raise Mp4FormatError("a descriptor is truncated")
    tag = data[start]
    size = 0
    position = start + 1
    for _ in range(4):
        if position >= end:
            raise Mp4FormatError("a descriptor's size is truncated")
        byte = data[position]
        position += 1
        size = (size << 7) | (byte & 0x7F)
        if not byte & 0x80:
            break
    if position + size > end:
        raise Mp4FormatError(f"descriptor {tag:#04x} overruns its container")
    return tag, position, position + size


# --- the cut ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Run:
    """Frames back to back on the clip's clock: one fragment's, or a stretch of silence."""

    position: int  # samples from the origin to the first frame
    count: int
    data: bytes  # the fragment's frames back to back, or the one silent frame
    sizes: tuple[int, ...]  # each frame's size; empty for silence

    def overlapping(self, begin: int, end: int) -> range:
        """Indices of the frames that overlap samples [begin, end)."""
        first = max(0, (begin - self.position) // SAMPLE_DURATION)
        stop = min(self.count, -((self.position - end) // SAMPLE_DURATION))
        return range(first, max(first, stop))

    def frames(self, indices: range) -> list[bytes]:
        if not self.sizes:
            return [self.data] * len(indices)
        offsets = list(accumulate(self.sizes, initial=0))
        return [self.data[offsets[i] : offsets[i + 1]] for i in indices]


@dataclass(frozen=True, slots=True)
class _Chunk:
    position: int
    frames: list[bytes]


def cut_clip(
    init: bytes,
    segments: Sequence[tuple[ListedSegment, bytes]],
    origin: float,
    start: float,
    duration: float,
) -> bytes:
    """The .m4a of [start, start + duration) seconds after origin (wall clock), from the
    segments segments_for chose, in playlist order, with their bytes."""
    _check_range(start, duration, None)
    first = round(start * TIMESCALE)
    wanted = round(duration * TIMESCALE)
    runs = _timeline(segments, origin)
    # One frame more at the front: the pre-roll.
    chunks = _chunks(runs, first - SAMPLE_DURATION, first + wanted)
    if not chunks or chunks[0].position > first + _SLACK_SAMPLES:
        raise ClipRangeError(f"the segments given do not hold {start:g} s")
    skip = max(0, first - chunks[0].position)
    available = sum(len(chunk.frames) for chunk in chunks) * SAMPLE_DURATION - skip
    if available <= 0:
        raise ClipRangeError(f"the segments given end before {start:g} s")
    return _file(audio_specific_config(init), chunks, skip, min(wanted, available))


def _timeline(segments: Sequence[tuple[ListedSegment, bytes]], origin: float) -> list[_Run]:
    """Every frame of the segments on the clip's clock. The first segment is placed by its
    date, on the grid of whole frames from the origin; the rest follow back to back, as in
    the replay: where a date jumps ahead (a new life after downtime) frames of silence
    fill the jump, and where it steps back (a handover's overlap) nothing is dropped."""
    runs: list[_Run] = []
    silence: bytes | None = None
    position: int | None = None
    for listed, data in segments:
        dated = round((listed.start - origin) * TIMESCALE)
        if position is None:
            # The first life's frames are on that grid: snapping undoes the millisecond
            # rounding of the date. A later life's are not, and, as in the replay, move by
            # half a frame at most.
            position = round(dated / SAMPLE_DURATION) * SAMPLE_DURATION
        gap = round((dated - position) / SAMPLE_DURATION)
        if gap > 0:
            # A frame of silence decodes to silence whatever bit rate the recording used:
            # the AudioSpecificConfig does not carry the bit rate.
            silence = silence or silent_frame()
            runs.append(_Run(position, gap, silence, ()))
            position += gap * SAMPLE_DURATION
        for fragment in parse_fragments(data):
            frames = data[fragment.data_start : fragment.end]
            runs.append(_Run(position, fragment.sample_count, frames, fragment.sample_sizes))
            position += fragment.sample_count * SAMPLE_DURATION
    return runs


def _chunks(runs: Sequence[_Run], begin: int, end: int) -> list[_Chunk]:
    """The frames that overlap samples [begin, end), one chunk per run they come from."""
    chunks: list[_Chunk] = []
    for run in runs:
        indices = run.overlapping(begin, end)
        if indices:
            position = run.position + indices.start * SAMPLE_DURATION
            chunks.append(_Chunk(position, run.frames(indices)))
    return chunks


def _file(asc: bytes, chunks: Sequence[_Chunk], skip: int, play: int) -> bytes:
    sizes = [len(frame) for chunk in chunks for frame in chunk.frames]
    chunk_bytes = [sum(map(len, chunk.frames)) for chunk in chunks]
    tables = SampleTables(
        sample_sizes=sizes,
        chunk_sample_counts=[len(chunk.frames) for chunk in chunks],
        chunk_offsets=list(accumulate(chunk_bytes[:-1], initial=0)),
    )
    head = classic_start(asc, tables, skip_samples=skip, play_samples=play)
    return head + b"".join(frame for chunk in chunks for frame in chunk.frames)

"""Rule checks for our LL-HLS media playlists (RFC 8216bis), plus a cross-check with the
`m3u8` package, a parser we did not write, and merge_delta: the client side of Playlist
Delta Updates, done the way a player does it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

import m3u8

PDT_FORMAT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
SEGMENT_URI = re.compile(r"s(\d+)\.m4s")
# Tags that apply to the next media segment (or part); all others belong to the header.
SEGMENT_TAGS = frozenset({"EXTINF", "EXT-X-PROGRAM-DATE-TIME", "EXT-X-DISCONTINUITY", "EXT-X-PART"})
# Section 8: EXT-X-MAP needs 6, EXT-X-SKIP 9; 6.2.1: a server SHOULD NOT claim more.
FULL_VERSION = 6
DELTA_VERSION = 9
# 4.4.3.8: CAN-SKIP-UNTIL is at least six target durations.
SKIP_BOUNDARY_TARGET_DURATIONS = 6
# EXTINF prints five decimals, so a sum of a few segments is this close to the real one.
ROUNDING = 1e-4


@dataclass
class Part:
    uri: str
    duration: float


@dataclass
class Segment:
    uri: str | None
    duration: float | None
    pdt: str | None
    discontinuity: bool
    parts: list[Part] = field(default_factory=list)

    @property
    def pdt_seconds(self) -> float:
        if self.pdt is None:
            raise AssertionError("segment has no program date time")
        return datetime.fromisoformat(self.pdt.replace("Z", "+00:00")).timestamp()


@dataclass
class Playlist:
    tags: dict[str, str]
    segments: list[Segment]
    hints: list[str]
    ended: bool
    # SKIPPED-SEGMENTS of the EXT-X-SKIP tag of a delta update; None in a full playlist.
    skipped: int | None = None

    @property
    def complete(self) -> list[Segment]:
        return [segment for segment in self.segments if segment.uri is not None]

    def uris(self) -> list[str]:
        return [segment.uri for segment in self.segments if segment.uri is not None]

    @property
    def media_sequence(self) -> int:
        return int(self.tags.get("EXT-X-MEDIA-SEQUENCE", "0"))

    def msns(self) -> list[int]:
        """The msn of each listed complete segment: skipped ones keep their numbers."""
        first = self.media_sequence + (self.skipped or 0)
        return [first + index for index, _ in enumerate(self.complete)]

    def attribute(self, tag: str, name: str) -> str | None:
        for item in _split_attributes(self.tags.get(tag, "")):
            key, _, value = item.partition("=")
            if key == name:
                return value.strip('"')
        return None


def parse(text: str) -> Playlist:
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != "#EXTM3U":
        raise AssertionError("a playlist starts with #EXTM3U")
    playlist = Playlist({}, [], [], ended=False)
    current = Segment(None, None, None, False)
    in_body = False  # past the header: a segment line, a segment tag or EXT-X-SKIP was seen
    for line in lines[1:]:
        name, _, value = line[1:].partition(":") if line.startswith("#") else ("", "", "")
        if not line.startswith("#"):
            current.uri = line
            playlist.segments.append(current)
            current = Segment(None, None, None, False)
        elif name in SEGMENT_TAGS:
            _apply_segment_tag(current, name, value, line)
        elif name == "EXT-X-SKIP":
            if playlist.skipped is not None or in_body:
                raise AssertionError("EXT-X-SKIP appears once, before every media segment")
            playlist.skipped = int(_attributes(value)["SKIPPED-SEGMENTS"])
        elif name == "EXT-X-PRELOAD-HINT":
            playlist.hints.append(value)
        elif name == "EXT-X-ENDLIST":
            playlist.ended = True
        else:
            _add_header_tag(playlist.tags, name, value, in_body=in_body)
        in_body = in_body or not line.startswith("#") or name in SEGMENT_TAGS | {"EXT-X-SKIP"}
    if current.parts or current.pdt is not None:
        playlist.segments.append(current)
    return playlist


def _apply_segment_tag(segment: Segment, name: str, value: str, line: str) -> None:
    if name == "EXTINF":
        segment.duration = float(value.split(",")[0])
    elif name == "EXT-X-PROGRAM-DATE-TIME":
        segment.pdt = value
    elif name == "EXT-X-DISCONTINUITY":
        segment.discontinuity = True
    else:
        attributes = _attributes(value)
        if attributes.get("INDEPENDENT") != "YES":
            raise AssertionError(f"AAC parts are independent: {line}")
        segment.parts.append(Part(attributes["URI"].strip('"'), float(attributes["DURATION"])))


def _add_header_tag(tags: dict[str, str], name: str, value: str, *, in_body: bool) -> None:
    if name in tags:
        raise AssertionError(f"{name} appears twice")
    # Our header tags all come first, so EXT-X-MAP applies to every listed segment and
    # stays above an EXT-X-SKIP (which replaces only the skipped segments' own tags).
    if in_body:
        raise AssertionError(f"{name} after the first media segment or EXT-X-SKIP")
    tags[name] = value


def _attributes(value: str) -> dict[str, str]:
    return dict(item.partition("=")[::2] for item in _split_attributes(value))


def _split_attributes(value: str) -> list[str]:
    return re.findall(r'[A-Z0-9-]+=(?:"[^"]*"|[^,]*)', value)


def check(text: str, *, ended: bool) -> Playlist:
    """Raise AssertionError naming the first broken rule; return the parsed playlist."""
    playlist = parse(text)
    _check_header(playlist)
    _check_segments(playlist)
    if ended:
        _check_ended(playlist)
    else:
        _check_live(playlist)
    if playlist.skipped is not None:
        _check_delta(playlist)
    _cross_check_with_m3u8(text, playlist)
    return playlist


def _check_header(playlist: Playlist) -> None:
    tags = playlist.tags
    needed = FULL_VERSION if playlist.skipped is None else DELTA_VERSION
    assert int(tags["EXT-X-VERSION"]) == needed, (
        f"EXT-X-VERSION {tags['EXT-X-VERSION']}: the tags need {needed}, and no more "
        "SHOULD be claimed (EXT-X-MAP needs 6, EXT-X-SKIP 9)"
    )
    assert tags["EXT-X-PLAYLIST-TYPE"] == "EVENT"
    assert tags["EXT-X-MAP"] == 'URI="init.mp4"'
    assert int(tags["EXT-X-TARGETDURATION"]) >= 1


def _check_segments(playlist: Playlist) -> None:
    target = int(playlist.tags["EXT-X-TARGETDURATION"])
    previous: Segment | None = None
    for msn, segment in zip(playlist.msns(), playlist.complete, strict=True):
        assert segment.duration is not None, f"{segment.uri} has no EXTINF"
        assert round(segment.duration) <= target, f"{segment.uri} exceeds the target"
        assert segment.uri == f"s{msn}.m4s", f"{segment.uri} is not msn {msn}"
    for segment in playlist.segments:
        assert segment.pdt is not None and PDT_FORMAT.fullmatch(segment.pdt), segment
        if previous is not None and previous.duration is not None:
            expected = previous.pdt_seconds + previous.duration
            if segment.discontinuity:
                assert segment.pdt_seconds >= expected - 0.001, "a new life went back in time"
            else:
                assert abs(segment.pdt_seconds - expected) <= 0.002, "PDT and EXTINF disagree"
        previous = segment
    if playlist.skipped is None:  # a delta may list the first segment of a new life first
        assert not playlist.segments or not playlist.segments[0].discontinuity


def _check_live(playlist: Playlist) -> None:
    target = int(playlist.tags["EXT-X-TARGETDURATION"])
    assert playlist.attribute("EXT-X-SERVER-CONTROL", "CAN-BLOCK-RELOAD") == "YES"
    part_target = float(playlist.attribute("EXT-X-PART-INF", "PART-TARGET") or "nan")
    part_hold_back = float(playlist.attribute("EXT-X-SERVER-CONTROL", "PART-HOLD-BACK") or "0")
    hold_back = float(playlist.attribute("EXT-X-SERVER-CONTROL", "HOLD-BACK") or "0")
    can_skip_until = float(playlist.attribute("EXT-X-SERVER-CONTROL", "CAN-SKIP-UNTIL") or "0")
    assert part_hold_back >= 2 * part_target, "PART-HOLD-BACK below twice the part target"
    assert hold_back >= 3 * target, "HOLD-BACK below three target durations"
    assert can_skip_until >= SKIP_BOUNDARY_TARGET_DURATIONS * target, (
        "CAN-SKIP-UNTIL missing or below six target durations"
    )
    assert len(playlist.hints) <= 1, "at most one preload hint per type"
    listed = set()
    for segment in playlist.segments:
        for index, part in enumerate(segment.parts):
            assert part.duration <= part_target, f"{part.uri} exceeds PART-TARGET"
            last = index == len(segment.parts) - 1
            assert last or part.duration >= 0.85 * part_target, f"{part.uri} is too short"
            listed.add(part.uri)
        if segment.parts and segment.duration is not None:
            total = sum(part.duration for part in segment.parts)
            assert abs(total - segment.duration) < 0.001 * (len(segment.parts) + 1)
    for hint in playlist.hints:
        assert hint.startswith("TYPE=PART,URI="), hint
        assert hint.split("URI=")[1].strip('"') not in listed, "hint names a listed part"
    _check_part_window(playlist, target)
    assert not playlist.ended


def _check_part_window(playlist: Playlist, target: int) -> None:
    """Parts are listed only near the live edge (three target durations)."""
    distance = 0.0
    for segment in reversed(playlist.segments):
        if segment.uri is None:
            distance += sum(part.duration for part in segment.parts)
            continue
        if segment.parts:
            assert distance < 3 * target + 0.01, f"{segment.uri} keeps parts too long"
        distance += segment.duration or 0.0


def _check_delta(playlist: Playlist) -> None:
    """EXT-X-SKIP (4.4.5.2, 6.2.5.1) replaced exactly the segments that end more than
    CAN-SKIP-UNTIL before the end of the last complete segment. That its count agrees with
    EXT-X-MEDIA-SEQUENCE and the listed URIs is checked with msns() in _check_segments."""
    can_skip_until = float(playlist.attribute("EXT-X-SERVER-CONTROL", "CAN-SKIP-UNTIL") or "0")
    assert playlist.skipped, "an EXT-X-SKIP that skips nothing: send the full playlist"
    complete = playlist.complete
    assert complete, "a delta lists the segments within the skip boundary"
    listed = sum(segment.duration or 0.0 for segment in complete)
    # The last skipped segment ends where the first listed one starts.
    assert listed > can_skip_until - ROUNDING, "skipped a segment within CAN-SKIP-UNTIL"
    first_ends_at = listed - (complete[0].duration or 0.0)
    assert first_ends_at <= can_skip_until + ROUNDING, "listed a segment it could skip"
    assert playlist.segments[0].pdt is not None, "EXT-X-PROGRAM-DATE-TIME lost after the skip"


def _check_ended(playlist: Playlist) -> None:
    assert playlist.ended, "no EXT-X-ENDLIST"
    assert playlist.skipped is None, "_HLS_skip is ignored once ended"
    assert not playlist.hints, "a preload hint in an ended playlist"
    assert all(not segment.parts for segment in playlist.segments), "parts after the end"
    assert all(segment.uri is not None for segment in playlist.segments)
    assert "EXT-X-SERVER-CONTROL" not in playlist.tags


def _cross_check_with_m3u8(text: str, playlist: Playlist) -> None:
    parsed = m3u8.loads(text)
    assert parsed.version == int(playlist.tags["EXT-X-VERSION"])
    assert parsed.target_duration == int(playlist.tags["EXT-X-TARGETDURATION"])
    assert parsed.playlist_type == "event"
    assert parsed.is_endlist == playlist.ended
    assert parsed.media_sequence == playlist.media_sequence
    if playlist.skipped is None:
        assert not parsed.skip
    else:
        assert parsed.skip.skipped_segments == playlist.skipped
    complete = [segment for segment in parsed.segments if segment.uri is not None]
    assert [segment.uri for segment in complete] == [s.uri for s in playlist.complete]
    for theirs, ours in zip(complete, playlist.complete, strict=True):
        assert abs(theirs.duration - (ours.duration or 0.0)) < 1e-6
        assert theirs.discontinuity == ours.discontinuity
        assert theirs.program_date_time is not None
        assert abs(theirs.program_date_time.timestamp() - ours.pdt_seconds) < 0.001
        assert [part.uri for part in theirs.parts] == [part.uri for part in ours.parts]
        assert theirs.init_section is not None and theirs.init_section.uri == "init.mp4"
    if not playlist.ended:
        assert parsed.server_control.can_block_reload == "YES"
        assert parsed.part_inf.part_target == float(
            playlist.attribute("EXT-X-PART-INF", "PART-TARGET") or "nan"
        )
        assert parsed.preload_hint is not None and parsed.preload_hint.hint_type == "PART"
        assert parsed.server_control.can_skip_until == float(
            playlist.attribute("EXT-X-SERVER-CONTROL", "CAN-SKIP-UNTIL") or "nan"
        )


def merge_delta(copy: str, delta: str) -> str:
    """A delta update merged into an earlier full copy, as a player does (RFC 8216bis
    6.3.7): the skipped segments come from the copy with their tags, but without EXT-X-PART
    lines (parts are listed only near the live edge, which skipped segments left long ago),
    and the version is the copy's, since the result holds no EXT-X-SKIP. A playlist without
    EXT-X-SKIP is already whole. Raises AssertionError when the copy lacks a skipped
    segment: a client must then reload without _HLS_skip."""
    update = parse(delta)
    if update.skipped is None:
        return delta
    earlier = parse(copy)
    assert earlier.skipped is None, "a delta merges into a full copy"
    blocks = _segment_blocks(copy, earlier.media_sequence)
    skipped = range(update.media_sequence, update.media_sequence + update.skipped)
    missing = [msn for msn in skipped if msn not in blocks]
    assert not missing, f"the copy lacks skipped segments {missing}: reload in full"
    lines = delta.splitlines(keepends=True)
    at = next(index for index, line in enumerate(lines) if line.startswith("#EXT-X-SKIP:"))
    version = f"#EXT-X-VERSION:{earlier.tags['EXT-X-VERSION']}\n"
    header = [version if line.startswith("#EXT-X-VERSION:") else line for line in lines[:at]]
    return "".join(header + [blocks[msn] for msn in skipped] + lines[at + 1 :])


def _segment_blocks(text: str, media_sequence: int) -> dict[int, str]:
    """The lines of each complete segment of a full playlist, by msn, without its parts."""
    blocks: dict[int, str] = {}
    pending: list[str] = []
    for line in text.splitlines(keepends=True):
        if not line.strip():
            continue
        if not line.startswith("#"):
            blocks[media_sequence + len(blocks)] = "".join([*pending, line])
            pending = []
        elif line[1:].partition(":")[0].strip() in SEGMENT_TAGS - {"EXT-X-PART"}:
            pending.append(line)
    return blocks


def replay_samples(playlist: Playlist, rate: int = 48_000, frame: int = 1024) -> float:
    """Samples a replay of this recording spans: every listed segment, and the downtime
    between two lives as silence in whole AAC frames (the replay keeps the event's clock).
    The encoder's priming at the start is not subtracted."""
    total = sum(segment.duration or 0.0 for segment in playlist.complete) * rate
    for before, segment in zip(playlist.complete, playlist.complete[1:], strict=False):
        if segment.discontinuity:
            gap = segment.pdt_seconds - (before.pdt_seconds + (before.duration or 0.0))
            total += max(0, round(gap * rate / frame)) * frame
    return total

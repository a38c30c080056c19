"""Rule checks for our LL-HLS media playlists (RFC 8216bis), plus a cross-check with the
`m3u8` package, a parser we did not write."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

import m3u8

PDT_FORMAT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
SEGMENT_URI = re.compile(r"s(\d+)\.m4s")


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

    @property
    def complete(self) -> list[Segment]:
        return [segment for segment in self.segments if segment.uri is not None]

    def uris(self) -> list[str]:
        return [segment.uri for segment in self.segments if segment.uri is not None]

    @property
    def media_sequence(self) -> int:
        return int(self.tags.get("EXT-X-MEDIA-SEQUENCE", "0"))

    def msns(self) -> list[int]:
        return [self.media_sequence + index for index, _ in enumerate(self.complete)]

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
    tags: dict[str, str] = {}
    segments: list[Segment] = []
    hints: list[str] = []
    ended = False
    current = Segment(None, None, None, False)
    for line in lines[1:]:
        name, _, value = line[1:].partition(":") if line.startswith("#") else ("", "", "")
        if not line.startswith("#"):
            current.uri = line
            segments.append(current)
            current = Segment(None, None, None, False)
        elif name == "EXTINF":
            current.duration = float(value.split(",")[0])
        elif name == "EXT-X-PROGRAM-DATE-TIME":
            current.pdt = value
        elif name == "EXT-X-DISCONTINUITY":
            current.discontinuity = True
        elif name == "EXT-X-PART":
            attributes = dict(item.partition("=")[::2] for item in _split_attributes(value))
            if attributes.get("INDEPENDENT") != "YES":
                raise AssertionError(f"AAC parts are independent: {line}")
            current.parts.append(Part(attributes["URI"].strip('"'), float(attributes["DURATION"])))
        elif name == "EXT-X-PRELOAD-HINT":
            hints.append(value)
        elif name == "EXT-X-ENDLIST":
            ended = True
        else:
            if name in tags:
                raise AssertionError(f"{name} appears twice")
            tags[name] = value
    if current.parts or current.pdt is not None:
        segments.append(current)
    return Playlist(tags, segments, hints, ended)


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
    _cross_check_with_m3u8(text, playlist)
    return playlist


def _check_header(playlist: Playlist) -> None:
    tags = playlist.tags
    assert int(tags["EXT-X-VERSION"]) >= 6, "EXT-X-MAP needs version 6"
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
    assert not playlist.segments or not playlist.segments[0].discontinuity


def _check_live(playlist: Playlist) -> None:
    target = int(playlist.tags["EXT-X-TARGETDURATION"])
    assert playlist.attribute("EXT-X-SERVER-CONTROL", "CAN-BLOCK-RELOAD") == "YES"
    part_target = float(playlist.attribute("EXT-X-PART-INF", "PART-TARGET") or "nan")
    part_hold_back = float(playlist.attribute("EXT-X-SERVER-CONTROL", "PART-HOLD-BACK") or "0")
    hold_back = float(playlist.attribute("EXT-X-SERVER-CONTROL", "HOLD-BACK") or "0")
    assert part_hold_back >= 2 * part_target, "PART-HOLD-BACK below twice the part target"
    assert hold_back >= 3 * target, "HOLD-BACK below three target durations"
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


def _check_ended(playlist: Playlist) -> None:
    assert playlist.ended, "no EXT-X-ENDLIST"
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

"""The live captions rendition: WebVTT segments on the audio's clock, their playlist, and
the multivariant playlist that joins them to the audio at the origin."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from majlis.media.audio import FRAME_SECONDS
from majlis.media.hls.origin import IMMUTABLE, SpaceRegistry, create_origin
from majlis.media.hls.packager import HlsPackager
from majlis.media.hls.subtitles import (
    CAPTIONS_PLAYLIST,
    LINGER_SECONDS,
    Cue,
    SubtitleTrack,
    render_cue_time,
)
from majlis.media.runtime.subtitle_clock import SubtitleClock

from .audio_analysis import frames_of, tone

T0 = 1_700_000_000.0


def test_cue_times_are_webvtt_timestamps() -> None:
    assert render_cue_time(0.0) == "00:00:00.000"
    assert render_cue_time(3723.4567) == "01:02:03.457"
    assert render_cue_time(360_000.0) == "100:00:00.000"


def test_segments_follow_the_space_clock_and_carry_the_cues_published_in_them(
    tmp_path: Path,
) -> None:
    track = SubtitleTrack(tmp_path, space_started_at=T0, segment_seconds=2.0)
    track.advance(T0 + 10.1)  # the captions start 10 s into the space: segment 5
    track.add(Cue(T0 + 10.5, T0 + 11.0, "hello <there> & you", "alice"))
    track.advance(T0 + 11.9)
    assert not (tmp_path / CAPTIONS_PLAYLIST).exists()  # nothing complete yet
    track.advance(T0 + 12.0)
    assert track.listed == [5]
    vtt = (tmp_path / "c5.vtt").read_text()
    assert vtt.splitlines()[:2] == ["WEBVTT", "X-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:10.000"]
    # Said by 11.0, but a player polling once a segment may get c5 only at 14.0: the cue
    # is on screen until then, and LINGER_SECONDS more to be read.
    end = render_cue_time(14.0 + LINGER_SECONDS)
    assert f"00:00:10.500 --> {end}\n<v alice>hello &lt;there&gt; &amp; you\n" in vtt

    # A line committed later, with earlier times, goes in the segment being filled.
    track.add(Cue(T0 + 11.2, T0 + 11.8, "again"))
    track.advance(T0 + 16.5)
    assert track.listed == [5, 6, 7]
    assert "00:00:11.200 --> 00:00:17.500" in (tmp_path / "c6.vtt").read_text()
    assert "-->" not in (tmp_path / "c7.vtt").read_text()
    playlist = (tmp_path / CAPTIONS_PLAYLIST).read_text()
    assert "#EXT-X-MEDIA-SEQUENCE:5\n" in playlist
    assert "#EXT-X-TARGETDURATION:2\n" in playlist
    assert "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:30.000Z\n#EXTINF:2.000,\nc5.vtt" in playlist
    assert "#EXT-X-ENDLIST" not in playlist

    track.end(T0 + 17.0)
    playlist = (tmp_path / CAPTIONS_PLAYLIST).read_text()
    assert playlist.endswith("#EXTINF:1.000,\nc8.vtt\n#EXT-X-ENDLIST\n")


def test_a_cue_stays_until_a_player_can_have_it_and_is_read(tmp_path: Path) -> None:
    """A live player sits about a second behind the live edge: a cue that ended when its
    words did would be over before it arrived, and never be shown."""
    track = SubtitleTrack(tmp_path, space_started_at=T0, segment_seconds=1.0)
    track.advance(T0 + 20.0)
    track.add(Cue(T0 + 18.4, T0 + 19.1, "late words"))  # published 0.9 s after they ended
    track.add(Cue(T0 + 12.0, T0 + 21.0, "a long line"))  # ends after c20 is reachable
    track.advance(T0 + 21.0)
    vtt = (tmp_path / "c20.vtt").read_text()
    assert f"00:00:18.400 --> {render_cue_time(22.0 + LINGER_SECONDS)}\nlate words" in vtt
    assert f"00:00:12.000 --> {render_cue_time(22.0 + LINGER_SECONDS)}\na long line" in vtt
    track.add(Cue(T0 + 19.0, T0 + 25.0, "longer still"))
    track.advance(T0 + 22.0)
    vtt = (tmp_path / "c21.vtt").read_text()
    assert f"00:00:19.000 --> {render_cue_time(25.0 + LINGER_SECONDS)}\nlonger still" in vtt


def test_the_clock_lists_segments_as_the_audio_passes_them(tmp_path: Path) -> None:
    """With no captioner at all (one far behind is the same to the clock), each segment
    is listed once the mix passes its end, in the clock's thread."""
    track = SubtitleTrack(tmp_path, space_started_at=T0, segment_seconds=1.0)
    clock = SubtitleClock(track, name="subtitles-test")
    try:
        for frame in range(round(3.5 / FRAME_SECONDS)):
            clock.tick(T0 + 0.3 + frame * FRAME_SECONDS)
        deadline = time.monotonic() + 10.0
        while track.listed != [0, 1, 2] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert track.listed == [0, 1, 2]
        assert clock.time == pytest.approx(T0 + 3.78)
        track.add(Cue(T0 + 3.5, T0 + 3.7, "late"))
    finally:
        clock.stop()
    track.end(T0 + 3.8)
    assert track.listed == [0, 1, 2, 3]
    assert "late" in (tmp_path / "c3.vtt").read_text()


def test_the_playlist_keeps_a_window_and_numbers_never_repeat_after_a_restart(
    tmp_path: Path,
) -> None:
    track = SubtitleTrack(tmp_path, space_started_at=T0, segment_seconds=1.0)
    track.advance(T0)
    track.advance(T0 + 100.0)
    assert track.listed == list(range(70, 100))  # the newest WINDOW (30) segments
    assert _sequence(tmp_path) == 70
    # The node restarts: a new track continues from the clock, not from zero.
    again = SubtitleTrack(tmp_path, space_started_at=T0, segment_seconds=1.0)
    again.advance(T0 + 130.2)
    again.advance(T0 + 132.0)
    assert again.listed == [130, 131]
    assert _sequence(tmp_path) == 130


def _sequence(directory: Path) -> int:
    found = re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", (directory / CAPTIONS_PLAYLIST).read_text())
    assert found is not None
    return int(found[1])


@pytest.fixture
async def origin(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Path]]:
    packager = HlsPackager(tmp_path / "live", space_started_at=T0)
    for index, frame in enumerate(frames_of(tone(1000, 2.5))):
        packager.push(frame, T0 + index * FRAME_SECONDS)
    assert packager.sync()
    registry = SpaceRegistry(tmp_path)
    registry.register("live", packager.directory, packager.feed)
    transport = httpx.ASGITransport(app=create_origin(registry))
    async with httpx.AsyncClient(transport=transport, base_url="http://origin") as http:
        yield http, packager.directory
    packager.end()


async def test_the_multivariant_playlist_lists_captions_once_there_are_some(
    origin: tuple[httpx.AsyncClient, Path],
) -> None:
    http, directory = origin
    answer = await http.get("/live/main.m3u8")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "public, max-age=1"
    assert "SUBTITLES" not in answer.text
    assert answer.text.endswith('CODECS="mp4a.40.2"\nindex.m3u8\n')
    assert (await http.get("/live/captions.m3u8")).status_code == 404

    track = SubtitleTrack(directory, space_started_at=T0, segment_seconds=2.0)
    track.advance(T0)
    track.add(Cue(T0 + 0.5, T0 + 1.0, "hello"))
    track.advance(T0 + 2.0)
    text = (await http.get("/live/main.m3u8")).text
    assert '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="captions"' in text
    assert 'URI="captions.m3u8"' in text
    assert 'SUBTITLES="captions"\nindex.m3u8\n' in text

    playlist = await http.get("/live/captions.m3u8")
    assert playlist.status_code == 200
    assert playlist.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert playlist.headers["cache-control"] == "public, max-age=1"
    segment = await http.get("/live/c0.vtt")
    assert segment.status_code == 200
    assert segment.headers["content-type"].startswith("text/vtt")
    assert segment.headers["cache-control"] == IMMUTABLE
    assert "hello" in segment.text
    assert (await http.get("/live/c1.vtt")).status_code == 404
    for bad in ("c01.vtt", "c-1.vtt", "c1.vtt.tmp", ".c0.vtt.tmp"):
        answer = await http.get(f"/live/{bad}")
        assert answer.status_code == 404
        assert answer.json()["error"] == "not_found"

    track.end(T0 + 3.0)
    ended = await http.get("/live/captions.m3u8")
    assert ended.headers["cache-control"] == "public, max-age=86400"


async def test_a_replay_lists_no_live_captions(tmp_path: Path) -> None:
    packager = HlsPackager(tmp_path / "done", space_started_at=T0)
    for index, frame in enumerate(frames_of(tone(1000, 2.5))):
        packager.push(frame, T0 + index * FRAME_SECONDS)
    track = SubtitleTrack(packager.directory, space_started_at=T0, segment_seconds=1.0)
    track.advance(T0)
    track.end(T0 + 2.5)
    packager.end()
    transport = httpx.ASGITransport(app=create_origin(SpaceRegistry(tmp_path)))
    async with httpx.AsyncClient(transport=transport, base_url="http://origin") as http:
        answer = await http.get("/done/main.m3u8")
        assert answer.status_code == 200
        assert "SUBTITLES" not in answer.text
        assert answer.headers["cache-control"] == "public, max-age=86400"

"""`majlis listen --captions`'s reading of the captions rendition: WebVTT segments and
playlists as the media node writes them (media/hls/subtitles.py, the real writer), and
the follower against the real app's state document (in process, over ASGI)."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

import httpx
import pytest

from api.conftest import Harness
from api.test_captions_state import captioned
from majlis.client.api import ApiClient
from majlis.client.captions import (
    CaptionFollower,
    CaptionsUnavailable,
    Cue,
    check_captions,
    parse_cues,
    segment_uris,
    subtitles_uri,
)
from majlis.media.hls import subtitles
from majlis.media.hls.subtitles import CAPTIONS_PLAYLIST, SubtitleTrack

# As the origin makes it (media/hls/origin.py), with and without captions.
MAIN = (
    "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n"
    '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="captions",NAME="Captions",'
    'DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,URI="captions.m3u8"\n'
    '#EXT-X-STREAM-INF:BANDWIDTH=192000,CODECS="mp4a.40.2",SUBTITLES="captions"\nindex.m3u8\n'
)
AUDIO_ONLY = (
    "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n"
    '#EXT-X-STREAM-INF:BANDWIDTH=192000,CODECS="mp4a.40.2"\nindex.m3u8\n'
)
T0 = 1_800_000_000.0


def test_the_multivariant_playlist_names_the_rendition() -> None:
    assert subtitles_uri(MAIN) == "captions.m3u8"
    assert subtitles_uri(AUDIO_ONLY) is None


def test_segments_read_back_as_written(tmp_path: Path) -> None:
    track = SubtitleTrack(tmp_path, space_started_at=T0, segment_seconds=1.0)
    track.advance(T0 + 0.2)
    track.add(subtitles.Cue(T0 + 0.5, T0 + 1.5, "Tea & <cake> --> now", "u1"))
    track.add(subtitles.Cue(T0 + 0.9, T0 + 1.2, "مساء الخير"))
    track.advance(T0 + 1.1)
    names = segment_uris((tmp_path / CAPTIONS_PLAYLIST).read_text())
    assert names == ["c0.vtt"]
    cues = parse_cues((tmp_path / "c0.vtt").read_text())
    shown_until = 2.0 + subtitles.LINGER_SECONDS  # c0 reachable by 2.0, then read
    assert cues == [
        Cue(0.5, shown_until, "u1", "Tea & <cake> --> now"),
        Cue(0.9, shown_until, "", "مساء الخير"),
    ]


def test_other_writers_cues_are_read_too() -> None:
    """mm:ss times, cue identifiers and settings, styling tags, NOTE blocks."""
    vtt = (
        "WEBVTT\n\nNOTE made elsewhere\n\n1\n00:01.000 --> 00:02.500 align:start\n"
        "<v.loud Ann Lee><i>Hello</i> there\nagain\n"
    )
    assert parse_cues(vtt) == [Cue(1.0, 2.5, "Ann Lee", "Hello there again")]


class Rendition:
    """The files beside a space's audio, served as the token relay would serve them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.main = AUDIO_ONLY

    async def fetch(self, path: str) -> tuple[int, str, bytes]:
        if path == "/main.m3u8":
            return 200, "application/vnd.apple.mpegurl", self.main.encode()
        file = self.directory / path.lstrip("/")
        if not file.is_file():
            return 404, "text/plain", b"not found"
        return 200, "text/plain", file.read_bytes()


async def _until(what: str, check: object) -> None:
    deadline = time.monotonic() + 10.0
    while not (callable(check) and check()):
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


async def test_the_follower_prints_lines_waits_while_off_and_stops_at_the_end(
    tmp_path: Path,
) -> None:
    async with captioned(tmp_path / "data") as h:
        host = await h.account("host")
        sid = (await h.create_space(host))["id"]
        rendition = Rendition(tmp_path / "rendition")
        rendition.directory.mkdir()
        track = SubtitleTrack(rendition.directory, space_started_at=T0, segment_seconds=1.0)
        out, notes = io.StringIO(), io.StringIO()
        async with listener(h) as api:
            await check_captions(api, sid)
            follower = CaptionFollower(api, sid, rendition.fetch, out=out, notes=notes, poll=0.02)
            following = asyncio.create_task(follower.follow())
            await _until("told captions are on", lambda: "captions are on" in notes.getvalue())

            rendition.main = MAIN  # the rendition's first segment, as the origin lists it
            track.advance(T0)
            track.add(subtitles.Cue(T0 + 0.1, T0 + 0.8, "Good evening", host.id))
            track.advance(T0 + 1.0)
            await _until("a line", lambda: "Good evening" in out.getvalue())
            assert out.getvalue() == "Host: Good evening\n"  # the display name

            # The host turns captions off: the rendition ends, the follower waits.
            switched = await h.call("PUT", f"/spaces/{sid}/captions", host, json={"on": False})
            assert switched.status_code == 200
            track.end(T0 + 1.5)
            h.clock.advance(1.5)  # past the state document's cache
            await _until("told captions are off", lambda: "turned them off" in notes.getvalue())
            assert not following.done()

            ended = await h.call("POST", f"/spaces/{sid}/end", host)
            assert ended.status_code == 200
            h.clock.advance(1.5)
            await asyncio.wait_for(following, 10.0)
        assert "the space has ended" in notes.getvalue()
        assert out.getvalue() == "Host: Good evening\n"  # each line once


async def test_spaces_without_captions_are_refused_saying_why(tmp_path: Path) -> None:
    async with captioned(tmp_path / "data") as h:
        host = await h.account("host")
        made = await h.call("POST", "/spaces", host, json={"title": "مساء", "language": "ar"})
        arabic = made.json()["id"]
        replayed = (await h.create_space(host))["id"]
        await h.call("POST", f"/spaces/{replayed}/end", host)
        async with listener(h) as api:
            with pytest.raises(CaptionsUnavailable, match="does not know its language"):
                await check_captions(api, arabic)
            with pytest.raises(CaptionsUnavailable, match=r"replay.*transcript"):
                await check_captions(api, replayed)
            with pytest.raises(CaptionsUnavailable, match="404"):
                await check_captions(api, "nosuchspace")


def listener(h: Harness) -> _Listener:
    return _Listener(h)


class _Listener:
    """An anonymous listener's ApiClient on the app, over ASGI."""

    def __init__(self, h: Harness) -> None:
        transport = httpx.ASGITransport(app=h.app, client=("192.0.2.9", 4000))
        self._http = httpx.AsyncClient(transport=transport, base_url="http://majlis.test")
        self._api = ApiClient("http://majlis.test", http=self._http)

    async def __aenter__(self) -> ApiClient:
        await self._api.__aenter__()
        await self._api.anonymous()
        return self._api

    async def __aexit__(self, *exc: object) -> None:
        await self._api.__aexit__(*exc)
        await self._http.aclose()

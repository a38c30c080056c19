"""`majlis listen`: its heartbeat against the real app (in process, over ASGI), and its
wait for a live space's first segment."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from api.conftest import running_harness
from majlis.client.api import ApiClient
from majlis.client.listen import NoAudioYet, heartbeat, wait_for_audio
from majlis.client.relay import TokenRelay


async def test_a_listener_whose_token_ran_out_joins_again(tmp_path: Path) -> None:
    """An outage outlived the playback token (120 s here): the next beat is refused with
    401, and the listener joins again for a token that plays, instead of beating with
    the dead one forever."""
    async with running_harness(tmp_path, playback_ttl=120.0) as h:
        host = await h.account("host")
        sid = (await h.create_space(host))["id"]
        transport = httpx.ASGITransport(app=h.app, client=("192.0.2.9", 4000))
        http = httpx.AsyncClient(transport=transport, base_url="http://majlis.test")
        async with ApiClient("http://majlis.test", http=http) as api:
            await api.anonymous()
            admitted = await api.join(sid)
            relay = TokenRelay(admitted["playback_url"], admitted["playback_token"], http=http)
            h.clock.advance(121.0)  # the outage
            stale = relay.token
            renewed = asyncio.Event()
            beating = asyncio.create_task(heartbeat(api, sid, relay, 0.01, renewed.set))
            try:
                await asyncio.wait_for(renewed.wait(), 10)
            finally:
                beating.cancel()
            assert relay.token != stale
            playlist = admitted["playback_url"].replace(stale, relay.token)
            answer = await http.get(playlist)
            assert answer.status_code not in (401, 403), answer.text  # the new token is taken
            beat = await http.post(
                f"/api/v1/spaces/{sid}/heartbeat",
                json={"playback_token": relay.token},
                headers={"Authorization": f"Bearer {api.token}"},
            )
            assert beat.status_code == 200, beat.text


EMPTY = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n"
PARTS_ONLY = EMPTY + '#EXT-X-PART:DURATION=0.2,URI="part0.0.m4s"\n'
ONE_SEGMENT = PARTS_ONLY + "#EXTINF:1.0,\nseg0.m4s\n"


def playlist_app(answers: list[str]) -> tuple[Starlette, list[int]]:
    """Serves `answers` in turn (the last one for ever); counts the requests."""
    served = [0]

    async def playlist(request: Request) -> Response:
        text = answers[min(served[0], len(answers) - 1)]
        served[0] += 1
        return PlainTextResponse(text, media_type="application/vnd.apple.mpegurl")

    return Starlette(routes=[Route("/index.m3u8", playlist)]), served


async def test_listening_waits_for_the_first_segment() -> None:
    """A space's first seconds: the playlist lists parts but no whole segment, which FFmpeg
    opens as a container without streams (PyAV then raised IndexError)."""
    app, served = playlist_app([EMPTY, PARTS_ONLY, PARTS_ONLY, ONE_SEGMENT])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://origin.test"
    ) as http:
        await wait_for_audio("http://origin.test/index.m3u8", poll=0.01, http=http)
    assert served[0] == 4


async def test_a_space_without_audio_is_said_so() -> None:
    app, served = playlist_app([PARTS_ONLY])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://origin.test"
    ) as http:
        with pytest.raises(NoAudioYet, match="no audio for"):
            await wait_for_audio(
                "http://origin.test/index.m3u8", patience=0.2, poll=0.01, http=http
            )
    assert served[0] >= 5

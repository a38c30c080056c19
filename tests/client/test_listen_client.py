"""`majlis listen`'s heartbeat against the real app (in process, over ASGI)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from api.conftest import running_harness
from majlis.client.api import ApiClient
from majlis.client.listen import heartbeat
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

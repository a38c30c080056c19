"""The origin's playback guard: live media needs a playback token in the path.

Every refusal is decided before the origin is asked; a request the guard lets through
reaches the origin, which here has no media yet for the space and answers 404 (or holds a
blocking reload until it times out): what matters is who answered.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from majlis.signing import PLAYBACK

from .conftest import Account, Harness, assert_error, running_harness

LIVE_FILES = ("index.m3u8", "init.mp4", "s12.m4s", "p1-12-3.m4s")


async def _join(h: Harness, who: Account, sid: str) -> str:
    answer = await h.call("POST", f"/spaces/{sid}/join", who, json={})
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["playback_token"]
    assert answer.json()["playback_url"].endswith(f"/hls/{sid}/{token}/index.m3u8")
    return token


@pytest.mark.parametrize("name", LIVE_FILES)
async def test_live_files_without_a_token_are_refused(harness: Harness, name: str) -> None:
    host = await harness.account("host")
    sid = (await harness.create_space(host))["id"]
    answer = await harness.client().get(f"/hls/{sid}/{name}")
    body = assert_error(answer, 401, "token_required")
    assert "/join" in body["reason"]
    assert answer.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("name", LIVE_FILES[1:])
async def test_a_valid_token_reaches_the_origin(harness: Harness, name: str) -> None:
    host = await harness.account("host")
    sid = (await harness.create_space(host))["id"]
    token = await _join(harness, await harness.anonymous(), sid)
    answer = await harness.client().get(f"/hls/{sid}/{token}/{name}")
    # The origin's own answer: nothing written under that name.
    assert_error(answer, 404, "not_found")


async def test_forged_expired_and_other_space_tokens(harness: Harness) -> None:
    host = await harness.account("host")
    sid = (await harness.create_space(host))["id"]
    other = (await harness.create_space(await harness.account("other"), "Other"))["id"]
    listener = await harness.anonymous()
    token = await _join(harness, listener, sid)
    client = harness.client()

    body, _, mac = token.rpartition(".")
    forged = f"{body}.{'A' * len(mac)}"
    assert_error(await client.get(f"/hls/{sid}/{forged}/p1-1-1.m4s"), 401, "invalid_token")
    widened = token.replace(f".{sid}.", f".{other}.", 1)  # signature no longer matches
    assert_error(await client.get(f"/hls/{other}/{widened}/init.mp4"), 401, "invalid_token")
    assert_error(await client.get(f"/hls/{other}/{token}/init.mp4"), 403, "token_mismatch")
    assert_error(await client.get(f"/hls/{sid}/{PLAYBACK}.x/init.mp4"), 401, "invalid_token")

    harness.clock.advance(harness.services.config.playback_ttl + 1)
    assert_error(await client.get(f"/hls/{sid}/{token}/init.mp4"), 401, "token_expired")


async def test_a_banned_listener_loses_the_playlist_at_once(harness: Harness) -> None:
    host = await harness.account("host")
    sid = (await harness.create_space(host))["id"]
    guest = await harness.account("guest")
    token = await _join(harness, guest, sid)
    removed = await harness.call(
        "POST", f"/spaces/{sid}/participants/{guest.id}/remove", host, json={"ban": True}
    )
    assert removed.status_code in (200, 204), removed.text
    answer = await harness.client().get(f"/hls/{sid}/{token}/index.m3u8")
    assert_error(answer, 403, "banned")
    # The heartbeat will not renew the token either: at an edge, the ban holds once the
    # token in hand expires (playback_ttl).
    beat = await harness.call(
        "POST", f"/spaces/{sid}/heartbeat", guest, json={"playback_token": token}
    )
    assert_error(beat, 403, "banned")


async def test_replays_are_open_without_a_token(harness: Harness) -> None:
    host = await harness.account("host")
    sid = (await harness.create_space(host))["id"]
    ended = await harness.call("POST", f"/spaces/{sid}/end", host)
    assert ended.status_code == 200, ended.text
    harness.clock.advance(2)  # past the one-second space cache
    answer = await harness.client().get(f"/hls/{sid}/init.mp4")
    assert_error(answer, 404, "not_found")  # the origin: nothing was recorded


@pytest.mark.parametrize(
    ("flags", "stream"),
    [
        ({}, False),  # no edge: the origin has no listener stream
        ({"edge_url": "http://edge.example:8081"}, True),  # majlis edge
        ({"edge_url": "https://cdn.example", "edge_stream": False}, False),  # a CDN
    ],
)
async def test_join_names_the_listener_stream_only_where_an_edge_serves_one(
    tmp_path: Path, flags: dict[str, object], stream: bool
) -> None:
    async with running_harness(tmp_path, **flags) as h:
        host = await h.account("host")
        listener = await h.account("listener")
        sid = (await h.create_space(host))["id"]
        answer = (await h.call("POST", f"/spaces/{sid}/join", listener, json={})).json()
        token = answer["playback_token"]
        edge = str(flags.get("edge_url", ""))
        expected = f"{edge}/hls/{sid}/{token}/stream" if stream else ""
        assert answer["stream_url"] == expected
        if edge:
            assert answer["playback_url"].startswith(f"{edge}/hls/{sid}/{token}/")

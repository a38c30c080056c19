"""Private spaces over HTTP: the guest list (host and co-hosts, one audit entry per change),
who may join, heartbeat and read the state, and what a private space refuses outright
(clips, a change of privacy). Audio at the origin is in tests/e2e/test_private_spaces.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from api.conftest import Account, Harness, assert_error, running_harness


@pytest.fixture
async def h(tmp_path: Path) -> Any:
    async with running_harness(tmp_path) as harness:
        harness.clock.freeze()
        yield harness


async def private_space(h: Harness, host: Account) -> str:
    space = await h.create_space(host, visibility="private")
    assert space["visibility"] == "private"
    sid: str = space["id"]
    return sid


async def test_only_guests_the_stage_and_moderators_listen(h: Harness) -> None:
    host, lina, omar, mod = [await h.account(n) for n in ("host", "lina", "omar", "mod")]
    sid = await private_space(h, host)
    anon = await h.anonymous()

    assert_error(await h.call("POST", f"/spaces/{sid}/join", omar, json={}), 403, "not_invited")
    assert_error(await h.call("POST", f"/spaces/{sid}/join", anon, json={}), 401, "login_required")
    assert_error(await h.call("GET", f"/spaces/{sid}/state", omar), 403, "not_invited")
    assert_error(await h.call("GET", f"/spaces/{sid}/state"), 401, "login_required")

    added = await h.call("POST", f"/spaces/{sid}/guests", host, json={"username": "lina"})
    assert added.status_code == 201, added.text
    assert added.json()["user_id"] == lina.id
    joined = await h.call("POST", f"/spaces/{sid}/join", lina, json={})
    assert joined.status_code == 200, joined.text
    state = await h.call("GET", f"/spaces/{sid}/state", lina)
    assert state.status_code == 200 and state.headers["cache-control"] == "private, no-store"
    assert (await h.call("POST", f"/spaces/{sid}/join", host, json={})).status_code == 200

    assert await h.services.moderators.grant("mod", True)
    assert (await h.call("POST", f"/spaces/{sid}/join", mod, json={})).status_code == 200

    listed = (await h.call("GET", "/spaces?state=live")).json()["spaces"]
    assert sid not in [s["id"] for s in listed]

    # Off the list: the next heartbeat is refused, and so is joining again.
    token = joined.json()["playback_token"]
    gone = await h.call("DELETE", f"/spaces/{sid}/guests/{lina.id}", host)
    assert gone.status_code == 204, gone.text
    beat = await h.call("POST", f"/spaces/{sid}/heartbeat", lina, json={"playback_token": token})
    assert_error(beat, 403, "not_invited")
    assert_error(await h.call("POST", f"/spaces/{sid}/join", lina, json={}), 403, "not_invited")

    log = (await h.call("GET", f"/spaces/{sid}/audit", host)).json()["entries"]
    assert [(e["action"], e["target_username"]) for e in log[:2]] == [
        ("guest_remove", "lina"),
        ("guest_add", "lina"),
    ]


async def test_the_guest_list_is_the_hosts_and_co_hosts(h: Harness) -> None:
    host, lina, omar = [await h.account(n) for n in ("host", "lina", "omar")]
    sid = await private_space(h, host)
    await h.call("POST", f"/spaces/{sid}/guests", host, json={"username": "lina"})
    await h.make_speaker(sid, host, lina)
    # A speaker is no co-host: the list is not theirs to change.
    by_speaker = await h.call("POST", f"/spaces/{sid}/guests", lina, json={"username": "omar"})
    assert_error(by_speaker, 403, "not_moderator")
    promoted = await h.call("POST", f"/spaces/{sid}/cohosts", host, json={"user_id": lina.id})
    assert promoted.status_code == 200, promoted.text
    by_cohost = await h.call("POST", f"/spaces/{sid}/guests", lina, json={"username": "omar"})
    assert by_cohost.status_code == 201, by_cohost.text
    listed = (await h.call("GET", f"/spaces/{sid}/guests", host)).json()["guests"]
    assert [g["username"] for g in listed] == ["lina", "omar"]
    assert_error(await h.call("GET", f"/spaces/{sid}/guests", omar), 403, "not_moderator")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"username": "nobody_here"}, 404, "user_not_found"),
        ({"username": "host"}, 409, "is_host"),
        ({"username": "lina"}, 409, "already_guest"),
        ({"username": "no spaces"}, 400, "invalid_body"),
        ({"username": 7}, 400, "invalid_body"),
        ({}, 400, "invalid_body"),
        ({"username": "lina", "extra": True}, 400, "invalid_body"),
    ],
)
async def test_bad_guest_input_is_refused_with_a_reason(
    h: Harness, body: dict[str, object], status: int, code: str
) -> None:
    host, _ = await h.account("host"), await h.account("lina")
    sid = await private_space(h, host)
    await h.call("POST", f"/spaces/{sid}/guests", host, json={"username": "lina"})
    assert_error(await h.call("POST", f"/spaces/{sid}/guests", host, json=body), status, code)


async def test_what_a_private_space_refuses(h: Harness) -> None:
    host, lina = await h.account("host"), await h.account("lina")
    sid = await private_space(h, host)
    public = (await h.create_space(host))["id"]
    await h.call("POST", f"/spaces/{sid}/guests", host, json={"username": "lina"})

    clip = await h.call("POST", f"/spaces/{sid}/clips", lina, json={"duration": 5})
    assert_error(clip, 409, "private_space")
    to_public = await h.call("PATCH", f"/spaces/{sid}", host, json={"visibility": "public"})
    assert_error(to_public, 409, "privacy_fixed")
    to_private = await h.call("PATCH", f"/spaces/{public}", host, json={"visibility": "private"})
    assert_error(to_private, 409, "privacy_fixed")
    unlisted = await h.call("PATCH", f"/spaces/{public}", host, json={"visibility": "unlisted"})
    assert unlisted.status_code == 200, unlisted.text
    not_private = await h.call("POST", f"/spaces/{public}/guests", host, json={"username": "lina"})
    assert_error(not_private, 409, "not_private")
    live = await h.call("GET", f"/spaces/{sid}/replay", lina)
    assert_error(live, 409, "not_ended")


async def test_a_private_replay_needs_a_token_and_a_transcript_a_guest(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        host, lina, omar = [await h.account(n) for n in ("host", "lina", "omar")]
        sid = await private_space(h, host)
        await h.call("POST", f"/spaces/{sid}/guests", host, json={"username": "lina"})
        assert (await h.call("POST", f"/spaces/{sid}/end", host)).status_code == 200
        urls = (await h.call("GET", f"/spaces/{sid}/replay", lina)).json()
        assert urls["playlist_url"].endswith("/index.m3u8") and "/play." in urls["playlist_url"]
        assert_error(await h.call("GET", f"/spaces/{sid}/replay", omar), 403, "not_invited")
        # The origin refuses the tokenless path before looking for files.
        bare = await h.client().get(f"/hls/{sid}/index.m3u8")
        assert_error(bare, 401, "token_required")
        for path in (f"/spaces/{sid}/transcript", f"/spaces/{sid}/transcript.vtt"):
            assert_error(await h.call("GET", path, omar), 403, "not_invited")

"""Invitations reach listeners who hold no socket: by username, and through heartbeats."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.conftest import assert_error, running_harness


@pytest.mark.timeout(60)
async def test_invite_by_username_shows_in_the_heartbeat_until_answered(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        host = await h.account("host")
        guest = await h.account("guest")
        sid = (await h.create_space(host))["id"]
        joined = await h.call("POST", f"/spaces/{sid}/join", guest, json={})
        assert joined.json()["invited"] is False
        token = joined.json()["playback_token"]

        answer = await h.call("POST", f"/spaces/{sid}/invites", host, json={"username": "GUEST"})
        assert answer.status_code == 204, answer.text
        beat = await h.call(
            "POST", f"/spaces/{sid}/heartbeat", guest, json={"playback_token": token}
        )
        assert beat.json()["invited"] is True

        accepted = await h.call("POST", f"/spaces/{sid}/invites/accept", guest)
        assert accepted.status_code == 200 and accepted.json()["role"] == "speaker"
        beat = await h.call(
            "POST", f"/spaces/{sid}/heartbeat", guest, json={"playback_token": token}
        )
        assert beat.json()["invited"] is False


@pytest.mark.timeout(60)
async def test_a_user_reference_names_exactly_one_user(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        host = await h.account("host")
        await h.account("guest")
        sid = (await h.create_space(host))["id"]
        path = f"/spaces/{sid}/invites"
        for body in ({}, {"user_id": "x", "username": "guest"}):
            assert_error(await h.call("POST", path, host, json=body), 400, "invalid_body")
        assert_error(
            await h.call("POST", path, host, json={"username": "nobody"}), 404, "user_not_found"
        )
        assert_error(
            await h.call("POST", path, host, json={"username": "bad name!"}),
            404,
            "user_not_found",
        )
        cohost = await h.call("POST", f"/spaces/{sid}/cohosts", host, json={"username": "guest"})
        assert cohost.status_code == 200 and cohost.json()["role"] == "cohost"

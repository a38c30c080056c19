"""The host's listener list (issue 16): signed-in listeners by name, a count of anonymous
ones, the stage left out; for the host and co-hosts only."""

from __future__ import annotations

from pathlib import Path

from api.conftest import assert_error, running_harness


async def test_the_host_sees_who_listens(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        h.clock.freeze()
        host, speaker = await h.account("host"), await h.account("speaker")
        lina, omar = await h.account("lina"), await h.account("omar")
        sid = (await h.create_space(host))["id"]
        await h.make_speaker(sid, host, speaker)
        for who in (host, speaker, lina, omar, await h.anonymous(), await h.anonymous()):
            assert (await h.call("POST", f"/spaces/{sid}/join", who, json={})).status_code == 200
        await h.call("POST", f"/spaces/{sid}/leave", omar)
        seen = await h.call("GET", f"/spaces/{sid}/listeners", host)
        by_lina = await h.call("GET", f"/spaces/{sid}/listeners", lina)
        by_speaker = await h.call("GET", f"/spaces/{sid}/listeners", speaker)
        unknown = await h.call("GET", "/spaces/ffffffffffff/listeners", host)
        h.clock.advance(h.services.config.presence_window + 1)  # everyone's beat is stale
        later = await h.call("GET", f"/spaces/{sid}/listeners", host)

    assert seen.status_code == 200, seen.text
    assert seen.headers["cache-control"] == "private, no-store"
    body = seen.json()
    assert [u["username"] for u in body["users"]] == ["lina"]  # no stage, no one who left
    assert (body["count"], body["anonymous"], body["more"]) == (3, 2, False)
    assert_error(by_lina, 403, "not_moderator")
    assert_error(by_speaker, 403, "not_moderator")
    assert_error(unknown, 404)
    assert later.json()["count"] == 0 and later.json()["users"] == []

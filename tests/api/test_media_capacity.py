"""A server never runs more live spaces than its media node takes (`node_capacity`): one
more is refused with 503, a reason and Retry-After, before anything is created or started,
instead of a node that falls behind on every space it runs. (The scaled mode's capacity,
announced by its nodes, is tested in tests/cluster/test_capacity.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from api.conftest import Harness, assert_error, running_harness
from majlis.errors import Conflict
from majlis.services.auth import Caller
from majlis.services.spaces import Spaces
from majlis.services.tokens import SESSION_AUDIENCE, Claims
from majlis.types import Space, SpaceState


async def _live_titles(h: Harness) -> list[str]:
    listed = await h.call("GET", "/spaces?state=live")
    assert listed.status_code == 200, listed.text
    return sorted(s["title"] for s in listed.json()["spaces"])


async def test_a_full_server_refuses_one_live_space_more(tmp_path: Path) -> None:
    async with running_harness(tmp_path, media=True, node_capacity=2) as h:
        host = await h.account("amal")
        first = await h.create_space(host, "one")
        await h.create_space(host, "two")

        refused = await h.call(
            "POST", "/spaces", host, json={"title": "three", "visibility": "public"}
        )
        body = assert_error(refused, 503, "media_full")
        assert "(2)" in body["reason"], body
        assert refused.headers["retry-after"] == "30", refused.headers
        assert await _live_titles(h) == ["one", "two"]

        # Scheduling needs no media; starting it does.
        later = await h.create_space(host, "later", scheduled_in=3600)
        started = await h.call("POST", f"/spaces/{later['id']}/start", host)
        assert_error(started, 503, "media_full")
        kept = await h.call("GET", f"/spaces/{later['id']}")
        assert kept.json()["state"] == "scheduled", kept.text

        ended = await h.call("POST", f"/spaces/{first['id']}/end", host)
        assert ended.status_code == 200, ended.text
        started = await h.call("POST", f"/spaces/{later['id']}/start", host)
        assert started.status_code == 200, started.text
        assert await _live_titles(h) == ["later", "two"]


async def test_a_start_that_lost_the_race_is_told_the_space_is_live(tmp_path: Path) -> None:
    """Two starts of one space, the last free place: the one that lost the race counts
    the space it lost to, and is told the space is live already (409), not that the
    server is full. The rival start runs while the loser reads the capacity."""
    async with running_harness(tmp_path) as h:
        host = await h.account("amal")
        later = await h.create_space(host, "later", scheduled_in=3600)
        s = h.services
        caller = Caller("192.0.2.1", Claims(host.id, SESSION_AUDIENCE, "t1", h.clock.now() + 60))
        rival: list[Space] = []
        raced = False

        async def capacity() -> int:
            nonlocal raced
            if not raced:
                raced = True
                rival.append(await spaces.start(caller, later["id"]))
            return 1

        spaces = Spaces(s.store, s.events, s.clock, 0.0, capacity=capacity)
        with pytest.raises(Conflict):
            await spaces.start(caller, later["id"])
        assert [space.state for space in rival] == [SpaceState.LIVE]


async def test_the_count_survives_a_restart(tmp_path: Path) -> None:
    """Live spaces are counted in the store, so a restarted server that resumes them is
    as full as before."""
    async with running_harness(tmp_path, media=True, node_capacity=1) as h:
        host = await h.account("amal")
        await h.create_space(host, "one")
    async with running_harness(tmp_path, media=True, node_capacity=1) as h:
        refused = await h.call(
            "POST", "/spaces", host, json={"title": "two", "visibility": "public"}
        )
        assert_error(refused, 503, "media_full")


async def test_without_media_here_there_is_no_limit(tmp_path: Path) -> None:
    """A control-plane-only embedded server (media = false) has nothing to fill."""
    async with running_harness(tmp_path, media=False, node_capacity=1) as h:
        host = await h.account("amal")
        await h.create_space(host, "one")
        await h.create_space(host, "two")
        assert await _live_titles(h) == ["one", "two"]

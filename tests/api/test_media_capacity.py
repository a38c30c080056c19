"""A server never runs more live spaces than its media node takes (`node_capacity`): one
more is refused with 503, a reason and Retry-After, before anything is created or started,
instead of a node that falls behind on every space it runs. (The scaled mode's capacity,
announced by its nodes, is tested in tests/cluster/test_capacity.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

from api.conftest import Harness, assert_error, running_harness
from majlis.errors import Conflict
from majlis.media.runtime.process import MediaProcess
from majlis.plane import Room
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


@pytest.mark.realtime  # "caught up" needs the machine to give the worker its time back
@pytest.mark.timeout(90)
async def test_a_server_whose_mixer_falls_behind_takes_no_new_space(tmp_path: Path) -> None:
    """Starved of the CPU, the media worker's ticks run late: the spaces it runs are all
    it takes until it keeps time again, however many `node_capacity` allows."""
    async with running_harness(tmp_path, media=True, node_capacity=5) as h:
        host = await h.account("amal")
        await h.create_space(host, "one")
        plane = h.services.plane
        assert isinstance(plane, MediaProcess) and plane.pid is not None
        pid = plane.pid

        async def behind(wanted: bool, within: float) -> None:
            deadline = time.monotonic() + within
            while (await plane.load()).behind != wanted:
                assert time.monotonic() < deadline, f"still behind={not wanted}"
                await asyncio.sleep(0.2)

        async def starve() -> None:
            while True:  # the worker runs 40 ms in every 100
                os.kill(pid, signal.SIGSTOP)
                try:
                    await asyncio.sleep(0.06)
                finally:
                    os.kill(pid, signal.SIGCONT)
                await asyncio.sleep(0.04)

        starving = asyncio.create_task(starve())
        try:
            await behind(True, within=20)
            refused = await h.call(
                "POST", "/spaces", host, json={"title": "two", "visibility": "public"}
            )
            body = assert_error(refused, 503, "media_full")
            assert "(1)" in body["reason"] and "running late" in body["reason"], body
        finally:
            starving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starving
        await behind(False, within=30)
        await h.create_space(host, "two")
        assert await _live_titles(h) == ["one", "two"]


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

        async def capacity() -> Room:
            nonlocal raced
            if not raced:
                raced = True
                rival.append(await spaces.start(caller, later["id"]))
            return Room(1)

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

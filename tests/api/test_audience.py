"""The audience over time (issue 16): listeners and reactions sampled while a space is
live, the curve served to anyone, and the peak that follows from it even when nobody ever
read the state document (it used to stay 0)."""

from __future__ import annotations

import itertools
from pathlib import Path

from api.conftest import Harness, running_harness
from majlis.services.audience import Audience

EVERY = 10.0


def sampler(h: Harness, worker: str) -> Audience:
    """A sampler on the harness's store, bus and clock (the harness runs none of its own:
    a round at a moment the test did not choose would add a sample)."""
    s = h.services
    return Audience(
        s.store,
        s.bus,
        s.spaces,
        h.clock,
        every_s=EVERY,
        presence_window=s.config.presence_window,
        worker_id=worker,
    )


async def test_the_peak_follows_listeners_nobody_watched(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        assert h.services.config.audience_sample_s == 0  # the harness samples nothing itself
        h.clock.freeze()
        audience = sampler(h, "w1")
        host = await h.account("host")
        sid = (await h.create_space(host))["id"]
        first = await audience.tick()
        crowd = [await h.anonymous() for _ in range(3)]
        for who in crowd:
            assert (await h.call("POST", f"/spaces/{sid}/join", who, json={})).status_code == 200
        for emoji in ("👏", "🔥"):
            answer = await h.call(
                "POST", f"/spaces/{sid}/reactions", crowd[0], json={"emoji": emoji}
            )
            assert answer.status_code == 200, answer.text
        h.clock.advance(EVERY)
        second = await audience.tick()
        for who in crowd:
            assert (await h.call("POST", f"/spaces/{sid}/leave", who)).status_code == 204
        h.clock.advance(EVERY)
        third = await audience.tick()
        space = (await h.call("GET", f"/spaces/{sid}")).json()
        curve = (await h.call("GET", f"/spaces/{sid}/audience")).json()
        unknown = await h.call("GET", "/spaces/nosuchspace/audience")

    assert [t[sid].listeners for t in (first, second, third)] == [0, 3, 0]
    assert space["peak_listeners"] == 3  # nobody read /state
    assert curve["peak_listeners"] == 3
    assert [(s["listeners"], s["reactions"]) for s in curve["samples"]] == [(0, 0), (3, 2), (0, 2)]
    assert [(s["joins"], s["leaves"]) for s in curve["samples"]] == [(0, 0), (3, 0), (3, 3)]
    times = [s["at"] for s in curve["samples"]]
    assert [b - a for a, b in itertools.pairwise(times)] == [EVERY, EVERY]
    assert unknown.status_code == 404


async def test_one_worker_samples_a_round(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        h.clock.freeze()
        one, other = sampler(h, "w1"), sampler(h, "w2")
        host = await h.account("host")
        sid = (await h.create_space(host))["id"]
        assert sid in await one.tick()
        assert await other.tick() == {}  # w1 holds the lease
        h.clock.advance(EVERY * 3 + 1)  # w1 is gone: its lease ran out
        assert sid in await other.tick()
        samples = (await h.call("GET", f"/spaces/{sid}/audience")).json()["samples"]
    assert len(samples) == 2


async def test_arrivals_and_departures_between_samples(tmp_path: Path) -> None:
    """A heartbeat is not an arrival; someone who came and went between two samples counts
    once each way; someone presence forgot (no heartbeat) and who comes back arrives again."""
    async with running_harness(tmp_path) as h:
        h.clock.freeze()
        audience = sampler(h, "w1")
        host = await h.account("host")
        sid = (await h.create_space(host))["id"]
        stayer, passer = await h.anonymous(), await h.anonymous()
        join = await h.call("POST", f"/spaces/{sid}/join", stayer, json={})
        token = join.json()["playback_token"]
        await audience.tick()
        for _ in range(3):
            h.clock.advance(EVERY / 2)
            beat = await h.call(
                "POST", f"/spaces/{sid}/heartbeat", stayer, json={"playback_token": token}
            )
            assert beat.status_code == 200, beat.text
        assert (await h.call("POST", f"/spaces/{sid}/join", passer, json={})).status_code == 200
        assert (await h.call("POST", f"/spaces/{sid}/leave", passer)).status_code == 204
        await audience.tick()
        h.clock.advance(h.services.config.presence_window + 1)  # the stayer stops beating
        await audience.tick()
        assert (await h.call("POST", f"/spaces/{sid}/join", stayer, json={})).status_code == 200
        h.clock.advance(EVERY)
        await audience.tick()
        samples = (await h.call("GET", f"/spaces/{sid}/audience")).json()["samples"]
    assert [(s["listeners"], s["joins"], s["leaves"]) for s in samples] == [
        (1, 1, 0),
        (1, 2, 1),  # the passer came and went
        (0, 2, 2),  # the stayer went quiet
        (1, 3, 2),  # and came back
    ]

"""Presence: the listener count is the number of listeners heard from in the last minute."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from api.conftest import Account, Harness, assert_error, running_harness

LISTENERS = 300


async def join(h: Harness, sid: str, who: Account) -> str:
    answer = await h.call("POST", f"/spaces/{sid}/join", who, json={})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["playback_token"])


async def heartbeat(h: Harness, sid: str, who: Account, token: str) -> str:
    answer = await h.call("POST", f"/spaces/{sid}/heartbeat", who, json={"playback_token": token})
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "admitted"
    return str(answer.json()["playback_token"])


async def counted(h: Harness, sid: str, wait: float = 1.5) -> tuple[int, int]:
    """(listener_count, peak_listeners) from the state document, `wait` seconds on (the
    document is cached for a second)."""
    h.clock.advance(wait)
    document = (await h.call("GET", f"/spaces/{sid}/state")).json()
    return document["listener_count"], document["peak_listeners"]


def within_one_percent(count: int, active: int) -> bool:
    return abs(count - active) <= active / 100


@pytest.mark.timeout(60)
async def test_listener_count_follows_heartbeats(tmp_path: Path) -> None:
    config = {"presence_window": 60.0, "admission_burst": LISTENERS}
    async with running_harness(tmp_path, **config) as h:
        await count_follows_heartbeats(h)


async def count_follows_heartbeats(h: Harness) -> None:
    # Frozen: 300 joins take seconds of real time on a busy machine, which would move the
    # presence window under the test (it once counted 284 of 300).
    h.clock.freeze()
    host = await h.account("host")
    sid = (await h.create_space(host))["id"]
    crowd = [await h.anonymous() for _ in range(LISTENERS)]
    tokens = list(await asyncio.gather(*(join(h, sid, who) for who in crowd)))

    count, peak = await counted(h, sid)  # 1.5 s after they joined
    assert count == LISTENERS
    assert peak == LISTENERS

    # Half a minute on, two thirds of them are still listening (their players heartbeat).
    h.clock.advance(28.5)
    keep = [i for i in range(LISTENERS) if i % 3 != 2]
    for i in keep:
        tokens[i] = await heartbeat(h, sid, crowd[i], tokens[i])

    # 59.5 s after joining, everyone is still inside the minute ...
    count, _ = await counted(h, sid, wait=29.5)
    assert count == LISTENERS
    # ... at 61 s the silent third has aged out.
    count, peak = await counted(h, sid)
    assert within_one_percent(count, len(keep)), (count, len(keep))
    assert count == len(keep) == 200
    assert peak == LISTENERS  # the peak is remembered

    # Leaving counts at once; a heartbeat brings a listener back.
    for i in keep[:20]:
        left = await h.call("POST", f"/spaces/{sid}/leave", crowd[i])
        assert left.status_code == 204
    count, _ = await counted(h, sid)
    assert count == 180
    await heartbeat(h, sid, crowd[keep[0]], tokens[keep[0]])
    count, _ = await counted(h, sid)
    assert count == 181

    # Another minute of silence, and nobody is left.
    h.clock.advance(61)
    assert await counted(h, sid) == (0, LISTENERS)
    space = (await h.call("GET", f"/spaces/{sid}")).json()
    assert space["peak_listeners"] == LISTENERS


async def test_a_heartbeat_needs_your_own_live_playback_token(harness: Harness) -> None:
    h = harness
    host = await h.account("host")
    sid = (await h.create_space(host))["id"]
    other_sid = (await h.create_space(host, "other"))["id"]
    ann, bob = await h.anonymous(), await h.anonymous()
    ann_token = await join(h, sid, ann)

    path = f"/spaces/{sid}/heartbeat"
    stolen = await h.call("POST", path, bob, json={"playback_token": ann_token})
    assert_error(stolen, 403, "token_mismatch")
    elsewhere = await h.call(
        "POST", f"/spaces/{other_sid}/heartbeat", ann, json={"playback_token": ann_token}
    )
    assert_error(elsewhere, 403, "token_mismatch")
    tampered = ann_token[:-2] + ("AA" if not ann_token.endswith("AA") else "BB")
    assert_error(await h.call("POST", path, ann, json={"playback_token": tampered}), 401)
    assert_error(await h.call("POST", path, json={"playback_token": ann_token}), 401)

    h.clock.advance(h.services.config.playback_ttl + 1)  # past the token's expiry
    expired = await h.call("POST", path, ann, json={"playback_token": ann_token})
    assert_error(expired, 401, "token_expired")
    # Bob never got counted by any of this.
    assert (await counted(h, sid))[0] == 0

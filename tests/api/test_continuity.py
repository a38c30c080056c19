"""Issue 15: a space whose host's audio is gone passes to the senior co-host, or ends; a
space with nobody on stage ends; the host hands over. The rules run on the harness's
services with a frozen clock; audio is what a media node would publish: levels on the bus.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from api.conftest import Account, Harness, assert_error, running_harness
from majlis.services.continuity import Continuity, ContinuityPolicy
from majlis.types import level_key

ABSENCE, GRACE, EMPTY = 60.0, 120.0, 600.0


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_harness(tmp_path, media=False) as harness:
        harness.clock.freeze()
        yield harness


def watcher(h: Harness, worker: str = "w1") -> Continuity:
    s = h.services
    policy = ContinuityPolicy(ABSENCE, GRACE, EMPTY)
    return Continuity(s.store, s.bus, s.spaces, s.roles, h.clock, policy, worker)


async def heard(h: Harness, space_id: str, *people: Account) -> None:
    """Audio from exactly `people` reached the space just now, as a node reports it (the
    others' levels expired)."""
    bus = h.services.bus
    for key in await bus.get_values(level_key(space_id, "")):
        await bus.delete_value(key)
    for who in people:
        await bus.set_value(level_key(space_id, who.id), "-20.0,1", 2.0)


async def live_space(h: Harness, host: Account, *cohosts: Account) -> str:
    space = await h.create_space(host)  # live at once (not scheduled)
    assert space["state"] == "live"
    for cohost in cohosts:
        named = await h.call(
            "POST", f"/spaces/{space['id']}/cohosts", host, json={"user_id": cohost.id}
        )
        assert named.status_code == 200, named.text
        h.clock.advance(1.0)  # joined_at apart: seniority is defined
    return str(space["id"])


async def space_of(h: Harness, space_id: str) -> dict[str, Any]:
    answer = await h.call("GET", f"/spaces/{space_id}")
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


async def logged(h: Harness, space_id: str) -> list[tuple[str | None, str, str | None]]:
    """(actor, action, target) of the space's audit log, oldest first."""
    entries = await h.services.store.list_audit(space_id, before=None, limit=100)
    return [(e.actor_id, e.action, e.target_id) for e in reversed(entries)]


async def roles(h: Harness, space_id: str) -> dict[str, str]:
    stage = await h.services.store.list_participants(space_id)
    return {p.user_id: str(p.role) for p in stage}


async def test_the_senior_cohost_with_audio_takes_over_an_absent_host(h: Harness) -> None:
    host, senior, junior = [await h.account(n) for n in ("hana", "sami", "jude")]
    space_id = await live_space(h, host, senior, junior)
    judge = watcher(h)
    await heard(h, space_id, host, senior, junior)
    assert await judge.tick() == {}
    h.clock.advance(ABSENCE - 1)
    await heard(h, space_id, senior, junior)  # the host's audio is gone
    assert await judge.tick() == {}  # not yet
    h.clock.advance(1)
    await heard(h, space_id, senior, junior)
    assert await judge.tick() == {space_id: "host_handed_over"}
    space = await space_of(h, space_id)
    assert space["host_id"] == senior.id and space["state"] == "live"
    assert await roles(h, space_id) == {senior.id: "host", host.id: "cohost", junior.id: "cohost"}
    # Majlis decided, and the log says so (no actor).
    assert (await logged(h, space_id))[-1] == (None, "host_transfer", senior.id)
    # The new host runs it: the old one cannot end it any more, the new one can.
    assert_error(await h.call("POST", f"/spaces/{space_id}/end", host), 403, "not_host")
    assert (await h.call("POST", f"/spaces/{space_id}/end", senior)).status_code == 200


async def test_a_cohost_without_audio_is_passed_over(h: Harness) -> None:
    host, senior, junior = [await h.account(n) for n in ("hana", "sami", "jude")]
    space_id = await live_space(h, host, senior, junior)
    judge = watcher(h)
    await heard(h, space_id, host, senior, junior)
    await judge.tick()
    h.clock.advance(ABSENCE)
    await heard(h, space_id, junior)  # the senior co-host is gone too
    assert await judge.tick() == {space_id: "host_handed_over"}
    assert (await space_of(h, space_id))["host_id"] == junior.id


async def test_with_nobody_to_take_over_the_space_ends_after_the_grace(h: Harness) -> None:
    host, speaker = await h.account("hana"), await h.account("sara")
    space_id = await live_space(h, host)
    await h.make_speaker(space_id, host, speaker)
    judge = watcher(h)
    await heard(h, space_id, host, speaker)
    await judge.tick()
    h.clock.advance(ABSENCE + GRACE - 1)
    await heard(h, space_id, speaker)  # a speaker is no co-host: nobody takes over
    assert await judge.tick() == {}
    assert (await space_of(h, space_id))["state"] == "live"
    h.clock.advance(1)
    await heard(h, space_id, speaker)
    assert await judge.tick() == {space_id: "ended_host_absent"}
    assert (await space_of(h, space_id))["state"] == "ended"
    assert (await logged(h, space_id))[-1] == (None, "end", None)


async def test_the_host_coming_back_in_time_keeps_the_space(h: Harness) -> None:
    host, cohost = await h.account("hana"), await h.account("sami")
    space_id = await live_space(h, host, cohost)
    judge = watcher(h)
    await judge.tick()
    h.clock.advance(ABSENCE - 5)
    await heard(h, space_id, host, cohost)  # a reconnect, just in time
    assert await judge.tick() == {}
    h.clock.advance(ABSENCE - 5)
    await heard(h, space_id, host, cohost)
    assert await judge.tick() == {}
    assert (await space_of(h, space_id))["host_id"] == host.id


async def test_a_host_never_heard_is_not_replaced(h: Harness) -> None:
    """Still finding the microphone button after a minute is not being gone."""
    host, cohost = await h.account("hana"), await h.account("sami")
    space_id = await live_space(h, host, cohost)
    judge = watcher(h)
    for _ in range(10):
        await heard(h, space_id, cohost)
        assert await judge.tick() == {}
        h.clock.advance((ABSENCE + GRACE) / 5)
    assert (await space_of(h, space_id))["host_id"] == host.id
    # Heard once, by a judge that has since gone: the next judge knows, from the bus.
    await heard(h, space_id, host, cohost)
    assert await judge.tick() == {}
    h.clock.advance(ABSENCE * 2)
    fresh = watcher(h, "w2")
    await heard(h, space_id, cohost)
    assert await fresh.tick() == {}  # counting from its own start
    h.clock.advance(ABSENCE)
    await heard(h, space_id, cohost)
    assert await fresh.tick() == {space_id: "host_handed_over"}


async def test_an_empty_stage_ends_the_space(h: Harness) -> None:
    """Nobody's audio for `empty_stage_s`, co-hosts named or not (the rule for a host alone
    with the grace is shorter and would come first; here the absence rule is off)."""
    host, cohost = await h.account("hana"), await h.account("sami")
    space_id = await live_space(h, host, cohost)
    s = h.services
    judge = Continuity(
        s.store, s.bus, s.spaces, s.roles, h.clock, ContinuityPolicy(0.0, GRACE, EMPTY), "w1"
    )
    await judge.tick()
    h.clock.advance(EMPTY - 1)
    assert await judge.tick() == {}
    h.clock.advance(1)
    assert await judge.tick() == {space_id: "ended_empty_stage"}
    assert (await space_of(h, space_id))["state"] == "ended"


async def test_one_worker_judges_and_a_new_one_counts_from_its_own_start(h: Harness) -> None:
    host, cohost = await h.account("hana"), await h.account("sami")
    space_id = await live_space(h, host, cohost)
    first, second = watcher(h, "w1"), watcher(h, "w2")
    await heard(h, space_id, host, cohost)
    await first.tick()
    assert await second.tick() == {}  # the lease is the first's
    for _ in range(5):
        h.clock.advance(ABSENCE / 5 - 1)
        await heard(h, space_id, cohost)
        assert await second.tick() == {}  # still the first's: it keeps its lease
        assert await first.tick() == {}
    # The first worker stops; once its lease lapses the second takes over, and counts the
    # host's absence from then, not from what the first saw.
    h.clock.advance(30)
    await heard(h, space_id, cohost)
    assert await second.tick() == {}
    h.clock.advance(ABSENCE - 1)
    await heard(h, space_id, cohost)
    assert await second.tick() == {}
    h.clock.advance(1)
    await heard(h, space_id, cohost)
    assert await second.tick() == {space_id: "host_handed_over"}


async def test_the_host_hands_over_to_a_cohost(h: Harness) -> None:
    host, cohost, speaker, stranger = [await h.account(n) for n in ("hana", "sami", "sara", "stan")]
    space_id = await live_space(h, host, cohost)
    await h.make_speaker(space_id, host, speaker)
    path = f"/spaces/{space_id}/host"
    assert_error(await h.call("POST", path, cohost, json={"user_id": host.id}), 403, "not_host")
    assert_error(await h.call("POST", path, host, json={"user_id": host.id}), 409, "is_host")
    assert_error(await h.call("POST", path, host, json={"user_id": speaker.id}), 409, "not_cohost")
    assert_error(await h.call("POST", path, host, json={"user_id": stranger.id}), 409, "not_cohost")
    assert_error(await h.call("POST", path, host, json={"user_id": "nobody"}), 404)
    assert_error(await h.call("POST", path, host, json={}), 400)
    assert_error(await h.call("POST", path, host, json={"user_id": 7}), 400)
    assert_error(await h.call("POST", "/spaces/nope/host", host, json={"user_id": cohost.id}), 404)
    answer = await h.call("POST", path, host, json={"username": "sami"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["role"] == "host"
    assert await roles(h, space_id) == {cohost.id: "host", host.id: "cohost", speaker.id: "speaker"}
    # And back: the new host may hand it on.
    back = await h.call("POST", path, cohost, json={"user_id": host.id})
    assert back.status_code == 200, back.text
    assert (await space_of(h, space_id))["host_id"] == host.id
    transfers = [e for e in await logged(h, space_id) if e[1] == "host_transfer"]
    assert transfers == [
        (host.id, "host_transfer", cohost.id),
        (cohost.id, "host_transfer", host.id),
    ]


async def test_hosting_passes_only_in_a_live_space(h: Harness) -> None:
    host, cohost = await h.account("hana"), await h.account("sami")
    space = await h.create_space(host, scheduled_in=3600)
    named = await h.call(
        "POST", f"/spaces/{space['id']}/cohosts", host, json={"user_id": cohost.id}
    )
    assert named.status_code == 200, named.text
    path = f"/spaces/{space['id']}/host"
    assert_error(await h.call("POST", path, host, json={"user_id": cohost.id}), 409, "not_live")

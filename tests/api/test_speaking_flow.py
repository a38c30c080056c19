"""The whole speaking flow against a real `majlis serve`: several clients at once over HTTP
and event sockets, on the embedded default and on PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.conftest import (
    BACKENDS,
    SOCKETS_PER_USER,
    V1,
    Account,
    EventStream,
    Harness,
    Server,
    assert_error,
    backend_server,
    open_events,
    refused_socket,
    start_server,
)

PASSWORD = "correct horse battery"


async def register(client: httpx.AsyncClient, username: str) -> Account:
    answer = await client.post(
        f"{V1}/auth/register", json={"username": username, "password": PASSWORD}
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["user"]["username"] == username
    return Account(body["user"]["id"], username, body["token"])


async def post(
    client: httpx.AsyncClient, path: str, who: Account | None, body: object = None
) -> httpx.Response:
    headers = who.headers if who else None
    if body is None:
        return await client.post(V1 + path, headers=headers)
    return await client.post(V1 + path, headers=headers, json=body)


async def state_when(
    client: httpx.AsyncClient, space_id: str, ready: Any, within: float = 4.0
) -> httpx.Response:
    """The state document once `ready(document)` holds (it is cached for about a second)."""
    deadline = time.monotonic() + within
    while True:
        answer = await client.get(f"{V1}/spaces/{space_id}/state")
        assert answer.status_code == 200, answer.text
        if ready(answer.json()) or time.monotonic() > deadline:
            return answer
        await asyncio.sleep(0.2)


async def everyone_sees(
    streams: list[EventStream], kind: str, **data: object
) -> list[dict[str, Any]]:
    return list(await asyncio.gather(*(s.wait_for_match(kind, data) for s in streams)))


@pytest.mark.timeout(90)
@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
async def test_speaking_flow(backend: str, tmp_path: Path) -> None:
    async with (
        backend_server(backend, tmp_path) as server,
        httpx.AsyncClient(base_url=server.base_url, timeout=10) as http,
    ):
        await speaking_flow(server, http)


async def speaking_flow(server: Server, http: httpx.AsyncClient) -> None:
    host, lina, omar, cora = await asyncio.gather(
        register(http, "host_h"),
        register(http, "lina"),
        register(http, "omar"),
        register(http, "cora"),
    )
    created = await post(http, "/spaces", host, {"title": "مجلس الخميس — Thursday majlis"})
    assert created.status_code == 201, created.text
    space = created.json()
    sid = space["id"]
    assert space["state"] == "live"
    assert space["host_username"] == "host_h"

    # Two listeners join at once: one anonymous, one logged in (and a second logged-in one).
    anon_answer = await post(http, "/auth/anonymous", None)
    assert anon_answer.status_code == 200
    anon = Account(anon_answer.json()["member"], "", anon_answer.json()["token"])
    joins = await asyncio.gather(*(post(http, f"/spaces/{sid}/join", w, {}) for w in (anon, lina)))
    for answer in joins:
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "admitted"
        assert answer.json()["role"] == "listener"
        token = answer.json()["playback_token"]
        assert answer.json()["playback_url"].endswith(f"/hls/{sid}/{token}/index.m3u8")
    assert (await post(http, f"/spaces/{sid}/join", omar, {})).status_code == 200

    # Sockets are for people who act: a listener who is not acting is refused.
    assert (await refused_socket(server, sid, lina))[0] == 4403
    assert (await refused_socket(server, sid, anon))[0] == 4401
    assert (await refused_socket(server, sid, None))[0] == 4401
    assert (await refused_socket(server, "no-such-space", host))[0] == 4404

    host_events = await open_events(server, sid, host)

    # A listener asks to speak: the host hears of it; the asker may now hold a socket.
    assert (await post(http, f"/spaces/{sid}/requests", lina)).status_code == 204
    asked = await host_events.wait_for("speak_requested", user_id=lina.id)
    assert asked["space_id"] == sid
    lina_events = await open_events(server, sid, lina)
    pending = await http.get(f"{V1}/spaces/{sid}/requests", headers=host.headers)
    assert [r["user_id"] for r in pending.json()["requests"]] == [lina.id]

    # The host approves: everyone's socket sees the role change.
    approved = await post(http, f"/spaces/{sid}/requests/{lina.id}/approve", host)
    assert approved.status_code == 200, approved.text
    assert approved.json()["role"] == "speaker"
    await everyone_sees([host_events, lina_events], "role_changed", user_id=lina.id, role="speaker")

    # The host invites another listener, who connects, sees the invitation, accepts.
    assert (await refused_socket(server, sid, omar))[0] == 4403
    invited = await post(http, f"/spaces/{sid}/invites", host, {"user_id": omar.id})
    assert invited.status_code == 204, invited.text
    omar_events = await open_events(server, sid, omar)
    invitation = await omar_events.wait_for("invited", user_id=omar.id)
    assert invitation["data"]["by"] == host.id
    accepted = await post(http, f"/spaces/{sid}/invites/accept", omar)
    assert accepted.status_code == 200, accepted.text
    streams = [host_events, lina_events, omar_events]
    await everyone_sees(streams, "role_changed", user_id=omar.id, role="speaker")

    # A co-host is named.
    named = await post(http, f"/spaces/{sid}/cohosts", host, {"user_id": cora.id})
    assert named.status_code == 200, named.text
    assert named.json()["role"] == "cohost"
    await everyone_sees(streams, "role_changed", user_id=cora.id, role="cohost")
    cora_events = await open_events(server, sid, cora)
    streams.append(cora_events)

    # Mute: the host mutes a speaker; only the speaker unmutes themself.
    assert (await post(http, f"/spaces/{sid}/participants/{lina.id}/mute", host)).status_code == 204
    await everyone_sees(streams, "muted", user_id=lina.id)
    refused = await post(http, f"/spaces/{sid}/participants/{lina.id}/unmute", host)
    assert_error(refused, 403, "self_unmute_only")
    unmuted = await post(http, f"/spaces/{sid}/participants/{lina.id}/unmute", lina)
    assert unmuted.status_code == 204, unmuted.text
    await everyone_sees(streams, "unmuted", user_id=lina.id)
    assert (await post(http, f"/spaces/{sid}/participants/{omar.id}/mute", cora)).status_code == 204
    await everyone_sees(streams, "muted", user_id=omar.id)

    # Reactions, then the state document every listener polls.
    for who, emoji in ((anon, "👏"), (anon, "👏"), (lina, "🔥")):
        reacted = await post(http, f"/spaces/{sid}/reactions", who, {"emoji": emoji})
        assert reacted.status_code == 200, reacted.text
    expected_stage = {
        host.id: ("host", False),
        cora.id: ("cohost", False),
        lina.id: ("speaker", False),
        omar.id: ("speaker", True),
    }

    def stage_of(document: dict[str, Any]) -> dict[str, tuple[str, bool]]:
        return {s["user_id"]: (s["role"], s["muted"]) for s in document["speakers"]}

    state = await state_when(
        http, sid, lambda d: stage_of(d) == expected_stage and d["reactions"].get("🔥") == 1
    )
    assert state.headers["cache-control"] == "public, max-age=1"
    document = state.json()
    assert stage_of(document) == expected_stage
    assert document["listener_count"] == 3  # anon, lina and omar joined; nobody left
    assert document["reactions"] == {"👏": 2, "🔥": 1}
    assert document["space"]["id"] == sid
    assert document["space"]["state"] == "live"

    # Leaving the stage: a speaker steps down, the host demotes another.
    assert (await post(http, f"/spaces/{sid}/step-down", omar)).status_code == 204
    await everyone_sees(streams, "role_changed", user_id=omar.id, role="listener")
    demoted = await post(http, f"/spaces/{sid}/participants/{lina.id}/demote", host)
    assert demoted.status_code == 204, demoted.text
    changed = await everyone_sees(streams, "role_changed", user_id=lina.id, role="listener")
    assert changed[0]["data"]["reason"] == "demoted"

    # Remove with ban: the banned user alone hears what was done and why; the space only
    # that they are gone. Their socket is closed at once ...
    path = f"/spaces/{sid}/participants/{lina.id}/remove"
    removed = await post(http, path, host, {"ban": True, "reason": "threats"})
    assert removed.status_code == 204, removed.text
    others = [host_events, omar_events, cora_events]
    for seen in await everyone_sees(others, "removed", user_id=lina.id):
        assert seen["data"] == {"user_id": lina.id}, seen
    told = await lina_events.wait_for("notice", user_id=lina.id)
    assert (told["data"]["notice"]["action"], told["data"]["notice"]["text"]) == ("ban", "threats")
    await lina_events.wait_for("removed", user_id=lina.id)
    assert (await lina_events.closed())[0] == 4403
    assert not any(m["type"] == "notice" for s in others for m in s.seen)
    # ... and a still-valid token does not bring them back.
    assert_error(await post(http, f"/spaces/{sid}/join", lina, {}), 403, "banned")
    assert_error(await post(http, f"/spaces/{sid}/requests", lina), 403, "banned")
    code, reason = await refused_socket(server, sid, lina)
    assert (code, reason) == (4403, "you are banned from this space")
    assert (await http.get(f"{V1}/auth/me", headers=lina.headers)).status_code == 200

    # A socket closed and opened again starts over with a fresh hello.
    await host_events.close()
    host_events = await open_events(server, sid, host)
    hello = host_events.seen[0]
    assert hello["role"] == "host"
    assert {p["user_id"]: p["role"] for p in hello["participants"]} == {
        host.id: "host",
        cora.id: "cohost",
    }

    # The host ends the space: every socket is told and closed normally.
    ended = await post(http, f"/spaces/{sid}/end", host)
    assert ended.status_code == 200 and ended.json()["state"] == "ended"
    for stream in (host_events, omar_events, cora_events):
        await stream.wait_for("space_ended")
        assert (await stream.closed())[0] == 1000
    assert (await refused_socket(server, sid, host))[0] == 4409


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_sockets_per_user_are_bounded(shared_server: Server) -> None:
    async with httpx.AsyncClient(base_url=shared_server.base_url, timeout=10) as http:
        host = await register(http, "sockets_host")
        sid = (await post(http, "/spaces", host, {"title": "sockets"})).json()["id"]
        streams = [await open_events(shared_server, sid, host) for _ in range(SOCKETS_PER_USER)]
        code, reason = await refused_socket(shared_server, sid, host)
        assert (code, reason) == (4429, f"at most {SOCKETS_PER_USER} event sockets per user")
        await streams[0].close()
        await asyncio.sleep(0.2)
        streams[0] = await open_events(shared_server, sid, host)
        for stream in streams:
            await stream.close()


# limits, in-process --------------------------------------------------------------------------


async def test_eleventh_speaker_and_third_cohost_are_refused(harness: Harness) -> None:
    host = await harness.account("limit_host")
    sid = (await harness.create_space(host))["id"]
    speakers = [await harness.account(f"speaker_{i}") for i in range(10)]
    for speaker in speakers:
        await harness.make_speaker(sid, host, speaker)
    cohosts = [await harness.account(f"cohost_{i}") for i in range(2)]
    for cohost in cohosts:
        named = await harness.call(
            "POST", f"/spaces/{sid}/cohosts", host, json={"user_id": cohost.id}
        )
        assert named.status_code == 200, named.text

    eleventh = await harness.account("speaker_10")
    assert (await harness.call("POST", f"/spaces/{sid}/requests", eleventh)).status_code == 204
    body = assert_error(
        await harness.call("POST", f"/spaces/{sid}/requests/{eleventh.id}/approve", host),
        409,
        "too_many_speakers",
    )
    assert body["reason"] == "this space already has 10 speakers"
    # Refused, not lost: the request is still there to approve when a seat frees up.
    pending = await harness.call("GET", f"/spaces/{sid}/requests", host)
    assert [r["user_id"] for r in pending.json()["requests"]] == [eleventh.id]
    invitee = await harness.account("invitee")
    assert (
        await harness.call("POST", f"/spaces/{sid}/invites", host, json={"user_id": invitee.id})
    ).status_code == 204
    assert_error(await harness.call("POST", f"/spaces/{sid}/invites/accept", invitee), 409)

    third = await harness.account("cohost_2")
    body = assert_error(
        await harness.call("POST", f"/spaces/{sid}/cohosts", host, json={"user_id": third.id}),
        409,
        "too_many_cohosts",
    )
    assert body["reason"] == "this space already has 2 cohosts"

    stage = (await harness.call("GET", f"/spaces/{sid}/participants")).json()["participants"]
    roles = [p["role"] for p in stage]
    assert roles.count("host") == 1
    assert roles.count("cohost") == 2
    assert roles.count("speaker") == 10

    # A seat freed is a seat taken.
    assert (await harness.call("POST", f"/spaces/{sid}/step-down", speakers[0])).status_code == 204
    approved = await harness.call("POST", f"/spaces/{sid}/requests/{eleventh.id}/approve", host)
    assert approved.status_code == 200, approved.text


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_sockets_per_address_are_bounded(tmp_path: Path) -> None:
    """Issue 13: many accounts from one address cannot pile up sockets either."""
    server = start_server(tmp_path, {"MAJLIS_MAX_WS_PER_IP": "3"})
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            host = await register(http, "ip_host")
            cohost = await register(http, "ip_cohost")
            sid = (await post(http, "/spaces", host, {"title": "one address"})).json()["id"]
            added = await post(http, f"/spaces/{sid}/cohosts", host, {"user_id": cohost.id})
            assert added.status_code == 200, added.text
            streams = [await open_events(server, sid, who) for who in (host, host, cohost)]
            code, reason = await refused_socket(server, sid, cohost)
            assert (code, reason) == (4429, "at most 3 event sockets per address")
            await streams[0].close()
            await asyncio.sleep(0.2)
            streams[0] = await open_events(server, sid, cohost)  # room again
            for stream in streams:
                await stream.close()
    finally:
        server.stop()

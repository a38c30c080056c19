"""Every privileged action × every kind of caller. A refused call is 401 or 403 and changes
nothing; an allowed call makes exactly its change, and leaves exactly one audit entry
naming its actor. State is read back after every call."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.conftest import (
    Account,
    Harness,
    assert_error,
    mint_token,
    running_harness,
    unsigned_token,
)
from majlis.types import Role

Snapshot = dict[str, Any]


@dataclass
class Cast:
    """Two spaces of one host (live, scheduled), a third of another host, and the people."""

    live: str
    scheduled: str
    other_space: str
    host: Account
    cohost: Account
    speaker: Account
    target: Account  # a second speaker, whom moderators act on
    muted: Account  # a speaker the host has muted
    requester: Account  # a listener who asked to speak
    listener: Account  # a logged-in listener
    invitee: Account  # a listener to invite or name co-host
    banned: Account
    other_host: Account
    anonymous: Account
    revoked: Account  # the host's identity with a logged-out token

    @property
    def users(self) -> list[Account]:
        return [
            self.host,
            self.cohost,
            self.speaker,
            self.target,
            self.muted,
            self.requester,
            self.listener,
            self.invitee,
            self.banned,
            self.other_host,
        ]


async def build_cast(h: Harness) -> Cast:
    names = "host cohost speaker target muted requester listener invitee banned other_host"
    people = {name: await h.account(name) for name in names.split()}
    host = people["host"]
    live = (await h.create_space(host, "live"))["id"]
    scheduled = (await h.create_space(host, "scheduled", scheduled_in=3600))["id"]
    other_space = (await h.create_space(people["other_host"], "elsewhere"))["id"]

    for name in ("speaker", "target", "muted"):
        await h.make_speaker(live, host, people[name])
        # Speakers cannot be approved before a space is live; the store seats them directly.
        seated = await h.services.store.set_role(
            scheduled, people[name].id, Role.SPEAKER, limit=10, at=h.clock.now()
        )
        assert seated
    for sid in (live, scheduled):
        named = await h.call(
            "POST", f"/spaces/{sid}/cohosts", host, json={"user_id": people["cohost"].id}
        )
        assert named.status_code == 200, named.text
        muted = await h.call("POST", f"/spaces/{sid}/participants/{people['muted'].id}/mute", host)
        assert muted.status_code == 204, muted.text
    for name in ("listener", "banned", "requester"):
        joined = await h.call("POST", f"/spaces/{live}/join", people[name], json={})
        assert joined.status_code == 200, joined.text
    asked = await h.call("POST", f"/spaces/{live}/requests", people["requester"])
    assert asked.status_code == 204, asked.text
    for sid in (live, scheduled):
        path = f"/spaces/{sid}/participants/{people['banned'].id}/remove"
        banned = await h.call("POST", path, host, json={"ban": True})
        assert banned.status_code == 204, banned.text

    revoked_token = mint_token(host.id)
    assert (
        await h.call("POST", "/auth/logout", headers={"Authorization": f"Bearer {revoked_token}"})
    ).status_code == 204
    return Cast(
        live=live,
        scheduled=scheduled,
        other_space=other_space,
        anonymous=await h.anonymous(),
        revoked=Account(host.id, "host", revoked_token),
        **people,
    )


async def snapshot(h: Harness, cast: Cast) -> Snapshot:
    """What the actions can change, read back through the API (and the store for what the
    API does not show: pending invitations and bans)."""
    store = h.services.store
    out: Snapshot = {}
    for name, sid in (("live", cast.live), ("scheduled", cast.scheduled)):
        space = await h.call("GET", f"/spaces/{sid}")
        stage = await h.call("GET", f"/spaces/{sid}/participants")
        assert space.status_code == 200 and stage.status_code == 200
        requests = await store.list_speak_requests(sid)
        invites = [u.id for u in cast.users if await store.get_invite(sid, u.id) is not None]
        banned = [u.id for u in cast.users if await store.is_banned(sid, u.id)]
        audit = await store.list_audit(sid, before=None, limit=1000)
        out[name] = {
            "state": space.json()["state"],
            "captions": space.json()["captions"],
            "stage": {p["user_id"]: (p["role"], p["muted"]) for p in stage.json()["participants"]},
            "requests": sorted(r.user_id for r in requests),
            "invites": sorted(invites),
            "banned": sorted(banned),
            "audit": [(e.action, e.actor_id, e.target_id) for e in audit],
        }
    return out


# actions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    name: str
    method: str
    path: Callable[[Cast], str]
    allowed: frozenset[str]
    ok: int
    change: Callable[[Snapshot, Cast], None]
    body: Callable[[Cast], object] | None = None
    # The audit entry an allowed call adds to the live space's log: its action and target.
    audit: tuple[str, Callable[[Cast], str | None]] | None = None


def _set_state(space: str, state: str) -> Callable[[Snapshot, Cast], None]:
    def change(s: Snapshot, c: Cast) -> None:
        s[space]["state"] = state

    return change


def _captions_off(s: Snapshot, c: Cast) -> None:
    s["live"]["captions"] = False


def _approve(s: Snapshot, c: Cast) -> None:
    s["live"]["requests"].remove(c.requester.id)
    s["live"]["stage"][c.requester.id] = ("speaker", False)


def _decline(s: Snapshot, c: Cast) -> None:
    s["live"]["requests"].remove(c.requester.id)


def _invite(s: Snapshot, c: Cast) -> None:
    s["live"]["invites"] = sorted([*s["live"]["invites"], c.invitee.id])


def _off_stage(s: Snapshot, c: Cast) -> None:
    del s["live"]["stage"][c.target.id]


def _mute(s: Snapshot, c: Cast) -> None:
    s["live"]["stage"][c.target.id] = ("speaker", True)


def _ban(s: Snapshot, c: Cast) -> None:
    _off_stage(s, c)
    s["live"]["banned"] = sorted([*s["live"]["banned"], c.target.id])


def _add_cohost(s: Snapshot, c: Cast) -> None:
    s["live"]["stage"][c.invitee.id] = ("cohost", False)


def _remove_cohost(s: Snapshot, c: Cast) -> None:
    s["live"]["stage"][c.cohost.id] = ("speaker", False)


def _nothing(s: Snapshot, c: Cast) -> None:
    pass


HOST = frozenset({"host"})
MODERATORS = frozenset({"host", "cohost"})
NOBODY: frozenset[str] = frozenset()

ACTIONS = [
    Action(
        "start",
        "POST",
        lambda c: f"/spaces/{c.scheduled}/start",
        HOST,
        200,
        _set_state("scheduled", "live"),
    ),
    Action(
        "end",
        "POST",
        lambda c: f"/spaces/{c.live}/end",
        HOST,
        200,
        _set_state("live", "ended"),
        audit=("end", lambda c: None),
    ),
    Action(
        "captions_off",
        "PUT",
        lambda c: f"/spaces/{c.live}/captions",
        HOST,
        200,
        _captions_off,
        lambda c: {"on": False},
    ),
    Action(
        "approve",
        "POST",
        lambda c: f"/spaces/{c.live}/requests/{c.requester.id}/approve",
        MODERATORS,
        200,
        _approve,
        audit=("approve", lambda c: c.requester.id),
    ),
    Action(
        "decline",
        "POST",
        lambda c: f"/spaces/{c.live}/requests/{c.requester.id}/decline",
        MODERATORS,
        204,
        _decline,
        audit=("decline", lambda c: c.requester.id),
    ),
    Action(
        "invite",
        "POST",
        lambda c: f"/spaces/{c.live}/invites",
        MODERATORS,
        204,
        _invite,
        lambda c: {"user_id": c.invitee.id},
        audit=("invite", lambda c: c.invitee.id),
    ),
    Action(
        "demote",
        "POST",
        lambda c: f"/spaces/{c.live}/participants/{c.target.id}/demote",
        MODERATORS,
        204,
        _off_stage,
        audit=("demote", lambda c: c.target.id),
    ),
    Action(
        "mute",
        "POST",
        lambda c: f"/spaces/{c.live}/participants/{c.target.id}/mute",
        MODERATORS,
        204,
        _mute,
        audit=("mute", lambda c: c.target.id),
    ),
    Action(
        "unmute_other",
        "POST",
        lambda c: f"/spaces/{c.live}/participants/{c.muted.id}/unmute",
        NOBODY,
        204,
        _nothing,
    ),
    Action(
        "remove",
        "POST",
        lambda c: f"/spaces/{c.live}/participants/{c.target.id}/remove",
        MODERATORS,
        204,
        _off_stage,
        lambda c: {"ban": False},
        audit=("remove", lambda c: c.target.id),
    ),
    Action(
        "ban",
        "POST",
        lambda c: f"/spaces/{c.live}/participants/{c.target.id}/remove",
        MODERATORS,
        204,
        _ban,
        lambda c: {"ban": True},
        audit=("ban", lambda c: c.target.id),
    ),
    Action(
        "add_cohost",
        "POST",
        lambda c: f"/spaces/{c.live}/cohosts",
        HOST,
        200,
        _add_cohost,
        lambda c: {"user_id": c.invitee.id},
        audit=("cohost_add", lambda c: c.invitee.id),
    ),
    Action(
        "remove_cohost",
        "DELETE",
        lambda c: f"/spaces/{c.live}/cohosts/{c.cohost.id}",
        HOST,
        200,
        _remove_cohost,
        audit=("cohost_remove", lambda c: c.cohost.id),
    ),
    Action(
        "list_requests", "GET", lambda c: f"/spaces/{c.live}/requests", MODERATORS, 200, _nothing
    ),
    Action("audit", "GET", lambda c: f"/spaces/{c.live}/audit", MODERATORS, 200, _nothing),
    Action("audit_csv", "GET", lambda c: f"/spaces/{c.live}/audit.csv", MODERATORS, 200, _nothing),
    Action("listeners", "GET", lambda c: f"/spaces/{c.live}/listeners", MODERATORS, 200, _nothing),
]


# callers -----------------------------------------------------------------------------------

# Who calls, and the status a refusal must have: 401 when the caller is nobody we know,
# 403 when we know them and they may not.
CALLERS: dict[str, int] = {
    "no_token": 401,
    "anonymous_token": 401,
    "listener": 403,
    "speaker": 403,
    "cohost": 403,
    "host": 403,
    "other_host": 403,
    "banned": 403,
    "expired_token": 401,
    "revoked_token": 401,
    "bad_signature": 401,
    "alg_none": 401,
    "wrong_audience": 401,
}


def headers_of(caller: str, cast: Cast) -> dict[str, str]:
    host_id = cast.host.id
    token = {
        "no_token": None,
        "anonymous_token": cast.anonymous.token,
        "listener": cast.listener.token,
        "speaker": cast.speaker.token,
        "cohost": cast.cohost.token,
        "host": cast.host.token,
        "other_host": cast.other_host.token,
        "banned": cast.banned.token,
        # The forged and stale tokens all claim to be the host.
        "expired_token": mint_token(host_id, expires_at=time.time() - 5),
        "revoked_token": cast.revoked.token,
        "bad_signature": mint_token(host_id, secret="not-the-server-secret-" + "x" * 20),
        "alg_none": unsigned_token(host_id),
        "wrong_audience": mint_token(host_id, audience="majlis:playback"),
    }[caller]
    return {} if token is None else {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("action", ACTIONS, ids=[a.name for a in ACTIONS])
async def test_action_by_caller(action: Action, caller: str, tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        cast = await build_cast(h)
        before = await snapshot(h, cast)
        body = action.body(cast) if action.body else None
        answer = await h.call(
            action.method, action.path(cast), json=body, headers=headers_of(caller, cast)
        )
        after = await snapshot(h, cast)

        expected = copy.deepcopy(before)
        if caller in action.allowed:
            assert answer.status_code == action.ok, answer.text
            action.change(expected, cast)
            if action.name in READS:  # reads must show, not change
                assert_shows(action.name, answer, cast)
            else:
                assert expected != before, "an allowed action must change something"
            if action.audit is not None:
                kind, target = action.audit
                actor = cast.host if caller == "host" else cast.cohost
                expected["live"]["audit"].insert(0, (kind, actor.id, target(cast)))
        else:
            assert_error(answer, CALLERS[caller])
        assert after == expected


READS = frozenset({"list_requests", "audit", "audit_csv", "listeners"})


def assert_shows(name: str, answer: httpx.Response, cast: Cast) -> None:
    if name == "list_requests":
        listed = [r["user_id"] for r in answer.json()["requests"]]
        assert listed == [cast.requester.id]
    elif name == "listeners":
        body = answer.json()
        assert body["count"] >= 0 and body["more"] is False
        assert {u["user_id"] for u in body["users"]} <= {cast.listener.id, cast.requester.id}
    elif name == "audit":
        banned = [e for e in answer.json()["entries"] if e["action"] == "ban"]
        assert [e["target_id"] for e in banned] == [cast.banned.id]
    else:
        assert answer.text.startswith("seq,time,space_id,action,")
        assert cast.banned.id in answer.text


def test_matrix_covers_every_action_and_caller() -> None:
    names = {a.name for a in ACTIONS}
    assert names == {
        "start", "end", "captions_off", "approve", "decline", "invite", "demote", "mute",
        "unmute_other", "remove", "ban", "add_cohost", "remove_cohost", "list_requests",
        "audit", "audit_csv", "listeners",
    }  # fmt: skip
    allowed = {a.name: sorted(a.allowed) for a in ACTIONS}
    assert allowed["unmute_other"] == []
    assert allowed["end"] == ["host"]
    assert allowed["captions_off"] == ["host"]
    assert allowed["add_cohost"] == ["host"]
    assert allowed["ban"] == ["cohost", "host"]
    assert allowed["audit"] == allowed["audit_csv"] == allowed["listeners"] == ["cohost", "host"]
    audited = {a.name for a in ACTIONS if a.audit is not None}
    assert audited == names - READS - {"start", "captions_off", "unmute_other"}

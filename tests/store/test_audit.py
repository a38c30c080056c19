"""The audit log and statements of reasons in the store, against SQLite and PostgreSQL: each
entry is written in the transaction of its action, and a log reads back newest first."""

from __future__ import annotations

import pytest

from majlis.store import Store
from majlis.types import AuditEntry, Invite, Notice, Role, SpaceState

from .test_store import T0, hosted_space, users


def entry(action: str, actor: str, target: str | None = None, reason: str = "") -> AuditEntry:
    return AuditEntry("s1", actor, action, T0, target_id=target, reason=reason)  # type: ignore[arg-type]


def notice(user_id: str, notice_id: str = "n1", at: float = T0) -> Notice:
    return Notice(
        id=notice_id,
        user_id=user_id,
        space_id="s1",
        action="ban",
        category="spam",
        text="links to a scam, again",
        ground="house_rules",
        automated=False,
        appeal="ask the host",
        at=at,
    )


async def test_each_action_appends_its_entry(store: Store) -> None:
    host, _ = await hosted_space(store)
    a, b = await users(store, "A", "B")
    assert await store.set_role(
        "s1", a.id, Role.SPEAKER, limit=10, at=T0, audit=entry("approve", host.id, a.id)
    )
    assert await store.set_muted("s1", a.id, True, audit=entry("mute", host.id, a.id, "too loud"))
    invite = Invite("s1", b.id, host.id, T0)
    assert await store.add_invite(invite, audit=entry("invite", host.id, b.id))
    assert await store.remove_participant("s1", a.id, audit=entry("demote", host.id, a.id))
    await store.remove_member("s1", b.id, audit=entry("remove", host.id, b.id, "rude"))
    ended = entry("end", host.id)
    assert await store.transition_space("s1", SpaceState.LIVE, SpaceState.ENDED, T0, audit=ended)

    log = await store.list_audit("s1", before=None, limit=50)
    assert [(e.action, e.actor_id, e.target_id, e.reason) for e in log] == [
        ("end", host.id, None, ""),
        ("remove", host.id, b.id, "rude"),
        ("demote", host.id, a.id, ""),
        ("invite", host.id, b.id, ""),
        ("mute", host.id, a.id, "too loud"),
        ("approve", host.id, a.id, ""),
    ]
    assert log[1].actor_username == "Host" and log[1].target_username == "B"
    assert log[0].target_username == "" and log[0].at == T0
    assert await store.get_invite("s1", b.id) is None  # remove_member took the invitation


async def test_an_action_that_changes_nothing_writes_no_entry(store: Store) -> None:
    host, _ = await hosted_space(store)
    [a] = await users(store, "A")
    assert not await store.set_muted("s1", a.id, True, audit=entry("mute", host.id, a.id))
    assert not await store.remove_speak_request("s1", a.id, audit=entry("decline", host.id, a.id))
    assert not await store.transition_space(
        "s1", SpaceState.SCHEDULED, SpaceState.LIVE, T0, audit=entry("end", host.id)
    )
    assert await store.list_audit("s1", before=None, limit=50) == []


async def test_an_action_whose_entry_fails_does_not_happen(store: Store) -> None:
    """The entry's insert fails (its actor is no user): the mute rolls back with it."""
    host, _ = await hosted_space(store)
    [a] = await users(store, "A")
    assert await store.set_role("s1", a.id, Role.SPEAKER, limit=10, at=T0)
    with pytest.raises(Exception):  # noqa: B017 - each driver has its own integrity error
        await store.set_muted("s1", a.id, True, audit=entry("mute", "nobody", a.id))
    with pytest.raises(Exception):  # noqa: B017
        await store.ban("s1", a.id, host.id, T0, audit=entry("ban", "nobody", a.id))
    participant = await store.get_participant("s1", a.id)
    assert participant is not None and not participant.muted
    assert not await store.is_banned("s1", a.id)
    assert await store.list_audit("s1", before=None, limit=50) == []


async def test_pages_follow_the_cursor(store: Store) -> None:
    host, _ = await hosted_space(store)
    [a] = await users(store, "A")
    assert await store.set_role("s1", a.id, Role.SPEAKER, limit=10, at=T0)
    for i in range(5):
        assert await store.set_muted(
            "s1", a.id, i % 2 == 0, audit=entry("mute", host.id, a.id, str(i))
        )
    first = await store.list_audit("s1", before=None, limit=2)
    second = await store.list_audit("s1", before=first[-1].seq, limit=2)
    third = await store.list_audit("s1", before=second[-1].seq, limit=2)
    assert [e.reason for e in first + second + third] == ["4", "3", "2", "1", "0"]
    assert await store.list_audit("s1", before=third[-1].seq, limit=2) == []
    assert await store.list_audit("other", before=None, limit=2) == []


async def test_a_ban_writes_its_notice_for_that_user_alone(store: Store) -> None:
    host, _ = await hosted_space(store)
    a, b = await users(store, "A", "B")
    await store.ban("s1", a.id, host.id, T0, audit=entry("ban", host.id, a.id), notice=notice(a.id))
    later = notice(a.id, "n2", T0 + 5)
    await store.remove_member("s1", a.id, notice=later)
    assert await store.list_notices(a.id, 10) == [later, notice(a.id)]
    assert await store.list_notices(a.id, 1) == [later]
    assert await store.list_notices(b.id, 10) == []
    assert await store.is_banned("s1", a.id)

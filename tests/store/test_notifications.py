"""Reminders delivered and in-app notifications in the store, against SQLite and
PostgreSQL: a reminder is claimed once however many deliveries race, and a user's
notifications read back newest first with an unread count."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from majlis.store import Store
from majlis.types import SpaceState

from .test_store import T0, hosted_space, space, user, users


async def test_reminders_are_delivered_once_with_emails(store: Store) -> None:
    await hosted_space(store)
    await store.create_user(replace(user("Mailed"), email="m@example.org"))
    [plain] = await users(store, "Plain")
    for u in ("id-mailed", plain.id):
        await store.add_reminder("s1", u, T0)

    claims = await asyncio.gather(
        *(store.deliver_reminders("s1", "space_started", "a talk", T0 + 1) for _ in range(4))
    )
    claimed = sorted((s.user_id, s.email) for c in claims for s in c)
    assert claimed == [("id-mailed", "m@example.org"), (plain.id, None)]
    assert await store.deliver_reminders("s1", "space_started", "a talk", T0 + 2) == []
    for u in ("id-mailed", plain.id):
        [note] = await store.list_notifications(u, before=None, limit=10)
        assert (note.space_id, note.kind, note.title, note.read) == (
            "s1",
            "space_started",
            "a talk",
            False,
        )
    assert (await store.get_user("id-mailed")) == replace(user("Mailed"), email="m@example.org")


async def test_notifications_page_count_and_read(store: Store) -> None:
    host, _ = await hosted_space(store)
    [a] = await users(store, "A")
    for n in range(3):
        sid = f"t{n}"
        await store.create_space(space(sid, host, title=f"talk {n}"))
        await store.add_reminder(sid, a.id, T0)
        await store.deliver_reminders(sid, "space_missed", f"talk {n}", T0 + n)
    notes = await store.list_notifications(a.id, before=None, limit=2)
    assert [n.title for n in notes] == ["talk 2", "talk 1"]
    older = await store.list_notifications(a.id, before=notes[-1].seq, limit=2)
    assert [n.title for n in older] == ["talk 0"]
    assert await store.count_unread(a.id) == 3
    assert await store.mark_read(a.id, notes[-1].seq, T0 + 9) == 2
    assert await store.count_unread(a.id) == 1
    assert await store.mark_read(a.id, None, T0 + 9) == 1
    assert await store.mark_read(a.id, None, T0 + 9) == 0
    assert await store.count_unread(host.id) == 0


async def test_overdue_scheduled_spaces(store: Store) -> None:
    host, _ = await hosted_space(store)
    for sid, at in (("late", T0 + 10), ("later", T0 + 20), ("future", T0 + 100)):
        scheduled = space(sid, host, state=SpaceState.SCHEDULED, scheduled_for=at)
        await store.create_space(scheduled)
    assert await store.overdue_scheduled(T0 + 50, 10) == ["late", "later"]
    assert await store.overdue_scheduled(T0 + 50, 1) == ["late"]
    assert await store.overdue_scheduled(T0, 10) == []


async def test_live_spaces_with_undelivered_reminders(store: Store) -> None:
    host, _ = await hosted_space(store)  # live
    [a] = await users(store, "A")
    scheduled = space("later", host, state=SpaceState.SCHEDULED, scheduled_for=T0 + 10)
    await store.create_space(scheduled)
    for sid in ("s1", "later"):
        await store.add_reminder(sid, a.id, T0)
    assert await store.undelivered_live(10) == ["s1"]
    await store.deliver_reminders("s1", "space_started", "a talk", T0)
    assert await store.undelivered_live(10) == []


async def test_spaces_never_live_are_not_listed_as_replays(store: Store) -> None:
    host, _ = await hosted_space(store)
    ended = SpaceState.ENDED
    await store.create_space(space("held", host, state=ended, started_at=T0, ended_at=T0 + 9))
    await store.create_space(space("missed", host, state=ended, scheduled_for=T0, ended_at=T0))
    listed = await store.list_spaces(
        state=ended, query=None, host_id=None, include_unlisted=True, limit=10, offset=0
    )
    assert [s.id for s in listed] == ["held"]

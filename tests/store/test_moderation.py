"""Moderation in the store, on both dialects: a decision is written whole or not at all, and
of two moderators racing on one report exactly one wins. The 0010 upgrade keeps every
audit entry and its seq (SQLite rebuilds the table)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from majlis.store.base import Store
from majlis.store.migrate import load_migrations
from majlis.store.sqlite import SqliteStore
from majlis.types import Act, AuditEntry, Report

from .test_store import T0, space, user


async def _report(store: Store, report_id: str = "r1") -> tuple[str, str]:
    host, lina = user("Host"), user("Lina")
    await store.create_user(host)
    await store.create_user(lina)
    await store.create_space(space("s1", host))
    await store.add_report(
        Report(report_id, "speaker", "s1", lina.id, None, "spam", "", None, created_at=T0)
    )
    return host.id, lina.id


async def test_two_moderators_racing_on_one_report_one_wins(store: Store) -> None:
    host_id, lina_id = await _report(store)
    acts = [
        Act(
            AuditEntry("s1", host_id, "ban", T0 + 1, lina_id, "first"),
            report=("r1", "remove"),
            ban=True,
        ),
        Act(
            AuditEntry(None, host_id, "suspend", T0 + 1, lina_id, "second"),
            report=("r1", "suspend"),
            suspend_until=T0 + 86400,
        ),
    ]
    won = await asyncio.gather(*(store.act(a) for a in acts))
    assert sorted(won) == [False, True]
    decided = await store.get_report("r1")
    assert decided is not None and decided.decision in ("remove", "suspend")
    log = await store.list_site_audit(before=None, limit=10)
    assert len(log) == 1  # the loser wrote nothing
    banned = await store.is_banned("s1", lina_id)
    suspended = await store.suspended_until(lina_id, T0) is not None
    assert (banned, suspended) == ((True, False) if decided.decision == "remove" else (False, True))


async def test_an_act_on_an_ended_space_writes_nothing(store: Store) -> None:
    host_id, _ = await _report(store)
    act = Act(AuditEntry("s1", host_id, "end", T0 + 1), report=("r1", "end"), end_space=True)
    assert await store.act(act)
    again = Act(AuditEntry("s1", host_id, "end", T0 + 2), end_space=True)
    assert not await store.act(again)
    assert len(await store.list_site_audit(before=None, limit=10)) == 1
    assert await store.list_open_reports(10) == []


async def test_suspensions_end_by_themselves(store: Store) -> None:
    _, lina_id = await _report(store)
    act = Act(AuditEntry(None, None, "suspend", T0, lina_id), suspend_until=T0 + 60)
    assert await store.act(act)
    assert await store.suspended_until(lina_id, T0 + 59) == T0 + 60
    assert await store.suspended_until(lina_id, T0 + 60) is None
    assert await store.list_suspensions(T0 + 61) == []


async def test_the_upgrade_keeps_every_audit_entry_and_its_seq(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    before = [m for m in load_migrations("sqlite") if m.version < 10]
    for migration in before:
        db.executescript(migration.sql)
    db.execute(
        "CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied_at REAL NOT NULL)"
    )
    db.executemany("INSERT INTO schema_migrations VALUES (?, ?)", [(m.version, T0) for m in before])
    db.execute(
        "INSERT INTO users (id, username, display_name, created_at, password_hash)"
        " VALUES ('u1', 'host', 'Host', ?, 'x')",
        (T0,),
    )
    db.execute(
        "INSERT INTO spaces (id, host_id, title, description, state, visibility, created_at)"
        " VALUES ('s1', 'u1', 't', '', 'live', 'public', ?)",
        (T0,),
    )
    for seq in (5, 9):  # gaps, as deletions leave them
        db.execute(
            "INSERT INTO audit_log (seq, space_id, actor_id, action, at)"
            " VALUES (?, 's1', 'u1', 'mute', ?)",
            (seq, T0),
        )
    db.commit()
    db.close()

    store = SqliteStore(path)
    await store.open()
    try:
        kept = await store.list_audit("s1", before=None, limit=10)
        assert [e.seq for e in kept] == [9, 5]
        await store.set_moderator(
            "u1", True, audit=AuditEntry(None, None, "moderator_grant", T0, "u1")
        )
        [grant, *_] = await store.list_site_audit(before=None, limit=10)
        assert (grant.seq, grant.space_id, grant.action) == (10, None, "moderator_grant")
    finally:
        await store.close()
    check = sqlite3.connect(path)
    try:
        assert check.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        check.close()

"""The audit log and statements of reasons in SQL: statements, row mapping, and the inserts
that run inside the transaction of the action they record."""

from __future__ import annotations

from typing import cast

from majlis.store.base import Row, Tx
from majlis.types import AuditAction, AuditEntry, Notice, NoticeGround, ReasonCategory

__all__ = [
    "GET_NOTICE",
    "LIST_AUDIT",
    "LIST_NOTICES",
    "LIST_SITE_AUDIT",
    "audit_from_row",
    "insert_audit",
    "insert_notice",
    "notice_from_row",
]

INSERT_AUDIT = (
    "INSERT INTO audit_log (space_id, actor_id, target_id, action, reason, at)"
    " VALUES ($1, $2, $3, $4, $5, $6)"
)
# Newest first; $2 is the cursor (the seq of the last entry already seen).
LIST_AUDIT = (
    "SELECT a.seq, a.space_id, a.actor_id, a.target_id, a.action, a.reason, a.at,"
    " actor.username AS actor_username, target.username AS target_username"
    " FROM audit_log a"
    " LEFT JOIN users actor ON actor.id = a.actor_id"
    " LEFT JOIN users target ON target.id = a.target_id"
    " WHERE a.space_id = $1 AND a.seq < $2 ORDER BY a.seq DESC LIMIT $3"
)

_NOTICE_COLUMNS = (
    "id, user_id, space_id, action, category, text, ground, automated, appeal, at, actor_id"
)
INSERT_NOTICE = (
    f"INSERT INTO notices ({_NOTICE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
)
LIST_NOTICES = (
    f"SELECT {_NOTICE_COLUMNS} FROM notices WHERE user_id = $1 ORDER BY at DESC, id LIMIT $2"
)
GET_NOTICE = f"SELECT {_NOTICE_COLUMNS} FROM notices WHERE id = $1"
# Site-wide: every space's entries and the site's own, newest first.
LIST_SITE_AUDIT = (
    "SELECT a.seq, a.space_id, a.actor_id, a.target_id, a.action, a.reason, a.at,"
    " actor.username AS actor_username, target.username AS target_username"
    " FROM audit_log a"
    " LEFT JOIN users actor ON actor.id = a.actor_id"
    " LEFT JOIN users target ON target.id = a.target_id"
    " WHERE a.seq < $1 ORDER BY a.seq DESC LIMIT $2"
)


async def insert_audit(tx: Tx, entry: AuditEntry) -> None:
    await tx.execute(
        INSERT_AUDIT,
        entry.space_id,
        entry.actor_id,
        entry.target_id,
        entry.action,
        entry.reason,
        entry.at,
    )


async def insert_notice(tx: Tx, notice: Notice) -> None:
    await tx.execute(
        INSERT_NOTICE,
        notice.id,
        notice.user_id,
        notice.space_id,
        notice.action,
        notice.category,
        notice.text,
        notice.ground,
        notice.automated,
        notice.appeal,
        notice.at,
        notice.actor_id,
    )


def audit_from_row(r: Row) -> AuditEntry:
    return AuditEntry(
        space_id=r["space_id"],
        actor_id=r["actor_id"],
        action=cast(AuditAction, r["action"]),  # written only from the typed AuditEntry
        at=float(r["at"]),
        target_id=r["target_id"],
        reason=r["reason"],
        seq=int(r["seq"]),
        actor_username=r["actor_username"] or "",
        target_username=r["target_username"] or "",
    )


def notice_from_row(r: Row) -> Notice:
    return Notice(
        id=r["id"],
        user_id=r["user_id"],
        space_id=r["space_id"],
        action=cast(AuditAction, r["action"]),
        category=cast(ReasonCategory, r["category"]),
        text=r["text"],
        ground=cast(NoticeGround, r["ground"]),
        automated=bool(r["automated"]),  # SQLite hands back 0/1
        appeal=r["appeal"],
        at=float(r["at"]),
        actor_id=r["actor_id"],
    )

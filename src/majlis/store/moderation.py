"""Site moderation in SQL: moderators, reports, suspensions and appeals.

Every moderator's decision is one `Act`, written in one transaction: the report or
appeal it closes (only if still open, so two moderators cannot both decide it), the
restriction itself (a ban, a suspension) or its undoing, the audit entry and the
statement of reasons.
"""

from __future__ import annotations

from typing import cast

from majlis.store.audit import insert_audit, insert_notice
from majlis.store.base import Row, Tx
from majlis.types import (
    Act,
    Appeal,
    AppealOutcome,
    AuditEntry,
    Decision,
    ReasonCategory,
    Report,
    ReportSubject,
)

__all__ = [
    "GET_APPEAL",
    "GET_REPORT",
    "GET_SUSPENSION",
    "INSERT_APPEAL",
    "INSERT_BAN",
    "INSERT_REPORT",
    "IS_MODERATOR",
    "LIST_APPEALS_OF",
    "LIST_OPEN_APPEALS",
    "LIST_OPEN_REPORTS",
    "LIST_REPORTS_BY",
    "LIST_SUSPENSIONS",
    "StaleAct",
    "appeal_from_row",
    "apply_act",
    "report_from_row",
    "set_moderator",
]

IS_MODERATOR = "SELECT 1 FROM moderators WHERE user_id = $1"
_GRANT = "INSERT INTO moderators (user_id, granted_at) VALUES ($1, $2) ON CONFLICT DO NOTHING"
_REVOKE = "DELETE FROM moderators WHERE user_id = $1"

_REPORT_COLUMNS = (
    "id, subject, space_id, user_id, clip_id, category, text, reporter_id, created_at,"
    " decision, decided_by, decided_at, reason"
)
INSERT_REPORT = (
    "INSERT INTO reports (id, subject, space_id, user_id, clip_id, category, text,"
    " reporter_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
)
GET_REPORT = f"SELECT {_REPORT_COLUMNS} FROM reports WHERE id = $1"
# The queue: oldest first, so nothing waits forever behind newer reports.
LIST_OPEN_REPORTS = (
    f"SELECT {_REPORT_COLUMNS} FROM reports WHERE decision IS NULL ORDER BY created_at, id LIMIT $1"
)
LIST_REPORTS_BY = (
    f"SELECT {_REPORT_COLUMNS} FROM reports WHERE reporter_id = $1"
    " ORDER BY created_at DESC, id LIMIT $2"
)
_CLOSE_REPORT = (
    "UPDATE reports SET decision = $2, decided_by = $3, decided_at = $4, reason = $5"
    " WHERE id = $1 AND decision IS NULL RETURNING id"
)

GET_SUSPENSION = "SELECT until FROM suspensions WHERE user_id = $1 AND until > $2"
LIST_SUSPENSIONS = "SELECT user_id, until FROM suspensions WHERE until > $1 ORDER BY user_id"
_SUSPEND = (
    "INSERT INTO suspensions (user_id, until, at) VALUES ($1, $2, $3)"
    " ON CONFLICT (user_id) DO UPDATE SET until = excluded.until, at = excluded.at"
)
_UNSUSPEND = "DELETE FROM suspensions WHERE user_id = $1"
INSERT_BAN = (
    "INSERT INTO bans (space_id, user_id, banned_by, at) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT DO NOTHING"
)
_END_LIVE = (
    "UPDATE spaces SET state = 'ended', ended_at = $2 WHERE id = $1 AND state = 'live' RETURNING id"
)
_UNBAN = "DELETE FROM bans WHERE space_id = $1 AND user_id = $2"
_LEAVE = (
    "DELETE FROM participants WHERE space_id = $1 AND user_id = $2 AND role <> 'host'",
    "DELETE FROM speak_requests WHERE space_id = $1 AND user_id = $2",
    "DELETE FROM invites WHERE space_id = $1 AND user_id = $2",
)

_APPEAL_COLUMNS = (
    "id, notice_id, user_id, text, created_at, outcome, decided_by, decided_at, reason"
)
INSERT_APPEAL = (
    "INSERT INTO appeals (id, notice_id, user_id, text, created_at) VALUES ($1, $2, $3, $4, $5)"
)
GET_APPEAL = f"SELECT {_APPEAL_COLUMNS} FROM appeals WHERE id = $1"
LIST_OPEN_APPEALS = (
    f"SELECT {_APPEAL_COLUMNS} FROM appeals WHERE outcome IS NULL ORDER BY created_at, id LIMIT $1"
)
LIST_APPEALS_OF = (
    f"SELECT {_APPEAL_COLUMNS} FROM appeals WHERE user_id = $1"
    " ORDER BY created_at DESC, id LIMIT $2"
)
_CLOSE_APPEAL = (
    "UPDATE appeals SET outcome = $2, decided_by = $3, decided_at = $4, reason = $5"
    " WHERE id = $1 AND outcome IS NULL RETURNING id"
)


class StaleAct(Exception):
    """The act's report or appeal was decided already, or its space is no longer live:
    raised inside the transaction, so that nothing of the act is written."""


async def apply_act(tx: Tx, act: Act) -> None:
    """Write `act` whole, or raise StaleAct."""
    audit = act.audit
    by, at, why = audit.actor_id, audit.at, audit.reason
    if act.report is not None and not await tx.fetchrow(_CLOSE_REPORT, *act.report, by, at, why):
        raise StaleAct("that report was decided already")
    if act.appeal is not None and not await tx.fetchrow(_CLOSE_APPEAL, *act.appeal, by, at, why):
        raise StaleAct("that appeal was decided already")
    target, space = audit.target_id, audit.space_id
    if act.end_space and not await tx.fetchrow(_END_LIVE, space, at):
        raise StaleAct("the space is no longer live")
    if (act.ban or act.unban) and (target is None or space is None):
        raise ValueError("a ban needs a space and a target")
    if (act.suspend_until is not None or act.unsuspend) and target is None:
        raise ValueError("a suspension needs a target")
    if act.ban:
        await tx.execute(INSERT_BAN, space, target, by, at)
        for sql in _LEAVE:
            await tx.execute(sql, space, target)
    if act.unban:
        await tx.execute(_UNBAN, space, target)
    if act.suspend_until is not None:
        await tx.execute(_SUSPEND, target, act.suspend_until, at)
    if act.unsuspend:
        await tx.execute(_UNSUSPEND, target)
    await insert_audit(tx, audit)
    if act.notice is not None:
        await insert_notice(tx, act.notice)


async def set_moderator(tx: Tx, user_id: str, on: bool, audit: AuditEntry) -> bool:
    """Grant or revoke; False (nothing written) if it was so already."""
    if on == (await tx.fetchrow(IS_MODERATOR, user_id) is not None):
        return False
    if on:
        await tx.execute(_GRANT, user_id, audit.at)
    else:
        await tx.execute(_REVOKE, user_id)
    await insert_audit(tx, audit)
    return True


def report_from_row(r: Row) -> Report:
    decided_at = r["decided_at"]
    return Report(
        id=r["id"],
        subject=cast(ReportSubject, r["subject"]),  # written only from the typed Report
        space_id=r["space_id"],
        user_id=r["user_id"],
        clip_id=r["clip_id"],
        category=cast(ReasonCategory, r["category"]),
        text=r["text"],
        reporter_id=r["reporter_id"],
        created_at=float(r["created_at"]),
        decision=cast(Decision | None, r["decision"]),
        decided_by=r["decided_by"],
        decided_at=None if decided_at is None else float(decided_at),
        reason=r["reason"],
    )


def appeal_from_row(r: Row) -> Appeal:
    decided_at = r["decided_at"]
    return Appeal(
        id=r["id"],
        notice_id=r["notice_id"],
        user_id=r["user_id"],
        text=r["text"],
        created_at=float(r["created_at"]),
        outcome=cast(AppealOutcome | None, r["outcome"]),
        decided_by=r["decided_by"],
        decided_at=None if decided_at is None else float(decided_at),
        reason=r["reason"],
    )

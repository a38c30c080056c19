"""Reminders delivered and in-app notifications in SQL: statements and row mapping.

Delivering a space's reminders is one transaction: the reminders not yet delivered are
claimed by a compare-and-set (`delivered_at IS NULL`), a notification is written for each
one claimed, and the claimed subscribers come back to the caller, who alone mails them.
Two workers delivering the same space at once claim disjoint sets (PostgreSQL locks the
rows the first UPDATE touches; SQLite runs one writer at a time), so nobody hears twice.
"""

from __future__ import annotations

from typing import cast

from majlis.store.base import Row, Tx
from majlis.types import Notification, NotificationKind, Subscriber

__all__ = [
    "COUNT_UNREAD",
    "LIST_NOTIFICATIONS",
    "MARK_READ",
    "OVERDUE_SCHEDULED",
    "UNDELIVERED_LIVE",
    "claim_reminders",
    "notification_from_row",
]

_CLAIM = (
    "UPDATE reminders SET delivered_at = $2 WHERE space_id = $1 AND delivered_at IS NULL"
    " RETURNING user_id, (SELECT u.email FROM users u WHERE u.id = reminders.user_id) AS email"
)
_INSERT = (
    "INSERT INTO notifications (user_id, space_id, kind, title, at) VALUES ($1, $2, $3, $4, $5)"
)
_COLUMNS = "seq, user_id, space_id, kind, title, at, read_at"
# Newest first; $2 is the cursor (the seq of the last one already seen).
LIST_NOTIFICATIONS = (
    f"SELECT {_COLUMNS} FROM notifications WHERE user_id = $1 AND seq < $2"
    " ORDER BY seq DESC LIMIT $3"
)
COUNT_UNREAD = "SELECT count(*) AS n FROM notifications WHERE user_id = $1 AND read_at IS NULL"
MARK_READ = (
    "UPDATE notifications SET read_at = $3"
    " WHERE user_id = $1 AND seq <= $2 AND read_at IS NULL RETURNING seq"
)
# Scheduled spaces whose time is before $1, oldest first.
OVERDUE_SCHEDULED = (
    "SELECT id FROM spaces WHERE state = 'scheduled' AND scheduled_for < $1"
    " ORDER BY scheduled_for LIMIT $2"
)


async def claim_reminders(
    tx: Tx, space_id: str, kind: NotificationKind, title: str, at: float
) -> list[Subscriber]:
    """Claim the space's undelivered reminders and notify each subscriber in the app."""
    rows = await tx.fetch(_CLAIM, space_id, at)
    subscribers = [Subscriber(str(r["user_id"]), r["email"]) for r in rows]
    for subscriber in subscribers:
        await tx.execute(_INSERT, subscriber.user_id, space_id, kind, title, at)
    return subscribers


def notification_from_row(r: Row) -> Notification:
    return Notification(
        seq=int(r["seq"]),
        user_id=r["user_id"],
        space_id=r["space_id"],
        kind=cast(NotificationKind, r["kind"]),
        title=r["title"],
        at=r["at"],
        read=r["read_at"] is not None,
    )


# Live spaces with a reminder nobody has delivered: the worker that started the space died
# before its claim, or a reminder was set in the moment the space started.
UNDELIVERED_LIVE = (
    "SELECT DISTINCT r.space_id FROM reminders r JOIN spaces s ON s.id = r.space_id"
    " WHERE s.state = 'live' AND r.delivered_at IS NULL LIMIT $1"
)

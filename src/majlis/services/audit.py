"""The audit log: who did what to whom in a space, when and why.

Entries are written by the services that act (roles, spaces), inside the store
transaction of the action itself; this module builds them and serves a space's log to its
host and co-hosts.
"""

from __future__ import annotations

from dataclasses import dataclass

from majlis.errors import Forbidden
from majlis.services.accounts import clean_text
from majlis.services.auth import Caller
from majlis.services.moderators import Moderators
from majlis.services.spaces import Spaces
from majlis.store.base import Store
from majlis.types import AuditEntry, Role

__all__ = ["REASON_MAX", "AuditLog", "AuditPage", "clean_reason"]

# Long enough for a sentence or two of why; a log is not a place for essays.
REASON_MAX = 500


def clean_reason(reason: str | None) -> str:
    """A reason as the log keeps it: normalised, trimmed, bounded; "" when none was given."""
    return "" if reason is None else clean_text(reason, "reason", REASON_MAX, allow_empty=True)


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: list[AuditEntry]
    next_cursor: str | None  # None: this page reaches the start of the log


class AuditLog:
    def __init__(self, store: Store, spaces: Spaces, moderators: Moderators) -> None:
        self._store = store
        self._spaces = spaces
        self._moderators = moderators

    async def page(
        self, caller: Caller, space_id: str, *, limit: int, before: int | None
    ) -> AuditPage:
        """Newest first; `before` is the cursor a previous page gave."""
        user_id = caller.require_user()
        space = await self._spaces.get(space_id)
        participant = await self._store.get_participant(space_id, user_id)
        is_cohost = participant is not None and participant.role is Role.COHOST
        if (
            space.host_id != user_id
            and not is_cohost
            and not await self._moderators.is_moderator(user_id)
        ):
            raise Forbidden(
                "only the host, a co-host or a site moderator can read the audit log",
                code="not_moderator",
            )
        entries = await self._store.list_audit(space_id, before=before, limit=limit)
        return _page(entries, limit)

    async def site_page(self, caller: Caller, *, limit: int, before: int | None) -> AuditPage:
        """Every space's log and the site's own actions: site moderators only."""
        await self._moderators.require(caller)
        return _page(await self._store.list_site_audit(before=before, limit=limit), limit)


def _page(entries: list[AuditEntry], limit: int) -> AuditPage:
    more = len(entries) == limit
    return AuditPage(entries, str(entries[-1].seq) if more and entries else None)

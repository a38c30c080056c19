"""Statements of reasons (DSA art. 17): what the person a restriction was imposed on can
read later, at GET /api/v1/notices. Written with the restriction, in its transaction."""

from __future__ import annotations

import secrets

from majlis.services.auth import Caller
from majlis.store.base import Store
from majlis.types import AuditAction, Notice, ReasonCategory

__all__ = ["HOUSE_RULES_APPEAL", "TERMS_APPEAL", "Notices", "house_rules_notice", "terms_notice"]

HOUSE_RULES_APPEAL = (
    "This was decided by the host or a co-host of the space under the space's own rules, "
    "and applies to this space only. To contest it, ask the host of the space to "
    "reconsider."
)


TERMS_APPEAL = (
    "This was decided by a site moderator under the site's terms of service. To appeal, "
    "choose Appeal beside this statement under Notices in the app (or POST "
    "/api/v1/notices/{id}/appeal with your reasons): a different moderator reviews it."
)


def terms_notice(
    user_id: str,
    space_id: str | None,
    action: AuditAction,
    category: ReasonCategory,
    text: str,
    *,
    at: float,
    actor_id: str,
) -> Notice:
    """The statement for what a site moderator did: a person decided, under the terms."""
    notice_id = secrets.token_hex(8)
    return Notice(
        id=notice_id,
        user_id=user_id,
        space_id=space_id,
        action=action,
        category=category,
        text=text,
        ground="terms_of_service",
        automated=False,
        appeal=TERMS_APPEAL.format(id=notice_id),
        at=at,
        actor_id=actor_id,
    )


def house_rules_notice(
    space_id: str,
    user_id: str,
    action: AuditAction,
    category: ReasonCategory,
    text: str,
    at: float,
) -> Notice:
    """The statement for what a host or co-host did: a person decided, under the space's
    rules."""
    return Notice(
        id=secrets.token_hex(8),
        user_id=user_id,
        space_id=space_id,
        action=action,
        category=category,
        text=text,
        ground="house_rules",
        automated=False,
        appeal=HOUSE_RULES_APPEAL,
        at=at,
    )


class Notices:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def mine(self, caller: Caller, limit: int) -> list[Notice]:
        """The caller's own statements, newest first (suspended or not)."""
        return await self._store.list_notices(caller.require_account(), limit)

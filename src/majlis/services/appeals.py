"""Appeals against site moderators' decisions: the person a statement of reasons was
given to contests it once, in their own words; a moderator other than the one who
decided reviews it. Reversing undoes what can be undone (a suspension, a ban); a space
that was ended stays ended, and the record says the decision was reversed."""

from __future__ import annotations

import secrets

from majlis.clock import Clock
from majlis.errors import Conflict, Forbidden, NotFound
from majlis.services.accounts import clean_text
from majlis.services.audit import clean_reason
from majlis.services.auth import Caller
from majlis.services.moderation import Restrictions
from majlis.services.moderators import Moderators
from majlis.store.base import DuplicateError, Store
from majlis.types import Act, Appeal, AppealOutcome, AuditAction, AuditEntry, Notice

__all__ = ["APPEAL_TEXT_MAX", "Appeals"]

APPEAL_TEXT_MAX = 2000


class Appeals:
    def __init__(
        self, store: Store, moderators: Moderators, restrictions: Restrictions, clock: Clock
    ) -> None:
        self._store = store
        self._moderators = moderators
        self._restrictions = restrictions
        self._clock = clock

    async def file(self, caller: Caller, notice_id: str, text: str) -> Appeal:
        """Open to a suspended account: contesting the suspension is the point."""
        user_id = caller.require_account()
        notice = await self._store.get_notice(notice_id)
        if notice is None or notice.user_id != user_id:
            raise NotFound("no such statement of yours", code="notice_not_found")
        if notice.ground != "terms_of_service":
            raise Conflict(
                "a host's decision under their space's rules is contested with the host",
                code="not_appealable",
            )
        appeal = Appeal(
            id=secrets.token_hex(8),
            notice_id=notice_id,
            user_id=user_id,
            text=clean_text(text, "text", APPEAL_TEXT_MAX),
            created_at=self._clock.now(),
        )
        try:
            await self._store.add_appeal(appeal)
        except DuplicateError:
            raise Conflict("this statement was appealed already", code="already_appealed") from None
        return appeal

    async def mine(self, caller: Caller, limit: int) -> list[Appeal]:
        return await self._store.list_appeals_of(caller.require_account(), limit)

    async def queue(self, caller: Caller, limit: int) -> list[Appeal]:
        await self._moderators.require(caller)
        return await self._store.list_open_appeals(limit)

    async def decide(
        self, caller: Caller, appeal_id: str, outcome: AppealOutcome, reason: str | None
    ) -> Appeal:
        moderator = await self._moderators.require(caller)
        appeal = await self._store.get_appeal(appeal_id)
        if appeal is None:
            raise NotFound("no such appeal", code="appeal_not_found")
        if appeal.outcome is not None:
            raise Conflict("that appeal was decided already", code="already_decided")
        notice = await self._store.get_notice(appeal.notice_id)
        if notice is None:
            raise NotFound("the statement appealed is gone", code="notice_not_found")
        if moderator in (notice.actor_id, appeal.user_id):
            raise Forbidden(
                "an appeal is reviewed by a moderator other than the one who decided, and "
                "not by the person appealing",
                code="same_moderator",
            )
        act = _act(moderator, appeal, notice, outcome, clean_reason(reason), self._clock.now())
        await self._restrictions.apply(act, "that appeal was decided already")
        decided = await self._store.get_appeal(appeal_id)
        if decided is None:
            raise NotFound("no such appeal", code="appeal_not_found")
        return decided


def _act(
    moderator: str,
    appeal: Appeal,
    notice: Notice,
    outcome: AppealOutcome,
    why: str,
    now: float,
) -> Act:
    reversed_ = outcome == "reversed"
    space_id = None if notice.action == "suspend" else notice.space_id
    action: AuditAction = "appeal_reversed" if reversed_ else "appeal_upheld"
    audit = AuditEntry(space_id, moderator, action, now, appeal.user_id, why)
    return Act(
        audit,
        appeal=(appeal.id, outcome),
        unsuspend=reversed_ and notice.action == "suspend",
        unban=reversed_ and notice.action == "ban" and space_id is not None,
    )

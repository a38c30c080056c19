"""Reports (DSA art. 16 notice and action): anyone reports a space, a speaker in it or a
clip; site moderators work the queue, oldest first, and decide each report once.

A decision that restricts someone (warn, remove, end, suspend) gives them a statement of
reasons they can appeal; the reporter reads the outcome of their own reports.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass

from majlis.bus.base import Bus
from majlis.clock import Clock
from majlis.errors import BadRequest, Conflict, NotFound, RateLimited
from majlis.services.accounts import clean_text
from majlis.services.audit import clean_reason
from majlis.services.auth import Caller
from majlis.services.moderation import Restrictions, check_until, live_space
from majlis.services.moderators import Moderators
from majlis.services.notices import terms_notice
from majlis.store.base import Store
from majlis.types import (
    Act,
    AuditAction,
    AuditEntry,
    Decision,
    ReasonCategory,
    Report,
    ReportSubject,
)

__all__ = ["REPORT_TEXT_MAX", "ReportPolicy", "Reports", "Verdict"]

REPORT_TEXT_MAX = 2000
# What a decision writes in the log, and tells the person it restricts.
_ACTIONS: dict[Decision, AuditAction] = {
    "dismiss": "report_dismiss",
    "warn": "warn",
    "remove": "ban",
    "end": "end",
    "suspend": "suspend",
}


@dataclass(frozen=True, slots=True)
class ReportPolicy:
    """Reports per second and burst: strict for anonymous callers (per address), looser
    for accounts."""

    anonymous_rate: float = 1 / 600
    anonymous_burst: int = 3
    user_rate: float = 1 / 60
    user_burst: int = 10


@dataclass(frozen=True, slots=True)
class Verdict:
    """A moderator's decision on a report."""

    decision: Decision
    category: ReasonCategory
    reason: str | None
    until: float | None = None  # for suspend: when the suspension ends


class Reports:
    def __init__(
        self,
        store: Store,
        bus: Bus,
        moderators: Moderators,
        restrictions: Restrictions,
        clock: Clock,
        policy: ReportPolicy,
    ) -> None:
        self._store = store
        self._bus = bus
        self._moderators = moderators
        self._restrictions = restrictions
        self._clock = clock
        self._policy = policy

    async def file(
        self,
        caller: Caller,
        subject: ReportSubject,
        category: ReasonCategory,
        text: str,
        *,
        space_id: str | None = None,
        user_id: str | None = None,
        clip_id: str | None = None,
    ) -> Report:
        body = clean_text(text, "text", REPORT_TEXT_MAX, allow_empty=True)
        space_id, user_id = await self._subject(subject, space_id, user_id, clip_id)
        await self._limit(caller)
        report = Report(
            id=secrets.token_hex(8),
            subject=subject,
            space_id=space_id,
            user_id=user_id,
            clip_id=clip_id if subject == "clip" else None,
            category=category,
            text=body,
            reporter_id=caller.user_id,
            created_at=self._clock.now(),
        )
        await self._store.add_report(report)
        return report

    async def mine(self, caller: Caller, limit: int) -> list[Report]:
        """The caller's reports and their outcomes, newest first."""
        return await self._store.list_reports_by(caller.require_user(), limit)

    async def queue(self, caller: Caller, limit: int) -> list[Report]:
        await self._moderators.require(caller)
        return await self._store.list_open_reports(limit)

    async def decide(self, caller: Caller, report_id: str, verdict: Verdict) -> Report:
        moderator = await self._moderators.require(caller)
        report = await self._open_report(report_id)
        act = await self._act(moderator, report, verdict, clean_reason(verdict.reason))
        await self._restrictions.apply(act, "that report was decided already")
        decided = await self._store.get_report(report_id)
        if decided is None:
            raise NotFound("no such report", code="report_not_found")
        return decided

    async def _act(self, moderator: str, report: Report, verdict: Verdict, why: str) -> Act:
        now = self._clock.now()
        decision = verdict.decision
        closes = (report.id, decision)
        if decision == "dismiss":
            audit = AuditEntry(
                report.space_id, moderator, "report_dismiss", now, report.user_id, why
            )
            return Act(audit, report=closes)
        target = await self._target(report, decision)
        action = _ACTIONS[decision]
        space_id = None if decision == "suspend" else report.space_id
        audit = AuditEntry(space_id, moderator, action, now, target, why)
        notice = terms_notice(
            target, report.space_id, action, verdict.category, why, at=now, actor_id=moderator
        )
        if decision == "suspend":
            if verdict.until is None:
                raise BadRequest("a suspension needs until", code="bad_until")
            until = check_until(verdict.until, now)
            return Act(audit, notice, report=closes, suspend_until=until)
        return Act(
            audit, notice, report=closes, ban=decision == "remove", end_space=decision == "end"
        )

    async def _target(self, report: Report, decision: Decision) -> str:
        """Whom a decision restricts: the reported speaker, or the space's host."""
        if decision in ("remove", "end"):
            space = await live_space(self._restrictions.spaces, report.space_id)
            if decision == "end":
                return space.host_id
            if report.user_id is None:
                raise Conflict("this report names no speaker to remove", code="no_speaker")
            if report.user_id == space.host_id:
                raise Conflict(
                    "the host cannot be removed from their own space: end it, or suspend "
                    "the account",
                    code="target_is_host",
                )
            return report.user_id
        if report.user_id is not None:
            return report.user_id
        if report.space_id is None:
            raise Conflict("this report names nobody", code="no_target")
        return (await self._restrictions.spaces.get(report.space_id)).host_id

    async def _open_report(self, report_id: str) -> Report:
        report = await self._store.get_report(report_id)
        if report is None:
            raise NotFound("no such report", code="report_not_found")
        if report.decision is not None:
            raise Conflict("that report was decided already", code="already_decided")
        return report

    async def _subject(
        self,
        subject: ReportSubject,
        space_id: str | None,
        user_id: str | None,
        clip_id: str | None,
    ) -> tuple[str, str | None]:
        """(space, speaker) a report is about, checked to exist."""
        if subject == "clip":
            if clip_id is None:
                raise BadRequest("a report of a clip needs clip_id", code="missing_field")
            clip = await self._store.get_clip(clip_id)
            if clip is None:
                raise NotFound("no such clip", code="clip_not_found")
            return clip.space_id, None
        if space_id is None:
            raise BadRequest(f"a report of a {subject} needs space_id", code="missing_field")
        if await self._store.get_space(space_id) is None:
            raise NotFound("no such space", code="space_not_found")
        if subject == "space":
            return space_id, None
        if user_id is None:
            raise BadRequest("a report of a speaker needs user_id", code="missing_field")
        if await self._store.get_user(user_id) is None:
            raise NotFound("no such user", code="user_not_found")
        return space_id, user_id

    async def _limit(self, caller: Caller) -> None:
        p = self._policy
        user = caller.user_id
        key, rate, burst = (
            (f"report:ip:{caller.ip}", p.anonymous_rate, p.anonymous_burst)
            if user is None
            else (f"report:user:{user}", p.user_rate, p.user_burst)
        )
        wait = await self._bus.hit_rate_limit(key, rate, burst, self._clock.now())
        if wait > 0:
            raise RateLimited("too many reports; try again later", math.ceil(wait * 1000))

"""Request and answer bodies of reports, appeals and the moderation desk."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from majlis.api.models import _OfRecord, _Strict
from majlis.api.routing import ID_PATTERN
from majlis.services.appeals import APPEAL_TEXT_MAX
from majlis.services.audit import REASON_MAX
from majlis.services.reports import REPORT_TEXT_MAX
from majlis.types import AppealOutcome, Decision, ReasonCategory, ReportSubject

__all__ = [
    "AppealBody",
    "AppealCreateBody",
    "AppealDecisionBody",
    "AppealListBody",
    "LiftBody",
    "ModerationQuery",
    "ReportBody",
    "ReportCreateBody",
    "ReportDecisionBody",
    "ReportListBody",
    "SuspendBody",
    "SuspendedBody",
]

_USERNAME = r"^[A-Za-z0-9_]{3,32}$"


def _reason() -> str | None:
    return Field(
        default=None,
        max_length=REASON_MAX,
        description="why, kept in the audit log and told in the statement of reasons",
    )


class ModerationQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=50, ge=1, le=200)


class ReportCreateBody(_Strict):
    subject: ReportSubject = Field(description="what is reported")
    category: ReasonCategory
    text: str = Field(default="", max_length=REPORT_TEXT_MAX, description="what happened")
    space_id: str | None = Field(default=None, pattern=ID_PATTERN)
    user_id: str | None = Field(
        default=None, pattern=ID_PATTERN, description="the speaker (subject speaker)"
    )
    clip_id: str | None = Field(default=None, pattern=ID_PATTERN)


class ReportBody(_OfRecord):
    id: str
    subject: ReportSubject
    space_id: str | None
    user_id: str | None
    clip_id: str | None
    category: ReasonCategory
    text: str
    created_at: float
    decision: Decision | None = Field(description="null while the report is open")
    decided_at: float | None
    reason: str = Field(description="the moderator's reason for the decision")


class ReportListBody(BaseModel):
    reports: list[ReportBody]


class ReportDecisionBody(_Strict):
    decision: Decision
    category: ReasonCategory = "other"
    reason: str | None = _reason()
    until: float | None = Field(
        default=None, description="for suspend: when it ends (Unix seconds, within a year)"
    )


class SuspendBody(_Strict):
    username: str = Field(pattern=_USERNAME)
    until: float = Field(description="when the suspension ends (Unix seconds, within a year)")
    category: ReasonCategory = "other"
    reason: str | None = _reason()


class LiftBody(_Strict):
    username: str = Field(pattern=_USERNAME)
    reason: str | None = _reason()


class SuspendedBody(BaseModel):
    user_id: str
    username: str


class AppealCreateBody(_Strict):
    text: str = Field(min_length=1, max_length=APPEAL_TEXT_MAX, description="why it was wrong")


class AppealBody(_OfRecord):
    id: str
    notice_id: str
    user_id: str
    text: str
    created_at: float
    outcome: AppealOutcome | None = Field(description="null while the appeal is open")
    decided_at: float | None
    reason: str


class AppealListBody(BaseModel):
    appeals: list[AppealBody]


class AppealDecisionBody(_Strict):
    outcome: AppealOutcome
    reason: str | None = _reason()

"""Plain data shared by every layer. Imports nothing of ours."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Literal, get_args

__all__ = [
    "AUDIT_ACTIONS",
    "LANGUAGES",
    "LEVEL_PREFIX",
    "MEDIA_CHANNEL",
    "AudienceSample",
    "AuditAction",
    "AuditEntry",
    "Avatar",
    "BusMessage",
    "EndReason",
    "HostChange",
    "Invite",
    "Language",
    "Notice",
    "NoticeGround",
    "Notification",
    "NotificationKind",
    "Participant",
    "ReasonCategory",
    "Role",
    "Space",
    "SpaceState",
    "SpeakRequest",
    "Subscriber",
    "TranscriptJob",
    "TranscriptLine",
    "TranscriptState",
    "TranscriptStatus",
    "User",
    "Visibility",
    "level_key",
]


class Role(enum.StrEnum):
    HOST = "host"
    COHOST = "cohost"
    SPEAKER = "speaker"
    LISTENER = "listener"

    @property
    def can_moderate(self) -> bool:
        return self in (Role.HOST, Role.COHOST)

    @property
    def on_stage(self) -> bool:
        """Everyone who sends audio: host, co-hosts and speakers."""
        return self is not Role.LISTENER


class SpaceState(enum.StrEnum):
    SCHEDULED = "scheduled"
    LIVE = "live"
    ENDED = "ended"


class Visibility(enum.StrEnum):
    PUBLIC = "public"  # listed, searchable, open to all
    UNLISTED = "unlisted"  # open to anyone with the link
    PRIVATE = "private"  # the host's guests alone: listening and the replay need a token


# What a space is spoken in, for its transcript: "auto" lets the model detect it.
Language = Literal["en", "ar", "auto"]
LANGUAGES: tuple[Language, ...] = get_args(Language)


@dataclass(frozen=True, slots=True)
class User:
    id: str
    username: str
    display_name: str
    created_at: float
    password_hash: str = field(default="", repr=False)
    email: str | None = None  # where reminders are mailed; None: in the app only


@dataclass(frozen=True, slots=True)
class Space:
    id: str
    host_id: str
    title: str
    description: str
    state: SpaceState
    visibility: Visibility
    created_at: float
    scheduled_for: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    peak_listeners: int = 0
    host_username: str = ""
    language: Language = "auto"
    captions: bool = True  # live captions, unless the host turned them off
    recording: bool = True  # False: no replay is kept once it ends


@dataclass(frozen=True, slots=True)
class Participant:
    """A user with a role above listener in one space (listeners are never stored)."""

    space_id: str
    user_id: str
    role: Role
    muted: bool
    joined_at: float
    username: str = ""
    display_name: str = ""


@dataclass(frozen=True, slots=True)
class SpeakRequest:
    space_id: str
    user_id: str
    created_at: float
    username: str = ""
    display_name: str = ""


@dataclass(frozen=True, slots=True)
class Invite:
    space_id: str
    user_id: str
    invited_by: str
    created_at: float


@dataclass(frozen=True, slots=True)
class Clip:
    """Up to a minute of a space's recording. `start` is on the replay's clock (seconds from
    the recording's start); `created_by` is a member id (a user's, or an anonymous one)."""

    id: str
    space_id: str
    created_by: str
    start: float
    duration: float
    title: str
    created_at: float


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    """What was said from `start` to `end`, seconds on the replay's clock; `speaker` is a
    user id, or empty when the line's speaker is not known."""

    start: float
    end: float
    text: str
    speaker: str = ""


TranscriptStatus = Literal["pending", "running", "done", "failed"]


@dataclass(frozen=True, slots=True)
class TranscriptState:
    space_id: str
    status: TranscriptStatus
    error: str
    attempts: int
    updated_at: float


@dataclass(frozen=True, slots=True)
class TranscriptJob:
    """A transcript claimed by one worker; `claim` proves it is still theirs when it ends."""

    space_id: str
    claim: str
    attempts: int


# What the audit log records: every action a host or co-host takes on someone, and the
# host's end of a space. (mute and unmute are also logged when a speaker does them to
# themself: unmute is only ever that, and the log shows who undid a moderator's mute.)
AuditAction = Literal[
    "mute",
    "unmute",
    "demote",
    "remove",
    "ban",
    "cohost_add",
    "cohost_remove",
    "approve",
    "decline",
    "invite",
    "end",
    "host_transfer",
    "edit",
    "replay_delete",
    # site moderators' (space_id None unless the action is in a space)
    "report_dismiss",
    "warn",
    "suspend",
    "unsuspend",
    "appeal_upheld",
    "appeal_reversed",
    "moderator_grant",
    "moderator_revoke",
    # a private space's guest list (the host's and co-hosts')
    "guest_add",
    "guest_remove",
]
AUDIT_ACTIONS: tuple[AuditAction, ...] = get_args(AuditAction)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One action as the audit log keeps it. `seq` orders a log (0 until stored); `target_id`
    is None for actions on the space itself (end). The usernames are filled in on reading."""

    space_id: str | None  # None: a site-wide action (a suspension, a moderator grant)
    actor_id: str | None  # None: Majlis itself (continuity's handovers and ends), an operator
    action: AuditAction
    at: float
    target_id: str | None = None
    reason: str = ""
    seq: int = 0
    actor_username: str = ""
    target_username: str = ""


# Why a restriction was imposed, as a statement of reasons (DSA art. 17) names it.
ReasonCategory = Literal["harassment", "hate", "spam", "off_topic", "other"]
# On what ground: a host acts under their space's own rules, a site moderator under the
# site's terms of service.
NoticeGround = Literal["house_rules", "terms_of_service"]


@dataclass(frozen=True, slots=True)
class Notice:
    """A statement of reasons to the person a restriction was imposed on."""

    id: str
    user_id: str
    space_id: str | None
    action: AuditAction
    category: ReasonCategory
    text: str
    ground: NoticeGround
    automated: bool
    appeal: str
    at: float
    actor_id: str | None = None  # who decided; kept from the person, used to route an appeal


BusMessage = dict[str, object]

# Contracts between the control plane and media nodes, which share only the bus.
MEDIA_CHANNEL = "media:commands"
"""Commands to media nodes: {"cmd": start|end|mute|unmute|disconnect, "space_id", ...}."""
LEVEL_PREFIX = "level:"


def level_key(space_id: str, user_id: str) -> str:
    """Bus key of a speaker's level, valued "<dBFS>,<0|1 speaking>" with a short TTL."""
    return f"{LEVEL_PREFIX}{space_id}:{user_id}"


# Live captions of a space, as its state document says: on; off (its host turned them
# off); unavailable (for the reason below).
CaptionsState = Literal["on", "off", "unavailable"]
# Why a space's live captions are unavailable: the server has no caption model, or its
# model cannot transcribe the space's language (an English-only model, an Arabic space).
CaptionsReason = Literal["no_model", "language"]

# Why a live space ended: its host ended it; its host's audio was gone past the grace
# period with no co-host to take over; nobody on stage had audio connected for too long.
# A scheduled space whose host never started it ends "missed" (it was never live).
EndReason = Literal["host", "host_absent", "empty_stage", "missed", "moderator"]

# What an in-app notification says happened to a space someone asked to be reminded of.
NotificationKind = Literal["space_started", "space_missed"]


@dataclass(frozen=True, slots=True)
class Avatar:
    """A user's picture, as uploaded (checked: a small PNG, JPEG or WebP)."""

    content_type: str
    data: bytes = field(repr=False)
    updated_at: float


@dataclass(frozen=True, slots=True)
class AudienceSample:
    """A live space's audience at one moment: listeners counted by presence, and every
    reaction sent so far (a running total: the difference between samples is the rate)."""

    at: float
    listeners: int
    reactions: int
    joins: int  # every arrival so far: a running total, like reactions


@dataclass(frozen=True, slots=True)
class Notification:
    seq: int  # the cursor: never reused
    user_id: str
    space_id: str
    kind: NotificationKind
    title: str
    at: float
    read: bool


@dataclass(frozen=True, slots=True)
class Subscriber:
    """Someone whose reminder of a space was claimed for delivery (by this worker alone)."""

    user_id: str
    email: str | None


# Why a space has a new host: the host handed over; the host's audio was gone too long.
HostChange = Literal["transferred", "host_absent"]

# A space's latest live caption lines stay on the bus this long after the newest one: a
# state document shows what was said lately, not a line from minutes ago.
CAPTION_LINES_TTL = 30.0


def caption_lines_key(space_id: str) -> str:
    """Bus key of a space's latest live caption lines: JSON, a list of
    {"start", "end", "text", "speaker"} (wall-clock seconds), newest last."""
    return f"captions:{space_id}"


# Site moderation ---------------------------------------------------------------------------

# What a report is about: a space, a speaker in it, or a clip of it.
ReportSubject = Literal["space", "speaker", "clip"]
REPORT_SUBJECTS: tuple[ReportSubject, ...] = get_args(ReportSubject)
# What a site moderator decides on a report.
Decision = Literal["dismiss", "warn", "remove", "end", "suspend"]
DECISIONS: tuple[Decision, ...] = get_args(Decision)
AppealOutcome = Literal["upheld", "reversed"]


@dataclass(frozen=True, slots=True)
class Report:
    """A report (DSA art. 16 notice). `space_id` is set for every subject; `user_id` names
    the reported speaker, `clip_id` the clip. Open while `decision` is None."""

    id: str
    subject: ReportSubject
    space_id: str | None
    user_id: str | None
    clip_id: str | None
    category: ReasonCategory
    text: str
    reporter_id: str | None  # None: anonymous
    created_at: float
    decision: Decision | None = None
    decided_by: str | None = None
    decided_at: float | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Appeal:
    """A person's appeal against a moderator's statement of reasons; decided by another
    moderator. Open while `outcome` is None."""

    id: str
    notice_id: str
    user_id: str
    text: str
    created_at: float
    outcome: AppealOutcome | None = None
    decided_by: str | None = None
    decided_at: float | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Act:
    """One moderator's decision as the store writes it. `audit` names the actor, target,
    space, time and reason; the rest says what else changes with it."""

    audit: AuditEntry
    notice: Notice | None = None
    report: tuple[str, Decision] | None = None  # the report this decides
    appeal: tuple[str, AppealOutcome] | None = None  # the appeal this decides
    ban: bool = False  # the target out of the audit's space, for good
    unban: bool = False
    suspend_until: float | None = None  # the target's account suspended until then
    unsuspend: bool = False
    end_space: bool = False  # the audit's space ended (if still live)

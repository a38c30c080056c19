"""Request and answer shapes. Request bodies are strict: a string where a number belongs,
or an unknown field, is a 400 with a reason, not a guess."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from majlis.services.accounts import Me
from majlis.services.audit import REASON_MAX
from majlis.types import (
    AudienceSample,
    AuditAction,
    CaptionsReason,
    CaptionsState,
    Language,
    NoticeGround,
    NotificationKind,
    Participant,
    ReasonCategory,
    SpaceState,
    SpeakRequest,
    User,
    Visibility,
)

__all__ = [
    "AdmittedBody",
    "AudienceBody",
    "AudienceSampleBody",
    "AuditEntryBody",
    "AuditPageBody",
    "AuditQuery",
    "CaptionLineBody",
    "CaptionsBody",
    "CredentialsBody",
    "HeartbeatBody",
    "JoinBody",
    "ListQuery",
    "ListenerListBody",
    "ListenerNameBody",
    "MuteBody",
    "NoticeBody",
    "NoticeListBody",
    "NoticeQuery",
    "NotificationBody",
    "NotificationListBody",
    "NotificationQuery",
    "NotificationsReadAnswer",
    "NotificationsReadBody",
    "ParticipantBody",
    "ReactionBody",
    "RegisterBody",
    "RemoveBody",
    "SessionBody",
    "SpaceBody",
    "SpaceCreateBody",
    "SpaceEditBody",
    "SpaceListBody",
    "StateBody",
    "UserBody",
    "UserRefBody",
]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class RegisterBody(_Strict):
    username: str = Field(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_]+$")
    password: str = Field(min_length=8, max_length=256)
    display_name: str | None = Field(default=None, min_length=1, max_length=64)
    email: str | None = Field(
        default=None, max_length=254, description="optional: where reminders are mailed"
    )


class CredentialsBody(_Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class SpaceCreateBody(_Strict):
    title: str = Field(min_length=1, max_length=120)
    description: str = Field(default="", max_length=2000)
    scheduled_for: float | None = Field(
        default=None, description="Unix time to start; omit to go live now"
    )
    visibility: Visibility = Field(
        default=Visibility.PUBLIC,
        description="public: listed; unlisted: anyone with the link; private: the host's "
        "guests alone (chosen once, here)",
    )
    language: Language = Field(
        default="auto",
        description="what the space is spoken in, for its transcript (auto: detected)",
    )
    recording: bool = Field(
        default=True, description="false: nothing is kept after the end, no replay"
    )


class SpaceEditBody(_Strict):
    """What the host may change after creation; at least one field."""

    title: str | None = Field(default=None, min_length=1, max_length=120)
    description: str | None = Field(default=None, max_length=2000)
    visibility: Visibility | None = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.title is None and self.description is None and self.visibility is None:
            raise ValueError("nothing to change: give a title, a description or a visibility")
        return self


class ClipCreateBody(_Strict):
    duration: float = Field(gt=0, le=60, description="seconds, 1 to 60")
    start: float | None = Field(
        default=None,
        ge=0,
        description="seconds from the start of the replay; omit for the last `duration` "
        "seconds recorded (a live space's latest)",
    )
    title: str = Field(default="", max_length=100, description="default: the space's title")


class UserRefBody(_Strict):
    """Names a user by id or by username (exactly one)."""

    user_id: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_:-]+$"
    )
    username: str | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _exactly_one(self) -> UserRefBody:
        if (self.user_id is None) == (self.username is None):
            raise ValueError("give exactly one of user_id and username")
        return self


class RemoveBody(_Strict):
    ban: bool = False
    reason: str | None = Field(
        default=None,
        max_length=REASON_MAX,
        description=f"why, in up to {REASON_MAX} characters: kept in the audit log and "
        "told to the removed person alone, in their statement of reasons",
    )
    category: ReasonCategory = Field(
        default="other", description="the kind of reason, for the statement of reasons"
    )


class MuteBody(_Strict):
    """Optional: a mute may be sent with no body at all."""

    reason: str | None = Field(
        default=None,
        max_length=REASON_MAX,
        description=f"why, in up to {REASON_MAX} characters: kept in the space's audit log",
    )


class JoinBody(_Strict):
    ticket: str | None = Field(default=None, max_length=512)


class HeartbeatBody(_Strict):
    playback_token: str = Field(min_length=1, max_length=512)


class ReactionBody(_Strict):
    emoji: str = Field(min_length=1, max_length=8)


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: SpaceState | None = None
    q: str | None = Field(default=None, max_length=100)
    host_id: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_:-]+$")
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=100_000)


class AuditQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=100, ge=1, le=1000)
    cursor: str | None = Field(
        default=None,
        pattern=r"^[0-9]{1,18}$",
        description="next_cursor of the previous page (older entries)",
    )


class NoticeQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=50, ge=1, le=200)


# answers ---------------------------------------------------------------------------------


class UserBody(BaseModel):
    id: str
    username: str
    display_name: str
    created_at: float
    email: str | None = Field(description="where reminders are mailed; null: in the app only")

    @classmethod
    def of(cls, user: User) -> UserBody:
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            created_at=user.created_at,
            email=user.email,
        )


class MeBody(UserBody):
    moderator: bool = Field(description="a site moderator: the moderation queue is theirs")
    suspended_until: float | None = Field(
        description="set while the account is suspended: GET /notices says why"
    )

    @classmethod
    def of_me(cls, me: Me) -> MeBody:
        u = me.user
        return cls(
            id=u.id,
            username=u.username,
            display_name=u.display_name,
            created_at=u.created_at,
            email=u.email,
            moderator=me.moderator,
            suspended_until=me.suspended_until,
        )


class SessionBody(BaseModel):
    token: str
    expires_at: float
    member: str
    user: UserBody | None


class SpaceBody(BaseModel):
    id: str
    title: str
    description: str
    state: SpaceState
    visibility: Visibility
    host_id: str
    host_username: str
    created_at: float
    scheduled_for: float | None
    started_at: float | None
    ended_at: float | None
    peak_listeners: int
    language: Language
    captions: bool = Field(description="live captions, unless the host turned them off")
    recording: bool = Field(description="false: no replay is kept once it ends")


class SpaceListBody(BaseModel):
    spaces: list[SpaceBody]


class ParticipantBody(BaseModel):
    user_id: str
    username: str
    display_name: str
    role: Literal["host", "cohost", "speaker"]
    muted: bool
    joined_at: float

    @classmethod
    def of(cls, p: Participant) -> ParticipantBody:
        return cls(
            user_id=p.user_id,
            username=p.username,
            display_name=p.display_name,
            role=str(p.role),  # type: ignore[arg-type]
            muted=p.muted,
            joined_at=p.joined_at,
        )


class StageBody(BaseModel):
    participants: list[ParticipantBody]


class RequestBody(BaseModel):
    user_id: str
    username: str
    display_name: str
    created_at: float

    @classmethod
    def of(cls, r: SpeakRequest) -> RequestBody:
        return cls(
            user_id=r.user_id,
            username=r.username,
            display_name=r.display_name,
            created_at=r.created_at,
        )


class RequestListBody(BaseModel):
    requests: list[RequestBody]


class AdmittedBody(BaseModel):
    status: Literal["admitted"]
    playback_token: str
    playback_url: str
    state_url: str = Field(description="the state document, on the edge when there is one")
    stream_url: str = Field(
        "",
        description="the listener stream on the edge: init.mp4 from playback_url's folder, "
        "then this URL's fMP4 fragments as they are made; empty without an edge",
    )
    expires_at: float
    role: str
    invited: bool = Field(description="a moderator has invited you to speak (heartbeats)")


class QueuedBody(BaseModel):
    status: Literal["queued"]
    ticket: str
    position: int
    estimated_wait_ms: int
    retry_after_ms: int


class ReminderBody(BaseModel):
    subscribed: bool
    reminders: int


class TallyBody(BaseModel):
    reactions: dict[str, int]


class SpeakerState(BaseModel):
    user_id: str
    username: str
    display_name: str
    role: str
    muted: bool
    speaking: bool
    level_db: float | None


class CaptionLineBody(BaseModel):
    start: float = Field(description="wall clock (Unix seconds) when the words began")
    end: float
    text: str
    speaker: str = Field(description="user id of who said it; empty when not known")


class CaptionsBody(_Strict):
    on: bool = Field(description="live captions on (true) or off (false)")


class StateBody(BaseModel):
    space: SpaceBody
    speakers: list[SpeakerState]
    listener_count: int
    peak_listeners: int
    reactions: dict[str, int]
    captions: CaptionsState = Field(
        description="live captions: on; off (the host turned them off); unavailable "
        "(see captions_reason)"
    )
    captions_reason: CaptionsReason | None = Field(
        description="why captions are unavailable (null otherwise): no_model, this server "
        "has no caption model; language, its model cannot transcribe the space's language"
    )
    caption_lines: list[CaptionLineBody] = Field(description="the latest lines, newest last")
    updated_at: float


class OfferBody(_Strict):
    sdp: str = Field(min_length=1, max_length=65536)
    type: Literal["offer"] = "offer"


class AnswerBody(BaseModel):
    sdp: str
    type: Literal["answer"]


class ClipBody(BaseModel):
    id: str
    space_id: str
    start: float = Field(description="seconds from the start of the replay")
    duration: float
    title: str
    created_at: float
    audio_url: str = Field(description="the clip as AAC in .m4a")
    page_url: str = Field(description="a page to share: player and link previews")


class ClipListBody(BaseModel):
    clips: list[ClipBody]


class TranscriptLineBody(BaseModel):
    start: float = Field(description="seconds from the start of the replay")
    end: float
    speaker: str = Field(description="the speaker's user id; empty when not known")
    text: str


class TranscriptBody(BaseModel):
    state: Literal["pending", "running", "done", "failed"]
    error: str = Field(description="why it failed; empty otherwise")
    lines: list[TranscriptLineBody] = Field(description="empty until the state is done")


class _OfRecord(BaseModel):
    """An answer whose fields are those of a record in types.py, by the same names: the
    model reads them off the record, so a field is written once, not copied by hand."""

    @classmethod
    def of(cls, record: object) -> Self:
        return cls.model_validate(record, from_attributes=True)


class AuditEntryBody(_OfRecord):
    seq: int = Field(description="the entry's place in the space's log")
    at: float
    space_id: str | None = Field(description="null for site-wide actions (a suspension)")
    action: AuditAction
    actor_id: str | None = Field(description="null when Majlis itself acted (automated)")
    actor_username: str
    target_id: str | None = Field(description="null for actions on the space itself (end)")
    target_username: str
    reason: str


class AuditPageBody(BaseModel):
    entries: list[AuditEntryBody] = Field(description="newest first")
    next_cursor: str | None = Field(description="for the next (older) page; null at the end")


class NoticeBody(_OfRecord):
    """A statement of reasons (DSA art. 17) for a restriction imposed on you."""

    id: str
    space_id: str | None
    action: AuditAction = Field(description="what was done")
    category: ReasonCategory = Field(description="why: the kind of reason")
    text: str = Field(description="why, in the words of whoever decided; may be empty")
    ground: NoticeGround = Field(description="on what ground: house_rules, a space's own")
    automated: bool = Field(description="whether the decision was made by a machine")
    appeal: str = Field(description="how to contest it")
    at: float


class NotificationQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(
        default=None,
        pattern=r"^[0-9]{1,18}$",
        description="next_cursor of the previous page (older notifications)",
    )


class NotificationsReadBody(_Strict):
    up_to: int | None = Field(
        default=None,
        ge=1,
        le=2**63 - 1,
        description="mark notifications up to this seq read; omitted: all of them",
    )


class ListenerNameBody(BaseModel):
    user_id: str
    username: str
    display_name: str


class ListenerListBody(BaseModel):
    count: int = Field(description="everyone listening now (the stage not included)")
    users: list[ListenerNameBody] = Field(
        description="signed-in listeners by name, the 200 seen most recently"
    )
    anonymous: int | None = Field(
        description="listeners without an account; null for an audience too large to split"
    )
    more: bool = Field(description="there are more signed-in listeners than listed")


class AudienceSampleBody(BaseModel):
    at: float = Field(description="Unix seconds")
    listeners: int = Field(description="listeners counted at that moment")
    reactions: int = Field(description="every reaction sent so far: a running total")
    joins: int = Field(description="every arrival so far (running total)")
    leaves: int = Field(description="every departure so far (running total)")

    @classmethod
    def of(cls, sample: AudienceSample, leaves: int) -> Self:
        return cls(
            at=sample.at,
            listeners=sample.listeners,
            reactions=sample.reactions,
            joins=sample.joins,
            leaves=leaves,
        )


class AudienceBody(BaseModel):
    space_id: str
    every_s: float = Field(description="seconds between samples; 0: this server takes none")
    peak_listeners: int
    samples: list[AudienceSampleBody] = Field(description="oldest first, one per interval")


class NotificationBody(_OfRecord):
    seq: int = Field(description="its place among your notifications; newer is larger")
    space_id: str
    kind: NotificationKind = Field(description="space_started, or space_missed (never held)")
    title: str = Field(description="the space's title when this was sent")
    at: float
    read: bool


class NotificationListBody(BaseModel):
    notifications: list[NotificationBody] = Field(description="newest first")
    unread: int = Field(description="all your unread notifications: the badge")
    next_cursor: str | None = Field(description="pass as cursor for older ones; null: no more")


class NotificationsReadAnswer(BaseModel):
    marked: int = Field(description="notifications marked read by this call")
    unread: int


class NoticeListBody(BaseModel):
    notices: list[NoticeBody] = Field(description="newest first")

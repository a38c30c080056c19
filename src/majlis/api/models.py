"""Request and answer shapes. Request bodies are strict: a string where a number belongs,
or an unknown field, is a 400 with a reason, not a guess."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from majlis.types import (
    CaptionsReason,
    CaptionsState,
    Language,
    Participant,
    SpaceState,
    SpeakRequest,
    User,
    Visibility,
)

__all__ = [
    "AdmittedBody",
    "CaptionLineBody",
    "CaptionsBody",
    "CredentialsBody",
    "HeartbeatBody",
    "JoinBody",
    "ListQuery",
    "ParticipantBody",
    "ReactionBody",
    "RegisterBody",
    "RemoveBody",
    "SessionBody",
    "SpaceBody",
    "SpaceCreateBody",
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


class CredentialsBody(_Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class SpaceCreateBody(_Strict):
    title: str = Field(min_length=1, max_length=120)
    description: str = Field(default="", max_length=2000)
    scheduled_for: float | None = Field(
        default=None, description="Unix time to start; omit to go live now"
    )
    visibility: Visibility = Visibility.PUBLIC
    language: Language = Field(
        default="auto",
        description="what the space is spoken in, for its transcript (auto: detected)",
    )


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


# answers ---------------------------------------------------------------------------------


class UserBody(BaseModel):
    id: str
    username: str
    display_name: str
    created_at: float

    @classmethod
    def of(cls, user: User) -> UserBody:
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            created_at=user.created_at,
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

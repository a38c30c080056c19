"""The SQL store's interface. `services/` depends on this, never on a dialect.

Every method is one short transaction. A write that takes `audit` (and `notice`) appends
them inside its own transaction, so an action is never stored without its record; one
that answers whether it changed anything appends them only when it did. Methods that
enforce a limit or a state transition do it atomically inside the store (a
compare-and-set), so two control-plane workers racing on the same space cannot both win.
"""

from __future__ import annotations

from typing import Any, Protocol

from majlis.types import (
    Act,
    Appeal,
    AudienceSample,
    AuditEntry,
    Avatar,
    Clip,
    Invite,
    Notice,
    Notification,
    NotificationKind,
    Participant,
    Report,
    Role,
    Space,
    SpaceState,
    SpeakRequest,
    Subscriber,
    TranscriptJob,
    TranscriptLine,
    TranscriptState,
    User,
    Visibility,
)

__all__ = ["DuplicateError", "Row", "Store", "Tx"]


class Row(Protocol):
    """A result row addressed by column name (sqlite3.Row and asyncpg.Record both are)."""

    def __getitem__(self, key: str, /) -> Any: ...


class Tx(Protocol):
    """One connection, inside a transaction when obtained from `_write`."""

    async def fetch(self, sql: str, *args: object) -> list[Row]: ...

    async def fetchrow(self, sql: str, *args: object) -> Row | None: ...

    async def execute(self, sql: str, *args: object) -> None: ...

    async def script(self, sql: str) -> None:
        """Run several `;`-separated statements without parameters, inside the current
        transaction."""
        ...


class DuplicateError(Exception):
    """A unique key already exists (for example a username)."""


class Store(Protocol):
    async def open(self) -> None:
        """Connect and apply any migrations not yet applied."""
        ...

    async def close(self) -> None: ...

    # users -------------------------------------------------------------------------------
    async def create_user(self, user: User) -> None:
        """Insert; raise DuplicateError if the username (case-insensitive) is taken."""
        ...

    async def get_user(self, user_id: str) -> User | None: ...

    async def get_users(self, user_ids: list[str]) -> list[User]:
        """The users of these ids that exist, by username."""
        ...

    async def get_user_by_username(self, username: str) -> User | None:
        """Case-insensitive lookup; the returned User carries password_hash."""
        ...

    # spaces ------------------------------------------------------------------------------
    async def create_space(self, space: Space) -> None:
        """Insert the space and its host as a Participant with Role.HOST, atomically."""
        ...

    async def get_space(self, space_id: str) -> Space | None:
        """The space with host_username filled in."""
        ...

    async def transition_space(
        self,
        space_id: str,
        expected: SpaceState,
        new: SpaceState,
        at: float,
        *,
        audit: AuditEntry | None = None,
    ) -> bool:
        """Set state to `new` only if it is `expected`; stamp started_at (live) or
        ended_at (ended) with `at`. False if the state was not `expected`."""
        ...

    async def list_spaces(
        self,
        *,
        state: SpaceState | None,
        query: str | None,
        host_id: str | None,
        include_unlisted: bool,
        limit: int,
        offset: int,
    ) -> list[Space]:
        """Newest first (live: started_at desc; scheduled: scheduled_for asc; ended:
        ended_at desc). `query` matches title or host username, case-insensitive
        substring, or the words of the space's transcript (full text: every word of the
        query, whole words)."""
        ...

    async def edit_space(
        self,
        space_id: str,
        title: str,
        description: str,
        visibility: Visibility,
        *,
        audit: AuditEntry | None = None,
    ) -> bool:
        """Set what the host may change after creation; False for no such space."""
        ...

    async def raise_peak_listeners(self, space_id: str, count: int) -> None:
        """peak_listeners = max(peak_listeners, count)."""
        ...

    async def set_captions(self, space_id: str, on: bool) -> bool:
        """Live captions on or off for the space; False when there is no such space."""
        ...

    # participants (host, co-hosts, speakers; listeners are never stored) -----------------
    async def list_participants(self, space_id: str) -> list[Participant]:
        """With username and display_name filled in; ordered host, co-hosts, speakers,
        then joined_at."""
        ...

    async def get_participant(self, space_id: str, user_id: str) -> Participant | None: ...

    async def set_role(
        self,
        space_id: str,
        user_id: str,
        role: Role,
        *,
        limit: int | None,
        at: float,
        audit: AuditEntry | None = None,
    ) -> bool:
        """Upsert the user's role (role must not be LISTENER or HOST). When `limit` is
        given, fail (return False) if the space already has `limit` participants with
        that role not counting this user. Atomic. Keeps `muted` if the row exists,
        otherwise muted=False. Also deletes any speak request and invite of the user."""
        ...

    async def remove_participant(
        self, space_id: str, user_id: str, *, audit: AuditEntry | None = None
    ) -> bool:
        """Delete the row (never the host's). False if there was none."""
        ...

    async def transfer_host(
        self, space_id: str, old: str, new: str, *, audit: AuditEntry | None = None
    ) -> bool:
        """Make co-host `new` the host of live space `space_id` in place of `old`, who
        stays on stage as a co-host (so the number of co-hosts is unchanged). Atomic;
        False, changing nothing, unless the space is live, `old` is its host and `new`
        one of its co-hosts."""
        ...

    async def set_muted(
        self, space_id: str, user_id: str, muted: bool, *, audit: AuditEntry | None = None
    ) -> bool: ...

    # speak requests and invites ----------------------------------------------------------
    async def add_speak_request(self, request: SpeakRequest) -> bool:
        """False if one already exists."""
        ...

    async def remove_speak_request(
        self, space_id: str, user_id: str, *, audit: AuditEntry | None = None
    ) -> bool: ...

    async def list_speak_requests(self, space_id: str) -> list[SpeakRequest]:
        """Oldest first, with username and display_name."""
        ...

    async def add_invite(self, invite: Invite, *, audit: AuditEntry | None = None) -> bool:
        """False if one already exists."""
        ...

    async def remove_invite(self, space_id: str, user_id: str) -> bool: ...

    async def get_invite(self, space_id: str, user_id: str) -> Invite | None: ...

    # bans and reminders ------------------------------------------------------------------
    async def ban(
        self,
        space_id: str,
        user_id: str,
        banned_by: str,
        at: float,
        *,
        audit: AuditEntry | None = None,
        notice: Notice | None = None,
    ) -> None:
        """Idempotent. Also removes participant row, speak request and invite."""
        ...

    async def remove_member(
        self,
        space_id: str,
        user_id: str,
        *,
        audit: AuditEntry | None = None,
        notice: Notice | None = None,
    ) -> None:
        """Remove participant row (never the host's), speak request and invite; `audit`
        and `notice` are written whether or not there was any."""
        ...

    async def add_guest(
        self, space_id: str, user_id: str, added_by: str, at: float, *, audit: AuditEntry
    ) -> bool:
        """Onto a private space's guest list; False if they were on it already."""
        ...

    async def remove_guest(self, space_id: str, user_id: str, *, audit: AuditEntry) -> bool: ...

    async def is_guest(self, space_id: str, user_id: str) -> bool: ...

    async def list_guests(self, space_id: str) -> list[User]:
        """By username."""
        ...

    async def is_banned(self, space_id: str, user_id: str) -> bool: ...

    async def list_bans(self) -> list[tuple[str, str]]:
        """Every ban from a space not ended, as (space_id, user_id): what the bus mirrors
        for the join and playback paths."""
        ...

    # revoked sessions --------------------------------------------------------------------
    async def revoke_token(self, token_id: str, expires_at: float) -> None:
        """Idempotent."""
        ...

    # clips -------------------------------------------------------------------------------
    async def add_clip(self, clip: Clip) -> None: ...

    async def get_clip(self, clip_id: str) -> Clip | None: ...

    async def list_clips(self, space_id: str, limit: int) -> list[Clip]:
        """The space's newest clips first."""
        ...

    async def delete_clip(self, clip_id: str) -> bool:
        """False if there was no such clip."""
        ...

    # transcripts -------------------------------------------------------------------------
    async def queue_transcript(self, space_id: str, at: float) -> bool:
        """A pending transcript for the space, to be claimed from `at` on; False if it
        already has one (in any state)."""
        ...

    async def claim_transcript(self, now: float, stale_before: float) -> TranscriptJob | None:
        """Take one job atomically: a pending transcript due by `now`, or one left running
        since before `stale_before` (its worker died). It becomes running, its attempts go up
        by one and it gets a new claim. None when there is nothing to do. Two workers never
        claim the same job at once."""
        ...

    async def finish_transcript(
        self, job: TranscriptJob, lines: list[TranscriptLine], at: float
    ) -> bool:
        """Replace the space's lines with `lines` (in order) and mark it done, if `job` still
        holds the claim; False (nothing written) if it does not."""
        ...

    async def fail_transcript(self, job: TranscriptJob, error: str, at: float) -> bool:
        """Mark it failed with `error`, if `job` still holds the claim."""
        ...

    async def defer_transcript(self, job: TranscriptJob, until: float, at: float) -> bool:
        """Back to pending, not to be claimed before `until`, if `job` still holds the claim."""
        ...

    async def touch_transcript(self, job: TranscriptJob, at: float) -> bool:
        """Note that `job` is still being worked on (its claim stays fresh), if it still
        holds the claim."""
        ...

    async def get_transcript(self, space_id: str) -> TranscriptState | None: ...

    async def list_transcript_lines(self, space_id: str) -> list[TranscriptLine]:
        """In order."""
        ...

    async def list_revocations(self, now: float) -> list[tuple[str, float]]:
        """(token_id, expires_at) of every revocation still in force at `now`."""
        ...

    async def prune_revocations(self, now: float) -> None:
        """Forget revocations of tokens that have expired by `now`."""
        ...

    # the audit log and statements of reasons ----------------------------------------------
    async def list_audit(
        self, space_id: str, *, before: int | None, limit: int
    ) -> list[AuditEntry]:
        """The space's entries newest first, with usernames; `before` is a cursor: only
        entries with a smaller seq."""
        ...

    async def get_notice(self, notice_id: str) -> Notice | None: ...

    async def list_site_audit(self, *, before: int | None, limit: int) -> list[AuditEntry]:
        """Every space's entries and the site's own, newest first."""
        ...

    async def is_moderator(self, user_id: str) -> bool: ...

    async def set_moderator(self, user_id: str, on: bool, *, audit: AuditEntry) -> bool:
        """Grant (on) or revoke the site moderator role; False if it was so already."""
        ...

    async def add_report(self, report: Report) -> None: ...

    async def get_report(self, report_id: str) -> Report | None: ...

    async def list_open_reports(self, limit: int) -> list[Report]:
        """The moderation queue, oldest first."""
        ...

    async def list_reports_by(self, reporter_id: str, limit: int) -> list[Report]: ...

    async def act(self, act: Act) -> bool:
        """Write a moderator's decision whole; False if its report or appeal was decided
        already (nothing written)."""
        ...

    async def suspended_until(self, user_id: str, now: float) -> float | None:
        """When the user's suspension in force ends; None if there is none."""
        ...

    async def list_suspensions(self, now: float) -> list[tuple[str, float]]:
        """(user id, until) of every suspension in force."""
        ...

    async def add_appeal(self, appeal: Appeal) -> None:
        """DuplicateError if the notice was appealed already."""
        ...

    async def get_appeal(self, appeal_id: str) -> Appeal | None: ...

    async def list_open_appeals(self, limit: int) -> list[Appeal]: ...

    async def list_appeals_of(self, user_id: str, limit: int) -> list[Appeal]: ...

    async def live_spaces_of(self, user_id: str) -> list[str]:
        """Live spaces the user is on stage in."""
        ...

    async def count_live_spaces(self) -> int:
        """Spaces live now, everyone's: what the media plane is running."""
        ...

    async def list_notices(self, user_id: str, limit: int) -> list[Notice]:
        """The user's statements of reasons, newest first."""
        ...

    async def add_reminder(self, space_id: str, user_id: str, at: float) -> bool:
        """False if already subscribed."""
        ...

    async def remove_reminder(self, space_id: str, user_id: str) -> bool: ...

    async def count_reminders(self, space_id: str) -> int: ...

    # reminders delivered and notifications -------------------------------------------------
    async def deliver_reminders(
        self, space_id: str, kind: NotificationKind, title: str, at: float
    ) -> list[Subscriber]:
        """Claim the space's reminders not yet delivered (a compare-and-set: two workers
        never claim the same one) and write each claimed subscriber an in-app notification,
        in one transaction; answer whom this call claimed."""
        ...

    async def list_notifications(
        self, user_id: str, *, before: int | None, limit: int
    ) -> list[Notification]:
        """The user's notifications, newest first, those with seq < `before` if given."""
        ...

    async def count_unread(self, user_id: str) -> int: ...

    async def mark_read(self, user_id: str, up_to: int | None, at: float) -> int:
        """Mark the user's unread notifications with seq <= `up_to` (all: None) read;
        answer how many were."""
        ...

    async def overdue_scheduled(self, before: float, limit: int) -> list[str]:
        """Ids of scheduled spaces whose time is earlier than `before`, oldest first."""
        ...

    async def undelivered_live(self, limit: int) -> list[str]:
        """Ids of live spaces with a reminder not yet delivered."""
        ...

    # the audience over time ----------------------------------------------------------------
    async def add_audience_sample(self, space_id: str, sample: AudienceSample) -> None:
        """Keep the sample (a second one at the same time is ignored) and raise the
        space's peak_listeners to it, in one transaction."""
        ...

    async def list_audience(self, space_id: str, limit: int) -> list[AudienceSample]:
        """The space's samples, oldest first, at most `limit` (the first ones)."""
        ...

    # users' pictures ----------------------------------------------------------------------
    async def put_avatar(self, user_id: str, avatar: Avatar) -> None:
        """Set or replace the user's picture."""
        ...

    async def get_avatar(self, user_id: str) -> Avatar | None: ...

    async def delete_avatar(self, user_id: str) -> bool:
        """False when there was none."""
        ...

    # deleting a replay ---------------------------------------------------------------------
    async def delete_replay_records(self, space_id: str, *, audit: AuditEntry) -> int:
        """Delete the space's transcript (its lines leave the search index with them) and
        its clips, and append `audit`, in one transaction; how many rows went."""
        ...

"""Everything the SQL dialects agree on: queries, row mapping and the store logic itself.

SQL here is written once with PostgreSQL's `$1` placeholders; the SQLite connection
rewrites them to SQLite's numbered `?1` form. A dialect only supplies connections
(`_read`/`_write`), its duplicate-key translation and how to lock a space row.
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from contextlib import AbstractAsyncContextManager
from typing import cast

from majlis.store.audience import INSERT_SAMPLE, LIST_SAMPLES, sample_from_row
from majlis.store.audit import (
    GET_NOTICE,
    LIST_AUDIT,
    LIST_NOTICES,
    LIST_SITE_AUDIT,
    audit_from_row,
    insert_audit,
    insert_notice,
    notice_from_row,
)
from majlis.store.avatars import DELETE_AVATAR, GET_AVATAR, PUT_AVATAR, avatar_from_row
from majlis.store.base import Row, Tx
from majlis.store.guests import ADD_GUEST, IS_GUEST, LIST_GUESTS, REMOVE_GUEST
from majlis.store.migrate import migrate
from majlis.store.moderation import (
    GET_APPEAL,
    GET_REPORT,
    GET_SUSPENSION,
    INSERT_APPEAL,
    INSERT_BAN,
    INSERT_REPORT,
    IS_MODERATOR,
    LIST_APPEALS_OF,
    LIST_OPEN_APPEALS,
    LIST_OPEN_REPORTS,
    LIST_REPORTS_BY,
    LIST_SUSPENSIONS,
    StaleAct,
    appeal_from_row,
    apply_act,
    report_from_row,
    set_moderator,
)
from majlis.store.notifications import (
    COUNT_UNREAD,
    LIST_NOTIFICATIONS,
    MARK_READ,
    OVERDUE_SCHEDULED,
    UNDELIVERED_LIVE,
    claim_reminders,
    notification_from_row,
)
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
    TranscriptStatus,
    User,
    Visibility,
)

__all__ = ["SqlStore"]


# row mapping ------------------------------------------------------------------------------


def user_from_row(r: Row) -> User:
    return User(
        id=r["id"],
        username=r["username"],
        display_name=r["display_name"],
        created_at=r["created_at"],
        password_hash=r["password_hash"],
        email=r["email"],
    )


def space_from_row(r: Row) -> Space:
    return Space(
        id=r["id"],
        host_id=r["host_id"],
        title=r["title"],
        description=r["description"],
        state=SpaceState(r["state"]),
        visibility=Visibility.PRIVATE if r["private"] else Visibility(r["visibility"]),
        created_at=r["created_at"],
        scheduled_for=r["scheduled_for"],
        started_at=r["started_at"],
        ended_at=r["ended_at"],
        peak_listeners=r["peak_listeners"],
        host_username=r["host_username"],
        language=r["language"],
        captions=bool(r["captions"]),
        recording=bool(r["recording"]),
    )


def participant_from_row(r: Row) -> Participant:
    return Participant(
        space_id=r["space_id"],
        user_id=r["user_id"],
        role=Role(r["role"]),
        muted=bool(r["muted"]),  # SQLite hands back 0/1
        joined_at=r["joined_at"],
        username=r["username"],
        display_name=r["display_name"],
    )


def speak_request_from_row(r: Row) -> SpeakRequest:
    return SpeakRequest(
        space_id=r["space_id"],
        user_id=r["user_id"],
        created_at=r["created_at"],
        username=r["username"],
        display_name=r["display_name"],
    )


def invite_from_row(r: Row) -> Invite:
    return Invite(
        space_id=r["space_id"],
        user_id=r["user_id"],
        invited_by=r["invited_by"],
        created_at=r["created_at"],
    )


def clip_from_row(r: Row) -> Clip:
    return Clip(
        id=r["id"],
        space_id=r["space_id"],
        created_by=r["created_by"],
        start=float(r["start_s"]),
        duration=float(r["duration_s"]),
        title=r["title"],
        created_at=float(r["created_at"]),
    )


def transcript_from_row(r: Row) -> TranscriptState:
    return TranscriptState(
        space_id=r["space_id"],
        status=cast(TranscriptStatus, r["state"]),  # the table's CHECK admits no other
        error=r["error"],
        attempts=int(r["attempts"]),
        updated_at=float(r["updated_at"]),
    )


def line_from_row(r: Row) -> TranscriptLine:
    return TranscriptLine(
        start=float(r["start_s"]), end=float(r["end_s"]), text=r["text"], speaker=r["speaker"]
    )


# SQL --------------------------------------------------------------------------------------

_USER_COLUMNS = "id, username, display_name, created_at, password_hash, email"
INSERT_USER = f"INSERT INTO users ({_USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
GET_USER = f"SELECT {_USER_COLUMNS} FROM users WHERE id = $1"
LIST_USERS = f"SELECT {_USER_COLUMNS} FROM users"
# lower() on both sides matches the unique index on lower(username) in both schemas.
GET_USER_BY_USERNAME = f"SELECT {_USER_COLUMNS} FROM users WHERE lower(username) = lower($1)"

INSERT_SPACE = (
    "INSERT INTO spaces (id, host_id, title, description, state, visibility, created_at,"
    " scheduled_for, started_at, ended_at, peak_listeners, language, captions, private,"
    " recording) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
)
_SELECT_SPACES = (
    "SELECT s.id, s.host_id, s.title, s.description, s.state, s.visibility, s.created_at,"
    " s.scheduled_for, s.started_at, s.ended_at, s.peak_listeners, s.language, s.captions,"
    " s.private, s.recording, u.username AS host_username"
    " FROM spaces s JOIN users u ON u.id = s.host_id"
)
GET_SPACE = f"{_SELECT_SPACES} WHERE s.id = $1"
# `at` is $4 for started_at and $5 for ended_at so one statement stamps the right column.
# A replay's records; transcript_lines first (SQLite's triggers take them out of the FTS
# index), then the transcript's job and state, then the clips.
_DELETE_REPLAY = (
    "DELETE FROM transcript_lines WHERE space_id = $1 RETURNING 1",
    "DELETE FROM transcripts WHERE space_id = $1 RETURNING 1",
    "DELETE FROM clips WHERE space_id = $1 RETURNING 1",
)
EDIT_SPACE = (
    "UPDATE spaces SET title = $2, description = $3, visibility = $4, private = $5"
    " WHERE id = $1 RETURNING 1"
)
TRANSITION_SPACE = (
    "UPDATE spaces SET state = $3,"
    " started_at = COALESCE($4, started_at), ended_at = COALESCE($5, ended_at)"
    " WHERE id = $1 AND state = $2 RETURNING 1"
)
SET_CAPTIONS = "UPDATE spaces SET captions = $2 WHERE id = $1 RETURNING 1"
RAISE_PEAK = "UPDATE spaces SET peak_listeners = $2 WHERE id = $1 AND peak_listeners < $2"
SPACE_EXISTS = "SELECT 1 FROM spaces WHERE id = $1"

_SPACE_ORDER = {
    SpaceState.LIVE: "s.started_at DESC NULLS LAST, s.id",
    SpaceState.SCHEDULED: "s.scheduled_for ASC NULLS LAST, s.id",
    SpaceState.ENDED: "s.ended_at DESC NULLS LAST, s.id",
}
# Without a state filter: live first, then upcoming, then past, each in its own order.
_MIXED_ORDER = (
    "CASE s.state WHEN 'live' THEN 0 WHEN 'scheduled' THEN 1 ELSE 2 END,"
    " CASE s.state WHEN 'live' THEN -COALESCE(s.started_at, s.created_at)"
    " WHEN 'scheduled' THEN COALESCE(s.scheduled_for, s.created_at)"
    " ELSE -COALESCE(s.ended_at, s.created_at) END, s.id"
)

_PARTICIPANT_SELECT = (
    "SELECT p.space_id, p.user_id, p.role, p.muted, p.joined_at, u.username, u.display_name"
    " FROM participants p JOIN users u ON u.id = p.user_id"
)
LIST_PARTICIPANTS = (
    f"{_PARTICIPANT_SELECT} WHERE p.space_id = $1 ORDER BY"
    " CASE p.role WHEN 'host' THEN 0 WHEN 'cohost' THEN 1 ELSE 2 END, p.joined_at, p.user_id"
)
GET_PARTICIPANT = f"{_PARTICIPANT_SELECT} WHERE p.space_id = $1 AND p.user_id = $2"
INSERT_PARTICIPANT = (
    "INSERT INTO participants (space_id, user_id, role, muted, joined_at)"
    " VALUES ($1, $2, $3, FALSE, $4)"
)
COUNT_ROLE_EXCEPT = (
    "SELECT count(*) AS n FROM participants WHERE space_id = $1 AND role = $2 AND user_id <> $3"
)
# Keeps muted and joined_at of an existing row; never rewrites the host's row.
UPSERT_ROLE = (
    "INSERT INTO participants (space_id, user_id, role, muted, joined_at)"
    " VALUES ($1, $2, $3, FALSE, $4)"
    " ON CONFLICT (space_id, user_id) DO UPDATE SET role = excluded.role"
    " WHERE participants.role <> 'host' RETURNING 1"
)
DELETE_PARTICIPANT = (
    "DELETE FROM participants WHERE space_id = $1 AND user_id = $2 AND role <> 'host' RETURNING 1"
)
HOST_OF_LIVE_SPACE = "SELECT host_id FROM spaces WHERE id = $1 AND state = 'live'"
SET_HOST = "UPDATE spaces SET host_id = $2 WHERE id = $1"
SET_ROLE = "UPDATE participants SET role = $3 WHERE space_id = $1 AND user_id = $2"
SET_MUTED = "UPDATE participants SET muted = $3 WHERE space_id = $1 AND user_id = $2 RETURNING 1"

INSERT_SPEAK_REQUEST = (
    "INSERT INTO speak_requests (space_id, user_id, created_at) VALUES ($1, $2, $3)"
    " ON CONFLICT DO NOTHING RETURNING 1"
)
DELETE_SPEAK_REQUEST = "DELETE FROM speak_requests WHERE space_id = $1 AND user_id = $2 RETURNING 1"
LIST_SPEAK_REQUESTS = (
    "SELECT r.space_id, r.user_id, r.created_at, u.username, u.display_name"
    " FROM speak_requests r JOIN users u ON u.id = r.user_id"
    " WHERE r.space_id = $1 ORDER BY r.created_at, r.user_id"
)

INSERT_INVITE = (
    "INSERT INTO invites (space_id, user_id, invited_by, created_at) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT DO NOTHING RETURNING 1"
)
DELETE_INVITE = "DELETE FROM invites WHERE space_id = $1 AND user_id = $2 RETURNING 1"
GET_INVITE = (
    "SELECT space_id, user_id, invited_by, created_at FROM invites"
    " WHERE space_id = $1 AND user_id = $2"
)

LIVE_SPACES_OF = (
    "SELECT p.space_id FROM participants p JOIN spaces s ON s.id = p.space_id"
    " WHERE p.user_id = $1 AND s.state = 'live' ORDER BY p.space_id"
)
IS_BANNED = "SELECT 1 FROM bans WHERE space_id = $1 AND user_id = $2"
LIST_BANS = (
    "SELECT b.space_id, b.user_id FROM bans b JOIN spaces s ON s.id = b.space_id"
    " WHERE s.state <> 'ended' ORDER BY b.space_id, b.user_id"
)

INSERT_REVOCATION = (
    "INSERT INTO revocations (token_id, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING"
)
LIST_REVOCATIONS = "SELECT token_id, expires_at FROM revocations WHERE expires_at > $1"
PRUNE_REVOCATIONS = "DELETE FROM revocations WHERE expires_at <= $1"

_CLIP_COLUMNS = "id, space_id, created_by, start_s, duration_s, title, created_at"
INSERT_CLIP = f"INSERT INTO clips ({_CLIP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
GET_CLIP = f"SELECT {_CLIP_COLUMNS} FROM clips WHERE id = $1"
LIST_CLIPS = (
    f"SELECT {_CLIP_COLUMNS} FROM clips WHERE space_id = $1 ORDER BY created_at DESC, id LIMIT $2"
)
DELETE_CLIP = "DELETE FROM clips WHERE id = $1 RETURNING 1"

INSERT_REMINDER = (
    "INSERT INTO reminders (space_id, user_id, at) VALUES ($1, $2, $3)"
    " ON CONFLICT DO NOTHING RETURNING 1"
)
DELETE_REMINDER = "DELETE FROM reminders WHERE space_id = $1 AND user_id = $2 RETURNING 1"
COUNT_REMINDERS = "SELECT count(*) AS n FROM reminders WHERE space_id = $1"
COUNT_LIVE_SPACES = "SELECT count(*) AS n FROM spaces WHERE state = 'live'"

QUEUE_TRANSCRIPT = (
    "INSERT INTO transcripts (space_id, state, not_before, updated_at)"
    " VALUES ($1, 'pending', $2, $2) ON CONFLICT DO NOTHING RETURNING 1"
)
# {lock} is the dialect's row lock: PostgreSQL's FOR UPDATE SKIP LOCKED lets concurrent
# claimers pass over each other's rows; SQLite's BEGIN IMMEDIATE already serialises them.
CLAIM_TRANSCRIPT = (
    "UPDATE transcripts SET state = 'running', attempts = attempts + 1, claim = $3,"
    " updated_at = $1 WHERE space_id = (SELECT space_id FROM transcripts"
    " WHERE (state = 'pending' AND not_before <= $1) OR (state = 'running' AND updated_at < $2)"
    " ORDER BY not_before, space_id LIMIT 1{lock}) RETURNING space_id, attempts"
)
_IF_CLAIMED = " WHERE space_id = $1 AND state = 'running' AND claim = $2 RETURNING 1"
FINISH_TRANSCRIPT = (
    "UPDATE transcripts SET state = 'done', error = '', updated_at = $3" + _IF_CLAIMED
)
FAIL_TRANSCRIPT = (
    "UPDATE transcripts SET state = 'failed', error = $4, updated_at = $3" + _IF_CLAIMED
)
DEFER_TRANSCRIPT = (
    "UPDATE transcripts SET state = 'pending', not_before = $4, updated_at = $3" + _IF_CLAIMED
)
TOUCH_TRANSCRIPT = "UPDATE transcripts SET updated_at = $3" + _IF_CLAIMED
GET_TRANSCRIPT = (
    "SELECT space_id, state, error, attempts, updated_at FROM transcripts WHERE space_id = $1"
)
DELETE_LINES = "DELETE FROM transcript_lines WHERE space_id = $1"
INSERT_LINE = (
    "INSERT INTO transcript_lines (space_id, seq, start_s, end_s, speaker, text)"
    " VALUES ($1, $2, $3, $4, $5, $6)"
)
LIST_LINES = (
    "SELECT start_s, end_s, speaker, text FROM transcript_lines WHERE space_id = $1 ORDER BY seq"
)


def _like_pattern(query: str) -> str:
    """A case-folded LIKE pattern matching `query` anywhere, with wildcards escaped."""
    escaped = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_spaces_sql(
    *,
    state: SpaceState | None,
    query: str | None,
    host_id: str | None,
    include_unlisted: bool,
    limit: int,
    offset: int,
    transcript_match: tuple[str, str] | None = None,
) -> tuple[str, list[object]]:
    """The filtered, ordered, paged space listing and its parameters. `transcript_match`:
    the dialect's full-text condition on `s.id` (a template with `{param}`) and its argument,
    which a query also matches through."""
    where: list[str] = []
    args: list[object] = []

    def param(value: object) -> str:
        args.append(value)
        return f"${len(args)}"

    if state is not None:
        where.append(f"s.state = {param(state.value)}")
    if state is SpaceState.ENDED:
        # Ended spaces are listed as replays: one that was never live (missed, or ended
        # before its start) has none, nor has one its host did not record.
        where.append("s.started_at IS NOT NULL AND s.recording = " + param(True))
    if not include_unlisted:
        where.append(f"s.visibility = {param(Visibility.PUBLIC.value)}")
    if host_id is not None:
        where.append(f"s.host_id = {param(host_id)}")
    if query:
        like = param(_like_pattern(query))
        matches = [
            f"lower(s.title) LIKE {like} ESCAPE '\\'",
            f"lower(u.username) LIKE {like} ESCAPE '\\'",
        ]
        if transcript_match is not None:
            template, argument = transcript_match
            matches.append(template.format(param=param(argument)))
        where.append("(" + " OR ".join(matches) + ")")
    sql = _SELECT_SPACES
    if where:
        sql += " WHERE " + " AND ".join(where)
    order = _MIXED_ORDER if state is None else _SPACE_ORDER[state]
    sql += f" ORDER BY {order} LIMIT {param(limit)} OFFSET {param(offset)}"
    return sql, args


# the store --------------------------------------------------------------------------------


class SqlStore(ABC):
    """The `Store` contract over any connection that speaks the `Tx` protocol."""

    DIALECT: str
    # Appended to SPACE_EXISTS in set_role; SQLite's BEGIN IMMEDIATE already serialises.
    _LOCK_SPACE_SUFFIX = ""
    # Run first in every migration transaction so concurrent starters apply each once.
    _MIGRATION_LOCK_SQL: str | None = None
    # Appended to the claim's inner SELECT (see CLAIM_TRANSCRIPT).
    _CLAIM_LOCK_SUFFIX = ""

    @abstractmethod
    def _transcript_match(self, query: str) -> tuple[str, str] | None:
        """The dialect's full-text condition for a space whose transcript holds every word
        of `query` (a template on `s.id` with `{param}`, and its argument); None when the
        query has no word to look for."""

    @abstractmethod
    def _id_in(self, ids: list[str]) -> tuple[str, object]:
        """The dialect's condition "id is one of `ids`", passed as one argument: a
        template with `{param}`, and that argument."""

    @abstractmethod
    async def _connect(self) -> None:
        """Open connections; store them before anything can fail so close() frees them."""

    @abstractmethod
    async def close(self) -> None:
        """Idempotent, and safe after a failed open()."""

    @abstractmethod
    def _read(self) -> AbstractAsyncContextManager[Tx]:
        """A connection for one read-only statement."""

    @abstractmethod
    def _write(self) -> AbstractAsyncContextManager[Tx]:
        """A transaction; commits on exit, rolls back on error and raises DuplicateError
        for unique-key violations."""

    async def open(self) -> None:
        try:
            await self._connect()
            await migrate(self._write, self.DIALECT, self._MIGRATION_LOCK_SQL)
        except BaseException:
            await self.close()  # a half-opened store holds no connection
            raise

    async def _fetchrow(self, sql: str, *args: object) -> Row | None:
        async with self._read() as tx:
            return await tx.fetchrow(sql, *args)

    async def _fetch(self, sql: str, *args: object) -> list[Row]:
        async with self._read() as tx:
            return await tx.fetch(sql, *args)

    async def _changed(self, sql: str, *args: object, audit: AuditEntry | None = None) -> bool:
        """Run a `RETURNING` write on its own; True if it touched a row. `audit` is
        appended in the same transaction, only if it did: an action and its record are
        written together or not at all."""
        async with self._write() as tx:
            if await tx.fetchrow(sql, *args) is None:
                return False
            if audit is not None:
                await insert_audit(tx, audit)
            return True

    # users --------------------------------------------------------------------------------
    async def create_user(self, user: User) -> None:
        async with self._write() as tx:
            await tx.execute(
                INSERT_USER,
                user.id,
                user.username,
                user.display_name,
                user.created_at,
                user.password_hash,
                user.email,
            )

    async def get_user(self, user_id: str) -> User | None:
        row = await self._fetchrow(GET_USER, user_id)
        return None if row is None else user_from_row(row)

    async def get_users(self, user_ids: list[str]) -> list[User]:
        if not user_ids:
            return []
        condition, argument = self._id_in(user_ids)
        sql = f"{LIST_USERS} WHERE {condition.format(param='$1')} ORDER BY lower(username)"
        return [user_from_row(r) for r in await self._fetch(sql, argument)]

    async def get_user_by_username(self, username: str) -> User | None:
        row = await self._fetchrow(GET_USER_BY_USERNAME, username)
        return None if row is None else user_from_row(row)

    # spaces -------------------------------------------------------------------------------
    async def create_space(self, space: Space) -> None:
        async with self._write() as tx:
            await tx.execute(
                INSERT_SPACE,
                space.id,
                space.host_id,
                space.title,
                space.description,
                space.state.value,
                _stored_visibility(space.visibility),
                space.created_at,
                space.scheduled_for,
                space.started_at,
                space.ended_at,
                space.peak_listeners,
                space.language,
                space.captions,
                space.visibility is Visibility.PRIVATE,
                space.recording,
            )
            await tx.execute(
                INSERT_PARTICIPANT, space.id, space.host_id, Role.HOST.value, space.created_at
            )

    async def get_space(self, space_id: str) -> Space | None:
        row = await self._fetchrow(GET_SPACE, space_id)
        return None if row is None else space_from_row(row)

    async def transition_space(
        self,
        space_id: str,
        expected: SpaceState,
        new: SpaceState,
        at: float,
        *,
        audit: AuditEntry | None = None,
    ) -> bool:
        started = at if new is SpaceState.LIVE else None
        ended = at if new is SpaceState.ENDED else None
        return await self._changed(
            TRANSITION_SPACE, space_id, expected.value, new.value, started, ended, audit=audit
        )

    async def edit_space(
        self,
        space_id: str,
        title: str,
        description: str,
        visibility: Visibility,
        *,
        audit: AuditEntry | None = None,
    ) -> bool:
        return await self._changed(
            EDIT_SPACE,
            space_id,
            title,
            description,
            _stored_visibility(visibility),
            visibility is Visibility.PRIVATE,
            audit=audit,
        )

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
        sql, args = list_spaces_sql(
            state=state,
            query=query,
            host_id=host_id,
            include_unlisted=include_unlisted,
            limit=limit,
            offset=offset,
            transcript_match=self._transcript_match(query) if query else None,
        )
        return [space_from_row(r) for r in await self._fetch(sql, *args)]

    async def set_captions(self, space_id: str, on: bool) -> bool:
        return await self._changed(SET_CAPTIONS, space_id, on)

    async def raise_peak_listeners(self, space_id: str, count: int) -> None:
        async with self._write() as tx:
            await tx.execute(RAISE_PEAK, space_id, count)

    # participants -------------------------------------------------------------------------
    async def list_participants(self, space_id: str) -> list[Participant]:
        return [participant_from_row(r) for r in await self._fetch(LIST_PARTICIPANTS, space_id)]

    async def get_participant(self, space_id: str, user_id: str) -> Participant | None:
        row = await self._fetchrow(GET_PARTICIPANT, space_id, user_id)
        return None if row is None else participant_from_row(row)

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
        if role in (Role.LISTENER, Role.HOST):
            raise ValueError(f"set_role cannot grant {role.value!r}")
        async with self._write() as tx:
            # Locking the space row serialises every role change of this space, so the
            # count below cannot go stale before the upsert.
            if await tx.fetchrow(SPACE_EXISTS + self._LOCK_SPACE_SUFFIX, space_id) is None:
                return False
            if limit is not None:
                row = await tx.fetchrow(COUNT_ROLE_EXCEPT, space_id, role.value, user_id)
                if row is not None and row["n"] >= limit:
                    return False
            if await tx.fetchrow(UPSERT_ROLE, space_id, user_id, role.value, at) is None:
                return False  # the user is the host
            await tx.execute(DELETE_SPEAK_REQUEST, space_id, user_id)
            await tx.execute(DELETE_INVITE, space_id, user_id)
            if audit is not None:
                await insert_audit(tx, audit)
            return True

    async def remove_participant(
        self, space_id: str, user_id: str, *, audit: AuditEntry | None = None
    ) -> bool:
        return await self._changed(DELETE_PARTICIPANT, space_id, user_id, audit=audit)

    async def transfer_host(
        self, space_id: str, old: str, new: str, *, audit: AuditEntry | None = None
    ) -> bool:
        async with self._write() as tx:
            # The space row locked first, as in set_role: role changes of a space queue.
            space = await tx.fetchrow(HOST_OF_LIVE_SPACE + self._LOCK_SPACE_SUFFIX, space_id)
            if space is None or space["host_id"] != old:
                return False
            successor = await tx.fetchrow(GET_PARTICIPANT, space_id, new)
            if successor is None or successor["role"] != Role.COHOST.value:
                return False
            await tx.execute(SET_HOST, space_id, new)
            await tx.execute(SET_ROLE, space_id, new, Role.HOST.value)
            await tx.execute(SET_ROLE, space_id, old, Role.COHOST.value)
            if audit is not None:
                await insert_audit(tx, audit)
            return True

    async def set_muted(
        self, space_id: str, user_id: str, muted: bool, *, audit: AuditEntry | None = None
    ) -> bool:
        return await self._changed(SET_MUTED, space_id, user_id, muted, audit=audit)

    # speak requests and invites -----------------------------------------------------------
    async def add_speak_request(self, request: SpeakRequest) -> bool:
        return await self._changed(
            INSERT_SPEAK_REQUEST, request.space_id, request.user_id, request.created_at
        )

    async def remove_speak_request(
        self, space_id: str, user_id: str, *, audit: AuditEntry | None = None
    ) -> bool:
        return await self._changed(DELETE_SPEAK_REQUEST, space_id, user_id, audit=audit)

    async def list_speak_requests(self, space_id: str) -> list[SpeakRequest]:
        rows = await self._fetch(LIST_SPEAK_REQUESTS, space_id)
        return [speak_request_from_row(r) for r in rows]

    async def add_invite(self, invite: Invite, *, audit: AuditEntry | None = None) -> bool:
        return await self._changed(
            INSERT_INVITE,
            invite.space_id,
            invite.user_id,
            invite.invited_by,
            invite.created_at,
            audit=audit,
        )

    async def remove_invite(self, space_id: str, user_id: str) -> bool:
        return await self._changed(DELETE_INVITE, space_id, user_id)

    async def get_invite(self, space_id: str, user_id: str) -> Invite | None:
        row = await self._fetchrow(GET_INVITE, space_id, user_id)
        return None if row is None else invite_from_row(row)

    # bans and reminders -------------------------------------------------------------------
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
        async with self._write() as tx:
            await tx.execute(INSERT_BAN, space_id, user_id, banned_by, at)
            await _leave(tx, space_id, user_id, audit, notice)

    async def remove_member(
        self,
        space_id: str,
        user_id: str,
        *,
        audit: AuditEntry | None = None,
        notice: Notice | None = None,
    ) -> None:
        async with self._write() as tx:
            await _leave(tx, space_id, user_id, audit, notice)

    async def add_guest(
        self, space_id: str, user_id: str, added_by: str, at: float, *, audit: AuditEntry
    ) -> bool:
        return await self._changed(ADD_GUEST, space_id, user_id, added_by, at, audit=audit)

    async def remove_guest(self, space_id: str, user_id: str, *, audit: AuditEntry) -> bool:
        return await self._changed(REMOVE_GUEST, space_id, user_id, audit=audit)

    async def is_guest(self, space_id: str, user_id: str) -> bool:
        return await self._fetchrow(IS_GUEST, space_id, user_id) is not None

    async def list_guests(self, space_id: str) -> list[User]:
        return [user_from_row(r) for r in await self._fetch(LIST_GUESTS, space_id)]

    async def is_banned(self, space_id: str, user_id: str) -> bool:
        return await self._fetchrow(IS_BANNED, space_id, user_id) is not None

    async def list_bans(self) -> list[tuple[str, str]]:
        return [(str(r["space_id"]), str(r["user_id"])) for r in await self._fetch(LIST_BANS)]

    # revoked sessions ---------------------------------------------------------------------
    async def revoke_token(self, token_id: str, expires_at: float) -> None:
        async with self._write() as tx:
            await tx.execute(INSERT_REVOCATION, token_id, expires_at)

    async def list_revocations(self, now: float) -> list[tuple[str, float]]:
        rows = await self._fetch(LIST_REVOCATIONS, now)
        return [(str(r["token_id"]), float(r["expires_at"])) for r in rows]

    async def prune_revocations(self, now: float) -> None:
        async with self._write() as tx:
            await tx.execute(PRUNE_REVOCATIONS, now)

    # clips --------------------------------------------------------------------------------
    async def add_clip(self, clip: Clip) -> None:
        async with self._write() as tx:
            await tx.execute(
                INSERT_CLIP,
                clip.id,
                clip.space_id,
                clip.created_by,
                clip.start,
                clip.duration,
                clip.title,
                clip.created_at,
            )

    async def get_clip(self, clip_id: str) -> Clip | None:
        row = await self._fetchrow(GET_CLIP, clip_id)
        return None if row is None else clip_from_row(row)

    async def list_clips(self, space_id: str, limit: int) -> list[Clip]:
        return [clip_from_row(r) for r in await self._fetch(LIST_CLIPS, space_id, limit)]

    async def delete_clip(self, clip_id: str) -> bool:
        return await self._changed(DELETE_CLIP, clip_id)

    async def add_reminder(self, space_id: str, user_id: str, at: float) -> bool:
        return await self._changed(INSERT_REMINDER, space_id, user_id, at)

    async def remove_reminder(self, space_id: str, user_id: str) -> bool:
        return await self._changed(DELETE_REMINDER, space_id, user_id)

    async def count_reminders(self, space_id: str) -> int:
        row = await self._fetchrow(COUNT_REMINDERS, space_id)
        return 0 if row is None else int(row["n"])

    # reminders delivered and notifications ------------------------------------------------
    async def deliver_reminders(
        self, space_id: str, kind: NotificationKind, title: str, at: float
    ) -> list[Subscriber]:
        async with self._write() as tx:
            return await claim_reminders(tx, space_id, kind, title, at)

    async def list_notifications(
        self, user_id: str, *, before: int | None, limit: int
    ) -> list[Notification]:
        cursor = _SEQ_MAX if before is None else before
        rows = await self._fetch(LIST_NOTIFICATIONS, user_id, cursor, limit)
        return [notification_from_row(r) for r in rows]

    async def count_unread(self, user_id: str) -> int:
        row = await self._fetchrow(COUNT_UNREAD, user_id)
        return 0 if row is None else int(row["n"])

    async def mark_read(self, user_id: str, up_to: int | None, at: float) -> int:
        async with self._write() as tx:
            rows = await tx.fetch(MARK_READ, user_id, _SEQ_MAX if up_to is None else up_to, at)
        return len(rows)

    async def overdue_scheduled(self, before: float, limit: int) -> list[str]:
        return [str(r["id"]) for r in await self._fetch(OVERDUE_SCHEDULED, before, limit)]

    async def undelivered_live(self, limit: int) -> list[str]:
        return [str(r["space_id"]) for r in await self._fetch(UNDELIVERED_LIVE, limit)]

    # the audience over time ----------------------------------------------------------------
    async def add_audience_sample(self, space_id: str, sample: AudienceSample) -> None:
        async with self._write() as tx:
            await tx.execute(
                INSERT_SAMPLE,
                space_id,
                sample.at,
                sample.listeners,
                sample.reactions,
                sample.joins,
            )
            await tx.execute(RAISE_PEAK, space_id, sample.listeners)

    async def list_audience(self, space_id: str, limit: int) -> list[AudienceSample]:
        return [sample_from_row(r) for r in await self._fetch(LIST_SAMPLES, space_id, limit)]

    # deleting a replay ---------------------------------------------------------------------
    async def delete_replay_records(self, space_id: str, *, audit: AuditEntry) -> int:
        gone = 0
        async with self._write() as tx:
            for sql in _DELETE_REPLAY:
                gone += len(await tx.fetch(sql, space_id))
            await insert_audit(tx, audit)
        return gone

    # users' pictures ----------------------------------------------------------------------
    async def put_avatar(self, user_id: str, avatar: Avatar) -> None:
        async with self._write() as tx:
            await tx.execute(
                PUT_AVATAR, user_id, avatar.content_type, avatar.data, avatar.updated_at
            )

    async def get_avatar(self, user_id: str) -> Avatar | None:
        row = await self._fetchrow(GET_AVATAR, user_id)
        return None if row is None else avatar_from_row(row)

    async def delete_avatar(self, user_id: str) -> bool:
        async with self._write() as tx:
            return bool(await tx.fetch(DELETE_AVATAR, user_id))

    # transcripts --------------------------------------------------------------------------
    async def queue_transcript(self, space_id: str, at: float) -> bool:
        return await self._changed(QUEUE_TRANSCRIPT, space_id, at)

    async def claim_transcript(self, now: float, stale_before: float) -> TranscriptJob | None:
        claim = secrets.token_hex(8)
        sql = CLAIM_TRANSCRIPT.format(lock=self._CLAIM_LOCK_SUFFIX)
        async with self._write() as tx:
            row = await tx.fetchrow(sql, now, stale_before, claim)
        if row is None:
            return None
        return TranscriptJob(space_id=row["space_id"], claim=claim, attempts=int(row["attempts"]))

    async def finish_transcript(
        self, job: TranscriptJob, lines: list[TranscriptLine], at: float
    ) -> bool:
        async with self._write() as tx:
            if await tx.fetchrow(FINISH_TRANSCRIPT, job.space_id, job.claim, at) is None:
                return False
            await tx.execute(DELETE_LINES, job.space_id)
            for seq, line in enumerate(lines):
                await tx.execute(
                    INSERT_LINE, job.space_id, seq, line.start, line.end, line.speaker, line.text
                )
            return True

    async def fail_transcript(self, job: TranscriptJob, error: str, at: float) -> bool:
        return await self._changed(FAIL_TRANSCRIPT, job.space_id, job.claim, at, error)

    async def defer_transcript(self, job: TranscriptJob, until: float, at: float) -> bool:
        return await self._changed(DEFER_TRANSCRIPT, job.space_id, job.claim, at, until)

    async def touch_transcript(self, job: TranscriptJob, at: float) -> bool:
        return await self._changed(TOUCH_TRANSCRIPT, job.space_id, job.claim, at)

    async def get_transcript(self, space_id: str) -> TranscriptState | None:
        row = await self._fetchrow(GET_TRANSCRIPT, space_id)
        return None if row is None else transcript_from_row(row)

    async def list_transcript_lines(self, space_id: str) -> list[TranscriptLine]:
        return [line_from_row(r) for r in await self._fetch(LIST_LINES, space_id)]

    # the audit log and statements of reasons ----------------------------------------------
    async def list_audit(
        self, space_id: str, *, before: int | None, limit: int
    ) -> list[AuditEntry]:
        # seq starts at 1 in both dialects, so "before nothing" is below the largest bigint.
        cursor = _SEQ_MAX if before is None else before
        rows = await self._fetch(LIST_AUDIT, space_id, cursor, limit)
        return [audit_from_row(r) for r in rows]

    async def list_notices(self, user_id: str, limit: int) -> list[Notice]:
        return [notice_from_row(r) for r in await self._fetch(LIST_NOTICES, user_id, limit)]

    async def get_notice(self, notice_id: str) -> Notice | None:
        row = await self._fetchrow(GET_NOTICE, notice_id)
        return None if row is None else notice_from_row(row)

    async def list_site_audit(self, *, before: int | None, limit: int) -> list[AuditEntry]:
        cursor = _SEQ_MAX if before is None else before
        return [audit_from_row(r) for r in await self._fetch(LIST_SITE_AUDIT, cursor, limit)]

    # site moderation ----------------------------------------------------------------------
    async def is_moderator(self, user_id: str) -> bool:
        return await self._fetchrow(IS_MODERATOR, user_id) is not None

    async def set_moderator(self, user_id: str, on: bool, *, audit: AuditEntry) -> bool:
        async with self._write() as tx:
            return await set_moderator(tx, user_id, on, audit)

    async def add_report(self, report: Report) -> None:
        r = report
        async with self._write() as tx:
            await tx.execute(
                INSERT_REPORT,
                r.id,
                r.subject,
                r.space_id,
                r.user_id,
                r.clip_id,
                r.category,
                r.text,
                r.reporter_id,
                r.created_at,
            )

    async def get_report(self, report_id: str) -> Report | None:
        row = await self._fetchrow(GET_REPORT, report_id)
        return None if row is None else report_from_row(row)

    async def list_open_reports(self, limit: int) -> list[Report]:
        return [report_from_row(r) for r in await self._fetch(LIST_OPEN_REPORTS, limit)]

    async def list_reports_by(self, reporter_id: str, limit: int) -> list[Report]:
        rows = await self._fetch(LIST_REPORTS_BY, reporter_id, limit)
        return [report_from_row(r) for r in rows]

    async def act(self, act: Act) -> bool:
        try:
            async with self._write() as tx:
                await apply_act(tx, act)
        except StaleAct:
            return False
        return True

    async def suspended_until(self, user_id: str, now: float) -> float | None:
        row = await self._fetchrow(GET_SUSPENSION, user_id, now)
        return None if row is None else float(row["until"])

    async def list_suspensions(self, now: float) -> list[tuple[str, float]]:
        rows = await self._fetch(LIST_SUSPENSIONS, now)
        return [(str(r["user_id"]), float(r["until"])) for r in rows]

    async def add_appeal(self, appeal: Appeal) -> None:
        a = appeal
        async with self._write() as tx:
            await tx.execute(INSERT_APPEAL, a.id, a.notice_id, a.user_id, a.text, a.created_at)

    async def get_appeal(self, appeal_id: str) -> Appeal | None:
        row = await self._fetchrow(GET_APPEAL, appeal_id)
        return None if row is None else appeal_from_row(row)

    async def list_open_appeals(self, limit: int) -> list[Appeal]:
        return [appeal_from_row(r) for r in await self._fetch(LIST_OPEN_APPEALS, limit)]

    async def list_appeals_of(self, user_id: str, limit: int) -> list[Appeal]:
        return [appeal_from_row(r) for r in await self._fetch(LIST_APPEALS_OF, user_id, limit)]

    async def live_spaces_of(self, user_id: str) -> list[str]:
        return [str(r["space_id"]) for r in await self._fetch(LIVE_SPACES_OF, user_id)]

    async def count_live_spaces(self) -> int:
        row = await self._fetchrow(COUNT_LIVE_SPACES)
        return 0 if row is None else int(row["n"])


_SEQ_MAX = 2**63 - 1


def _stored_visibility(visibility: Visibility) -> str:
    """A private space is stored unlisted (and private): never listed, by any query."""
    return Visibility.UNLISTED.value if visibility is Visibility.PRIVATE else visibility.value


async def _leave(
    tx: Tx, space_id: str, user_id: str, audit: AuditEntry | None, notice: Notice | None
) -> None:
    """Everything that keeps a user in a space (stage, request, invitation) goes, with the
    record of why in the same transaction."""
    await tx.execute(DELETE_PARTICIPANT, space_id, user_id)
    await tx.execute(DELETE_SPEAK_REQUEST, space_id, user_id)
    await tx.execute(DELETE_INVITE, space_id, user_id)
    if audit is not None:
        await insert_audit(tx, audit)
    if notice is not None:
        await insert_notice(tx, notice)

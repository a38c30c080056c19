"""Spaces: create, schedule, start, end, list, search, reminders, calendar file."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from majlis.clock import Clock
from majlis.errors import BadRequest, Conflict, Forbidden, NotFound, Overloaded, Unauthorized
from majlis.plane import Capacity, Captions, EndSpace, SetCaptions, StartSpace
from majlis.services.accounts import clean_text
from majlis.services.auth import Caller
from majlis.services.cache import TtlCache
from majlis.services.events import Events
from majlis.store.base import Store
from majlis.types import (
    AuditEntry,
    EndReason,
    Language,
    Participant,
    Space,
    SpaceState,
    Visibility,
)

__all__ = ["Spaces", "start_of"]

log = logging.getLogger(__name__)

MAX_SCHEDULE_AHEAD = 366 * 86400.0
# A full media plane has room again when a space ends: minutes, not seconds, away.
ROOM_RETRY_MS = 30_000
# What the audit log says when a space ends by itself.
_END_REASONS: dict[EndReason, str] = {
    "host": "",
    "host_absent": "the host's audio was gone and no co-host could take over",
    "empty_stage": "nobody on stage had audio",
    "missed": "its host did not start it in time",
    "moderator": "",  # the moderator's reason is in the log's entry
}

# What each state may become, and the reason given when a transition is impossible.
_TRANSITIONS: dict[SpaceState, set[SpaceState]] = {
    SpaceState.SCHEDULED: {SpaceState.LIVE, SpaceState.ENDED},
    SpaceState.LIVE: {SpaceState.ENDED},
    SpaceState.ENDED: set(),
}


class Spaces:
    def __init__(
        self,
        store: Store,
        events: Events,
        clock: Clock,
        cache_ttl: float,
        ended: Callable[[Space], Awaitable[None]] | None = None,
        started: Callable[[Space], Awaitable[object]] | None = None,
        capacity: Capacity | None = None,
    ) -> None:
        """ended: told of each space that the host has ended (as it was before ending),
        after the media has been told; the transcripts queue theirs there. started: told of
        each scheduled space its host has started (as it is now live); reminders go there.
        capacity: how many spaces may be live at once (None: no media here, no limit)."""
        self._store = store
        self._capacity = capacity
        self._ended = ended
        self._started = started
        self._events = events
        self._clock = clock
        self._space_cache: TtlCache[Space | None] = TtlCache(clock, cache_ttl)
        self._stage_cache: TtlCache[list[Participant]] = TtlCache(clock, cache_ttl)

    async def create(
        self,
        caller: Caller,
        title: str,
        description: str,
        scheduled_for: float | None,
        visibility: Visibility,
        *,
        language: Language = "auto",
        recording: bool = True,
    ) -> Space:
        host_id = caller.require_user()
        now = self._clock.now()
        if scheduled_for is not None and not now < scheduled_for <= now + MAX_SCHEDULE_AHEAD:
            raise BadRequest(
                "scheduled_for must be in the future and within a year", code="invalid_schedule"
            )
        live = scheduled_for is None
        if live and (full := await self._no_room()):
            raise full
        space = Space(
            id=secrets.token_hex(6),
            host_id=host_id,
            title=clean_text(title, "title", 120),
            description=clean_text(description, "description", 2000, allow_empty=True),
            state=SpaceState.LIVE if live else SpaceState.SCHEDULED,
            visibility=visibility,
            language=language,
            created_at=now,
            scheduled_for=scheduled_for,
            started_at=now if live else None,
            recording=recording,
        )
        await self._store.create_space(space)
        if live:
            await self.place(start_of(space, now))
        return await self.get(space.id)

    async def _no_room(self) -> Overloaded | None:
        """The refusal for one space more than the media plane runs in real time, if it
        is full. Two starts in the same moment may both pass: a node then takes one more
        than its share, which its headroom absorbs; it is the hundredth that must not."""
        if self._capacity is None:
            return None
        room = await self._capacity()
        if room.spaces <= 0:
            return Overloaded("no media node is available", ROOM_RETRY_MS, code="media_full")
        if await self._store.count_live_spaces() < room.spaces:
            return None
        until = (
            "its media is running late, and takes no more until it catches up; try again shortly"
            if room.behind
            else "try again when one ends"
        )
        return Overloaded(
            f"the server runs as many live spaces as it can now ({room.spaces}): {until}",
            ROOM_RETRY_MS,
            code="media_full",
        )

    async def get(self, space_id: str) -> Space:
        space = await self._store.get_space(space_id)
        if space is None:
            raise NotFound("no such space", code="space_not_found")
        return space

    async def live_starts(self) -> list[StartSpace]:
        """The StartSpace of every live space: what media must be running."""
        spaces = await self._store.list_spaces(
            state=SpaceState.LIVE,
            query=None,
            host_id=None,
            include_unlisted=True,
            limit=10_000,
            offset=0,
        )
        return [start_of(s, s.started_at or s.created_at) for s in spaces]

    async def place(self, start: StartSpace) -> None:
        """Publish a (re)start of a live space's media (with its captions settings)."""
        await self._events.media(start)

    async def get_cached(self, space_id: str) -> Space:
        """For the listener paths: may be up to the cache TTL old."""
        space = await self._space_cache.get(space_id, lambda: self._store.get_space(space_id))
        if space is None:
            raise NotFound("no such space", code="space_not_found")
        return space

    async def stage_cached(self, space_id: str) -> list[Participant]:
        return await self._stage_cache.get(
            space_id, lambda: self._store.list_participants(space_id)
        )

    def forget(self, space_id: str) -> None:
        self._space_cache.invalidate(space_id)
        self._stage_cache.invalidate(space_id)

    async def start(self, caller: Caller, space_id: str) -> Space:
        space = await self.owned(caller, space_id, "start")
        if space.state is SpaceState.SCHEDULED and (full := await self._no_room()):
            # A second start of the same space may have lost the race to the first, and
            # counted it: its answer is that the space is live already.
            space = await self.get(space_id)
            if space.state is SpaceState.SCHEDULED:
                raise full
        await self._transition(space, SpaceState.LIVE)
        await self.place(start_of(space, self._clock.now()))
        await self._events.emit(space_id, "space_started", "all")
        live = await self.get(space_id)
        if self._started is not None:
            # Only the request whose compare-and-set made the space live gets here.
            try:
                await self._started(live)
            except Exception:
                # The space is live: its start must not answer 500. Reminders not claimed
                # stay undelivered, and the missed-spaces sweep delivers them.
                log.exception("space %s started; its reminders wait for the sweep", space_id)
        return live

    async def mark_missed(self, space_id: str) -> Space | None:
        """End a scheduled space its host never started (services/schedule.py): it stays
        in the state machine's one end state, `ended`, with no `started_at`, and the
        audit log and the space's event say why. The space as ended, or None when it is
        no longer scheduled (started or ended meanwhile, or missed by another worker)."""
        space = await self.get(space_id)
        if space.state is not SpaceState.SCHEDULED:
            return None
        audit = AuditEntry(space.id, None, "end", self._clock.now(), reason=_END_REASONS["missed"])
        try:
            await self._transition(space, SpaceState.ENDED, audit)
        except Conflict:
            return None
        await self._events.emit(space.id, "space_ended", "all", reason="missed")
        return await self.get(space_id)

    async def edit(
        self,
        caller: Caller,
        space_id: str,
        *,
        title: str | None = None,
        description: str | None = None,
        visibility: Visibility | None = None,
    ) -> Space:
        """Change the title, description or visibility (the host alone, in any state: a
        replay's title can be fixed too). One audit entry names what changed."""
        space = await self.owned(caller, space_id, "edit")
        new_title = space.title if title is None else clean_text(title, "title", 120)
        new_description = (
            space.description
            if description is None
            else clean_text(description, "description", 2000, allow_empty=True)
        )
        new_visibility = space.visibility if visibility is None else visibility
        if Visibility.PRIVATE in (space.visibility, new_visibility) and (
            new_visibility is not space.visibility
        ):
            # Who heard a public space cannot be un-told; a private one made public would
            # open a conversation its guests were promised was closed.
            raise Conflict(
                "whether a space is private is chosen when it is created",
                code="privacy_fixed",
            )
        changed = [
            name
            for name, old, new in (
                ("title", space.title, new_title),
                ("description", space.description, new_description),
                ("visibility", space.visibility, new_visibility),
            )
            if old != new
        ]
        if not changed:
            return space
        audit = AuditEntry(
            space.id, space.host_id, "edit", self._clock.now(), reason=", ".join(changed)
        )
        if not await self._store.edit_space(
            space.id, new_title, new_description, new_visibility, audit=audit
        ):
            raise NotFound("no such space", code="space_not_found")
        self.forget(space.id)
        edited = await self.get(space.id)
        await self._events.emit(
            space.id,
            "space_updated",
            "all",
            title=edited.title,
            description=edited.description,
            visibility=str(edited.visibility),
            changed=changed,
        )
        return edited

    async def end(self, caller: Caller, space_id: str) -> Space:
        space = await self.owned(caller, space_id, "end")
        await self._close(space, "host", space.host_id)
        return await self.get(space_id)

    async def end_unattended(self, space_id: str, why: EndReason) -> bool:
        """End a live space nobody is running (services/continuity.py); False if it is no
        longer live."""
        space = await self.get(space_id)
        if space.state is not SpaceState.LIVE:
            return False
        try:
            await self._close(space, why, None)
        except Conflict:
            return False  # ended meanwhile, by its host or another worker
        return True

    async def _close(self, space: Space, why: EndReason, actor: str | None) -> None:
        """End `space`; `actor` is who did (None: Majlis itself, for `why`)."""
        reason = "" if why == "host" else _END_REASONS[why]
        audit = AuditEntry(space.id, actor, "end", self._clock.now(), reason=reason)
        await self._transition(space, SpaceState.ENDED, audit)
        await self.closed(space, why)

    async def closed(self, space: Space, why: EndReason) -> None:
        """What follows a live space's end in the store: its media stops, its audience is
        told, its transcript is queued. `space` is as it was before."""
        self.forget(space.id)
        await self._events.media(EndSpace(space.id, keep=space.recording))
        await self._events.emit(space.id, "space_ended", "all", reason=why)
        if self._ended is not None:
            await self._ended(space)

    async def list(
        self,
        state: SpaceState | None,
        query: str | None,
        host_id: str | None,
        limit: int,
        offset: int,
    ) -> list[Space]:
        text = clean_text(query, "q", 100, allow_empty=True) if query else None
        return await self._store.list_spaces(
            state=state,
            query=text or None,
            host_id=host_id,
            include_unlisted=False,
            limit=limit,
            offset=offset,
        )

    async def remind(self, caller: Caller, space_id: str, on: bool) -> int:
        user_id = caller.require_user()
        space = await self.get(space_id)
        if on and space.state is not SpaceState.SCHEDULED:
            raise Conflict(
                f"reminders are for scheduled spaces; this one is {space.state}",
                code="not_scheduled",
            )
        if on:
            await self._store.add_reminder(space_id, user_id, self._clock.now())
        else:
            await self._store.remove_reminder(space_id, user_id)
        return await self._store.count_reminders(space_id)

    async def calendar(self, space_id: str, public_url: str) -> str:
        space = await self.get(space_id)
        if space.state is not SpaceState.SCHEDULED or space.scheduled_for is None:
            raise Conflict("only a scheduled space has a calendar entry", code="not_scheduled")
        return render_ics(space, f"{public_url}/spaces/{space.id}", self._clock.now())

    async def set_captions(self, caller: Caller, space_id: str, on: bool) -> Space:
        """The host turns live captions on or off; everyone in the space is told (the
        studio shows speakers whether what they say is being captioned)."""
        space = await self.owned(caller, space_id, "turn captions on or off in")
        if space.state is SpaceState.ENDED:
            raise Conflict("the space has ended", code="space_ended")
        if not await self._store.set_captions(space_id, on):
            raise NotFound("no such space", code="space_not_found")
        self.forget(space_id)
        if space.state is SpaceState.LIVE:
            await self._events.media(SetCaptions(space_id, on, space.language))
        await self._events.emit(space_id, "captions", "all", on=on)
        return await self.get(space_id)

    async def admitted(self, space: Space, member: str | None) -> bool:
        """Whether `member` may listen to `space` and its replay: anyone, unless the space
        is private; then its host, its stage, its guests and site moderators (who review
        reports) alone."""
        if space.visibility is not Visibility.PRIVATE:
            return True
        if member is None or member.startswith("anon:"):
            return False
        if member == space.host_id or await self._store.is_guest(space.id, member):
            return True
        if await self._store.get_participant(space.id, member) is not None:
            return True
        return await self._store.is_moderator(member)

    async def require_admitted(self, space: Space, member: str | None) -> None:
        if await self.admitted(space, member):
            return
        if member is None or member.startswith("anon:"):
            raise Unauthorized(
                "this space is private: log in as one of its guests", code="login_required"
            )
        raise Forbidden(
            "this space is private: only its host's guests can listen", code="not_invited"
        )

    async def owned(self, caller: Caller, space_id: str, action: str) -> Space:
        """The space, if the caller is its host; Forbidden (not_host) otherwise."""
        user_id = caller.require_user()
        space = await self.get(space_id)
        if space.host_id != user_id:
            raise Forbidden(f"only the host can {action} this space", code="not_host")
        return space

    async def _transition(
        self, space: Space, new: SpaceState, audit: AuditEntry | None = None
    ) -> None:
        if new not in _TRANSITIONS[space.state]:
            raise Conflict(
                f"a space that is {space.state} cannot become {new}", code="invalid_transition"
            )
        now = self._clock.now()
        if not await self._store.transition_space(space.id, space.state, new, now, audit=audit):
            raise Conflict("the space changed state meanwhile; reload", code="invalid_transition")
        self.forget(space.id)


def _ics_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%dT%H%M%SZ")


def _ics_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str) -> str:
    """RFC 5545 3.1: lines longer than 75 octets are folded (never inside a UTF-8 char)."""
    out, current = [], b""
    for ch in line:
        encoded = ch.encode()
        if len(current) + len(encoded) > 75:
            out.append(current.decode())
            current = b" "
        current += encoded
    out.append(current.decode())
    return "\r\n".join(out)


def render_ics(space: Space, url: str, now: float) -> str:
    start = space.scheduled_for or now
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Majlis//Spaces//EN",
        "CALSCALE:GREGORIAN",
        "BEGIN:VEVENT",
        f"UID:{space.id}@majlis",
        f"DTSTAMP:{_ics_time(now)}",
        f"DTSTART:{_ics_time(start)}",
        f"DTEND:{_ics_time(start + 3600)}",
        f"SUMMARY:{_ics_escape(space.title)}",
        f"DESCRIPTION:{_ics_escape(space.description)}",
        f"URL:{url}",
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        "TRIGGER:-PT10M",
        f"DESCRIPTION:{_ics_escape(space.title)}",
        "END:VALARM",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(_fold(line) for line in lines) + "\r\n"


def start_of(space: Space, started_at: float) -> StartSpace:
    """The media command that runs a space, with its live captions settings (the host's
    switch, the language): the start itself carries them, so a node never runs the
    space's captions for a moment with settings other than the host's."""
    return StartSpace(space.id, started_at, Captions(space.captions, space.language))

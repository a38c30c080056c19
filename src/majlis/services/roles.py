"""Roles and the speaking flow: requests, invites, promotion, mute, demote, remove, ban.

Every action reads the actor's role in *that* space from the store (never a cache) and
checks it here. Rank decides who may act on whom: host > co-host > speaker > listener; a
moderator (host or co-host) acts only on people ranked below them. What a moderator does
is written to the audit log in the same store transaction as the change itself.
"""

from __future__ import annotations

from dataclasses import asdict

from majlis.bus.base import Bus
from majlis.clock import Clock
from majlis.errors import Conflict, Forbidden, NotFound
from majlis.plane import Disconnect, SetMuted
from majlis.services.accounts import USERNAME
from majlis.services.audit import clean_reason
from majlis.services.auth import Caller
from majlis.services.events import Events
from majlis.services.notices import house_rules_notice
from majlis.services.spaces import Spaces
from majlis.store.base import Store
from majlis.types import (
    AuditAction,
    AuditEntry,
    HostChange,
    Invite,
    Notice,
    Participant,
    ReasonCategory,
    Role,
    Space,
    SpaceState,
    SpeakRequest,
)

__all__ = ["COHOST_LIMIT", "SPEAKER_LIMIT", "Roles", "ban_key", "invite_key"]

COHOST_LIMIT = 2
SPEAKER_LIMIT = 10
_RANK = {Role.HOST: 3, Role.COHOST: 2, Role.SPEAKER: 1, Role.LISTENER: 0}


def ban_key(space_id: str, member: str) -> str:
    return f"ban:{space_id}:{member}"


def invite_key(space_id: str, user_id: str) -> str:
    """Mirrors a pending invitation on the bus: listeners learn of it from their heartbeat,
    which must not read SQL."""
    return f"invite:{space_id}:{user_id}"


INVITE_TTL = 3600.0


class Roles:
    def __init__(
        self, store: Store, bus: Bus, spaces: Spaces, events: Events, clock: Clock
    ) -> None:
        self._store = store
        self._bus = bus
        self._spaces = spaces
        self._events = events
        self._clock = clock

    # reading ----------------------------------------------------------------------------
    async def role_of(self, space_id: str, user_id: str | None) -> Role:
        if user_id is None:
            return Role.LISTENER
        participant = await self._store.get_participant(space_id, user_id)
        return participant.role if participant else Role.LISTENER

    async def stage(self, space_id: str) -> list[Participant]:
        await self._spaces.get(space_id)
        return await self._store.list_participants(space_id)

    async def watcher(self, caller: Caller, space_id: str) -> tuple[str, Role]:
        """Who may hold an event socket: people on stage, asking to speak, or invited.
        Listeners who do none of these poll the state document instead."""
        user_id = caller.require_user()
        space = await self._spaces.get(space_id)
        if space.state is SpaceState.ENDED:
            raise Conflict("the space has ended", code="space_ended")
        if await self._store.is_banned(space_id, user_id):
            raise Forbidden("you are banned from this space", code="banned")
        role = await self.role_of(space_id, user_id)
        if role.on_stage or await self._has_request(space_id, user_id):
            return user_id, role
        if await self._store.get_invite(space_id, user_id) is not None:
            return user_id, role
        raise Forbidden(
            "event sockets are for people on stage or asking to speak; poll the state "
            "document instead",
            code="not_acting",
        )

    async def pending_invite(self, space_id: str, user_id: str) -> Invite | None:
        return await self._store.get_invite(space_id, user_id)

    async def requests(self, caller: Caller, space_id: str) -> list[SpeakRequest]:
        await self._moderator(caller, space_id)
        return await self._store.list_speak_requests(space_id)

    # a listener asks; a moderator answers -------------------------------------------------
    async def ask(self, caller: Caller, space_id: str) -> None:
        user_id, space = await self._live_listener(caller, space_id)
        request = SpeakRequest(space.id, user_id, self._clock.now())
        if not await self._store.add_speak_request(request):
            raise Conflict("you have already asked to speak", code="already_requested")
        await self._events.emit(space_id, "speak_requested", "moderators", user_id=user_id)

    async def withdraw(self, caller: Caller, space_id: str) -> None:
        user_id = caller.require_user()
        await self._spaces.get(space_id)
        if not await self._store.remove_speak_request(space_id, user_id):
            raise NotFound("you have no request to speak here", code="no_request")
        await self._events.emit(space_id, "speak_request_withdrawn", "moderators", user_id=user_id)

    async def approve(self, caller: Caller, space_id: str, user_id: str) -> Participant:
        actor = await self._moderator(caller, space_id, live=True)
        if not await self._has_request(space_id, user_id):
            raise NotFound("that user has not asked to speak", code="no_request")
        audit = self._entry(actor.user_id, "approve", space_id, user_id)
        return await self._promote(space_id, user_id, Role.SPEAKER, audit)

    async def decline(self, caller: Caller, space_id: str, user_id: str) -> None:
        actor = await self._moderator(caller, space_id)
        audit = self._entry(actor.user_id, "decline", space_id, user_id)
        if not await self._store.remove_speak_request(space_id, user_id, audit=audit):
            raise NotFound("that user has not asked to speak", code="no_request")
        await self._events.emit(space_id, "speak_request_declined", user_id, user_id=user_id)
        await self._events.emit(space_id, "speak_request_declined", "moderators", user_id=user_id)

    # a moderator invites; the listener answers -------------------------------------------
    async def invite(
        self, caller: Caller, space_id: str, user_id: str | None, username: str | None = None
    ) -> None:
        actor = await self._moderator(caller, space_id, live=True)
        user_id = await self._resolve(user_id, username)
        if await self._store.is_banned(space_id, user_id):
            raise Conflict("that user is banned from this space", code="banned")
        if await self.role_of(space_id, user_id) is not Role.LISTENER:
            raise Conflict("that user is already on stage", code="already_on_stage")
        invite = Invite(space_id, user_id, actor.user_id, self._clock.now())
        audit = self._entry(actor.user_id, "invite", space_id, user_id)
        if not await self._store.add_invite(invite, audit=audit):
            raise Conflict("that user is already invited", code="already_invited")
        await self._bus.set_value(invite_key(space_id, user_id), "1", INVITE_TTL)
        await self._events.emit(space_id, "invited", user_id, user_id=user_id, by=actor.user_id)

    async def accept_invite(self, caller: Caller, space_id: str) -> Participant:
        user_id, _ = await self._live_listener(caller, space_id)
        if await self._store.get_invite(space_id, user_id) is None:
            raise NotFound("you have no invitation to speak here", code="no_invite")
        return await self._promote(space_id, user_id, Role.SPEAKER)

    async def decline_invite(self, caller: Caller, space_id: str) -> None:
        user_id = caller.require_user()
        await self._spaces.get(space_id)
        await self._bus.delete_value(invite_key(space_id, user_id))
        if not await self._store.remove_invite(space_id, user_id):
            raise NotFound("you have no invitation to speak here", code="no_invite")
        await self._events.emit(space_id, "invite_declined", "moderators", user_id=user_id)

    # leaving and being moved -------------------------------------------------------------
    async def step_down(self, caller: Caller, space_id: str) -> None:
        user_id = caller.require_user()
        await self._spaces.get(space_id)
        role = await self.role_of(space_id, user_id)
        if role is Role.HOST:
            raise Conflict("the host cannot step down; end the space instead", code="is_host")
        if role is Role.LISTENER:
            raise Conflict("you are not on stage", code="not_on_stage")
        await self._to_listener(space_id, user_id, "stepped_down")

    async def demote(self, caller: Caller, space_id: str, user_id: str) -> None:
        actor = await self._moderator(caller, space_id)
        target = await self._outranked(actor, space_id, user_id)
        if target is Role.LISTENER:
            raise Conflict("that user is not on stage", code="not_on_stage")
        audit = self._entry(actor.user_id, "demote", space_id, user_id)
        await self._to_listener(space_id, user_id, "demoted", audit)

    async def set_muted(
        self, caller: Caller, space_id: str, user_id: str, muted: bool, reason: str | None = None
    ) -> None:
        actor_id = caller.require_user()
        why = clean_reason(reason)
        space = await self._spaces.get(space_id)
        if space.state is SpaceState.ENDED:
            raise Conflict("the space has ended", code="space_ended")
        if not muted and actor_id != user_id:
            raise Forbidden("only speakers unmute themselves", code="self_unmute_only")
        if actor_id != user_id:
            actor = await self._moderator(caller, space_id)
            await self._outranked(actor, space_id, user_id)
        elif not (await self.role_of(space_id, user_id)).on_stage:
            raise Conflict("you are not on stage", code="not_on_stage")
        audit = self._entry(actor_id, "mute" if muted else "unmute", space_id, user_id, why)
        if not await self._store.set_muted(space_id, user_id, muted, audit=audit):
            raise Conflict("that user is not on stage", code="not_on_stage")
        self._spaces.forget(space_id)
        await self._events.media(SetMuted(space_id, user_id, muted))
        await self._events.emit(space_id, "muted" if muted else "unmuted", "all", user_id=user_id)

    async def remove(
        self,
        caller: Caller,
        space_id: str,
        user_id: str,
        ban: bool,
        reason: str | None = None,
        category: ReasonCategory = "other",
    ) -> None:
        """Out of the space (and banned from it): the removed user gets a statement of
        reasons, the space only learns that they are gone."""
        actor = await self._moderator(caller, space_id)
        await self._outranked(actor, space_id, user_id)
        why = clean_reason(reason)
        if await self._store.get_user(user_id) is None:
            raise NotFound("no such user", code="user_not_found")
        action: AuditAction = "ban" if ban else "remove"
        audit = self._entry(actor.user_id, action, space_id, user_id, why)
        notice = house_rules_notice(space_id, user_id, action, category, why, audit.at)
        if ban:
            await self._store.ban(
                space_id, user_id, actor.user_id, audit.at, audit=audit, notice=notice
            )
        else:
            await self._store.remove_member(space_id, user_id, audit=audit, notice=notice)
        await self.expel(space_id, user_id, notice, banned=ban)

    async def expel(
        self, space_id: str, user_id: str, notice: Notice | None, *, banned: bool
    ) -> None:
        """What follows a removal the store has written (by a host, co-host or site
        moderator): out of presence, media and the stage caches; the statement to them
        alone, and to the space only that they are gone."""
        if banned:
            # The join path checks the bus, not SQL, so a ban is seen by every worker at once.
            await self._bus.set_value(ban_key(space_id, user_id), "1", None)
        await self._bus.drop_presence(space_id, user_id)
        await self._bus.delete_value(invite_key(space_id, user_id))
        self._spaces.forget(space_id)
        await self._events.media(Disconnect(space_id, user_id))
        if notice is not None:
            # The statement first: the neutral "removed" that follows closes their socket.
            await self._events.emit(
                space_id, "notice", user_id, user_id=user_id, notice=_told(notice)
            )
        await self._events.emit(space_id, "removed", "all", user_id=user_id)

    # co-hosts: the host's alone ----------------------------------------------------------
    async def add_cohost(
        self, caller: Caller, space_id: str, user_id: str | None, username: str | None = None
    ) -> Participant:
        space = await self._host(caller, space_id)
        user_id = await self._resolve(user_id, username)
        if user_id == space.host_id:
            raise Conflict("the host is already the host", code="is_host")
        if await self._store.is_banned(space_id, user_id):
            raise Conflict("that user is banned from this space", code="banned")
        audit = self._entry(space.host_id, "cohost_add", space_id, user_id)
        return await self._promote(space_id, user_id, Role.COHOST, audit)

    async def transfer_host(
        self, caller: Caller, space_id: str, user_id: str | None, username: str | None = None
    ) -> Participant:
        """The host hands the space to one of its co-hosts and stays on as a co-host."""
        space = await self._host(caller, space_id)
        user_id = await self._resolve(user_id, username)
        if space.state is not SpaceState.LIVE:
            raise Conflict(f"the space is {space.state}, not live", code="not_live")
        if user_id == space.host_id:
            raise Conflict("you are already the host", code="is_host")
        if await self.role_of(space_id, user_id) is not Role.COHOST:
            raise Conflict("hosting passes to a co-host; make them one first", code="not_cohost")
        if not await self.succeed(space_id, space.host_id, user_id, "transferred", space.host_id):
            raise Conflict("the stage changed meanwhile; reload", code="stage_changed")
        return await self._participant(space_id, user_id)

    async def succeed(
        self, space_id: str, old: str, new: str, why: HostChange, actor: str | None = None
    ) -> bool:
        """Co-host `new` becomes host in place of `old`; everyone is told. `actor` is who
        decided (None: Majlis, for an absent host). False if the stage changed first
        (another worker, the host acting)."""
        reason = "the host's audio was gone" if why == "host_absent" else ""
        audit = AuditEntry(space_id, actor, "host_transfer", self._clock.now(), new, reason)
        if not await self._store.transfer_host(space_id, old, new, audit=audit):
            return False
        self._spaces.forget(space_id)
        previous = await self._participant(space_id, old)
        successor = await self._participant(space_id, new)
        await self._events.emit(space_id, "role_changed", "all", user_id=new, role=Role.HOST)
        await self._events.emit(
            space_id, "role_changed", "all", user_id=old, role=previous.role, reason=why
        )
        await self._events.emit(
            space_id,
            "host_changed",
            "all",
            user_id=new,
            username=successor.username,
            previous=old,
            reason=why,
        )
        return True

    async def remove_cohost(self, caller: Caller, space_id: str, user_id: str) -> Participant:
        space = await self._host(caller, space_id)
        if await self.role_of(space_id, user_id) is not Role.COHOST:
            raise Conflict("that user is not a co-host", code="not_cohost")
        audit = self._entry(space.host_id, "cohost_remove", space_id, user_id)
        return await self._promote(space_id, user_id, Role.SPEAKER, audit)

    # helpers -----------------------------------------------------------------------------
    async def _participant(self, space_id: str, user_id: str) -> Participant:
        participant = await self._store.get_participant(space_id, user_id)
        if participant is None:
            raise Conflict("the participant left meanwhile", code="not_on_stage")
        return participant

    def _entry(
        self, actor_id: str, action: AuditAction, space_id: str, target_id: str, reason: str = ""
    ) -> AuditEntry:
        return AuditEntry(space_id, actor_id, action, self._clock.now(), target_id, reason)

    async def _resolve(self, user_id: str | None, username: str | None) -> str:
        """A user named by id or by username; 404 if there is none."""
        user = None
        if user_id is not None:
            user = await self._store.get_user(user_id)
        elif username is not None and USERNAME.match(username):
            user = await self._store.get_user_by_username(username)
        if user is None:
            raise NotFound("no such user", code="user_not_found")
        return user.id

    async def _promote(
        self, space_id: str, user_id: str, role: Role, audit: AuditEntry | None = None
    ) -> Participant:
        limit = COHOST_LIMIT if role is Role.COHOST else SPEAKER_LIMIT
        now = self._clock.now()
        if not await self._store.set_role(
            space_id, user_id, role, limit=limit, at=now, audit=audit
        ):
            raise Conflict(f"this space already has {limit} {role}s", code=f"too_many_{role}s")
        await self._bus.delete_value(invite_key(space_id, user_id))
        participant = await self._store.get_participant(space_id, user_id)
        if participant is None:
            raise Conflict("the participant left meanwhile", code="not_on_stage")
        self._spaces.forget(space_id)
        await self._events.emit(space_id, "role_changed", "all", user_id=user_id, role=role)
        return participant

    async def _to_listener(
        self, space_id: str, user_id: str, why: str, audit: AuditEntry | None = None
    ) -> None:
        await self._store.remove_participant(space_id, user_id, audit=audit)
        self._spaces.forget(space_id)
        await self._events.media(Disconnect(space_id, user_id))
        await self._events.emit(
            space_id, "role_changed", "all", user_id=user_id, role=Role.LISTENER, reason=why
        )

    async def _has_request(self, space_id: str, user_id: str) -> bool:
        requests = await self._store.list_speak_requests(space_id)
        return any(r.user_id == user_id for r in requests)

    async def _live_listener(self, caller: Caller, space_id: str) -> tuple[str, Space]:
        user_id = caller.require_user()
        space = await self._spaces.get(space_id)
        if space.state is not SpaceState.LIVE:
            raise Conflict(f"the space is {space.state}, not live", code="not_live")
        if await self._store.is_banned(space_id, user_id):
            raise Forbidden("you are banned from this space", code="banned")
        if (await self.role_of(space_id, user_id)).on_stage:
            raise Conflict("you are already on stage", code="already_on_stage")
        return user_id, space

    async def _moderator(self, caller: Caller, space_id: str, *, live: bool = False) -> Participant:
        user_id = caller.require_user()
        space = await self._spaces.get(space_id)
        participant = await self._store.get_participant(space_id, user_id)
        if participant is None or not participant.role.can_moderate:
            raise Forbidden("only the host or a co-host can do that", code="not_moderator")
        if space.state is SpaceState.ENDED or (live and space.state is not SpaceState.LIVE):
            raise Conflict(f"the space is {space.state}", code="not_live")
        return participant

    async def _host(self, caller: Caller, space_id: str) -> Space:
        user_id = caller.require_user()
        space = await self._spaces.get(space_id)
        if space.host_id != user_id:
            raise Forbidden("only the host can do that", code="not_host")
        if space.state is SpaceState.ENDED:
            raise Conflict("the space has ended", code="space_ended")
        return space

    async def _outranked(self, actor: Participant, space_id: str, user_id: str) -> Role:
        """The target's role, if the actor ranks above it."""
        target = await self.role_of(space_id, user_id)
        if _RANK[target] >= _RANK[actor.role]:
            raise Forbidden(f"a {actor.role} cannot act on a {target}", code="outranked")
        return target


def _told(notice: Notice) -> dict[str, object]:
    """A statement as the person reads it: who decided stays with the moderators."""
    told = asdict(notice)
    del told["actor_id"]
    return told

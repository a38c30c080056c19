"""The listener path: join through the waiting room, heartbeats, reactions, state document.

Everything here is O(1) per request and writes nothing to SQL: the space and its stage are
read through a short per-worker cache, bans, presence, tallies and the waiting room live
on the bus.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from majlis.bus.base import Bus
from majlis.clock import Clock
from majlis.errors import BadRequest, Conflict, Forbidden, RateLimited, Unauthorized
from majlis.services.admission import AdmissionControl
from majlis.services.auth import Caller
from majlis.services.cache import TtlCache
from majlis.services.roles import ban_key, invite_key
from majlis.services.spaces import Spaces
from majlis.services.tokens import TokenService
from majlis.signing import PLAYBACK
from majlis.store.base import Store
from majlis.types import (
    LEVEL_PREFIX,
    CaptionsReason,
    CaptionsState,
    Language,
    Space,
    SpaceState,
    User,
    caption_lines_key,
    level_key,
)

__all__ = [
    "REACTIONS",
    "Admitted",
    "ListenerList",
    "ListenerPolicy",
    "Listeners",
    "Queued",
    "reactions_key",
]

REACTIONS = ("👏", "❤️", "😂", "🔥", "💯", "🙏", "👍", "😮")
TICKET_TTL = 3600.0


@dataclass(frozen=True, slots=True)
class ListenerPolicy:
    playback_ttl: float
    presence_window: float
    reaction_rate: float
    reaction_burst: int
    media_url: str  # the edge's URL, or the server's own
    edge_stream: bool = False  # the edge serves listener streams (majlis edge does)
    # The space languages the caption model transcribes ("auto" among them); empty: the
    # server has no caption model.
    caption_languages: frozenset[Language] = frozenset()


@dataclass(frozen=True, slots=True)
class CaptionsStatus:
    """A space's live captions as its state document says; a reason when unavailable."""

    state: CaptionsState
    reason: CaptionsReason | None = None


@dataclass(frozen=True, slots=True)
class Admitted:
    playback_token: str
    playback_url: str
    expires_at: float
    role: str
    invited: bool = False
    state_url: str = ""
    stream_url: str = ""  # the listener stream on the edge; "" without an edge


@dataclass(frozen=True, slots=True)
class Queued:
    ticket: str
    position: int
    estimated_wait_ms: int


@dataclass(frozen=True, slots=True)
class ListenerList:
    """Who listens, as a host sees it: the signed-in listeners by name (the most recently
    seen LISTED of them), and how many listen without an account."""

    count: int  # everyone listening, the stage not included
    users: list[User]
    anonymous: int | None  # None: too large an audience to split (more than SCANNED)
    more: bool  # more signed-in listeners than listed


# Named listeners a host is shown at most: a list to read, not an export.
LISTED = 200
# Members read off the bus at most to split an audience into named and anonymous.
SCANNED = 10_000


class Listeners:
    def __init__(
        self,
        store: Store,
        bus: Bus,
        spaces: Spaces,
        tokens: TokenService,
        clock: Clock,
        policy: ListenerPolicy,
        admission: AdmissionControl,
        state_ttl: float,
    ) -> None:
        self._store = store
        self._bus = bus
        self._spaces = spaces
        self._tokens = tokens
        self._clock = clock
        self._policy = policy
        self._admission = admission
        self._documents: TtlCache[dict[str, object]] = TtlCache(clock, state_ttl)

    async def join(self, caller: Caller, space_id: str, ticket: str | None) -> Admitted | Queued:
        member = caller.require_member()
        space = await self._listenable(space_id, member)
        stage = await self._spaces.stage_cached(space_id)
        on_stage = next((p.role for p in stage if p.user_id == member), None)
        if on_stage is not None:
            return await self._admit(space, member, str(on_stage))
        seq = self._ticket_seq(ticket, space_id, member) if ticket else None
        # The rate this worker can afford now: the configured one while it keeps up, less
        # (and no burst) while its event loop is late, so a storm becomes a line.
        limits = self._admission.limits()
        try:
            answer = await self._bus.admit(
                space_id, seq, limits.rate, limits.burst, self._clock.now()
            )
        except ValueError:
            raise BadRequest("that ticket was never issued", code="invalid_ticket") from None
        if answer.admitted:
            return await self._admit(space, member, "listener")
        ticket_token = self._tokens.sign_compact(
            "ticket", (space_id, str(answer.ticket), member), TICKET_TTL
        )
        wait_ms = int(answer.position / limits.rate * 1000)
        return Queued(ticket_token, answer.position, wait_ms)

    async def heartbeat(self, caller: Caller, space_id: str, playback_token: str) -> Admitted:
        """Keeps the listener counted and hands out a fresh playback token."""
        member = caller.require_member()
        fields = self._tokens.verify_compact(PLAYBACK, playback_token, 2)
        if fields != (space_id, member):
            raise Forbidden("that playback token is for someone else", code="token_mismatch")
        space = await self._listenable(space_id, member)
        return await self._admit(space, member, "listener")

    async def leave(self, caller: Caller, space_id: str) -> None:
        await self._bus.drop_presence(space_id, caller.require_member())

    async def react(self, caller: Caller, space_id: str, emoji: str) -> dict[str, int]:
        member = caller.require_member()
        if emoji not in REACTIONS:
            raise BadRequest(f"reaction must be one of {' '.join(REACTIONS)}", code="bad_reaction")
        await self._listenable(space_id, member)
        policy = self._policy
        wait = await self._bus.hit_rate_limit(
            f"react:{space_id}:{member}",
            policy.reaction_rate,
            policy.reaction_burst,
            self._clock.now(),
        )
        if wait > 0:
            raise RateLimited("too many reactions; slow down", int(wait * 1000) + 1)
        await self._bus.incr_tally(reactions_key(space_id), emoji)
        return await self._bus.get_tally(reactions_key(space_id))

    async def listener_count(self, space_id: str) -> int:
        return await self._bus.count_presence(
            space_id, self._clock.now(), self._policy.presence_window
        )

    async def listener_list(self, caller: Caller, space_id: str) -> ListenerList:
        """For the space's host and co-hosts only: names are not for every listener."""
        user_id = caller.require_user()
        await self._spaces.get_cached(space_id)  # 404 for no such space
        me = await self._store.get_participant(space_id, user_id)
        if me is None or not me.role.can_moderate:
            raise Forbidden("only the host and co-hosts see who is listening", code="not_moderator")
        now, window = self._clock.now(), self._policy.presence_window
        present = await self._bus.count_presence(space_id, now, window)
        # Newest first; stage members are present too, and neither listed nor counted.
        members = await self._bus.list_presence(space_id, now, window, SCANNED)
        stage = {p.user_id for p in await self._store.list_participants(space_id)}
        on_stage = sum(1 for m in members if m in stage)
        named = [m for m in members if not m.startswith("anon:") and m not in stage]
        whole = len(members) >= present
        anonymous = sum(1 for m in members if m.startswith("anon:")) if whole else None
        users = await self._store.get_users(named[:LISTED])
        more = len(named) > LISTED or not whole
        return ListenerList(max(0, present - on_stage), users, anonymous, more)

    async def state(self, space_id: str) -> dict[str, object]:
        """The public state document; built at most once per cache TTL per worker."""
        return await self._documents.get(space_id, lambda: self._build_state(space_id))

    # helpers -----------------------------------------------------------------------------
    async def _listenable(self, space_id: str, member: str) -> Space:
        space = await self._spaces.get_cached(space_id)
        if space.state is SpaceState.SCHEDULED:
            raise Conflict("the space has not started yet", code="not_started")
        if space.state is SpaceState.ENDED:
            raise Conflict("the space has ended; its replay is available", code="ended")
        if await self._bus.get_value(ban_key(space_id, member)):
            raise Forbidden("you are banned from this space", code="banned")
        await self._spaces.require_admitted(space, member)
        return space

    def _ticket_seq(self, ticket: str, space_id: str, member: str) -> int:
        try:
            t_space, t_seq, t_member = self._tokens.verify_compact("ticket", ticket, 3)
        except Unauthorized as exc:
            raise BadRequest(exc.reason, code="invalid_ticket") from None
        if (t_space, t_member) != (space_id, member) or not t_seq.isdigit():
            raise BadRequest("that ticket is for another space or person", code="invalid_ticket")
        return int(t_seq)

    async def _admit(self, space: Space, member: str, role: str) -> Admitted:
        now = self._clock.now()
        if await self._bus.touch_presence(space.id, member, now):
            await self._bus.incr_tally(joins_key(space.id), _JOINS)
        ttl = self._policy.playback_ttl
        token = self._tokens.sign_compact(PLAYBACK, (space.id, member), ttl)
        # The token rides in the path so that every relative URI of the playlist carries it.
        url = f"{self._policy.media_url}/hls/{space.id}/{token}/index.m3u8"
        invited = not member.startswith("anon:") and bool(
            await self._bus.get_value(invite_key(space.id, member))
        )
        state = f"{self._policy.media_url}/api/v1/spaces/{space.id}/state"
        stream = ""
        if self._policy.edge_stream:
            stream = f"{self._policy.media_url}/hls/{space.id}/{token}/stream"
        return Admitted(token, url, now + ttl, role, invited, state, stream)

    async def _build_state(self, space_id: str) -> dict[str, object]:
        space = await self._spaces.get(space_id)
        stage = await self._store.list_participants(space_id)
        levels = await self._bus.get_values(f"{LEVEL_PREFIX}{space_id}:")
        count = await self.listener_count(space_id) if space.state is SpaceState.LIVE else 0
        if count > space.peak_listeners:
            await self._store.raise_peak_listeners(space_id, count)
        speakers = []
        for p in stage:
            level = _parse_level(levels.get(level_key(space_id, p.user_id)))
            speakers.append(
                {
                    "user_id": p.user_id,
                    "username": p.username,
                    "display_name": p.display_name,
                    "role": str(p.role),
                    "muted": p.muted,
                    "speaking": level is not None and level[1] and not p.muted,
                    "level_db": None if level is None else level[0],
                }
            )
        captions = self._captions(space)
        return {
            "space": space_summary(space),
            "speakers": speakers,
            "listener_count": count,
            "peak_listeners": max(count, space.peak_listeners),
            "reactions": await self._bus.get_tally(reactions_key(space_id)),
            "captions": captions.state,
            "captions_reason": captions.reason,
            "caption_lines": await self._caption_lines(space),
            "updated_at": self._clock.now(),
        }

    def _captions(self, space: Space) -> CaptionsStatus:
        """Unavailable wins over the host's switch: turning captions on would not help."""
        languages = self._policy.caption_languages
        if not languages:
            return CaptionsStatus("unavailable", "no_model")
        if space.language not in languages:
            # The node refuses it too (it will not caption Arabic as English).
            return CaptionsStatus("unavailable", "language")
        return CaptionsStatus("on" if space.captions else "off")

    async def _caption_lines(self, space: Space) -> list[dict[str, object]]:
        """The latest live lines the media node published (they expire on the bus)."""
        if space.state is not SpaceState.LIVE or self._captions(space).state != "on":
            return []
        return _parse_lines(await self._bus.get_value(caption_lines_key(space.id)))


def reactions_key(space_id: str) -> str:
    """The bus tally of a space's reactions, by emoji."""
    return f"reactions:{space_id}"


_JOINS = "joins"


def joins_key(space_id: str) -> str:
    """The bus tally of arrivals in a space's audience: members presence did not count
    before. Leaves follow from it and two listener counts (services/audience.py)."""
    return f"joins:{space_id}"


async def joins_so_far(bus: Bus, space_id: str) -> int:
    return (await bus.get_tally(joins_key(space_id))).get(_JOINS, 0)


def _parse_lines(raw: str | None) -> list[dict[str, object]]:
    """Lines as the media node publishes them (types.caption_lines_key); anything else,
    none: a state document never fails over captions."""
    if not raw:
        return []
    try:
        wire = json.loads(raw)
        return [
            {
                "start": float(line["start"]),
                "end": float(line["end"]),
                "text": str(line["text"]),
                "speaker": str(line["speaker"]),
            }
            for line in wire
        ]
    except (ValueError, TypeError, KeyError):
        return []


def _parse_level(raw: str | None) -> tuple[float, bool] | None:
    """Levels are published by the media node as "<dBFS>,<0|1>"."""
    if not raw:
        return None
    db, _, speaking = raw.partition(",")
    try:
        return float(db), speaking == "1"
    except ValueError:
        return None


def space_summary(space: Space) -> dict[str, object]:
    return {
        "id": space.id,
        "title": space.title,
        "description": space.description,
        "state": str(space.state),
        "visibility": str(space.visibility),
        "host_id": space.host_id,
        "host_username": space.host_username,
        "created_at": space.created_at,
        "scheduled_for": space.scheduled_for,
        "started_at": space.started_at,
        "ended_at": space.ended_at,
        "peak_listeners": space.peak_listeners,
        "language": space.language,
        "captions": space.captions,
        "recording": space.recording,
    }

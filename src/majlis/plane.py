"""The contract between the control plane and the media plane.

The control plane tells a media node what to do with typed commands (carried on the bus,
or over a node's HTTP API) and hands it speakers' offers. Everything that runs spaces
satisfies `MediaPlane`: the node in a thread of the server (`media.node.MediaNode`), the
node in a child process (`media.process.MediaProcess`) and a node on another machine
(`cluster.remote.RemoteMedia`). The control plane sees only this module.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from majlis.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    MajlisError,
    NotFound,
    Overloaded,
    RateLimited,
)
from majlis.types import LANGUAGES, BusMessage, Language, TranscriptLine

__all__ = [
    "BEHIND_MS",
    "NODE_KEY_HEADER",
    "Capacity",
    "Captions",
    "CaptionsSink",
    "ClipAudio",
    "CloseSpace",
    "Disconnect",
    "EndSpace",
    "HandOver",
    "Levels",
    "LevelsSink",
    "MediaCommand",
    "MediaPlane",
    "NodeInfo",
    "NodeLoad",
    "Recordings",
    "ReplayTranscriber",
    "Resume",
    "Room",
    "Sample",
    "SetCaptions",
    "SetMuted",
    "StandBy",
    "StartSpace",
    "UnknownCommand",
    "choose_node",
    "decode_command",
    "decode_error",
    "encode_command",
    "encode_error",
    "follow_commands",
    "handover_delays_key",
    "node_alive_channel",
    "node_key",
    "space_lease",
]

log = logging.getLogger(__name__)

# user id -> (level in dBFS, speaking now); a node reports them about 5 times a second.
Levels = dict[str, tuple[float, bool]]
LevelsSink = Callable[[str, Levels], None]
# A space's latest live caption lines (times on the wall clock), newest last, whenever a
# line is added.
CaptionsSink = Callable[[str, list[TranscriptLine]], None]
# Restarts the spaces that are live; a plane runs it whenever its media starts afresh.
Resume = Callable[[], Awaitable[None]]
# (name, labels, value) for /metrics.
Sample = tuple[str, dict[str, str], float]


@dataclass(frozen=True, slots=True)
class Room:
    """How many live spaces the media plane takes in all, now: a node that is full is not
    asked to start one more, it would fall behind on every space it runs (it mixes and
    encodes each in real time on one core). `behind`: fewer than it was built for,
    because some node's mixers run late."""

    spaces: int
    behind: bool = False


Capacity = Callable[[], Awaitable[Room]]


@dataclass(frozen=True, slots=True)
class Captions:
    """A space's live captions settings: on or off (its host's switch), and the language
    spoken ("auto": the model detects it)."""

    on: bool = True
    language: Language = "auto"


@dataclass(frozen=True, slots=True)
class StartSpace:
    """Run the space's media (idempotent); `started_at` anchors its recording's clock.
    `captions`, when the sender knows them, are applied before the recording opens (and
    to a space already running): whoever publishes a start, the control plane or a node
    handing the space over, carries the host's choice with it. None: the node keeps what
    it was told last, or captions on with the language detected."""

    space_id: str
    started_at: float
    captions: Captions | None = None


@dataclass(frozen=True, slots=True)
class EndSpace:
    """Stop the space's media for good and finish its replay; with `keep` False (the host
    turned recording off) delete what was recorded instead, wherever it is kept."""

    space_id: str
    keep: bool = True


@dataclass(frozen=True, slots=True)
class SetMuted:
    space_id: str
    user_id: str
    muted: bool


@dataclass(frozen=True, slots=True)
class CloseSpace:
    """Stop running the space here without ending it: another node takes it over (a
    lost lease, a drain), and its recording continues there."""

    space_id: str


@dataclass(frozen=True, slots=True)
class HandOver:
    """Close the space here once its speakers have moved to the node taking it over (a
    drain): they connect there before they leave here, so no audio falls between the two
    recordings' lives. Speakers that cannot be asked, or do not move in time, are cut."""

    space_id: str


@dataclass(frozen=True, slots=True)
class StandBy:
    """Run the space's mix and take its speakers' offers, but leave its recording alone:
    the node handing the space over still writes it. A StartSpace opens the recording
    here, after that node has closed it.

    `delays`: how far behind the live speakers that node plays each speaker (seconds, its
    jitter buffers' depth). Their buffers here start as deep, so that the two recordings
    meet at the same moment of what was said; a buffer that started shallower would skip
    the difference at the seam (a busy node's buffers run deep)."""

    space_id: str
    started_at: float
    delays: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SetCaptions:
    """A space's live captions settings, changed by its host while it runs (every start
    carries them too: `StartSpace.captions`)."""

    space_id: str
    on: bool
    language: Language = "auto"

    @property
    def captions(self) -> Captions:
        return Captions(self.on, self.language)


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Close a speaker's connection (demoted, removed, left)."""

    space_id: str
    user_id: str


MediaCommand = (
    StartSpace | EndSpace | CloseSpace | HandOver | StandBy | SetMuted | SetCaptions | Disconnect
)


class UnknownCommand(ValueError):
    """A message on the media channel that is no command of this version."""


def encode_command(command: MediaCommand) -> BusMessage:
    match command:
        case StartSpace(space_id, started_at, captions):
            start: BusMessage = {"cmd": "start", "space_id": space_id, "started_at": started_at}
            if captions is not None:
                start["captions"] = {"on": captions.on, "language": captions.language}
            return start
        case EndSpace(space_id, keep):
            end: BusMessage = {"cmd": "end", "space_id": space_id}
            if not keep:
                end["keep"] = False  # absent means kept: what older control planes send
            return end
        case CloseSpace(space_id):
            return {"cmd": "close", "space_id": space_id}
        case HandOver(space_id):
            return {"cmd": "handover", "space_id": space_id}
        case StandBy(space_id, started_at, delays):
            standby: BusMessage = {"cmd": "standby", "space_id": space_id, "started_at": started_at}
            if delays:
                standby["delays"] = dict(delays)
            return standby
        case SetMuted(space_id, user_id, muted):
            kind = "mute" if muted else "unmute"
            return {"cmd": kind, "space_id": space_id, "user_id": user_id}
        case SetCaptions(space_id, on, language):
            return {"cmd": "captions", "space_id": space_id, "on": on, "language": language}
        case Disconnect(space_id, user_id):
            return {"cmd": "disconnect", "space_id": space_id, "user_id": user_id}


def decode_command(message: BusMessage) -> MediaCommand:
    """The command a message carries; UnknownCommand for anything else, so a node never
    silently ignores what a newer control plane asks of it."""
    kind = message.get("cmd")
    space_id = _text(message, "space_id")
    if kind == "start":
        wire = message.get("captions")
        captions = None if wire is None else _captions(wire, message)
        return StartSpace(space_id, _started_at(message), captions)
    if kind == "standby":
        return StandBy(space_id, _started_at(message), _delays(message))
    if kind == "end":
        keep = message.get("keep", True)
        if not isinstance(keep, bool):
            raise UnknownCommand(f"end with a keep that is no boolean: {message!r}")
        return EndSpace(space_id, keep)
    if kind == "close":
        return CloseSpace(space_id)
    if kind == "handover":
        return HandOver(space_id)
    if kind in ("mute", "unmute"):
        return SetMuted(space_id, _text(message, "user_id"), kind == "mute")
    if kind == "captions":
        settings = _captions(message, message)
        return SetCaptions(space_id, settings.on, settings.language)
    if kind == "disconnect":
        return Disconnect(space_id, _text(message, "user_id"))
    raise UnknownCommand(f"unknown media command {kind!r}")


async def follow_commands(
    messages: AsyncIterable[BusMessage], act: Callable[[MediaCommand], Awaitable[None]]
) -> None:
    """Act on each command in order, as the bus delivers them (an end must not overtake
    its start). One that fails, or that this version does not know, is logged and the
    next one is taken: a node never stops following."""
    async for message in messages:
        try:
            await act(decode_command(message))
        except UnknownCommand:
            log.exception("a media command this version does not know")
        except Exception:
            log.exception("media command %r failed", message)


def _captions(wire: object, message: BusMessage) -> Captions:
    on = wire.get("on") if isinstance(wire, dict) else None
    spoken = wire.get("language") if isinstance(wire, dict) else None
    language = next((known for known in LANGUAGES if known == spoken), None)
    if not isinstance(on, bool) or language is None:
        raise UnknownCommand(f"captions without on or a known language: {message!r}")
    return Captions(on, language)


def _started_at(message: BusMessage) -> float:
    started_at = message.get("started_at")
    if not isinstance(started_at, int | float) or isinstance(started_at, bool):
        raise UnknownCommand(f"{message.get('cmd')} without a numeric started_at: {message!r}")
    return float(started_at)


def _delays(message: BusMessage) -> dict[str, float]:
    wire = message.get("delays", {})
    if not isinstance(wire, dict) or not all(
        isinstance(user, str)
        and isinstance(seconds, int | float)
        and not isinstance(seconds, bool)
        and math.isfinite(seconds)
        and seconds >= 0
        for user, seconds in wire.items()
    ):
        raise UnknownCommand(f"standby with delays that are not seconds per user: {message!r}")
    return {user: float(seconds) for user, seconds in wire.items()}


def _text(message: BusMessage, field: str) -> str:
    value = message.get(field)
    if not isinstance(value, str) or not value:
        raise UnknownCommand(f"media command without {field}: {message!r}")
    return value


_ERRORS: tuple[type[MajlisError], ...] = (BadRequest, Conflict, Forbidden, NotFound)


def encode_error(error: BaseException) -> BusMessage:
    """What a failure looks like between the planes (a worker's channel, a node's API);
    anything unexpected is a 500 that names nothing inside."""
    if isinstance(error, MajlisError):
        wire: BusMessage = {"status": error.status, "code": error.code, "reason": error.reason}
        retry = getattr(error, "retry_after_ms", None)
        if retry is not None:
            wire["retry_after_ms"] = retry
        return wire
    return {"status": 500, "code": "internal", "reason": "the media node failed"}


def decode_error(wire: BusMessage) -> MajlisError:
    raw_status = wire.get("status")
    status = raw_status if isinstance(raw_status, int) and 400 <= raw_status < 600 else 500
    code = str(wire.get("code", "internal"))
    reason = str(wire.get("reason", "the media node failed"))
    retry = wire.get("retry_after_ms")
    if isinstance(retry, int):
        limited = (Overloaded if status == 503 else RateLimited)(reason, retry)
        limited.code = code
        return limited
    for cls in _ERRORS:
        if cls.status == status:
            return cls(reason, code=code)
    error = MajlisError(reason, code=code)
    error.status = status
    return error


# A node whose mixer ticks start this late lately (mixing/mixer.py, recent_lateness) is
# behind: every speaker and listener of its spaces hears it. It takes no more spaces.
BEHIND_MS = 20.0


@dataclass(frozen=True, slots=True)
class NodeLoad:
    """How much a media plane runs, and how well it keeps up, measured now."""

    spaces: int  # spaces it records
    late_ms: float  # its worst space's recent tick lateness (mixer.recent_lateness)

    @property
    def behind(self) -> bool:
        return self.late_ms >= BEHIND_MS

    def room(self, capacity: int) -> Room:
        """What a node built for `capacity` spaces takes now: while behind, only those
        it runs already."""
        if self.behind:
            return Room(min(capacity, self.spaces), behind=True)
        return Room(capacity)


class MediaPlane(Protocol):
    """What runs spaces' media, wherever it runs."""

    on_levels: LevelsSink | None
    on_captions: CaptionsSink | None

    async def start(self, resume: Resume | None = None) -> None:
        """Begin; `resume` restarts the live spaces now and after any restart of the
        media underneath (a worker respawned, a node replaced)."""
        ...

    async def stop(self) -> None:
        """Close every space's recording without ending it: it resumes at next start."""
        ...

    async def handle(self, command: MediaCommand) -> None: ...

    async def offer(
        self, space_id: str, user_id: str, sdp: str, muted: bool, started_at: float
    ) -> str:
        """The SDP answer; BadRequest for an offer the node cannot use. Starts the
        space's media if it is not running yet (its StartSpace may still be on its way)."""
        ...

    async def metrics(self) -> list[Sample]: ...

    async def load(self) -> NodeLoad: ...

    async def playout_delays(self, space_id: str) -> dict[str, float]:
        """Seconds each speaker of the space is played behind the live speaker here (what
        a StandBy elsewhere starts from); empty for a space not run here."""
        ...


# The cluster: nodes announce themselves on the bus and hold a lease on each space they
# run. Both planes read these keys, so they are named here and nowhere else.
NODE_PREFIX = "node:"
NODE_KEY_HEADER = "X-Majlis-Node-Key"  # control plane -> node requests carry the node key


class Recordings(Protocol):
    """Where a space's recording is kept, as the control plane deletes a replay."""

    async def delete(self, space_id: str) -> bool:
        """Delete every file and object of the space's recording; True if there were any.
        Overloaded when the storage does not answer."""
        ...


class ClipAudio(Protocol):
    """A space's recording as the control plane sees it for clips: how much of it there
    is, and a range of it as an .m4a. Positions are seconds on the replay's clock."""

    async def recorded(self, space_id: str) -> float:
        """Seconds recorded so far (for a live space, up to its last finished segment);
        0.0 when there is no recording."""
        ...

    async def cut(self, space_id: str, start: float, duration: float) -> bytes:
        """AAC in a classic MP4, cut without re-encoding. BadRequest for a range outside
        the recording, NotFound when there is none."""
        ...


class ReplayTranscriber(Protocol):
    """An ended space's replay as transcript lines: speech to text, done by the media side
    (it owns the audio and the speech model), asked for by the control plane's job runner."""

    async def transcribe(self, space_id: str, language: Language) -> list[TranscriptLine]:
        """The replay's lines in order, times on the replay's clock ("auto": the model
        detects the language). Slow (a fair share of the replay's length) but never on the
        caller's event loop; one at a time per process. NotFound (code `no_replay`) while
        there is no replay yet: it is built after the space ends. Anything else raised is
        a failure, its message the reason."""
        ...


def node_key(node_id: str) -> str:
    return f"{NODE_PREFIX}{node_id}"


def node_alive_channel(node_id: str) -> str:
    """A channel a node subscribes to for as long as it lives: when the process dies its
    bus connection closes and the subscription with it, long before its leases expire."""
    return f"node-alive:{node_id}"


def space_lease(space_id: str) -> str:
    """The lease naming the one node that runs a space."""
    return f"space-node:{space_id}"


def handover_delays_key(space_id: str) -> str:
    """Where a draining node leaves the StandBy (with its playout delays) for a space
    that the node its speakers move to should run."""
    return f"handover-delays:{space_id}"


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What a node announces (refreshed well within its lease)."""

    node_id: str
    url: str  # where control-plane workers reach its node API and origin
    capacity: int  # spaces it takes
    spaces: int  # spaces it runs now
    draining: bool = False
    late_ms: float = 0.0  # NodeLoad.late_ms

    @property
    def behind(self) -> bool:
        return self.late_ms >= BEHIND_MS

    @property
    def room(self) -> int:
        """Spaces it would take now: none while draining, and none more while behind."""
        if self.draining:
            return 0
        return NodeLoad(self.spaces, self.late_ms).room(self.capacity).spaces

    def to_json(self) -> str:
        return json.dumps(
            {
                "node_id": self.node_id,
                "url": self.url,
                "capacity": self.capacity,
                "spaces": self.spaces,
                "draining": self.draining,
                "late_ms": round(self.late_ms, 1),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> NodeInfo | None:
        """None for anything that is not a node's announcement (never raises)."""
        try:
            raw = json.loads(text)
            info = cls(
                str(raw["node_id"]),
                str(raw["url"]),
                int(raw["capacity"]),
                int(raw["spaces"]),
                bool(raw.get("draining", False)),
                float(raw.get("late_ms", 0.0)),
            )
        except (ValueError, KeyError, TypeError):
            return None
        return info


def choose_node(nodes: list[NodeInfo], space_id: str) -> NodeInfo | None:
    """The node a space goes to: the least loaded one that is not draining, among those
    with room if any has (a node that is behind has none). Ties (say 20 spaces started in
    the same second, every node reading the same loads) are broken by rendezvous hashing
    on the space, so they spread instead of piling onto one node; every reader of the
    same announcements picks the same.

    When every node is full the space still goes to the least loaded: new spaces are
    refused before they get here (services/spaces.py), so this is a space that was live
    on a node that died, and a node running one space too many beats a silent space."""
    candidates = [n for n in nodes if not n.draining]
    with_room = [n for n in candidates if n.spaces < n.room]

    def rank(node: NodeInfo) -> tuple[float, str]:
        tie = hashlib.sha256(f"{space_id}/{node.node_id}".encode()).hexdigest()
        return (node.spaces / node.capacity, tie)

    return min(with_room or candidates, key=rank, default=None)

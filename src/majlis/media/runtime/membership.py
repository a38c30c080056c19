"""A media node's place in a cluster (scaled mode, a shared bus).

The node announces itself on the bus (`NodeInfo` under `node:{id}`, refreshed well within
its lease) and runs a space only while it holds that space's lease. Placement needs no
coordinator: every node hears each StartSpace, reads the same announcements and computes
the same `choose_node`; the chosen one takes the lease (atomic on the bus, so a second
claimant loses) and starts the space. A node that cannot renew a lease, because another
took it or because it cannot reach the bus for most of a lease, closes that space at
once: two nodes never write one recording for longer than a lease. Spaces whose node
died are started again by the control plane's reconciler: at once when the node's
liveness subscription vanishes (a killed process), or when their leases expire.

A drain hands spaces over make-before-break. The draining node announces it, so the
control plane sends new offers for its spaces to the node `choose_node` picks among the
others; that node takes them on standby (mixing, hearing speakers, not recording: the
lease and the recording are still the draining node's). The draining node asks its
speakers to move (media/rtc/control.py), closes each recording once they have, releases
the lease and publishes StartSpace; the standby node claims the lease and opens the
recording where the other closed it. That StartSpace carries the space's captions
settings as this node last heard them, so the node taking over keeps the host's switch and
the space's language; a SetCaptions heard while on standby is newer than those (the
draining node stopped following commands before it handed over) and wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from majlis.bus.base import Bus, Subscription
from majlis.clock import Clock
from majlis.errors import Conflict, Overloaded
from majlis.plane import (
    NODE_PREFIX,
    Captions,
    CaptionsSink,
    CloseSpace,
    EndSpace,
    HandOver,
    Levels,
    LevelsSink,
    MediaCommand,
    MediaPlane,
    NodeInfo,
    SetCaptions,
    StandBy,
    StartSpace,
    choose_node,
    decode_command,
    encode_command,
    follow_commands,
    handover_delays_key,
    node_alive_channel,
    node_key,
    space_lease,
)
from majlis.types import (
    CAPTION_LINES_TTL,
    MEDIA_CHANNEL,
    TranscriptLine,
    caption_lines_key,
    level_key,
)

__all__ = ["Membership", "publish_captions", "publish_levels"]

log = logging.getLogger(__name__)

RETRY_AFTER_MS = 250
# A space on standby whose handover never comes (its node died draining) is closed after
# this long; its speakers then offer again, to whichever node runs it by then.
STANDBY_PATIENCE = 15.0


class Membership:
    def __init__(
        self, plane: MediaPlane, bus: Bus, clock: Clock, me: NodeInfo, lease_s: float
    ) -> None:
        self._plane = plane
        self._bus = bus
        self._clock = clock
        self._me = me
        self._lease_s = lease_s
        self._mine: dict[str, float] = {}  # spaces held: id -> started_at
        # spaces taken on standby from a draining node: id -> when to give up on it
        self._standby: dict[str, float] = {}
        # the captions settings last heard for a space held or on standby: passed on with
        # every start of it here (a worker respawned) and with its handover
        self._captions: dict[str, Captions] = {}
        self._draining = False
        self._last_renewal = clock.now()
        self._tasks: list[asyncio.Task[None]] = []
        self._commands: Subscription | None = None
        self._alive: Subscription | None = None

    @property
    def node_id(self) -> str:
        return self._me.node_id

    def spaces(self) -> list[str]:
        return sorted(self._mine)

    # lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Announce the node, then follow commands and hold leases. The plane must be
        started; its `resume` should call `resume()` below."""
        await self._announce()
        self._alive = await self._bus.subscribe(node_alive_channel(self.node_id))
        self._commands = await self._bus.subscribe(MEDIA_CHANNEL)
        self._tasks = [
            asyncio.create_task(follow_commands(self._commands, self._on)),
            asyncio.create_task(self._hold()),
        ]

    async def resume(self) -> None:
        """Start again every space this node holds (its media worker restarted)."""
        for space_id, started_at in list(self._mine.items()):
            await self._plane.handle(StartSpace(space_id, started_at, self._captions.get(space_id)))

    async def stop(self) -> None:
        """Drain: say so (no node chooses this one any more, and speakers' offers go to
        the node taking over), hand every space held over (its speakers moved, then its
        recording closed, not ended), let go of its lease and ask for it to be placed
        again at once, rather than at the reconciler's next round."""
        self._draining = True
        with contextlib.suppress(Exception):
            await self._announce()
        for task in self._tasks:
            task.cancel()
        if self._commands is not None:
            await self._commands.close()
        held = list(self._mine.items())
        await asyncio.gather(*(self._hand_over(space_id, at) for space_id, at in held))
        with contextlib.suppress(Exception):
            await self._bus.delete_value(node_key(self.node_id))
        if self._alive is not None:
            await self._alive.close()

    # offers ------------------------------------------------------------------------------
    async def offer(
        self, space_id: str, user_id: str, sdp: str, muted: bool, started_at: float
    ) -> str:
        """A speaker's offer, sent here by a control-plane worker: taken if this node
        runs the space or can claim it; Conflict `elsewhere` if another node holds it."""
        if self._draining:
            # The speaker is a moment early: the space is on its way to another node.
            raise Overloaded("this media node is handing its spaces over", RETRY_AFTER_MS)
        held = space_id in self._mine or space_id in self._standby
        if not held and not await self._claim(space_id, started_at):
            if not await self._held_by_draining_node(space_id):
                raise Conflict("another media node runs this space", code="elsewhere")
            await self._stand_by(space_id, started_at)
        return await self._plane.offer(space_id, user_id, sdp, muted, started_at)

    async def _held_by_draining_node(self, space_id: str) -> bool:
        owner = await self._bus.lease_owner(space_lease(space_id), self._clock.now())
        text = None if owner is None else await self._bus.get_value(node_key(owner))
        info = None if text is None else NodeInfo.from_json(text)
        return info is not None and info.draining

    async def _stand_by(self, space_id: str, started_at: float) -> None:
        if space_id in self._standby:
            return
        log.info("space %s: on standby on node %s for a handover", space_id, self.node_id)
        delays = await self._handover_delays(space_id)
        await self._plane.handle(StandBy(space_id, started_at, delays))
        self._standby[space_id] = self._clock.now() + STANDBY_PATIENCE

    async def _handover_delays(self, space_id: str) -> dict[str, float]:
        """What the draining node left for this space (empty if nothing, or unreadable:
        the buffers then start at their usual depth, which only costs the seam)."""
        with contextlib.suppress(Exception):
            text = await self._bus.get_value(handover_delays_key(space_id))
            command = None if text is None else decode_command(json.loads(text))
            if isinstance(command, StandBy) and command.space_id == space_id:
                return command.delays
        return {}

    async def _give_up_standbys(self) -> None:
        now = self._clock.now()
        for space_id, deadline in list(self._standby.items()):
            if deadline <= now:
                log.warning("space %s: the handover never came; standby closed", space_id)
                del self._standby[space_id]
                self._captions.pop(space_id, None)
                await self._plane.handle(CloseSpace(space_id))

    async def _hand_over(self, space_id: str, started_at: float) -> None:
        """Move the speakers, close the recording, release the lease, and place the
        space again (on the node its speakers moved to, which holds it on standby)."""
        self._mine.pop(space_id, None)
        captions = self._captions.pop(space_id, None)
        try:
            await self._leave_delays(space_id, started_at)
            await self._plane.handle(HandOver(space_id))
        except Exception:
            log.exception("space %s: the handover failed; closing", space_id)
            with contextlib.suppress(Exception):
                await self._plane.handle(CloseSpace(space_id))
        finally:
            await self._release(space_id)
        with contextlib.suppress(Exception):
            start = StartSpace(space_id, started_at, captions)
            await self._bus.publish(MEDIA_CHANNEL, encode_command(start))

    async def _leave_delays(self, space_id: str, started_at: float) -> None:
        """Before the speakers are asked to move: the StandBy the node they move to should
        run, with this node's playout delays; it reads it at their first offer there. A
        bus that fails here costs the seam a few tens of ms, not the handover."""
        try:
            delays = await self._plane.playout_delays(space_id)
            if delays:
                text = json.dumps(encode_command(StandBy(space_id, started_at, delays)))
                await self._bus.set_value(handover_delays_key(space_id), text, STANDBY_PATIENCE)
        except Exception:
            log.exception("space %s: its playout delays could not be left", space_id)

    # commands ----------------------------------------------------------------------------
    async def _on(self, command: MediaCommand) -> None:
        match command:
            case StartSpace():
                await self._on_start(command)
            case EndSpace(space_id):
                if space_id in self._mine:
                    await self._plane.handle(command)
                    self._mine.pop(space_id, None)
                    await self._release(space_id)
                elif await self._orphan_of_mine(space_id):
                    # Nobody runs it (its node died as it ended): close its recording here.
                    await self._plane.handle(command)
            case CloseSpace(space_id):
                if space_id in self._mine:
                    await self._let_go(space_id)
            case SetCaptions(space_id):
                # Also on standby: the node remembers them for when the recording opens.
                if space_id in self._mine or space_id in self._standby:
                    self._captions[space_id] = command.captions
                    await self._plane.handle(command)
            case _:
                if command.space_id in self._mine:
                    await self._plane.handle(command)

    async def _on_start(self, start: StartSpace) -> None:
        space_id, started_at = start.space_id, start.started_at
        standby = space_id in self._standby
        ours = space_id in self._mine or standby or await self._chosen(space_id)
        if ours and await self._claim(space_id, started_at):
            self._standby.pop(space_id, None)
            heard = self._captions.get(space_id)
            captions = heard if standby and heard is not None else start.captions or heard
            if captions is not None:
                self._captions[space_id] = captions
            await self._plane.handle(StartSpace(space_id, started_at, captions))
        elif standby and not await self._held_by_draining_node(space_id):
            # Another node claimed it first: its speakers move there when this closes.
            del self._standby[space_id]
            self._captions.pop(space_id, None)
            await self._plane.handle(CloseSpace(space_id))

    async def _chosen(self, space_id: str) -> bool:
        if self._draining:
            return False
        chosen = choose_node(await self._nodes(), space_id)
        return chosen is not None and chosen.node_id == self.node_id

    async def _orphan_of_mine(self, space_id: str) -> bool:
        owner = await self._bus.lease_owner(space_lease(space_id), self._clock.now())
        return owner is None and await self._chosen(space_id)

    async def _nodes(self) -> list[NodeInfo]:
        found = await self._bus.get_values(NODE_PREFIX)
        nodes = [info for text in found.values() if (info := NodeInfo.from_json(text))]
        if any(n.node_id == self.node_id for n in nodes):
            return nodes
        return [*nodes, self._info((await self._plane.load()).late_ms)]

    # leases ------------------------------------------------------------------------------
    async def _claim(self, space_id: str, started_at: float) -> bool:
        if self._draining:
            return False
        name, now = space_lease(space_id), self._clock.now()
        if not await self._bus.acquire_lease(name, self.node_id, self._lease_s, now):
            return False
        if space_id not in self._mine:
            log.info("space %s: placed on node %s", space_id, self.node_id)
        self._mine[space_id] = started_at
        return True

    async def _release(self, space_id: str) -> None:
        self._captions.pop(space_id, None)
        with contextlib.suppress(Exception):
            await self._bus.release_lease(space_lease(space_id), self.node_id)

    async def _let_go(self, space_id: str) -> None:
        self._mine.pop(space_id, None)
        try:
            await self._plane.handle(CloseSpace(space_id))
        finally:
            await self._release(space_id)

    async def _hold(self) -> None:
        """Renew the announcement and every lease three times a lease; let go of what
        cannot be renewed."""
        while True:
            await asyncio.sleep(self._lease_s / 3)
            try:
                await self.renew()
                self._last_renewal = self._clock.now()
            except Exception:
                log.exception("node %s cannot reach the bus", self.node_id)
                if self._clock.now() - self._last_renewal > self._lease_s * 0.8:
                    # The lease may be gone by now: another node may be writing.
                    for space_id in list(self._mine):
                        log.error("space %s: closed, its lease may have expired", space_id)
                        self._mine.pop(space_id, None)
                        await self._plane.handle(CloseSpace(space_id))

    async def renew(self) -> None:
        """Renew every lease the node holds and announce it again; close what it lost,
        and the standbys whose handover never came. The announcement last: it waits for
        the plane's measure of its load, and the leases must not."""
        await self._give_up_standbys()
        now = self._clock.now()
        for space_id in list(self._mine):
            held = await self._bus.acquire_lease(
                space_lease(space_id), self.node_id, self._lease_s, now
            )
            if not held and space_id in self._mine:
                log.error("space %s: its lease went to another node; closing", space_id)
                self._mine.pop(space_id, None)
                await self._plane.handle(CloseSpace(space_id))
        await self._announce()

    async def _announce(self) -> None:
        info = self._info((await self._plane.load()).late_ms)
        await self._bus.set_value(node_key(self.node_id), info.to_json(), self._lease_s)

    def _info(self, late_ms: float) -> NodeInfo:
        me = self._me
        return NodeInfo(me.node_id, me.url, me.capacity, len(self._mine), self._draining, late_ms)


def publish_levels(bus: Bus, loop: asyncio.AbstractEventLoop) -> LevelsSink:
    """Speaking levels to the bus, where the control plane's state document reads them.
    They arrive on the media loop (or the worker channel's); the bus belongs to `loop`."""

    def publish(space_id: str, levels: Levels) -> None:
        for user_id, (db, speaking) in levels.items():
            value = f"{db:.1f},{1 if speaking else 0}"
            asyncio.run_coroutine_threadsafe(
                bus.set_value(level_key(space_id, user_id), value, 2.0), loop
            )

    return publish


def publish_captions(bus: Bus, loop: asyncio.AbstractEventLoop) -> CaptionsSink:
    """A space's latest caption lines to the bus, where the state document reads them.
    They arrive on a captioner's thread (or the worker channel's loop)."""

    def publish(space_id: str, lines: list[TranscriptLine]) -> None:
        value = json.dumps(
            [
                {"start": line.start, "end": line.end, "text": line.text, "speaker": line.speaker}
                for line in lines
            ]
        )
        asyncio.run_coroutine_threadsafe(
            bus.set_value(caption_lines_key(space_id), value, CAPTION_LINES_TTL), loop
        )

    return publish

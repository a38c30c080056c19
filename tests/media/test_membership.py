"""A node's place in a cluster, with two nodes on one in-process bus and a fake clock:
every space runs on exactly one node, new spaces spread over both, a node that loses a
lease stops writing that space, and a draining node lets go of everything."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from majlis.bus.memory import MemoryBus
from majlis.clock import FakeClock
from majlis.errors import Conflict, Overloaded
from majlis.media.runtime.membership import STANDBY_PATIENCE, Membership
from majlis.plane import (
    Captions,
    CloseSpace,
    EndSpace,
    HandOver,
    LevelsSink,
    MediaCommand,
    NodeInfo,
    NodeLoad,
    Resume,
    Sample,
    SetCaptions,
    StandBy,
    StartSpace,
    encode_command,
    space_lease,
)
from majlis.types import MEDIA_CHANNEL

LEASE = 3.0


class RecordingPlane:
    """A MediaPlane that only remembers what it was told."""

    on_levels: LevelsSink | None = None

    def __init__(self) -> None:
        self.commands: list[MediaCommand] = []
        self.offers: list[str] = []
        self.moving = asyncio.Event()  # a HandOver is under way
        self.moved = asyncio.Event()  # ...and may finish
        self.moved.set()
        self.late_ms = 0.0  # what load() says
        self.delays: dict[str, float] = {}  # what playout_delays() says

    async def start(self, resume: Resume | None = None) -> None: ...

    async def stop(self) -> None: ...

    async def handle(self, command: MediaCommand) -> None:
        self.commands.append(command)
        if isinstance(command, HandOver):
            self.moving.set()
            await self.moved.wait()

    async def offer(
        self, space_id: str, user_id: str, sdp: str, muted: bool, started_at: float
    ) -> str:
        self.offers.append(space_id)
        return "answer"

    async def metrics(self) -> list[Sample]:
        return []

    async def load(self) -> NodeLoad:
        return NodeLoad(len(self.running()), self.late_ms)

    async def playout_delays(self, space_id: str) -> dict[str, float]:
        return dict(self.delays)

    def running(self) -> set[str]:
        spaces: set[str] = set()
        for command in self.commands:
            if isinstance(command, StartSpace):
                spaces.add(command.space_id)
            elif isinstance(command, EndSpace | CloseSpace | HandOver):
                spaces.discard(command.space_id)
        return spaces


Nodes = tuple[MemoryBus, FakeClock, list[tuple[Membership, RecordingPlane]]]


@pytest.fixture
async def nodes() -> AsyncIterator[Nodes]:
    bus, clock = MemoryBus(), FakeClock()
    await bus.open()
    members = []
    for name in ("node-a", "node-b"):
        plane = RecordingPlane()
        me = NodeInfo(name, f"http://{name}", capacity=50, spaces=0)
        membership = Membership(plane, bus, clock, me, LEASE)
        await membership.start()
        members.append((membership, plane))
    yield bus, clock, members
    for membership, _ in members:
        await membership.stop()
    await bus.close()


async def _settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


async def test_every_space_runs_on_one_node_and_they_spread(nodes: Nodes) -> None:
    bus, _, members = nodes
    spaces = [f"space{i:02d}" for i in range(20)]
    for space_id in spaces:
        await bus.publish(MEDIA_CHANNEL, encode_command(StartSpace(space_id, 1.0)))
    await _settle()
    (a, plane_a), (b, plane_b) = members
    assert plane_a.running() | plane_b.running() == set(spaces)
    assert not plane_a.running() & plane_b.running()
    assert set(a.spaces()) == plane_a.running() and set(b.spaces()) == plane_b.running()
    # Started in the same instant, every node reading the same loads: the tie-break
    # spreads them instead of piling them on one node.
    assert min(len(a.spaces()), len(b.spaces())) >= 6, (a.spaces(), b.spaces())


async def test_a_node_that_is_behind_takes_no_new_spaces(nodes: Nodes) -> None:
    bus, _, members = nodes
    (a, plane_a), (b, plane_b) = members
    plane_a.late_ms = 35.0  # its mixers run late: it says so at its next announcement
    await a.renew()
    announced = NodeInfo.from_json(await bus.get_value("node:node-a") or "")
    assert announced is not None and announced.behind and announced.late_ms == 35.0
    spaces = [f"space{i:02d}" for i in range(10)]
    for space_id in spaces:
        await bus.publish(MEDIA_CHANNEL, encode_command(StartSpace(space_id, 1.0)))
    await _settle()
    assert plane_a.running() == set() and plane_b.running() == set(spaces)
    # Caught up: it takes its share again (b now announces ten, the more loaded).
    plane_a.late_ms = 1.0
    await a.renew()
    await b.renew()
    await bus.publish(MEDIA_CHANNEL, encode_command(StartSpace("space10", 1.0)))
    await _settle()
    assert plane_a.running() == {"space10"}


async def test_a_space_held_elsewhere_refuses_offers(nodes: Nodes) -> None:
    bus, clock, members = nodes
    (a, plane_a), (b, plane_b) = members
    assert await a.offer("space1", "u1", "sdp", False, 1.0) == "answer"
    with pytest.raises(Conflict) as refused:
        await b.offer("space1", "u2", "sdp", False, 1.0)
    assert refused.value.code == "elsewhere"
    assert plane_b.offers == [] and plane_a.offers == ["space1"]
    assert await bus.lease_owner(space_lease("space1"), clock.now()) == "node-a"


async def test_a_node_that_lost_its_lease_closes_the_space(nodes: Nodes) -> None:
    _, clock, members = nodes
    (a, plane_a), (b, _) = members
    await a.offer("space1", "u1", "sdp", False, 1.0)
    # node-a stalls past its lease; node-b is given the space meanwhile.
    clock.advance(LEASE + 0.1)
    assert await b.offer("space1", "u1", "sdp", False, 1.0) == "answer"
    await a.renew()
    assert plane_a.commands[-1] == CloseSpace("space1")
    assert a.spaces() == [] and b.spaces() == ["space1"]


async def test_draining_hands_every_space_to_another_node(nodes: Nodes) -> None:
    bus, clock, members = nodes
    (a, plane_a), (_, plane_b) = members
    await a.offer("space1", "u1", "sdp", False, 1.0)
    await a.stop()
    assert plane_a.commands == [HandOver("space1")]
    await _settle()
    # Placed again at once, not at the reconciler's next round, and never on `a`.
    assert plane_b.commands == [StartSpace("space1", 1.0)]
    assert await bus.lease_owner(space_lease("space1"), clock.now()) == "node-b"
    # A speaker who comes back to `a` in the meantime is told to try again soon.
    with pytest.raises(Overloaded):
        await a.offer("space2", "u1", "sdp", False, 1.0)


async def drain_mid_handover(a: Membership, plane_a: RecordingPlane) -> asyncio.Task[None]:
    """`a` runs space1 and starts draining; it stays mid-handover until plane_a.moved."""
    await a.offer("space1", "u1", "sdp", False, 1.0)
    plane_a.moved.clear()
    draining = asyncio.create_task(a.stop())
    await plane_a.moving.wait()
    return draining


async def test_speakers_move_to_a_standby_before_the_draining_node_lets_go(
    nodes: Nodes,
) -> None:
    bus, clock, members = nodes
    (a, plane_a), (b, plane_b) = members
    draining = await drain_mid_handover(a, plane_a)
    # Mid-handover: `a` still holds the lease and writes the recording; the speaker's
    # new offer (sent to `b` by the control plane) puts the space on standby there.
    assert await bus.lease_owner(space_lease("space1"), clock.now()) == "node-a"
    assert await b.offer("space1", "u1", "sdp", False, 1.0) == "answer"
    assert plane_b.commands == [StandBy("space1", 1.0)] and b.spaces() == []
    plane_a.moved.set()
    await draining
    await _settle()
    # Handed over: `b` claims the lease and opens the recording of the space it mixes.
    assert plane_b.commands == [StandBy("space1", 1.0), StartSpace("space1", 1.0)]
    assert b.spaces() == ["space1"]
    assert await bus.lease_owner(space_lease("space1"), clock.now()) == "node-b"


async def test_the_standby_starts_as_deep_as_the_draining_node_plays(nodes: Nodes) -> None:
    """The draining node's jitter buffers ran deep (a busy moment): the node taking over
    starts its buffers as deep, or the recording would skip the difference at the seam."""
    _, _, members = nodes
    (a, plane_a), (b, plane_b) = members
    plane_a.delays = {"u1": 0.18}
    draining = await drain_mid_handover(a, plane_a)
    await b.offer("space1", "u1", "sdp", False, 1.0)
    assert plane_b.commands == [StandBy("space1", 1.0, {"u1": 0.18})]
    plane_a.moved.set()
    await draining


async def test_a_standby_whose_handover_never_comes_is_closed(nodes: Nodes) -> None:
    _, clock, members = nodes
    (a, plane_a), (b, plane_b) = members
    draining = await drain_mid_handover(a, plane_a)
    await b.offer("space1", "u1", "sdp", False, 1.0)
    # `a` hangs mid-handover (it died draining): its lease runs on, then `b` gives up.
    await b.renew()
    assert plane_b.commands == [StandBy("space1", 1.0)]
    clock.advance(STANDBY_PATIENCE + 0.1)
    await b.renew()
    assert plane_b.commands == [StandBy("space1", 1.0), CloseSpace("space1")]
    plane_a.moved.set()
    await draining


async def test_a_handed_over_space_keeps_its_captions_settings(nodes: Nodes) -> None:
    """The host turned captions off in an Arabic space: the node taking it over from a
    draining one must not start it with captions on and the language detected."""
    bus, _, members = nodes
    (a, plane_a), (_, plane_b) = members
    await a.offer("space1", "u1", "sdp", False, 1.0)
    await bus.publish(MEDIA_CHANNEL, encode_command(SetCaptions("space1", False, "ar")))
    await _settle()
    assert plane_a.commands == [SetCaptions("space1", False, "ar")]
    await a.stop()
    await _settle()
    assert plane_b.commands == [StartSpace("space1", 1.0, Captions(on=False, language="ar"))]


async def test_captions_switched_mid_handover_reach_the_node_taking_over(
    nodes: Nodes,
) -> None:
    """The draining node stops following commands before it hands its spaces over: a
    switch sent meanwhile is heard by the standby alone, and it wins over the settings
    the draining node passes on."""
    bus, _, members = nodes
    (a, plane_a), (b, plane_b) = members
    await bus.publish(MEDIA_CHANNEL, encode_command(StartSpace("space1", 1.0, Captions())))
    await _settle()
    assert a.spaces() == ["space1"] or b.spaces() == ["space1"]
    if b.spaces():  # the tie-break put it on `b`: drain `b` instead
        (a, plane_a), (b, plane_b) = (b, plane_b), (a, plane_a)
    plane_a.moved.clear()
    draining = asyncio.create_task(a.stop())
    await plane_a.moving.wait()
    await b.offer("space1", "u1", "sdp", False, 1.0)
    off = SetCaptions("space1", False, "en")
    await bus.publish(MEDIA_CHANNEL, encode_command(off))
    await _settle()
    plane_a.moved.set()
    await draining
    await _settle()
    assert plane_b.commands == [
        StandBy("space1", 1.0),
        off,
        StartSpace("space1", 1.0, Captions(on=False, language="en")),
    ]

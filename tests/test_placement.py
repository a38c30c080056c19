"""Placement: which node a space goes to (`choose_node`), and the reconciler, on the memory
bus with a fake clock: what it places again, and when it takes a node for dead. The same
rounds run against Redis and real nodes in tests/cluster."""

from __future__ import annotations

from majlis.bus import MemoryBus
from majlis.clock import FakeClock
from majlis.plane import (
    BEHIND_MS,
    NodeInfo,
    StartSpace,
    choose_node,
    node_alive_channel,
    node_key,
    space_lease,
)
from majlis.services.placement import Reconciler

T0 = 1_700_000_000.0
ROUND = 0.5


class World:
    def __init__(self) -> None:
        self.bus = MemoryBus()
        self.clock = FakeClock(T0)
        self.live = [StartSpace("s1", T0), StartSpace("s2", T0)]
        self.placed: list[str] = []

    async def live_starts(self) -> list[StartSpace]:
        return list(self.live)

    async def place(self, start: StartSpace) -> None:
        self.placed.append(start.space_id)

    def reconciler(self, worker: str = "w1") -> Reconciler:
        return Reconciler(
            self.live_starts, self.place, self.bus, self.clock, worker, ROUND, warm_up=3.0
        )

    async def tick(self, reconciler: Reconciler) -> list[str]:
        self.clock.advance(ROUND)
        return await reconciler.tick()

    async def hold(self, node: str, *spaces: str) -> None:
        for space in spaces:
            assert await self.bus.acquire_lease(space_lease(space), node, 3.0, self.clock.now())


async def test_spaces_with_no_lease_are_placed_every_round_until_held() -> None:
    world = World()
    reconciler = world.reconciler()
    assert await world.tick(reconciler) == ["s1", "s2"]
    await world.hold("node-a", "s1")
    assert await world.tick(reconciler) == ["s2"]


async def test_a_node_gone_from_the_bus_for_two_rounds_loses_its_spaces() -> None:
    world = World()
    reconciler = world.reconciler()
    alive = await world.bus.subscribe(node_alive_channel("node-a"))
    await world.bus.set_value(node_key("node-a"), "{}", 3.0)
    for _ in range(8):  # past the warm-up, the node renewing its leases
        await world.hold("node-a", "s1", "s2")
        assert await world.tick(reconciler) == []

    await alive.close()  # killed: its connection, and the subscription, are gone
    assert await world.tick(reconciler) == []  # once may be a reconnect
    assert await world.tick(reconciler) == ["s1", "s2"]  # leases still a round from expiry
    assert await world.bus.lease_owner(space_lease("s1"), world.clock.now()) is None
    assert await world.bus.get_value(node_key("node-a")) is None  # nobody chooses it next


async def test_a_node_seen_again_within_a_round_keeps_its_spaces() -> None:
    world = World()
    reconciler = world.reconciler()
    for _ in range(8):
        await world.hold("node-a", "s1", "s2")
        alive = await world.bus.subscribe(node_alive_channel("node-a"))
        assert await world.tick(reconciler) == []
        await alive.close()
        assert await world.tick(reconciler) == []  # absent every other round only


async def test_nobody_is_judged_dead_during_the_warm_up() -> None:
    """Just after the bus came back (or this worker took over) the nodes may not have
    subscribed again yet; their leases, not their absence, decide then."""
    world = World()
    reconciler = world.reconciler()
    for _ in range(5):  # 2.5 s < warm_up
        await world.hold("node-a", "s1", "s2")
        assert await world.tick(reconciler) == []
    await world.hold("node-a", "s1", "s2")
    await world.tick(reconciler)
    assert await world.tick(reconciler) == ["s1", "s2"]  # 3.5 s: warm, absent twice


async def test_one_worker_reconciles_at_a_time() -> None:
    world = World()
    first, second = world.reconciler("w1"), world.reconciler("w2")
    assert await world.tick(first) == ["s1", "s2"]
    assert await second.tick() == []
    world.placed.clear()
    world.clock.advance(ROUND * 3)  # w1 stopped: its lease runs out
    assert await second.tick() == ["s1", "s2"]


def _node(
    name: str, spaces: int, capacity: int = 2, draining: bool = False, late_ms: float = 0.0
) -> NodeInfo:
    return NodeInfo(name, f"http://{name}.invalid", capacity, spaces, draining, late_ms)


def test_a_space_goes_to_the_least_loaded_node_with_room() -> None:
    nodes = [_node("a", 1), _node("b", 0), _node("c", 0, draining=True)]
    assert all(choose_node(nodes, f"s{i}") == nodes[1] for i in range(20))
    # Equal loads: spaces spread by their id, and every reader picks the same.
    even = [_node("a", 0), _node("b", 0)]
    picks = {choose_node(even, f"s{i}") for i in range(20)}
    assert picks == set(even)
    assert choose_node(list(reversed(even)), "s7") == choose_node(even, "s7")


def test_when_every_node_is_full_a_moving_space_still_finds_one() -> None:
    """A node died and the others are full: its spaces go to the least loaded of them
    (new spaces are refused before placement), never to a draining node."""
    nodes = [_node("a", 3), _node("b", 2), _node("c", 0, draining=True)]
    assert choose_node(nodes, "s1") == nodes[1]
    assert choose_node([_node("c", 0, draining=True)], "s1") is None
    assert choose_node([], "s1") is None


def test_a_node_that_is_behind_has_no_room() -> None:
    """Its mixers run a frame late lately: what it runs is all it takes, however few."""
    behind, idle = _node("a", 0, capacity=10, late_ms=BEHIND_MS), _node("b", 5, capacity=10)
    assert (behind.room, idle.room) == (0, 10)
    assert all(choose_node([behind, idle], f"s{i}") == idle for i in range(20))
    assert _node("a", 3, capacity=10, late_ms=BEHIND_MS - 0.1).room == 10
    assert _node("a", 3, capacity=10, late_ms=50).room == 3
    assert _node("a", 3, capacity=10, draining=True).room == 0
    # Every node behind: a space that must move still goes somewhere.
    assert choose_node([behind], "s1") == behind


def test_announcements_carry_lateness_and_older_ones_read_as_on_time() -> None:
    node = _node("a", 1, late_ms=27.26)
    assert NodeInfo.from_json(node.to_json()) == _node("a", 1, late_ms=27.3)
    older = '{"node_id": "a", "url": "http://a.invalid", "capacity": 2, "spaces": 1}'
    assert NodeInfo.from_json(older) == _node("a", 1)
    assert NodeInfo.from_json(older.replace("}", ', "late_ms": "soon"}')) is None

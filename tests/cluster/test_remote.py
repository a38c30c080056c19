"""RemoteMedia's offers, on the memory bus with HTTP answered in process: a speaker who
comes back to a dead node moves the space at once; a node that is only slow keeps it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from majlis.bus import MemoryBus
from majlis.clock import FakeClock
from majlis.cluster.remote import RemoteMedia
from majlis.errors import Conflict, Overloaded
from majlis.plane import NodeInfo, encode_error, node_alive_channel, node_key, space_lease

DEAD = NodeInfo("node-dead", "http://dead.invalid", capacity=50, spaces=0)
ALIVE = NodeInfo("node-alive", "http://alive.invalid", capacity=50, spaces=1)


def answer(request: httpx.Request) -> httpx.Response:
    if request.url.host == "dead.invalid":
        raise httpx.ConnectError("connection refused", request=request)
    if request.url.host == "moving.invalid":
        return httpx.Response(409, json=encode_error(Conflict("not here", code="elsewhere")))
    return httpx.Response(200, json={"sdp": "answer from " + request.url.host})


@pytest.fixture
async def world() -> AsyncIterator[tuple[MemoryBus, FakeClock, RemoteMedia]]:
    bus, clock = MemoryBus(), FakeClock()
    await bus.open()
    for node in (DEAD, ALIVE):
        await bus.set_value(node_key(node.node_id), node.to_json(), 3.0)
    assert await bus.acquire_lease(space_lease("s1"), DEAD.node_id, 3.0, clock.now())
    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    remote = RemoteMedia(bus, clock, "key", client=client)
    yield bus, clock, remote
    await remote.stop()
    await bus.close()


async def test_an_offer_to_a_node_that_left_the_bus_moves_the_space(
    world: tuple[MemoryBus, FakeClock, RemoteMedia],
) -> None:
    bus, clock, remote = world
    assert await remote.offer("s1", "u1", "offer", False, 1.0) == "answer from alive.invalid"
    # The dead node's hold is gone at once (the live node claims it with the offer).
    assert await bus.lease_owner(space_lease("s1"), clock.now()) is None
    assert await bus.get_value(node_key(DEAD.node_id)) is None


async def test_an_unreachable_node_still_on_the_bus_keeps_its_space(
    world: tuple[MemoryBus, FakeClock, RemoteMedia],
) -> None:
    """Refused HTTP alone may be a moment's trouble; the speaker tries again later."""
    bus, clock, remote = world
    alive = await bus.subscribe(node_alive_channel(DEAD.node_id))
    with pytest.raises(Overloaded):
        await remote.offer("s1", "u1", "offer", False, 1.0)
    assert await bus.lease_owner(space_lease("s1"), clock.now()) == DEAD.node_id
    await alive.close()


async def test_a_space_moving_under_the_offer_is_a_503_never_a_409(
    world: tuple[MemoryBus, FakeClock, RemoteMedia],
) -> None:
    """Speakers' clients take a 409 as final; a handover must only make them wait."""
    bus, clock, remote = world
    moving = NodeInfo("node-moving", "http://moving.invalid", capacity=50, spaces=1)
    await bus.set_value(node_key(moving.node_id), moving.to_json(), 3.0)
    assert await bus.acquire_lease(space_lease("s2"), moving.node_id, 3.0, clock.now())
    with pytest.raises(Overloaded, match="moving"):
        await remote.offer("s2", "u1", "offer", False, 1.0)

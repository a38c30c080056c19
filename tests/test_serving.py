"""The acceptor: a queue of new connections is taken in a few turns of a busy loop."""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable, Iterator

import httpx
import pytest
import uvicorn
import uvloop
from starlette.types import Receive, Scope, Send

from majlis.serving import BATCH, Acceptor, Server

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "uvloop": uvloop.new_event_loop,
    "asyncio": asyncio.new_event_loop,
}


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    yield sock
    sock.close()


def queued_clients(sock: socket.socket, n: int) -> list[socket.socket]:
    """n connections the kernel has completed, waiting in the accept queue."""
    clients = []
    for _ in range(n):
        client = socket.create_connection(sock.getsockname())
        clients.append(client)
    return clients


class Counted(asyncio.Protocol):
    made = 0
    all_made: asyncio.Event | None = None  # set when `wanted` connections are made
    wanted = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        Counted.made += 1
        if Counted.all_made is not None and Counted.made >= Counted.wanted:
            Counted.all_made.set()


async def turns_until(done: Callable[[], bool], limit: int) -> int:
    """Turns of the loop until `done` (the slowness of a busy turn does not matter here)."""
    turns = 0
    while not done() and turns < limit:
        turns += 1
        await asyncio.sleep(0)  # one turn: polls for I/O once
    return turns


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_queue_of_connections_is_accepted_in_a_few_turns(
    loop_name: str, listening: socket.socket
) -> None:
    n = 2 * BATCH + 10
    clients = queued_clients(listening, n)
    Counted.made = 0
    loop = LOOPS[loop_name]()
    try:

        async def main() -> tuple[int, int]:
            acceptor = Acceptor(listening, Counted, asyncio.get_running_loop())
            acceptor.start()
            turns = await turns_until(lambda: Counted.made >= n, limit=200)
            acceptor.close()
            await acceptor.wait_closed()
            return turns, acceptor.accepted

        turns, accepted = loop.run_until_complete(main())
    finally:
        loop.close()
        for client in clients:
            client.close()
    assert accepted == n
    assert Counted.made == n
    # BATCH a turn: three turns to accept, a few more for the transports to be made.
    # One accept a turn (libuv's own) would need more than n turns.
    assert turns <= 8, turns


class FailingOnce(socket.socket):
    """A listening socket whose first accept finds the process out of descriptors."""

    failed = False

    def accept(self) -> tuple[socket.socket, object]:
        if not self.failed:
            self.failed = True
            raise OSError(errno.EMFILE, "Too many open files")
        return super().accept()


async def test_out_of_descriptors_pauses_then_accepts_again() -> None:
    sock = FailingOnce()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    clients = queued_clients(sock, 3)
    Counted.made, Counted.wanted, Counted.all_made = 0, 3, asyncio.Event()
    acceptor = Acceptor(sock, Counted, asyncio.get_running_loop())
    acceptor.start()
    try:
        async with asyncio.timeout(5):
            await Counted.all_made.wait()
    finally:
        Counted.all_made = None
        acceptor.close()
        await acceptor.wait_closed()
        sock.close()
        for client in clients:
            client.close()
    assert sock.failed
    assert acceptor.accepted == 3


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


async def test_the_server_answers_through_its_acceptor_and_stops(
    listening: socket.socket,
) -> None:
    server = Server(uvicorn.Config(hello, log_level="warning", lifespan="on"))
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    host, port = listening.getsockname()
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for it
                await asyncio.sleep(0.01)
            async with httpx.AsyncClient() as http:
                answers = await asyncio.gather(
                    *(http.get(f"http://{host}:{port}/") for _ in range(20))
                )
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)
    assert [a.text for a in answers] == ["hello"] * 20
    assert sum(a.accepted for a in server.acceptors) >= 1


def test_the_server_needs_its_sockets() -> None:
    server = Server(uvicorn.Config(hello, log_level="warning", lifespan="off"))
    with pytest.raises(ValueError, match="sockets"):
        asyncio.run(server.startup(sockets=None))

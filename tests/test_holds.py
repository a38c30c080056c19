"""Issue 13, R2: a client refused again within the Retry-After it was given has its
connection held unread until the wait is over (majlis/serving/holds.py), so that a flood
ignoring Retry-After stops costing the worker. Real uvicorn, real sockets, both loops."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import uvicorn
import uvloop
import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp
from starlette.websockets import WebSocket

from majlis.api.overload import LoopLag, ShedWrites
from majlis.api.shed_share import ShedShare
from majlis.serving import ConnectionHolds, Server

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "uvloop": uvloop.new_event_loop,
    "asyncio": asyncio.new_event_loop,
}
HOLD_S = 1.5


@pytest.fixture(params=list(LOOPS))
def run(request: pytest.FixtureRequest) -> Iterator[Callable[[Awaitable[None]], None]]:
    with asyncio.Runner(loop_factory=LOOPS[request.param]) as runner:
        yield runner.run


async def echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.url.path)


async def talk(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(await websocket.receive_text())
    await websocket.close()


def app_holding(holds: ConnectionHolds) -> Starlette:
    async def hold(request: Request) -> PlainTextResponse:
        assert request.client is not None
        holds.hold((request.client.host, request.client.port), HOLD_S)
        return PlainTextResponse("held", status_code=503)

    return Starlette(
        routes=[
            Route("/hold", hold, methods=["POST"]),
            Route("/{name}", echo, methods=["GET", "POST"]),
            WebSocketRoute("/ws", talk),
        ]
    )


@contextlib.asynccontextmanager
async def serving(app: ASGIApp, holds: ConnectionHolds) -> AsyncIterator[tuple[str, int]]:
    """`app` served as `majlis serve` serves it, with `holds`; its address."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", http="httptools", ws="websockets-sansio"
    )
    server = Server(config, holds=holds)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for it
                await asyncio.sleep(0.01)
        host, port = sock.getsockname()
        yield host, port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


class FarBehind(LoopLag):
    """A loop a second behind, whatever is measured."""

    def latest(self) -> float:
        return 1.0

    def standing(self) -> float:
        return 1.0


class Connection:
    """One raw keep-alive connection, to send requests on and read answers from."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, to: tuple[str, int]) -> Connection:
        return cls(*await asyncio.open_connection(*to))

    def send(self, method: str, path: str) -> None:
        self.writer.write(request(method, path))

    async def answer(self) -> tuple[int, bytes]:
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split()[1])
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def request(method: str, path: str) -> bytes:
    return f"{method} {path} HTTP/1.1\r\nhost: t\r\ncontent-length: 0\r\n\r\n".encode()


def test_a_held_connection_is_read_only_when_its_hold_ends(
    run: Callable[[Awaitable[None]], None],
) -> None:
    async def main() -> None:
        holds = ConnectionHolds()
        async with serving(app_holding(holds), holds) as address:
            held = await Connection.open(address)
            other = await Connection.open(address)
            held.send("POST", "/hold")
            assert await held.answer() == (503, b"held")  # the answer in hand goes out
            started = time.monotonic()
            held.send("GET", "/after")
            # Its next request waits unread while another connection is served at once.
            waiting = asyncio.ensure_future(held.answer())
            other.send("GET", "/other")
            assert await asyncio.wait_for(other.answer(), 10) == (200, b"/other")
            await asyncio.sleep(0.3)
            assert not waiting.done()
            assert await asyncio.wait_for(waiting, 10) == (200, b"/after")
            assert time.monotonic() - started >= HOLD_S - 0.05
            assert holds.held == 1 and len(holds) == 2
            await held.close()
            await other.close()
            async with asyncio.timeout(10):
                while len(holds):  # noqa: ASYNC110 - closing is seen on a later turn
                    await asyncio.sleep(0.01)

    run(asyncio.wait_for(main(), 30))


def test_pipelined_requests_and_websockets_pass_through(
    run: Callable[[Awaitable[None]], None],
) -> None:
    """uvicorn pauses reading while a pipelined request waits for the one before it, and
    upgrades a connection to a WebSocket protocol by setting it on the transport: both
    through the held connection's transport."""

    async def main() -> None:
        holds = ConnectionHolds()
        async with serving(app_holding(holds), holds) as address:
            connection = await Connection.open(address)
            connection.writer.write(b"".join(request("GET", f"/p{i}") for i in range(20)))
            for i in range(20):
                assert await asyncio.wait_for(connection.answer(), 10) == (200, f"/p{i}".encode())
            await connection.close()
            host, port = address
            async with websockets.connect(f"ws://{host}:{port}/ws") as ws:
                await ws.send("salaam")
                assert await asyncio.wait_for(ws.recv(), 10) == "salaam"

    run(asyncio.wait_for(main(), 30))


def test_a_client_ignoring_retry_after_waits_it_out_anyway(
    run: Callable[[Awaitable[None]], None],
) -> None:
    """ShedWrites and the holds together, as `majlis serve` wires them: refused, then
    refused again at once, then its next write is read only when the wait is over."""

    async def main() -> None:
        holds = ConnectionHolds()
        share = ShedShare(0.1)
        share.share = 1.0  # refuse every write, and go on: the loop reads as far behind
        inner = Starlette(routes=[Route("/api/v1/{name}", echo, methods=["POST"])])
        app = ShedWrites(inner, FarBehind(), share, repeated=holds.hold)
        async with serving(app, holds) as address:
            rude = await Connection.open(address)
            for _ in range(2):
                started = time.monotonic()
                rude.send("POST", "/api/v1/beat")
                status, _ = await asyncio.wait_for(rude.answer(), 10)
                assert status == 503
            assert holds.held == 1  # the second refusal came within the first's wait
            rude.send("POST", "/api/v1/beat")
            status, _ = await asyncio.wait_for(rude.answer(), 10)
            assert status == 503
            assert time.monotonic() - started >= 1.0  # Retry-After is 1-3 s
            await rude.close()

    run(asyncio.wait_for(main(), 30))

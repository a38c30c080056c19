"""Issue 13, R2: a client refused again within the Retry-After it was given has its
connection held unread until the wait is over, and while the worker sheds, writes are
refused as their connection reads them, before uvicorn (majlis/serving/holds.py), so that
a flood ignoring Retry-After stops costing the worker. Real uvicorn, real sockets, both
loops."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

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

from majlis.api.overload import LoopLag, Shedding, ShedWrites
from majlis.api.shed_share import ShedShare
from majlis.serving import ConnectionHolds, Door, Server
from majlis.serving.early import Refusal

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
async def serving(
    app: ASGIApp, holds: ConnectionHolds, keep_alive: int = 5
) -> AsyncIterator[tuple[str, int]]:
    """`app` served as `majlis serve` serves it, with `holds`; its address."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        http="httptools",
        ws="websockets-sansio",
        timeout_keep_alive=keep_alive,
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
            # Not `watching` the app: a request in hand cannot be told from one owed.
            assert holds.close_quiet(0.0, time.monotonic() + 100) == 0
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
        app = ShedWrites(inner, Shedding(FarBehind(), share), told=holds.told)
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


REFUSED = b'{"error": "overloaded"}'


class Gate:
    """Refuses every POST under /api/ while `on`, as a worker shedding all writes would,
    and one that waited at the door longer than `wait_limit`."""

    methods = frozenset({b"POST"})

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []
        self.waits: list[float] = []
        self.on = True
        self.wait_limit = 10.0

    def armed(self) -> bool:
        return self.on

    def early(self, method: str, path: str, waited_s: float) -> Refusal | None:
        self.asked.append((method, path))
        if waited_s:
            self.waits.append(waited_s)
        if method != "POST" or not path.startswith("/api/"):
            return None
        if not self.on and waited_s <= self.wait_limit:
            return None
        headers = ((b"retry-after-ms", b"1500"), (b"content-length", str(len(REFUSED)).encode()))
        return Refusal(503, headers, REFUSED, wait_s=HOLD_S)


class Seen:
    """The app behind the gate: what reached it, and a slow route to keep one busy."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def endpoint(self, request: Request) -> PlainTextResponse:
        await request.body()  # all of it read before the answer, as the API's routes do
        self.paths.append(request.url.path)
        if request.url.path.endswith("/slow"):
            await asyncio.sleep(0.3)
        return PlainTextResponse(request.url.path)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{rest:path}", self.endpoint, methods=["GET", "POST"])])


@dataclass
class Gated:
    """A server as `majlis serve` wires one: the holds with a gate, the app watched."""

    gate: Gate
    seen: Seen
    holds: ConnectionHolds
    address: tuple[str, int]


@contextlib.asynccontextmanager
async def gated(
    is_proxy: Callable[[str], bool] = lambda host: False, door: Door | None = None
) -> AsyncIterator[Gated]:
    gate, seen = Gate(), Seen()
    holds = ConnectionHolds(gate, is_proxy, door)
    async with serving(holds.watching(seen.app()), holds) as address:
        yield Gated(gate, seen, holds, address)


def test_a_write_is_refused_as_it_is_read_and_never_reaches_the_app(
    run: Callable[[Awaitable[None]], None],
) -> None:
    async def main() -> None:
        async with gated() as g:
            connection = await Connection.open(g.address)
            connection.send("POST", "/api/v1/beat?x=1")
            assert await connection.answer() == (503, REFUSED)
            assert g.gate.asked == [("POST", "/api/v1/beat")]  # the path, without its query
            # The same connection goes on: a read is asked about and served by the app.
            connection.send("GET", "/api/v1/space")
            assert await connection.answer() == (200, b"/api/v1/space")
            # Sent in two pieces (as httpx and browsers send a body), a request is judged
            # by its head: refused at once, its body dropped as it comes, and the next
            # request on the connection read as usual.
            head, body = post_with_body("/api/v1/split", b'{"a": 1}')
            connection.writer.write(head)
            assert await connection.answer() == (503, REFUSED)
            connection.writer.write(body[:3])
            await asyncio.sleep(0.05)
            connection.writer.write(body[3:] + request("GET", "/api/v1/after"))
            assert await connection.answer() == (200, b"/api/v1/after")
            # One the gate lets through goes to the app whole, however it is cut.
            head, body = post_with_body("/other", b'{"a": 1}')
            connection.writer.write(head)
            await asyncio.sleep(0.05)
            connection.writer.write(body)
            assert await connection.answer() == (200, b"/other")
            assert g.seen.paths == ["/api/v1/space", "/api/v1/after", "/other"]
            assert g.holds.refused_early == 2
            await connection.close()

    run(asyncio.wait_for(main(), 30))


def test_what_the_connection_cannot_judge_goes_to_the_app(
    run: Callable[[Awaitable[None]], None],
) -> None:
    """A percent-escaped path (the app decodes it), `Connection: close`, HTTP/1.0: the
    application's own shedding answers those."""

    async def main() -> None:
        async with gated() as g:
            for raw, path in [
                (
                    b"POST /api/v1/b%65at HTTP/1.1\r\nhost: t\r\ncontent-length: 0\r\n\r\n",
                    "/api/v1/beat",
                ),
                (
                    b"POST /api/v1/x HTTP/1.1\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
                    "/api/v1/x",
                ),
                (b"POST /api/v1/y HTTP/1.0\r\ncontent-length: 0\r\n\r\n", "/api/v1/y"),
            ]:
                connection = await Connection.open(g.address)
                connection.writer.write(raw)
                assert await connection.answer() == (200, path.encode())
                await connection.close()
            # Nor is anything asked while the gate would refuse nothing.
            g.gate.on = False
            connection = await Connection.open(g.address)
            connection.send("POST", "/api/v1/beat")
            assert await connection.answer() == (200, b"/api/v1/beat")
            await connection.close()
            assert g.gate.asked == [] and g.holds.refused_early == 0

    run(asyncio.wait_for(main(), 30))


def test_a_refusal_never_overtakes_an_earlier_answer(
    run: Callable[[Awaitable[None]], None],
) -> None:
    """A write read while the connection's last request is still in progress goes to the
    app, and is answered after it: HTTP/1.1 answers in order."""

    async def main() -> None:
        async with gated() as g:
            connection = await Connection.open(g.address)
            connection.send("GET", "/slow")
            await asyncio.sleep(0.05)  # read apart: its own turn
            assert g.holds.in_flight == 1  # /slow, in the app
            connection.send("POST", "/api/v1/beat")
            assert await connection.answer() == (200, b"/slow")
            assert await connection.answer() == (200, b"/api/v1/beat")
            # Sent together, the same.
            connection.writer.write(request("GET", "/slow") + request("POST", "/api/v1/beat"))
            assert await connection.answer() == (200, b"/slow")
            assert await connection.answer() == (200, b"/api/v1/beat")
            # Answered, the connection is judged again.
            connection.send("POST", "/api/v1/beat")
            assert await connection.answer() == (503, REFUSED)
            assert g.holds.in_flight == 0
            await connection.close()

    run(asyncio.wait_for(main(), 30))


def test_a_client_refused_early_and_back_at_once_waits_out_the_wait(
    run: Callable[[Awaitable[None]], None],
) -> None:
    """...unless the request came through a proxy for another client: the proxy's
    connection carries others' requests. A proxy's peer sending for itself is held."""

    async def main() -> None:
        for proxy, forwarded in [(False, False), (True, True), (True, False), (False, True)]:
            held = not (proxy and forwarded)
            extra = b"x-forwarded-for: 203.0.113.9\r\n" if forwarded else b""
            beat = b"POST /api/v1/beat HTTP/1.1\r\nhost: t\r\n%scontent-length: 0\r\n\r\n" % extra
            async with gated(is_proxy=lambda host, proxy=proxy: proxy) as g:
                rude = await Connection.open(g.address)
                for _ in range(2):
                    started = time.monotonic()
                    rude.writer.write(beat)
                    assert await asyncio.wait_for(rude.answer(), 10) == (503, REFUSED)
                rude.send("GET", "/after")
                assert await asyncio.wait_for(rude.answer(), 10) == (200, b"/after")
                waited = time.monotonic() - started
                assert g.holds.held == (1 if held else 0), (proxy, forwarded)
                assert (waited >= HOLD_S - 0.05) if held else (waited < HOLD_S / 2)
                await rude.close()

    run(asyncio.wait_for(main(), 60))


def post_with_body(path: str, body: bytes) -> tuple[bytes, bytes]:
    head = f"POST {path} HTTP/1.1\r\nhost: t\r\ncontent-length: {len(body)}\r\n\r\n"
    return head.encode(), body


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110 - what the server does, seen from outside
            await asyncio.sleep(0.01)


def test_a_write_waits_at_the_door_while_the_app_has_enough(
    run: Callable[[Awaitable[None]], None],
) -> None:
    """One write at a time: the next waits, unread further, and goes in when the first is
    answered; reads never wait there."""

    async def main() -> None:
        door = Door(1)
        async with gated(door=door) as g:
            g.gate.on = False
            first, second, reader = [await Connection.open(g.address) for _ in range(3)]
            first.send("POST", "/api/v1/slow")
            await until(lambda: door.inside == 1)
            second.send("POST", "/api/v1/beat")
            await until(lambda: door.waiting == 1)
            reader.send("GET", "/api/v1/read")
            assert await asyncio.wait_for(reader.answer(), 10) == (200, b"/api/v1/read")
            # /slow still in the app, the beat at the door.
            assert g.seen.paths == ["/api/v1/slow", "/api/v1/read"]
            assert await asyncio.wait_for(second.answer(), 10) == (200, b"/api/v1/beat")
            assert await first.answer() == (200, b"/api/v1/slow")
            assert g.seen.paths == ["/api/v1/slow", "/api/v1/read", "/api/v1/beat"]
            # It was asked about with the time it waited: most of /slow's 0.3 s.
            assert len(g.gate.waits) == 1 and 0.1 < g.gate.waits[0] < 5.0
            await until(lambda: door.inside == 0)
            assert door.waited == 1
            for connection in (first, second, reader):
                await connection.close()

    run(asyncio.wait_for(main(), 30))


def test_a_write_that_waited_too_long_is_refused_as_it_is_let_in(
    run: Callable[[Awaitable[None]], None],
) -> None:
    """...without reaching the app, its body dropped as it comes; the connection goes on."""

    async def main() -> None:
        door = Door(1)
        async with gated(door=door) as g:
            g.gate.on, g.gate.wait_limit = False, 0.1
            first, second = [await Connection.open(g.address) for _ in range(2)]
            first.send("POST", "/api/v1/slow")
            await until(lambda: door.inside == 1)
            head, body = post_with_body("/api/v1/beat", b'{"a": 1}')
            second.writer.write(head)
            await until(lambda: door.waiting == 1)
            second.writer.write(body)  # waits in the kernel, unread
            assert await asyncio.wait_for(second.answer(), 10) == (503, REFUSED)
            assert await first.answer() == (200, b"/api/v1/slow")
            second.send("GET", "/api/v1/after")
            assert await asyncio.wait_for(second.answer(), 10) == (200, b"/api/v1/after")
            assert g.seen.paths == ["/api/v1/slow", "/api/v1/after"]
            assert g.holds.refused_early == 1
            await until(lambda: door.inside == 0)
            for connection in (first, second):
                await connection.close()

    run(asyncio.wait_for(main(), 30))


def test_a_connection_that_goes_frees_its_place_at_the_door(
    run: Callable[[Awaitable[None]], None],
) -> None:
    """Gone while inside, or while waiting: no place is kept for it, and the next write
    goes straight in. (One gone while waiting is seen gone only once it is read again,
    as it is let in: a connection waiting at the door is not read, not even its end.)"""

    async def main() -> None:
        door = Door(1)
        async with gated(door=door) as g:
            g.gate.on = False
            inside, waiting = [await Connection.open(g.address) for _ in range(2)]
            inside.send("POST", "/api/v1/slow")
            await until(lambda: door.inside == 1)
            waiting.send("POST", "/api/v1/beat")
            await until(lambda: door.waiting == 1)
            await waiting.close()
            await inside.close()
            await until(lambda: len(g.holds) == 0)
            assert door.inside == 0 and door.waiting == 0
            later = await Connection.open(g.address)
            later.send("POST", "/api/v1/beat")
            assert await asyncio.wait_for(later.answer(), 10) == (200, b"/api/v1/beat")
            await until(lambda: door.inside == 0)
            await later.close()

    run(asyncio.wait_for(main(), 30))


def test_a_connection_owing_a_request_too_long_is_closed(
    run: Callable[[Awaitable[None]], None],
) -> None:
    """Nothing sent, part of a head, or nothing more after an answer: closed once it has
    owed a whole request longer than allowed. Not while its request is in the app, nor
    while the worker holds it, nor a WebSocket."""

    async def main() -> None:
        holds, release = ConnectionHolds(), asyncio.Event()

        async def slow(request: Request) -> PlainTextResponse:
            await release.wait()
            return PlainTextResponse("slow")

        routes = [Route("/slow", slow), WebSocketRoute("/ws", talk), Route("/{name}", echo)]
        async with serving(holds.watching(Starlette(routes=routes)), holds) as address:
            silent, partial, answered, busy, held = [
                await Connection.open(address) for _ in range(5)
            ]
            partial.writer.write(b"GET /x HTTP/1.1\r\nho")
            answered.send("GET", "/a")
            assert await answered.answer() == (200, b"/a")
            busy.send("GET", "/slow")
            holds.hold(held.writer.get_extra_info("sockname"), 30)
            host, port = address
            async with websockets.connect(f"ws://{host}:{port}/ws") as ws:
                await until(lambda: len(holds) == 6)
                now = time.monotonic()
                assert holds.close_quiet(60, now + 59) == 0
                assert holds.close_quiet(60, now + 61) == 3
                for gone in (silent, partial, answered):
                    assert await asyncio.wait_for(gone.reader.read(), 10) == b""
                await ws.send("salaam")
                assert await asyncio.wait_for(ws.recv(), 10) == "salaam"
            release.set()
            assert await asyncio.wait_for(busy.answer(), 10) == (200, b"slow")
            assert holds.closed_quiet == 3 and len(holds) == 2  # busy and held

    run(asyncio.wait_for(main(), 30))


def test_the_server_closes_a_connection_that_never_sends_a_request(
    run: Callable[[Awaitable[None]], None],
) -> None:
    """uvicorn closes a connection idle after an answer, never one that sent nothing: the
    server does, after as long as uvicorn's keep-alive."""

    async def main() -> None:
        holds = ConnectionHolds()
        async with serving(holds.watching(app_holding(holds)), holds, keep_alive=1) as address:
            silent = await Connection.open(address)
            started = time.monotonic()
            assert await asyncio.wait_for(silent.reader.read(), 10) == b""
            assert time.monotonic() - started >= 1.0
            assert holds.closed_quiet == 1

    run(asyncio.wait_for(main(), 30))

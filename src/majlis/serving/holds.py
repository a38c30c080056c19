"""Connections held unread while their client ignores a Retry-After, and requests
refused as they are read while the worker sheds load.

A refusal is cheap to decide but not to deliver: parsing the request, the ASGI cycle and
writing the answer cost about two thirds of serving a heartbeat (docs/benchmarks.md,
"Again, with the indexed routes"). So, per connection:

- A client refused again within the Retry-After it was given (the application tells the
  connections of each refusal) has its connection held: not read again until the wait
  is over. What it sends meanwhile waits in the kernel's socket buffer, costing the
  worker nothing, and is read (and perhaps served) when the wait ends. Writing is not
  held, so the answer to the request in hand still goes out at once.
- With a `Gate` (early.py), each whole request read on a connection with nothing in
  progress is first put to the gate, and a refusal is written here, without uvicorn or
  the application. The application's answers are counted (`watching`) so that a refusal
  never overtakes the answer to an earlier request.
- With a `Door` as well (door.py), such a request that is a write goes on to the
  application only while the door has room; otherwise its connection is read no
  further, and waits at the door with the request's bytes until an answer lets it in,
  when the gate is asked again with the time it waited.

Each connection's protocol (uvicorn's, or the WebSocket one it upgrades to) talks to a
`HeldTransport` rather than the socket's transport, so that the protocol's own flow
control (pausing reads while a response is pending) and a hold are both honoured: the
socket is read only when neither wants it paused.

A connection that owes the worker a request, from its opening or its last answer on,
and has not sent a whole head within `after_s` is closed (`close_quiet`): uvicorn closes
an idle keep-alive connection, but never one that sent nothing yet, nor one that sent
part of a head and stopped. Without this, anyone could hold descriptors for ever.

Only direct clients are held: behind a proxy one connection carries many clients'
requests. The address the application names for them (from X-Forwarded-For) has port 0,
which matches no connection; a refusal made here holds a connection from a peer
`is_proxy` names only for a request that names no other client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, cast

from starlette.types import ASGIApp, Receive, Scope, Send

from majlis.serving.door import Door
from majlis.serving.early import Gate, Judge, Refusal, forwarded, render

__all__ = ["ConnectionHolds", "HeldProtocol", "HeldTransport"]

Peer = tuple[str, int]
# An answer written straight to the socket is written only while its buffer holds less
# than this: a client that sends and never reads must not fill this process's memory.
WRITE_BUFFER_MAX = 64 * 1024


class ConnectionHolds:
    """The open connections by client address, the holds put on them, and the `gate` that
    refuses requests as they are read (None: every request goes to the application).
    `is_proxy`: whether a peer may forward other clients' requests; its connection is
    not held for refusing one that names another client (X-Forwarded-For). `door`: how
    many of the writes the gate may refuse go on to the application at once (only with a
    gate)."""

    def __init__(
        self,
        gate: Gate | None = None,
        is_proxy: Callable[[str], bool] = lambda host: False,
        door: Door | None = None,
    ) -> None:
        if door is not None and gate is None:
            raise ValueError("a door needs a gate: a write that waited too long is refused")
        self.gate = gate
        self.is_proxy = is_proxy
        self.door = door
        self._open: dict[Peer, HeldProtocol] = {}
        self.held = 0  # holds put on, in all
        self.refused_early = 0  # requests refused by the gate, in all
        self.in_flight = 0  # HTTP requests in the application now (`watching`)
        self.closed_quiet = 0  # connections closed for owing a request too long, in all
        self._watching = False  # whether the app tells us of its requests (`watching`)

    def wrap(self, protocol: asyncio.Protocol) -> HeldProtocol:
        return HeldProtocol(protocol, self)

    def told(self, client: Peer, wait_s: float, /) -> None:
        """`client` was refused and asked to wait `wait_s`: if it was refused within an
        earlier wait, hold its connection (if it is open) until this one is over."""
        connection = self._open.get(client)
        if connection is not None:
            connection.told(wait_s)

    def hold(self, client: Peer, seconds: float) -> None:
        """Read nothing more from `client`'s connection for `seconds` (if it is open)."""
        connection = self._open.get(client)
        if connection is not None:
            connection.hold(seconds)

    def started(self, client: Peer) -> None:
        """The application has a request of `client`'s in hand."""
        connection = self._open.get(client)
        if connection is not None:
            connection.started()

    def answered(self, client: Peer) -> None:
        """The application has answered a request of `client`'s."""
        connection = self._open.get(client)
        if connection is not None:
            connection.answered()

    def close_quiet(self, after_s: float, now: float | None = None) -> int:
        """Close each connection that has owed a whole request for longer than `after_s`
        (not one held, or waiting at the door: that wait is the worker's); how many.
        None before `watching`: without it, a request in hand would look owed."""
        if not self._watching:
            return 0
        now = time.monotonic() if now is None else now
        quiet = [c for c in self._open.values() if c.owed_for(now) > after_s]
        for connection in quiet:
            connection.close()
        self.closed_quiet += len(quiet)
        return len(quiet)

    async def closing_quiet(self, after_s: float, every_s: float = 1.0) -> None:
        """`close_quiet` every `every_s`, until cancelled."""
        while True:
            await asyncio.sleep(every_s)
            self.close_quiet(after_s)

    def watching(self, app: ASGIApp) -> ASGIApp:
        """`app`, telling these connections when each HTTP answer is done (the gate is
        asked only on a connection with no request in progress)."""
        self._watching = True
        return _Answers(app, self)

    def __len__(self) -> int:
        return len(self._open)

    def opened(self, peer: Peer, connection: HeldProtocol) -> None:
        self._open[peer] = connection

    def closed(self, peer: Peer, connection: HeldProtocol) -> None:
        if self._open.get(peer) is connection:
            del self._open[peer]


class _Answers:
    def __init__(self, app: ASGIApp, holds: ConnectionHolds) -> None:
        self.app = app
        self.holds = holds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The peer as uvicorn named it: the app may put a proxied client's in its place.
        client = scope.get("client")
        peer = (str(client[0]), int(client[1])) if client else None
        if peer:
            self.holds.started(peer)
        self.holds.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.holds.in_flight -= 1
            if peer:
                self.holds.answered(peer)


class HeldProtocol(asyncio.Protocol):
    """Stands between a socket's transport and the protocol that serves it."""

    def __init__(self, inner: asyncio.Protocol, holds: ConnectionHolds) -> None:
        self.inner = inner
        self._holds = holds
        self._transport: asyncio.Transport | None = None
        self._peer: Peer | None = None
        self.inner_reads = True  # whether the inner protocol wants to be read (held or not)
        self._held: asyncio.TimerHandle | None = None
        self._told_until = 0.0  # loop time until which the client was asked to wait
        gate = holds.gate
        self._judge = None if gate is None else Judge(gate, at_door=holds.door is not None)
        self._writes_paused = False
        self._proxy = False
        self._door = holds.door
        self._inside = False  # a write of this connection's holds a place inside the door
        # At the door: the bytes of a write read whole, and its method and path.
        self._waiting: tuple[bytes, tuple[str, str]] | None = None
        # Since when the client has owed a whole request (None: one is in the application,
        # or the connection is a WebSocket's).
        self._owing_since: float | None = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport, though uvloop's are not registered as asyncio.Transport.
        self._transport = cast(asyncio.Transport, transport)
        self._peer = _peer_of(self._transport)
        if self._peer is not None:
            self._holds.opened(self._peer, self)
            self._proxy = self._holds.is_proxy(self._peer[0])
        self.inner.connection_made(HeldTransport(self._transport, self))

    def data_received(self, data: bytes) -> None:
        judge = self._judge
        if judge is not None:
            read = judge.read(data, self._may_answer())
            if read.refusal is not None:
                # A proxy's connection carries other clients' requests: not held for one.
                self._answer(read.refusal, hold=not (self._proxy and read.forwarded))
            if not read.passed:
                return
            data = read.passed
            door = self._door
            if door is not None and read.request is not None:
                if not door.enter():
                    self._wait(door, data, read.request)
                    return
                self._inside = True
        self.inner.data_received(data)

    def let_in(self, waited_s: float) -> bool:
        """The door lets this connection's waiting write in (door.Waiting): it goes on to
        the application, or is refused for how long it waited."""
        waiting, self._waiting = self._waiting, None
        self._apply()
        if waiting is None or self._judge is None:
            return False  # the connection went while it waited
        data, request = waiting
        if self._may_answer():
            refusal = self._judge.refuse(request, waited_s)
            if refusal is not None:
                self._answer(refusal, hold=not (self._proxy and forwarded(data)))
                return False
        self._inside = True
        self.inner.data_received(data)
        return True

    def _wait(self, door: Door, data: bytes, request: tuple[str, str]) -> None:
        self._waiting = data, request
        self._apply()  # read no further: neither loop reads a paused socket again
        door.wait(self)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._waiting = None
        self._leave()
        if self._held is not None:
            self._held.cancel()
            self._held = None
        if self._peer is not None:
            self._holds.closed(self._peer, self)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._writes_paused = True
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self._writes_paused = False
        self.inner.resume_writing()

    def started(self) -> None:
        self._owing_since = None

    def answered(self) -> None:
        self._owing_since = time.monotonic()
        if self._judge is not None:
            self._judge.answered()
        self._leave()

    def owed_for(self, now: float) -> float:
        """How long the client has owed a whole request; 0.0 while it owes none, or while
        the worker is what keeps it waiting (a hold, the door)."""
        since = self._owing_since
        if since is None or self._held is not None or self._waiting is not None:
            return 0.0
        return now - since

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _leave(self) -> None:
        """This connection's write inside the door was answered (or the connection went:
        its place is freed then, not when the application is done with it, which no
        connection is left to say)."""
        if self._inside and self._door is not None:
            self._inside = False
            self._door.left()

    def upgraded(self, protocol: asyncio.Protocol) -> None:
        """The inner protocol hands the connection to another (a WebSocket's)."""
        self.inner = protocol
        self._judge = None  # what follows is not HTTP requests
        self._owing_since = None  # nor owed: a WebSocket may be quiet, pinged by its own

    def told(self, wait_s: float) -> None:
        loop = asyncio.get_running_loop()
        again = loop.time() < self._told_until
        self._told_until = loop.time() + wait_s
        if again:
            self.hold(wait_s)

    def hold(self, seconds: float) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        self._holds.held += 1
        if self._held is not None:
            self._held.cancel()
        loop = asyncio.get_running_loop()
        self._held = loop.call_later(seconds, self._release)
        self._apply()

    def inner_wants_reads(self, wanted: bool) -> None:
        self.inner_reads = wanted
        self._apply()

    def _may_answer(self) -> bool:
        """Whether a refusal may be written now: not while the client reads too slowly."""
        transport = self._transport
        return (
            transport is not None
            and not self._writes_paused
            and transport.get_write_buffer_size() <= WRITE_BUFFER_MAX
        )

    def _answer(self, refusal: Refusal, hold: bool) -> None:
        if self._transport is None:
            return
        self._holds.refused_early += 1
        self._owing_since = time.monotonic()  # answered: the next request is owed from now
        self._transport.write(render(refusal))
        if hold:
            self.told(refusal.wait_s)

    def _release(self) -> None:
        self._held = None
        self._apply()

    def _apply(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        paused = not self.inner_reads or self._held is not None or self._waiting is not None
        if paused and transport.is_reading():
            transport.pause_reading()
        elif not paused and not transport.is_reading():
            transport.resume_reading()


class HeldTransport(asyncio.Transport):
    """The transport a held connection's protocol sees: the socket's, except that reads
    are paused and resumed through the HeldProtocol, and a protocol set on it (a
    WebSocket upgrade) replaces the inner one."""

    def __init__(self, transport: asyncio.Transport, owner: HeldProtocol) -> None:
        super().__init__()
        self._transport = transport
        self._owner = owner

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self._transport.close()

    def abort(self) -> None:
        self._transport.abort()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        if not isinstance(protocol, asyncio.Protocol):
            raise TypeError("a held connection serves stream protocols only")
        self._owner.upgraded(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._owner.inner

    def is_reading(self) -> bool:
        return self._owner.inner_reads

    def pause_reading(self) -> None:
        self._owner.inner_wants_reads(False)

    def resume_reading(self) -> None:
        self._owner.inner_wants_reads(True)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._transport.write(data)

    def writelines(self, list_of_data: Any) -> None:
        self._transport.writelines(list_of_data)

    def write_eof(self) -> None:
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()


def _peer_of(transport: asyncio.Transport) -> Peer | None:
    """The client's (host, port), as uvicorn puts it in the ASGI scope."""
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return str(peer[0]), int(peer[1])
    return None

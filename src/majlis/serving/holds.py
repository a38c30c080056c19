"""Connections held unread while their client ignores a Retry-After.

A refusal is cheap to decide but not to deliver: parsing the request, the ASGI cycle and
writing the answer cost about two thirds of serving a heartbeat (docs/benchmarks.md,
"Again, with the indexed routes"). A client that ignores Retry-After and sends again at
once therefore keeps the worker busy refusing it. When the application says a client
did just that, its connection is not read again until the wait it was given is over:
what it sends meanwhile waits in the kernel's socket buffer, costing the worker nothing,
and is read (and perhaps served) when the wait ends. Writing is not held, so the answer
to the request in hand still goes out at once.

Each connection's protocol (uvicorn's, or the WebSocket one it upgrades to) talks to a
`HeldTransport` rather than the socket's transport, so that the protocol's own flow
control (pausing reads while a response is pending) and a hold are both honoured: the
socket is read only when neither wants it paused.

Only direct clients are held: behind a proxy one connection carries many clients'
requests, and the address the application names (from X-Forwarded-For) has port 0,
which matches no connection.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

__all__ = ["ConnectionHolds", "HeldProtocol", "HeldTransport"]

Peer = tuple[str, int]


class ConnectionHolds:
    """The open connections by client address, and the holds put on them."""

    def __init__(self) -> None:
        self._open: dict[Peer, HeldProtocol] = {}
        self.held = 0  # holds put on, in all

    def wrap(self, protocol: asyncio.Protocol) -> HeldProtocol:
        return HeldProtocol(protocol, self)

    def hold(self, client: Peer, seconds: float) -> None:
        """Read nothing more from `client`'s connection for `seconds` (if it is open)."""
        connection = self._open.get(client)
        if connection is not None:
            self.held += 1
            connection.hold(seconds)

    def __len__(self) -> int:
        return len(self._open)

    def opened(self, peer: Peer, connection: HeldProtocol) -> None:
        self._open[peer] = connection

    def closed(self, peer: Peer, connection: HeldProtocol) -> None:
        if self._open.get(peer) is connection:
            del self._open[peer]


class HeldProtocol(asyncio.Protocol):
    """Stands between a socket's transport and the protocol that serves it."""

    def __init__(self, inner: asyncio.Protocol, holds: ConnectionHolds) -> None:
        self.inner = inner
        self._holds = holds
        self._transport: asyncio.Transport | None = None
        self._peer: Peer | None = None
        self.inner_reads = True  # whether the inner protocol wants to be read (held or not)
        self._held: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport, though uvloop's are not registered as asyncio.Transport.
        self._transport = cast(asyncio.Transport, transport)
        self._peer = _peer_of(self._transport)
        if self._peer is not None:
            self._holds.opened(self._peer, self)
        self.inner.connection_made(HeldTransport(self._transport, self))

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._held is not None:
            self._held.cancel()
            self._held = None
        if self._peer is not None:
            self._holds.closed(self._peer, self)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def hold(self, seconds: float) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if self._held is not None:
            self._held.cancel()
        loop = asyncio.get_running_loop()
        self._held = loop.call_later(seconds, self._release)
        self._apply()

    def inner_wants_reads(self, wanted: bool) -> None:
        self.inner_reads = wanted
        self._apply()

    def _release(self) -> None:
        self._held = None
        self._apply()

    def _apply(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        paused = not self.inner_reads or self._held is not None
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
        self._owner.inner = protocol

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

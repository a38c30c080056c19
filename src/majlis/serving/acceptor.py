"""uvicorn, with new connections accepted in batches.

libuv (under uvloop) accepts one connection each time the listening socket is reported
ready, and relies on level-triggered polling to be told again on the next turn of the
loop (libuv 1.45, "don't accept() connections in a loop"). That is fine while a turn is
short. On a busy worker a turn lasts tens of milliseconds, so a worker serving its
keep-alive connections at full speed accepted 20 to 50 new ones a second: in a join
storm, hundreds of new connections waited in the kernel's accept queue for up to 10 s
before their first byte was read (docs/benchmarks.md, "New connections on a busy
worker"). Exactly the people arriving were the ones kept waiting.

The Acceptor watches the listening socket itself and accepts up to `batch` connections
per turn, handing each to the loop as an accepted socket, with the same protocol uvicorn
would have made. The batch bounds how long a connection storm can hold one turn.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable

import uvicorn

from majlis.serving.holds import ConnectionHolds

__all__ = ["BATCH", "KEEP_ALIVE_S", "Acceptor", "Server"]

BATCH = 128  # connections accepted per turn of the loop, at most
PAUSE_S = 0.1  # out of descriptors: wait this long before accepting again
# How long an idle keep-alive connection stays open. uvicorn's default, 5 s, is also how
# long httpx (and so our CLI and bots) keeps one: a request sent on it as the server
# closes it is lost ("Server disconnected without sending a response"). Longer than
# the clients', so that they always give up first.
KEEP_ALIVE_S = 20

log = logging.getLogger(__name__)

ProtocolFactory = Callable[[], asyncio.Protocol]
# Out of descriptors or memory: accepting again at once would spin.
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class Acceptor:
    """Accepts connections on a listening socket, many per turn of the loop."""

    def __init__(
        self,
        sock: socket.socket,
        protocol_factory: ProtocolFactory,
        loop: asyncio.AbstractEventLoop,
        batch: int = BATCH,
    ) -> None:
        self._sock = sock
        self._factory = protocol_factory
        self._loop = loop
        self._batch = batch
        self._handing_over: set[asyncio.Task[object]] = set()
        self._paused: asyncio.TimerHandle | None = None
        self._open = False
        self.accepted = 0

    def start(self) -> None:
        self._sock.setblocking(False)
        self._open = True
        self._loop.add_reader(self._sock.fileno(), self._accept_some)

    def close(self) -> None:
        """Stop accepting; the listening socket stays open (its owner closes it)."""
        if not self._open:
            return
        self._open = False
        self._loop.remove_reader(self._sock.fileno())
        if self._paused is not None:
            self._paused.cancel()

    async def wait_closed(self) -> None:
        if self._handing_over:
            await asyncio.gather(*self._handing_over, return_exceptions=True)

    def _accept_some(self) -> None:
        for _ in range(self._batch):
            try:
                conn, _address = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the client gave up while it waited in the queue
            except OSError as error:
                if error.errno in _RESOURCE_ERRORS:
                    self._pause(error)
                    return
                # accept(2) reports a pending connection's network error (EPROTO,
                # ENETUNREACH, ...) as its own: that connection is lost, the next may not be.
                log.debug("a connection failed before it was accepted: %s", error)
                continue
            self.accepted += 1
            self._hand_over(conn)

    def _hand_over(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        coro = self._loop.connect_accepted_socket(self._factory, conn)
        task: asyncio.Task[object] = self._loop.create_task(coro)
        self._handing_over.add(task)
        task.add_done_callback(self._handed_over)

    def _handed_over(self, task: asyncio.Task[object]) -> None:
        self._handing_over.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The client reset the connection before its transport was made: nothing to do.
            log.debug("a new connection failed: %s", task.exception())

    def _pause(self, error: OSError) -> None:
        log.warning("cannot accept connections (%s); trying again in %.1f s", error, PAUSE_S)
        self._loop.remove_reader(self._sock.fileno())
        self._paused = self._loop.call_later(PAUSE_S, self._resume)

    def _resume(self) -> None:
        self._paused = None
        if self._open:
            self._loop.add_reader(self._sock.fileno(), self._accept_some)


class Server(uvicorn.Server):
    """uvicorn.Server whose sockets are served through Acceptors, each connection
    through `holds` when given."""

    def __init__(
        self, config: uvicorn.Config, batch: int = BATCH, holds: ConnectionHolds | None = None
    ) -> None:
        super().__init__(config)
        self.batch = batch
        self.holds = holds
        self.acceptors: list[Acceptor] = []
        self._closing_quiet: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        if sockets is None:
            raise ValueError("majlis.serving.Server serves sockets it is given")
        # uvicorn's own startup, listening on nothing: the lifespan runs first, as always.
        await super().startup(sockets=[])
        loop = asyncio.get_running_loop()
        for sock in sockets:
            acceptor = Acceptor(sock, self._protocol, loop, self.batch)
            acceptor.start()
            self.acceptors.append(acceptor)
        if self.holds is not None:
            # As long as an idle keep-alive connection lives: sending nothing, or part of a
            # head, keeps a connection no longer than sending a whole request and no more.
            after_s = self.config.timeout_keep_alive
            self._closing_quiet = loop.create_task(self.holds.closing_quiet(after_s))

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._closing_quiet is not None:
            self._closing_quiet.cancel()
        for acceptor in self.acceptors:
            acceptor.close()
        for acceptor in self.acceptors:
            await acceptor.wait_closed()
        await super().shutdown(sockets)

    def _protocol(self) -> asyncio.Protocol:
        # What uvicorn's startup builds for each connection.
        protocol: asyncio.Protocol = self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config,
            server_state=self.server_state,
            app_state=self.lifespan.state,
        )
        return protocol if self.holds is None else self.holds.wrap(protocol)

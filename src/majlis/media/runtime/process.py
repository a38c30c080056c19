"""The parent's side of the media worker process: spawn it, talk to it, restart it.

MediaProcess stands where an in-process MediaNode would: it answers offers (the
MediaGateway of services/rtc.py), takes the bus's media commands, and feeds the origin's
SpaceRegistry with the snapshots the worker sends, so blocking playlist reloads and
preload-hinted parts still wake as soon as a part is written.

Supervision: the worker's socket reaching EOF means it is gone (crashed, killed). Pending
offers fail with 503 + Retry-After, a new worker is spawned at once and `resume` re-sends
a start for every live space, so each recording continues after a discontinuity.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from majlis.errors import Overloaded
from majlis.media.hls.feed import PlaylistFeed
from majlis.media.hls.origin import SpaceRegistry
from majlis.media.runtime.channel import (
    Message,
    decode_line,
    decode_snapshot,
    encode_frame,
    read_frame,
)
from majlis.media.runtime.node import NodeSettings
from majlis.media.runtime.worker import settings_to_json, worker_environment
from majlis.plane import (
    CaptionsSink,
    Levels,
    LevelsSink,
    MediaCommand,
    NodeLoad,
    Resume,
    Sample,
    decode_error,
    encode_command,
)

__all__ = ["MediaProcess"]

log = logging.getLogger(__name__)

RETRY_AFTER_MS = 1000
# How long an offer waits for a worker that is (re)starting before it is told to retry.
READY_TIMEOUT = 5.0
STOP_TIMEOUT = 60.0
# A scrape does not wait long for a busy worker: its samples are left out instead.
METRICS_TIMEOUT = 1.0
# Restarts back off only when the worker keeps dying young (a crash loop).
MIN_UPTIME = 5.0
MAX_BACKOFF = 5.0


@dataclass
class _Worker:
    process: asyncio.subprocess.Process
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    pending: dict[int, asyncio.Future[Message]] = field(default_factory=dict)

    def send(self, header: Message) -> None:
        if not self.writer.is_closing():
            self.writer.write(encode_frame(header))


class MediaProcess:
    def __init__(
        self,
        settings: NodeSettings,
        registry: SpaceRegistry,
        on_levels: LevelsSink | None = None,
        on_captions: CaptionsSink | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.on_levels = on_levels
        self.on_captions = on_captions
        self.restarts = 0
        self._worker: _Worker | None = None
        self._ready = asyncio.Event()
        self._stopping = False
        self._supervisor: asyncio.Task[None] | None = None
        self._resume: Resume | None = None
        self._resuming: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._feeds: dict[str, PlaylistFeed] = {}
        self._last_load = NodeLoad(0, 0.0)

    @property
    def pid(self) -> int | None:
        worker = self._worker
        return worker.process.pid if worker is not None else None

    # lifecycle (the HTTP loop) -----------------------------------------------------------
    async def start(self, resume: Resume | None = None) -> None:
        """Spawn the worker; `resume` runs after every spawn to restart live spaces."""
        self._resume = resume
        first = await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(first))
        await self._resumed()

    async def stop(self) -> None:
        """Ask the worker to close its recordings (not end them) and wait for it to exit."""
        self._stopping = True
        self._ready.set()  # whoever waits for a worker hears "not running" now
        worker = self._worker
        if worker is not None:
            worker.send({"t": "stop"})
            try:
                await asyncio.wait_for(worker.process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                log.error("media worker %d did not stop; killing it", worker.process.pid)
                worker.process.kill()
                await worker.process.wait()
        if self._resuming is not None:
            self._resuming.cancel()
        if self._supervisor is not None:
            await self._supervisor

    # control -----------------------------------------------------------------------------
    async def handle(self, command: MediaCommand) -> None:
        """One command, forwarded in order; returns once the worker has carried it out
        (a space closed here has its recording closed and unlocked). While the worker
        restarts it waits for the new one, however long a crash loop takes, and a
        command the old one died on goes to the new one: a dropped `end` would leave the
        space's recording open, never a replay. Every command is safe to repeat."""
        header = {"t": "cmd", "command": encode_command(command)}
        while True:
            try:
                await self._request(header, wait_forever=True)
                return
            except Overloaded:
                if self._stopping:
                    return

    async def offer(
        self, space_id: str, user_id: str, sdp: str, muted: bool, started_at: float
    ) -> str:
        reply = await self._request(
            {
                "t": "offer",
                "space": space_id,
                "user": user_id,
                "sdp": sdp,
                "muted": muted,
                "started_at": started_at,
            }
        )
        return str(reply.get("sdp", ""))

    async def metrics(self) -> list[Sample]:
        """The worker's samples, asked for now (so a scrape sees a speaker that just
        connected), and who the worker is."""
        samples: list[Sample] = []
        with contextlib.suppress(Overloaded, TimeoutError):
            reply = await asyncio.wait_for(self._request({"t": "metrics"}), METRICS_TIMEOUT)
            wire = reply.get("samples")
            if isinstance(wire, list):
                samples = [(str(n), dict(labels), float(v)) for n, labels, v in wire]
        return [
            *samples,
            ("majlis_media_worker_pid", {}, float(self.pid or 0)),
            ("majlis_media_worker_restarts_total", {}, float(self.restarts)),
        ]

    async def load(self) -> NodeLoad:
        """The worker's own measure, or its last one while it does not answer at once.
        Not "behind" for a slow answer: the channel is served by the worker's event loop,
        which a busy machine delays past a second while the mixers keep time."""
        if not self._ready.is_set():
            return self._last_load
        with contextlib.suppress(Overloaded, TimeoutError):
            reply = await asyncio.wait_for(self._request({"t": "load"}), METRICS_TIMEOUT)
            self._last_load = NodeLoad(int(reply["spaces"]), float(reply["late_ms"]))
        return self._last_load

    async def playout_delays(self, space_id: str) -> dict[str, float]:
        """The worker's; none from a worker that does not answer at once (a handover then
        starts the other node's buffers at their usual depth)."""
        with contextlib.suppress(Overloaded, TimeoutError):
            request = {"t": "delays", "space": space_id}
            reply = await asyncio.wait_for(self._request(request), METRICS_TIMEOUT)
            wire = reply.get("delays")
            if isinstance(wire, dict):
                return {str(user): float(seconds) for user, seconds in wire.items()}
        return {}

    async def _request(self, header: Message, *, wait_forever: bool = False) -> Message:
        """Send a request and await the worker's reply with the same id; a reply with
        an error re-raises it here as the same MajlisError."""
        worker = await self._current(wait_forever=wait_forever)
        request_id = next(self._ids)
        reply: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        worker.pending[request_id] = reply
        worker.send({**header, "id": request_id})
        try:
            answer = await reply
        finally:
            worker.pending.pop(request_id, None)
        error = answer.get("error")
        if isinstance(error, dict):
            raise decode_error(error)
        return answer

    # the worker --------------------------------------------------------------------------
    async def _current(self, *, wait_forever: bool = False) -> _Worker:
        try:
            await asyncio.wait_for(self._ready.wait(), None if wait_forever else READY_TIMEOUT)
        except TimeoutError:
            raise Overloaded("the media worker is restarting", RETRY_AFTER_MS) from None
        worker = self._worker
        if worker is None or self._stopping:
            raise Overloaded("the media worker is not running", RETRY_AFTER_MS)
        return worker

    async def _spawn(self) -> _Worker:
        ours, theirs = socket.socketpair()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "majlis.media.runtime.worker",
                str(theirs.fileno()),
                settings_to_json(self.settings, _log_levels()),
                pass_fds=(theirs.fileno(),),
                env=worker_environment(self.settings),
                stdin=subprocess.DEVNULL,
                # stdout is the parent's to print its address on; logs go to stderr.
                stdout=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        worker = _Worker(process, reader, writer)
        self._worker = worker
        self._ready.set()
        log.info("media worker %d started", process.pid)
        return worker

    async def _resumed(self) -> None:
        if self._resume is None:
            return
        try:
            await self._resume()
        except Exception:
            log.exception("resuming live spaces on the media worker failed")

    async def _supervise(self, worker: _Worker) -> None:
        backoff = 0.0
        while True:
            born = time.monotonic()
            await self._pump(worker)
            self._ready.clear()
            self._worker = None
            self._fail_pending(worker)
            worker.writer.close()
            code = await worker.process.wait()  # reaped: no zombie
            if self._stopping:
                return
            self.restarts += 1
            young = time.monotonic() - born < MIN_UPTIME
            backoff = _longer(backoff) if young else 0.0
            log.error("media worker %d exited (%s); restarting", worker.process.pid, code)
            respawned = await self._respawn(backoff)
            if respawned is None:
                return
            worker = respawned
            if self._stopping:
                # stop() came while this worker was being spawned and did not see it.
                worker.send({"t": "stop"})
                continue
            # Not awaited here: resuming waits for the worker's replies, which only this
            # loop's _pump reads.
            self._resuming = asyncio.create_task(self._resumed())

    async def _respawn(self, backoff: float) -> _Worker | None:
        """A new worker after `backoff` s, trying again (backing off further) for as long
        as the system refuses one (no memory to fork, no file descriptors); None once
        stopping."""
        while True:
            await asyncio.sleep(backoff)
            if self._stopping:
                return None
            try:
                return await self._spawn()
            except OSError:
                log.exception("cannot start a media worker; trying again")
                backoff = _longer(backoff)

    async def _pump(self, worker: _Worker) -> None:
        """Handle the worker's frames until its socket ends."""
        try:
            while (frame := await read_frame(worker.reader)) is not None:
                self._dispatch(worker, *frame)
        except Exception:
            log.exception("the media worker's channel broke")
            # It may be gone and reaped already; supervision must go on either way.
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()

    def _dispatch(self, worker: _Worker, header: Message, body: bytes) -> None:
        kind = header.get("t")
        space_id = str(header.get("space", ""))
        if kind == "snapshot":
            self._publish(space_id, Path(str(header["dir"])), header, body)
        elif kind == "unregister":
            self._feeds.pop(space_id, None)
            self.registry.unregister(space_id)
        elif kind == "reply":
            self._answer(worker, header)
        elif kind == "levels":
            self._levels(space_id, header.get("levels"))
        elif kind == "captions":
            self._captions(space_id, header.get("lines"))

    def _publish(self, space_id: str, directory: Path, header: Message, body: bytes) -> None:
        snapshot = decode_snapshot(header, body)
        feed = self._feeds.get(space_id)
        if feed is None:
            feed = self._feeds[space_id] = PlaylistFeed(snapshot)
            self.registry.register(space_id, directory, feed)
        else:
            # The same feed across worker restarts: listeners blocked on it wake up.
            feed.publish(snapshot)

    def _answer(self, worker: _Worker, header: Message) -> None:
        reply = worker.pending.get(int(header.get("id", 0)))
        if reply is not None and not reply.done():
            reply.set_result(header)

    def _levels(self, space_id: str, wire: object) -> None:
        if self.on_levels is None or not isinstance(wire, dict):
            return
        levels: Levels = {str(user): (float(v[0]), bool(v[1])) for user, v in wire.items()}
        self.on_levels(space_id, levels)

    def _captions(self, space_id: str, wire: object) -> None:
        if self.on_captions is None or not isinstance(wire, list):
            return
        self.on_captions(space_id, [decode_line(line) for line in wire])

    def _fail_pending(self, worker: _Worker) -> None:
        for answer in worker.pending.values():
            if not answer.done():
                answer.set_exception(
                    Overloaded("the media worker restarted; offer again", RETRY_AFTER_MS)
                )
        worker.pending.clear()


def _longer(backoff: float) -> float:
    """The next wait before a restart: 0.2 s, doubling up to MAX_BACKOFF."""
    return min(MAX_BACKOFF, backoff * 2 or 0.2)


def _log_levels() -> dict[str, int]:
    """The worker logs as verbosely as its parent (cli.py quiets aiortc's ICE chatter)."""
    return {
        name: logging.getLogger(name or None).getEffectiveLevel()
        for name in ("", "aioice", "aiortc")
    }

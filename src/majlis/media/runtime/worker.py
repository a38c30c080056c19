"""The media worker: a child process of `majlis serve` that runs the MediaNode.

Why a process: in one process the mixer's 20 ms ticks share the GIL with HTTP serving,
and under a few hundred listeners they run tens of milliseconds late (docs/benchmarks.md).
Here the mixer, ingest and packager have an interpreter of their own; the parent keeps
HTTP and the origin, fed with the playlist snapshots this process sends (channel.py).

    python -m majlis.media.runtime.worker FD SETTINGS_JSON

The object store's secret key is not in SETTINGS_JSON, since any user can read a
process's command line: it comes in the environment (STORAGE_SECRET_ENV), which only
the owner can read.

FD is this end of a socketpair inherited from the parent. The worker exits when the
parent says stop, on SIGTERM, or when the socket reaches EOF (the parent died): its
recordings are closed, never ended, so the next worker resumes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import json
import logging
import os
import resource
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from majlis.errors import MajlisError
from majlis.media.hls.feed import FeedSnapshot, PlaylistFeed
from majlis.media.hls.origin import SpaceRegistry
from majlis.media.recording.storage import StorageSettings
from majlis.media.runtime.channel import (
    Message,
    encode_frame,
    encode_line,
    encode_snapshot,
    read_frame,
)
from majlis.media.runtime.collector import Collector, collector_from_env
from majlis.media.runtime.heap import snapshot_on_signal
from majlis.media.runtime.node import MediaNode, NodeSettings
from majlis.plane import Levels, MediaCommand, Sample, UnknownCommand, decode_command, encode_error
from majlis.types import TranscriptLine

__all__ = [
    "STORAGE_SECRET_ENV",
    "main",
    "serve",
    "settings_from_json",
    "settings_to_json",
    "worker_environment",
]

log = logging.getLogger("majlis.media.runtime.worker")

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

# A stop closes every space's recording in turn. One that cannot finish (a packager far
# behind on an overloaded node drains for minutes, while the spaces not yet closed keep
# mixing into memory) must not leave a worker running without its parent: past this the
# worker exits at once. Recordings are crash-safe (their journal), so whatever was not
# closed is resumed by the next worker as after a kill -9.
STOP_GRACE_S = 20.0
EXIT_STUCK = 70  # EX_SOFTWARE

# Commands in arrival order, each with the id its reply carries.
Commands = asyncio.Queue[tuple[MediaCommand, object]]

# Not MAJLIS_*: it is no config key, and a config loader must not trip over it.
STORAGE_SECRET_ENV = "_MAJLIS_WORKER_STORAGE_SECRET"


def settings_to_json(settings: NodeSettings, log_levels: dict[str, int] | None = None) -> str:
    storage = settings.storage
    return json.dumps(
        {
            "log_levels": log_levels or {},
            "recordings_root": str(settings.recordings_root),
            "part_seconds": settings.part_seconds,
            "segment_seconds": settings.segment_seconds,
            "bitrate": settings.bitrate,
            "caption_segment_seconds": settings.caption_segment_seconds,
            "caption_model": None
            if settings.caption_model is None
            else str(settings.caption_model),
            "storage": None
            if storage is None
            else {
                "url": storage.url,
                "endpoint": storage.endpoint,
                "region": storage.region,
                "access_key": storage.access_key,
            },
        }
    )


def worker_environment(settings: NodeSettings) -> dict[str, str]:
    """The worker's environment: ours, plus the store's secret (module docstring)."""
    env = dict(os.environ)
    if settings.storage is not None:
        env[STORAGE_SECRET_ENV] = settings.storage.secret_key
    return env


def settings_from_json(text: str) -> NodeSettings:
    raw = json.loads(text)
    storage = raw.get("storage")
    return NodeSettings(
        recordings_root=Path(raw["recordings_root"]),
        part_seconds=float(raw["part_seconds"]),
        segment_seconds=float(raw["segment_seconds"]),
        bitrate=int(raw["bitrate"]),
        caption_segment_seconds=float(raw["caption_segment_seconds"]),
        caption_model=None if raw.get("caption_model") is None else Path(raw["caption_model"]),
        storage=None
        if storage is None
        else StorageSettings(
            url=str(storage["url"]),
            endpoint=str(storage["endpoint"]),
            region=str(storage["region"]),
            access_key=str(storage["access_key"]),
            secret_key=os.environ.get(STORAGE_SECRET_ENV, ""),
        ),
    )


class _Outbox:
    """Frames to the parent from any thread (packager threads publish snapshots, the
    media loop reports levels); the writing itself happens on the channel's loop."""

    def __init__(self, writer: asyncio.StreamWriter, loop: asyncio.AbstractEventLoop) -> None:
        self._writer = writer
        self._loop = loop

    def send(self, header: Message, body: bytes = b"") -> None:
        frame = encode_frame(header, body)
        with contextlib.suppress(RuntimeError):  # the loop is closed: we are exiting
            self._loop.call_soon_threadsafe(self._write, frame)

    def _write(self, frame: bytes) -> None:
        if not self._writer.is_closing():
            self._writer.write(frame)


class _ForwardingRegistry(SpaceRegistry):
    """The node registers each live space's feed here; every snapshot goes to the
    parent's origin, which holds the real registry."""

    def __init__(self, outbox: _Outbox) -> None:
        super().__init__()
        self._outbox = outbox

    def register(self, space_id: str, directory: Path, feed: PlaylistFeed | None = None) -> None:
        super().register(space_id, directory, feed)
        if feed is None:
            return

        def forward(snapshot: FeedSnapshot) -> None:
            header, body = encode_snapshot(snapshot)
            self._outbox.send(
                {"t": "snapshot", "space": space_id, "dir": str(directory), **header}, body
            )

        forward(feed.snapshot())
        feed.on_publish = forward

    def unregister(self, space_id: str) -> None:
        super().unregister(space_id)
        self._outbox.send({"t": "unregister", "space": space_id})


async def serve(sock: socket.socket, settings: NodeSettings) -> None:
    loop = asyncio.get_running_loop()
    snapshot_on_signal(loop)
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    outbox = _Outbox(writer, loop)
    node = MediaNode(settings, _ForwardingRegistry(outbox))

    def levels(space_id: str, values: Levels) -> None:
        wire = {user: [db, speaking] for user, (db, speaking) in values.items()}
        outbox.send({"t": "levels", "space": space_id, "levels": wire})

    def captions(space_id: str, lines: list[TranscriptLine]) -> None:
        outbox.send(
            {"t": "captions", "space": space_id, "lines": [encode_line(line) for line in lines]}
        )

    node.on_levels = levels
    node.on_captions = captions
    await node.start()
    collector = collector_from_env(os.environ)
    background: list[asyncio.Task[None]] = []
    if collector is not None:
        collector.freeze_startup()
        background.append(asyncio.create_task(collector.run()))
    stopping = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    commands: Commands = asyncio.Queue()
    following = asyncio.create_task(_follow(node, commands, outbox))
    offers: set[asyncio.Task[None]] = set()
    reading = asyncio.create_task(_read(reader, node, collector, commands, outbox, offers))
    stop_wait = asyncio.create_task(stopping.wait())
    try:
        await asyncio.wait({reading, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if reading.done() and reading.exception() is not None:
            log.error("the channel to the server broke: %r", reading.exception())
    finally:
        for task in (following, *background, *offers, reading, stop_wait):
            task.cancel()
        watchdog = exit_if_stuck(STOP_GRACE_S)
        # Closed, not ended: the next worker (or the next `majlis serve`) resumes them.
        await node.stop()
        watchdog.cancel()
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def exit_if_stuck(grace_s: float, exit: Callable[[int], object] = os._exit) -> threading.Timer:
    """A timer that ends the process if it is not cancelled within `grace_s`. A thread, not
    a task: it fires whatever the event loop and the media threads are stuck on."""

    def give_up() -> None:
        log.error("the stop did not finish within %.0f s; exiting without it", grace_s)
        logging.shutdown()
        exit(EXIT_STUCK)

    timer = threading.Timer(grace_s, give_up)
    timer.daemon = True
    timer.start()
    return timer


async def _read(
    reader: asyncio.StreamReader,
    node: MediaNode,
    collector: Collector | None,
    commands: Commands,
    outbox: _Outbox,
    offers: set[asyncio.Task[None]],
) -> None:
    while (frame := await read_frame(reader)) is not None:
        header, _ = frame
        kind = header.get("t")
        if kind == "stop":
            return
        if kind == "cmd" and isinstance(header.get("command"), dict):
            try:
                command = decode_command(header["command"])
            except UnknownCommand:
                log.exception("a command this worker does not know")
                continue
            # One after another, as the bus delivers them: an end must not overtake its start.
            commands.put_nowait((command, header.get("id")))
        elif kind == "metrics":
            outbox.send(
                {"t": "reply", "id": header.get("id"), "samples": _metrics(node, collector)}
            )
        elif kind == "load":
            load = node.measure_load()
            reply = {"t": "reply", "id": header.get("id")}
            outbox.send({**reply, "spaces": load.spaces, "late_ms": load.late_ms})
        elif kind == "delays":
            delays = node.measure_delays(str(header.get("space")))
            outbox.send({"t": "reply", "id": header.get("id"), "delays": delays})
        elif kind == "offer":
            task = asyncio.create_task(_offer(node, header, outbox))
            offers.add(task)
            task.add_done_callback(offers.discard)


async def _follow(node: MediaNode, commands: Commands, outbox: _Outbox) -> None:
    while True:
        command, request_id = await commands.get()
        try:
            await node.handle(command)
        except MajlisError as refused:
            log.error("media command %r refused: %s", command, refused)
        except Exception:
            log.exception("media command %r failed", command)
        # Carried out (or failed and logged): the parent may go on, e.g. let go of the
        # space's lease once its recording is closed here.
        outbox.send({"t": "reply", "id": request_id})


async def _offer(node: MediaNode, header: Message, outbox: _Outbox) -> None:
    reply: dict[str, Any] = {"t": "reply", "id": header.get("id")}
    try:
        reply["sdp"] = await node.offer(
            str(header["space"]),
            str(header["user"]),
            str(header["sdp"]),
            bool(header["muted"]),
            float(header["started_at"]),
        )
    except Exception as error:
        if not isinstance(error, MajlisError):
            log.exception("offer for space %s failed", header.get("space"))
        reply["error"] = encode_error(error)
    outbox.send(reply)


def _metrics(node: MediaNode, collector: Collector | None) -> list[Sample]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return [
        *node.samples(),
        *(collector.samples() if collector else []),
        # The server spans two processes: the parent's process_* samples are its own.
        ("majlis_media_worker_cpu_seconds_total", {}, usage.ru_utime + usage.ru_stime),
        ("majlis_media_worker_max_rss_kib", {}, float(usage.ru_maxrss)),
    ]


def _die_with_parent() -> None:
    """SIGTERM when the parent dies, however it dies (Linux). The worker also stops when
    its socket to the parent ends; this covers a worker too busy to read it. SIGTERM, not
    SIGKILL: the recording is closed and its last part kept, as on any stop."""
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise SystemExit("usage: python -m majlis.media.runtime.worker FD SETTINGS_JSON")
    # Ctrl-C in a terminal reaches the whole process group: the parent decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    raw = json.loads(args[1])
    logging.basicConfig(format="media-worker %(levelname)s %(name)s: %(message)s")
    for name, level in dict(raw.get("log_levels", {})).items():
        logging.getLogger(name or None).setLevel(int(level))
    sock = socket.socket(fileno=int(args[0]))
    asyncio.run(serve(sock, settings_from_json(args[1])))


if __name__ == "__main__":
    main()

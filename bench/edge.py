"""Listeners through the edge, side by side with an Icecast anchor in the same run.

One `majlis serve` with one live space and one speaker (`majlis speak --tone`), and
`majlis edge` (nginx + nchan in front of Varnish, and its feeder) in front of it, both
pinned to CPU 0; the simulated listeners and
the Icecast anchor's listeners run in this process on CPU 1 (uvloop, asyncio protocols).
Every simulated listener has a playback token of its own (signed with the server's
secret, as /join would sign it), so the edge's cache key must drop the token for the
audience to collapse.

Deliveries (`--deliveries`):
- `parts`: LL-HLS as hls.js plays it: two connections, blocking playlist reloads for the
  preload hint and every part fetched in order (two requests per 256 ms part).
- `segments`: one connection chaining segment requests: `s{n}.m4s` is answered while it is
  being written and streams its parts as they come (one request per 2 s segment).
- `stream`: the edge's listener stream, one open response per listener carrying every
  fragment as it is made (nginx + nchan, fed once per space). `--sampled` listeners parse
  every fragment (delay and stalls part by part); the others only count bytes and the
  longest wait between reads, which is what lets one core simulate 15,000: such a
  listener stalled if it waited more than a second or received less than 90 % of the
  probe's bytes. A stream ended by the edge (its token's window) is asked for again.

Per phase (delivery, N listeners): listeners start over `--ramp` s, warm up, then a
`--seconds` window. Reported: stalled listeners (a player that starts one part after its
first part and plays parts back to back; a part arriving later than needed stalls it),
edge CPU (every process of `majlis edge`: nginx, varnishd, the feeder; % of one core, and
per 1,000 listeners), origin requests/s
(the edge's own counter MAIN.backend_req), the delay the edge adds (for every part, its
arrival at each listener minus its arrival at a probe listener straight at the origin in
the same run), the simulator's CPU, and what else ran on the machine.

The Icecast anchor (`--icecast N`, Debian's icecast2 fed 64 kb/s MP3 by ffmpeg): N
continuous readers; its CPU per 1,000 listeners is the cost to beat.

    .venv/bin/python bench/edge.py --runs 1 --deliveries parts,segments --counts 1000 --icecast 1000
    .venv/bin/python bench/edge.py --runs 1 --deliveries segments --counts 1000,5000,15000
    .venv/bin/python bench/edge.py --deliveries stream --counts 1000,5000,15000 --icecast 1000,5000

Prints JSON. Traffic goes to 127.0.0.1 only; every phase is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvloop

from listeners import Counters, SimListener, stalls
from majlis.edge import read_counter
from majlis.signing import PLAYBACK, compact_key, compact_mac
from mediabench import (
    CLEAN_OTHERS_PCT,
    MAJLIS,
    SERVER_CPU,
    Api,
    CpuWindow,
    Server,
    is_clean,
    machine,
    median,
    ms,
    pct,
    pin_self_to_client_cpu,
    running_server,
    wait_for_quiet,
)

SECRET = "bench-edge-secret-" + "0123456789abcdef" * 3
_HINT = re.compile(rb'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p(\d+)-(\d+)-(\d+)\.m4s"')
_PART_TARGET = re.compile(rb"PART-TARGET=([\d.]+)")
_PARTS_PER_SEGMENT = 8  # 2 s segments of 256 ms parts, the defaults
ICECAST_BITRATE = 64_000
STREAM_STALL_S = 1.0  # a wait this long between two reads of a stream stalls any player


# --- the edge and the anchor -----------------------------------------------------------------


@dataclass
class Edge:
    url: str
    process: subprocess.Popen[bytes]
    workdir: Path

    def pids(self) -> dict[str, int]:
        """Every process of the edge: `majlis edge` itself (the feeder), varnishd's manager
        and cache process, nginx's master and worker."""
        pids = {"edge_feeder": self.process.pid}
        for child in _children(self.process.pid):
            name = _command(child)
            if name == "varnishd":
                pids["edge_varnish_manager"] = child
                cache = _children(child)
                if cache:
                    pids["edge_varnish"] = cache[0]
            elif name == "nginx":
                pids["edge_nginx_master"] = child
                # Its cache loader comes and goes; the cache manager does nothing here.
                workers = [pid for pid in _children(child) if "worker" in _cmdline(pid)]
                pids |= {f"edge_nginx_{i}": pid for i, pid in enumerate(workers)}
        return pids

    def counter(self, name: str) -> int:
        return read_counter(self.workdir, name)


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(line) for line in found.split()]


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def running_edge(
    origin: str, port: int, env: dict[str, str], threads: int, stream_parts: int = 1
) -> Iterator[Edge]:
    workdir = Path(tempfile.mkdtemp(prefix="majlis-bench-edge-"))
    cmd = ["taskset", "-c", str(SERVER_CPU), MAJLIS, "edge", "--origin", origin]
    cmd += ["--port", str(port), "--workdir", str(workdir), "--threads", str(threads)]
    cmd += ["--stream-parts", str(stream_parts)]
    log = open(workdir.with_suffix(".log"), "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=log)
    assert process.stdout is not None
    line = process.stdout.readline().decode()
    if "listening" not in line:
        process.kill()
        raise SystemExit(f"majlis edge did not start: {line!r} (see {workdir}.log)")
    try:
        yield Edge(f"http://127.0.0.1:{port}", process, workdir)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Icecast:
    url: str
    pid: int
    source: subprocess.Popen[bytes]


@contextlib.contextmanager
def running_icecast() -> Iterator[Icecast]:
    """Debian's icecast2 on CPU 0, fed a 440 Hz sine as 64 kb/s MP3 by ffmpeg."""
    if shutil.which("icecast2") is None:
        raise SystemExit("the Icecast anchor needs icecast2: apt-get install icecast2")
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="majlis-bench-icecast-"))
    folder.chmod(0o755)
    shutil.chown(folder, "icecast2", "icecast")
    (folder / "icecast.xml").write_text(_icecast_config(port, folder))
    server = subprocess.Popen(
        ["taskset", "-c", str(SERVER_CPU), "icecast2", "-c", str(folder / "icecast.xml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    source = subprocess.Popen(
        [
            "taskset",
            "-c",
            str(SERVER_CPU),
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-c:a",
            "libmp3lame",
            "-b:a",
            "64k",
            "-ac",
            "1",
            "-content_type",
            "audio/mpeg",
            "-f",
            "mp3",
            f"icecast://source:benchsource@127.0.0.1:{port}/live.mp3",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/live.mp3"
    _wait_for_mount(url)
    try:
        yield Icecast(url, server.pid, source)
    finally:
        for process in (source, server):
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for_mount(url: str, timeout: float = 20.0) -> None:
    """Until the mount streams at its rate: a reader started before the source is on
    gets little or nothing (a run once had 845 of 1,000 readers below 90 % of the rate)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if _mount_streams(url):
                return
        time.sleep(0.5)
    raise SystemExit(f"the Icecast mount {url} never streamed")


def _mount_streams(url: str) -> bool:
    """Past the burst-on-connect, a second of audio within three seconds."""
    with httpx.stream("GET", url, timeout=5) as response:
        if response.status_code != 200:
            return False
        got, started = 0, time.monotonic()
        for chunk in response.iter_raw():
            got += len(chunk)
            if got >= 65535 + ICECAST_BITRATE / 8:
                return time.monotonic() - started < 3.0
    return False


def _icecast_config(port: int, folder: Path) -> str:
    return f"""<icecast>
  <limits><clients>30000</clients><sources>2</sources><queue-size>524288</queue-size>
    <client-timeout>30</client-timeout><header-timeout>15</header-timeout>
    <source-timeout>10</source-timeout><burst-on-connect>1</burst-on-connect>
    <burst-size>65535</burst-size></limits>
  <authentication><source-password>benchsource</source-password>
    <admin-user>admin</admin-user><admin-password>benchadmin</admin-password></authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket><port>{port}</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <paths><basedir>/usr/share/icecast2</basedir><logdir>{folder}</logdir>
    <webroot>/usr/share/icecast2/web</webroot><adminroot>/usr/share/icecast2/admin</adminroot>
  </paths>
  <logging><accesslog>access.log</accesslog><errorlog>error.log</errorlog>
    <loglevel>1</loglevel></logging>
  <security><chroot>0</chroot>
    <changeowner><user>icecast2</user><group>icecast</group></changeowner></security>
</icecast>
"""


# --- simulated listeners ---------------------------------------------------------------------


class SegmentListener(asyncio.Protocol):
    """One player chaining open-segment requests on one keep-alive connection. Records when
    each part (one moof + mdat) has fully arrived."""

    def __init__(self, base: bytes, msn: int, counters: dict[str, int], part_ticks: int) -> None:
        self.base = base  # b"/hls/SPACE/TOKEN/"
        self.msn = msn
        self.counters = counters
        self.part_ticks = part_ticks  # a part's duration in the track's timescale
        self.arrivals: list[tuple[int, float]] = []  # (part sequence number, arrival time)
        self.transport: asyncio.Transport | None = None
        self._buffer = b""
        self._head: bytes | None = None
        self._chunked = False
        self._left = 0  # bytes of body (or of the current chunk) still to come
        self._crlf = 0  # bytes of the CRLF after a chunk still to come
        self._box_left = 0  # bytes of the current box still to come
        self._box_header = b""
        self._moof = b""  # the current moof box, kept for its decode time
        self._sequence = -1  # the part being received: its decode time in parts
        self.closed = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        self._request()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()

    def _request(self) -> None:
        assert self.transport is not None
        self._head, self._buffer = None, b""
        self._box_left, self._box_header, self._left, self._crlf = 0, b"", 0, 0
        self.transport.write(self._request_line())
        self.counters["requests"] += 1

    def _request_line(self) -> bytes:
        target = self.base + b"s" + str(self.msn).encode() + b".m4s"
        return b"GET " + target + b" HTTP/1.1\r\nHost: edge\r\n\r\n"

    def data_received(self, data: bytes) -> None:
        self.counters["bytes"] += len(data)
        self._buffer += data
        if self._head is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self._head, self._buffer = self._buffer[:end], self._buffer[end + 4 :]
            if not self._head.startswith(b"HTTP/1.1 200"):
                self.counters["non_200"] += 1
            lower = self._head.lower()
            self._chunked = b"transfer-encoding: chunked" in lower
            found = re.search(rb"content-length: *(\d+)", lower)
            if self._chunked:
                self._left = 0
            else:  # neither length nor chunks (the listener stream): the body ends at close
                self._left = int(found.group(1)) if found else 1 << 62
        self._consume()

    def _consume(self) -> None:
        while self._buffer:
            if not self._chunked:
                take = self._buffer[: self._left]
                self._buffer = self._buffer[len(take) :]
                self._left -= len(take)
                self._boxes(take)
                if self._left == 0:
                    self._finished()
                return
            if self._crlf:
                skip = min(self._crlf, len(self._buffer))
                self._buffer, self._crlf = self._buffer[skip:], self._crlf - skip
                continue
            if self._left == 0:
                line_end = self._buffer.find(b"\r\n")
                if line_end < 0:
                    return
                size = int(self._buffer[:line_end].split(b";")[0], 16)
                if size == 0:
                    if len(self._buffer) < line_end + 4:
                        return
                    self._finished()
                    return
                self._buffer, self._left = self._buffer[line_end + 2 :], size
                continue
            take = self._buffer[: self._left]
            self._buffer = self._buffer[len(take) :]
            self._left -= len(take)
            self._boxes(take)
            if self._left == 0:
                self._crlf = 2

    def _boxes(self, data: bytes) -> None:
        """Follow ISO-BMFF box boundaries; a complete mdat completes a part."""
        while data:
            if self._box_left == 0:
                need = 8 - len(self._box_header)
                self._box_header += data[:need]
                data = data[need:]
                if len(self._box_header) < 8:
                    return
                self._box_left = int.from_bytes(self._box_header[:4], "big") - 8
                if self._box_left <= 0:  # an empty box: count it as done at once
                    self._box_done()
                continue
            take = min(self._box_left, len(data))
            if self._box_header[4:8] == b"moof":
                self._moof += data[:take]
            data = data[take:]
            self._box_left -= take
            if self._box_left == 0:
                self._box_done()

    def _box_done(self) -> None:
        kind = self._box_header[4:8]
        if kind == b"moof":
            self._sequence = decode_time(self._moof) // self.part_ticks
            self._moof = b""
        elif kind == b"mdat" and self._sequence >= 0:
            self.arrivals.append((self._sequence, time.time()))
        self._box_header = b""

    def _finished(self) -> None:
        if self._head is not None and self._head.startswith(b"HTTP/1.1 200"):
            self.msn += 1
            self._request()
        else:  # refused or not there yet: ask again a little later
            asyncio.get_running_loop().call_later(0.25, self._request)


def decode_time(moof: bytes) -> int:
    """The baseMediaDecodeTime of a moof's (only) track fragment; -1 without one."""
    at = moof.find(b"tfdt")
    if at < 0:
        return -1
    if moof[at + 4] == 1:
        return int.from_bytes(moof[at + 8 : at + 16], "big")
    return int.from_bytes(moof[at + 8 : at + 12], "big")


def timescale(init: bytes) -> int:
    """The audio track's timescale, from init.mp4's mdhd box."""
    at = init.find(b"mdhd")
    if at < 0:
        raise SystemExit("init.mp4 has no mdhd box")
    offset = at + (24 if init[at + 4] == 1 else 16)
    return int.from_bytes(init[offset : offset + 4], "big")


async def open_segment_listener(
    host: str, port: int, base: bytes, msn: int, counters: dict[str, int], part_ticks: int
) -> SegmentListener:
    loop = asyncio.get_running_loop()
    listener = SegmentListener(base, msn, counters, part_ticks)
    await loop.create_connection(lambda: listener, host, port)
    return listener


class StreamListener(SegmentListener):
    """One player on the edge's listener stream, parsing every fragment (the sample that
    measures added delay and stalls part by part). The stream is asked for with
    `Connection: close`, so the edge ending it (its expiry window closed) closes the
    connection, and the listener opens a new one, as the web player does."""

    address: tuple[str, int] = ("127.0.0.1", 0)
    closing = False
    dialing: asyncio.Future[None] | None = None

    def _request_line(self) -> bytes:
        target = self.base + b"stream"
        return b"GET " + target + b" HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n"

    def _finished(self) -> None:
        pass  # the connection closes next; connection_lost redials

    def connection_lost(self, exc: Exception | None) -> None:
        redial(self, self.counters)


class StreamReader(asyncio.Protocol):
    """One listener on the edge's listener stream that only counts: bytes, and the longest
    wait between two reads (a wait over a second is a stall for any player keeping less
    than that behind). Cheap enough to run 15,000 of on one core."""

    def __init__(self, base: bytes, counters: dict[str, int]) -> None:
        self.request = (
            b"GET " + base + b"stream HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n"
        )
        self.counters = counters
        self.transport: asyncio.Transport | None = None
        self.address: tuple[str, int] = ("127.0.0.1", 0)
        self.closing = False
        self.dialing: asyncio.Future[None] | None = None
        self.bytes = 0
        self.last = 0.0
        self.longest = 0.0
        self._head = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        self._head = True
        transport.write(self.request)  # type: ignore[attr-defined]
        self.counters["requests"] += 1

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if self._head:
            self._head = False
            if not data.startswith(b"HTTP/1.1 200"):
                self.counters["non_200"] += 1
        self.counters["bytes"] += len(data)
        self.bytes += len(data)
        if self.last and now - self.last > self.longest:
            self.longest = now - self.last
        self.last = now

    def connection_lost(self, exc: Exception | None) -> None:
        redial(self, self.counters)

    def measure(self) -> None:
        """Start the window: the longest wait counts from now."""
        self.longest, self.last = 0.0, time.time()


def redial(listener: StreamListener | StreamReader, counters: dict[str, int]) -> None:
    """Open a new connection for a stream listener whose stream ended, unless the bench is
    closing it."""
    listener.transport = None
    if listener.closing:
        return
    counters["reconnects"] += 1

    async def dial() -> None:
        try:
            await asyncio.get_running_loop().create_connection(lambda: listener, *listener.address)
        except OSError:
            counters["exceptions"] += 1

    listener.dialing = asyncio.ensure_future(dial())


class IcecastReader(asyncio.Protocol):
    def __init__(self, counters: dict[str, int]) -> None:
        self.counters = counters
        self.received: list[tuple[float, int]] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        transport.write(b"GET /live.mp3 HTTP/1.0\r\nHost: icecast\r\n\r\n")
        self.counters["requests"] += 1

    def data_received(self, data: bytes) -> None:
        self.counters["bytes"] += len(data)
        self.received.append((time.time(), len(data)))


# --- phases ----------------------------------------------------------------------------------


def mint_bases(space: str, count: int) -> list[bytes]:
    """Playback paths with a token of their own each, as /join would sign them."""
    key = compact_key(SECRET.encode(), PLAYBACK)
    expiry = int(time.time()) + 3600
    bases = []
    for index in range(count):
        body = f"{PLAYBACK}.{space}.anon:bench{index:06d}.{expiry}"
        bases.append(f"/hls/{space}/{body}.{compact_mac(key, body)}/".encode())
    return bases


@dataclass(frozen=True)
class Position:
    msn: int  # the segment being written
    part: float  # a part's duration, s
    part_ticks: int  # the same in the track's timescale


async def open_position(url: str, base: bytes) -> Position:
    """Where the live space is, from its playlist and init segment."""
    async with httpx.AsyncClient(timeout=10) as http:
        scale = timescale((await http.get(url + base.decode() + "init.mp4")).content)
        for _ in range(100):
            body = (await http.get(url + base.decode() + "index.m3u8")).content
            hint = _HINT.search(body)
            if hint:
                target = _PART_TARGET.search(body)
                part = float(target.group(1)) if target else 0.256
                return Position(int(hint.group(2)), part, round(part * scale))
            await asyncio.sleep(0.1)
    raise SystemExit("the live playlist never showed a preload hint")


@dataclass
class Crowd:
    """Listeners of one delivery; `arrivals` per listener as (sequence, time)."""

    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    protocols: list[Any] = field(default_factory=list)
    counters: dict[str, int] = field(
        default_factory=lambda: {
            "requests": 0, "bytes": 0, "non_200": 0, "exceptions": 0, "reconnects": 0
        }
    )  # fmt: skip
    readers: list[StreamReader] = field(default_factory=list)
    parts_counters: Counters = field(default_factory=Counters)

    def arrivals(self) -> list[list[tuple[int, float]]]:
        out = []
        for listener in self.protocols:
            if isinstance(listener, SimListener):
                out.append([(_sequence(name), at) for name, at in listener.arrivals])
            else:
                out.append(list(listener.arrivals))
        return out

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for listener in [*self.protocols, *self.readers]:
            listener.closing = True
            if getattr(listener, "dialing", None) is not None:
                listener.dialing.cancel()
            transport = getattr(listener, "transport", None)
            if transport is not None:
                transport.close()


def _sequence(name: bytes) -> int:
    found = re.fullmatch(rb"p\d+-(\d+)-(\d+)\.m4s", name)
    assert found is not None
    return int(found.group(1)) * _PARTS_PER_SEGMENT + int(found.group(2))


async def start_crowd(
    delivery: str,
    url: str,
    bases: list[bytes],
    at: Position,
    ramp: float,
    crowd: Crowd,
    sampled: int = 0,
) -> None:
    """Listeners of `delivery` at `url`; for the stream, `sampled` of them, spread evenly,
    parse every fragment and the others only count."""
    parts = httpx.URL(url)
    host, port = parts.host, parts.port or 80
    loop = asyncio.get_running_loop()
    msn = at.msn
    # The sample is spread over the crowd: nginx writes a message to its listeners in turn,
    # so the first to connect and the last see different delays.
    every = max(1, len(bases) // sampled) if sampled else 0
    for index, base in enumerate(bases):
        if delivery == "stream":
            stream: StreamListener | StreamReader
            if every and index % every == 0 and index // every < sampled:
                stream = StreamListener(base, msn, crowd.counters, at.part_ticks)
                crowd.protocols.append(stream)
            else:
                stream = StreamReader(base, crowd.counters)
                crowd.readers.append(stream)
            stream.address = (host, port)
            try:
                await loop.create_connection(lambda s=stream: s, host, port)  # type: ignore[misc]
            except OSError:
                crowd.counters["exceptions"] += 1
        elif delivery == "segments":
            try:
                crowd.protocols.append(
                    await open_segment_listener(
                        host, port, base, msn, crowd.counters, at.part_ticks
                    )
                )
            except OSError:
                crowd.counters["exceptions"] += 1
        else:
            listener = SimListener(host, port, base, crowd.parts_counters)
            crowd.protocols.append(listener)
            crowd.tasks.append(asyncio.create_task(listener.run()))
        if ramp:
            await asyncio.sleep(ramp / len(bases))
        if index % 500 == 499 and delivery != "stream":
            msn = max(msn, _newest_msn(crowd))


def _newest_msn(crowd: Crowd) -> int:
    """The segment being written: the newest any segment listener asks for, else from the
    newest part any part listener has."""
    asked = [p.msn for p in crowd.protocols if isinstance(p, SegmentListener)]
    if asked:
        return max(asked)
    newest = [seq for arrivals in crowd.arrivals() for seq, _ in arrivals[-1:]]
    return max(newest, default=0) // _PARTS_PER_SEGMENT


async def phase(
    server: Server, edge: Edge, space: str, delivery: str, count: int, args: argparse.Namespace
) -> dict[str, Any]:
    bases = mint_bases(space, count + 1)
    at = await open_position(edge.url, bases[0])
    probe, crowd = Crowd(), Crowd()
    # The probe is straight at the origin; the stream exists only at the edge, so its
    # probe follows segments (the parts' decode times name them alike).
    probing = "segments" if delivery == "stream" else delivery
    await start_crowd(probing, server.url, bases[-1:], at, 0, probe)
    await start_crowd(delivery, edge.url, bases[:count], at, args.ramp, crowd, args.sampled)
    await asyncio.sleep(args.warmup)
    fetches = edge.counter("MAIN.backend_req")
    before, probe_before = dict(_counts(crowd)), probe.counters["bytes"]
    edge_pids = edge.pids()
    window = CpuWindow({**server.pids(), **edge_pids, "client": os.getpid()})
    for reader in crowd.readers:
        reader.measure()
    read_before = [reader.bytes for reader in crowd.readers]
    start = time.time()
    await asyncio.sleep(args.seconds)
    end = time.time()
    cpu = window.finish()
    fetches = edge.counter("MAIN.backend_req") - fetches
    after, probe_bytes = _counts(crowd), probe.counters["bytes"] - probe_before
    read = [reader.bytes - b for reader, b in zip(crowd.readers, read_before, strict=True)]
    longest = [reader.longest for reader in crowd.readers]
    await crowd.close()
    await probe.close()

    first_at = {seq: when for seq, when in probe.arrivals()[0]}
    added: list[float] = []
    stalled, events = 0, 0
    for arrivals in crowd.arrivals():
        n, _ = stalls(arrivals, at.part, at.part, start, end)
        stalled += n > 0
        events += n
        added += [
            when - first_at[seq]
            for seq, when in arrivals
            if start <= when <= end and seq in first_at
        ]
    # The counting readers: a wait over a second, or less than 90 % of the probe's bytes.
    short = sum(got < 0.9 * probe_bytes for got in read)
    waited = sum(gap > STREAM_STALL_S for gap in longest)
    stalled += sum(
        got < 0.9 * probe_bytes or gap > STREAM_STALL_S
        for got, gap in zip(read, longest, strict=True)
    )
    elapsed = end - start
    edge_cpu = sum(cpu.get(f"{name}_cpu_pct", 0.0) for name in edge_pids)
    requests = after["requests"] - before["requests"]
    result: dict[str, Any] = {
        "delivery": delivery,
        "listeners": count,
        "connected": len(crowd.protocols) + len(crowd.readers),
        "stalled_listeners": stalled,
        "stall_events": events,
        "edge_cpu_pct": round(edge_cpu, 1),
        "edge_cpu_pct_per_1k": round(edge_cpu * 1000 / count, 2),
        "origin_requests_per_s": round(fetches / elapsed, 2),
        "edge_requests_per_s": round(requests / elapsed, 1),
        "requests_per_listener_s": round(requests / elapsed / count, 3),
        "mbit_per_s": round((after["bytes"] - before["bytes"]) * 8 / elapsed / 1e6, 2),
        "non_200": after["non_200"] - before["non_200"],
        "client_exceptions": after["exceptions"],
        "edge_added_delay_ms": {
            "p50": ms(pct(added, 50)),
            "p95": ms(pct(added, 95)),
            "p99": ms(pct(added, 99)),
            "samples": len(added),
        },
        "cpu": cpu,
        "client_saturated": cpu["client_cpu_pct"] > 90.0,
    }
    if crowd.readers:
        result["readers"] = {
            "count": len(read),
            "below_90pct_of_probe_bytes": short,
            "longest_wait_over_1s": waited,
            "longest_wait_s": {
                "p50": pct(longest, 50),
                "p99": pct(longest, 99),
                "max": max(longest, default=None),
            },
            "reconnects": after["reconnects"] - before["reconnects"],
        }
    return result


def _counts(crowd: Crowd) -> dict[str, int]:
    """The segment listeners' counters plus the part listeners' (bench/listeners.py's)."""
    parts = crowd.parts_counters
    counts = dict(crowd.counters)
    counts["requests"] += parts.requests
    counts["bytes"] += parts.bytes
    counts["non_200"] += parts.non_200
    counts["exceptions"] += parts.exceptions
    return counts


async def icecast_phase(icecast: Icecast, count: int, args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    counters = {"requests": 0, "bytes": 0}
    readers: list[IcecastReader] = []
    url = httpx.URL(icecast.url)
    for _ in range(count):
        reader = IcecastReader(counters)
        with contextlib.suppress(OSError):
            await loop.create_connection(lambda r=reader: r, url.host, url.port)  # type: ignore[misc]
            readers.append(reader)
        await asyncio.sleep(max(args.ramp, count / 200) / count)  # its listen backlog is short
    await asyncio.sleep(args.warmup)
    window = CpuWindow({"icecast": icecast.pid, "client": os.getpid()})
    start = time.time()
    await asyncio.sleep(args.seconds)
    end = time.time()
    cpu = window.finish()
    expected = ICECAST_BITRATE / 8 * (end - start)
    short = 0
    for reader in readers:
        got = sum(size for at, size in reader.received if start <= at <= end)
        short += got < 0.9 * expected
        if reader.transport is not None:
            reader.transport.close()
    return {
        "delivery": "icecast",
        "listeners": count,
        "connected": len(readers),
        "listeners_below_90pct_rate": short,
        "icecast_cpu_pct": cpu["icecast_cpu_pct"],
        "icecast_cpu_pct_per_1k": round(cpu["icecast_cpu_pct"] * 1000 / count, 2),
        "cpu": cpu,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    phases: list[dict[str, Any]] = []
    env = {"MAJLIS_SECRET_KEY": SECRET}
    edge_port = free_port()
    env["MAJLIS_EDGE_URL"] = f"http://127.0.0.1:{edge_port}"
    with running_server(env) as server:
        api = Api(server)
        api.register("host")
        space = api.create_space("host", "Edge bench")["id"]
        speaker = await asyncio.create_subprocess_exec(
            "taskset", "-c", "1", MAJLIS, "speak", space, "--server", server.url,
            "--user", "host", "--tone", "440", "--duration", "100000",
            env=server.env, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert speaker.stdout is not None
        if b"connected" not in await asyncio.wait_for(speaker.stdout.readline(), 30):
            raise SystemExit("the speaker did not connect")
        await asyncio.sleep(3.0)
        threads = max(1000, max(args.counts) // 2 + 500)
        for run in range(args.runs):
            for parts in args.stream_parts:
                # Each --stream-parts value gets an edge of its own; the other deliveries
                # do not depend on it and run with the first.
                deliveries = [
                    d for d in args.deliveries if d == "stream" or parts == args.stream_parts[0]
                ]
                with running_edge(server.url, edge_port, server.env, threads, parts) as edge:
                    for delivery in deliveries:
                        for count in args.counts:
                            quiet = wait_for_quiet(args.load_threshold, args.max_wait)
                            result = await phase(server, edge, space, delivery, count, args)
                            result |= {"run": run, "load_before": quiet}
                            if delivery == "stream":
                                result["stream_parts"] = parts
                            result["clean"] = is_clean(result["cpu"])
                            phases.append(result)
                            print(json.dumps(result), file=sys.stderr, flush=True)
            if args.icecast:
                with running_icecast() as icecast:
                    for count in args.icecast:
                        result = await icecast_phase(icecast, count, args)
                        result |= {"run": run, "clean": is_clean(result["cpu"])}
                        phases.append(result)
                        print(json.dumps(result), file=sys.stderr, flush=True)
        speaker.terminate()
        await speaker.wait()
        api.close()
    return {
        "benchmark": "edge",
        "machine": machine(),
        "args": vars(args),
        "clean_means": f"other processes used <= {CLEAN_OTHERS_PCT}% of a core in the window",
        "phases": phases,
        "summary": _summary(phases),
    }


def _summary(phases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def key(p: dict[str, Any]) -> tuple[str, int, int]:
        return p["delivery"], p.get("stream_parts", 0), p["listeners"]

    out = []
    for delivery, parts, count in sorted({key(p) for p in phases}):
        mine = [p for p in phases if key(p) == (delivery, parts, count)]
        cost = "icecast_cpu_pct_per_1k" if delivery == "icecast" else "edge_cpu_pct_per_1k"
        row: dict[str, Any] = {
            "delivery": delivery,
            "listeners": count,
            **({"stream_parts": parts} if parts else {}),
            "runs": len(mine),
            "clean_runs": sum(p["clean"] for p in mine),
            "cpu_pct_per_1k_median": median([p[cost] for p in mine]),
        }
        if delivery != "icecast":
            row |= {
                "stalled_listeners_each": [p["stalled_listeners"] for p in mine],
                "origin_requests_per_s_median": median([p["origin_requests_per_s"] for p in mine]),
                "added_delay_p95_ms_median": median(
                    [p["edge_added_delay_ms"]["p95"] for p in mine]
                ),
            }
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--deliveries",
        type=lambda text: text.split(","),
        default=["parts", "segments"],
        help="parts, segments, stream (comma separated)",
    )
    parser.add_argument(
        "--counts", type=lambda text: [int(v) for v in text.split(",")], default=[1000]
    )
    parser.add_argument(
        "--icecast",
        type=lambda text: [int(v) for v in text.split(",")] if text else [],
        default=[],
        help="listener counts for the Icecast anchor (needs icecast2)",
    )
    parser.add_argument(
        "--stream-parts",
        type=lambda text: [int(v) for v in text.split(",")],
        default=[1],
        help="majlis edge --stream-parts values to compare, each with an edge of its own",
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="measurement window")
    parser.add_argument(
        "--sampled",
        type=int,
        default=200,
        help="stream listeners that parse every fragment (delay, stalls per part); "
        "the others count bytes and waits",
    )
    parser.add_argument("--ramp", type=float, default=5.0, help="s over which listeners start")
    parser.add_argument("--warmup", type=float, default=4.0, help="s after the ramp")
    parser.add_argument("--load-threshold", type=float, default=0.7)
    parser.add_argument("--max-wait", type=float, default=120.0)
    args = parser.parse_args()
    for kind in args.deliveries or []:
        if kind not in ("parts", "segments", "stream"):
            parser.error(f"unknown delivery {kind!r}")
    if max(args.counts + (args.icecast or [0])) > 18_000:
        parser.error("at most 18,000 listeners (this process's file limit is 20,000)")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    pin_self_to_client_cpu()
    result = uvloop.run(main_async(args))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

"""The edge's feeder: pulls each listened-to space once and publishes its fragments to nginx.

For every space with a listener on this edge, one task follows the space's segments
through the edge's own Varnish (so tiers and collapsing work as for any player: it asks
for `s{n}.m4s`, which streams its parts as they are written, then `s{n+1}.m4s`), cuts the
bytes into fMP4 fragments (`moof` + `mdat`) and publishes each, as it completes, to the
space's nchan channels: one per expiry window that a valid token can fall in right now.
nginx then writes it to every subscriber from its event loop.

When a window ends, its channel is deleted: nchan closes those streams, whose tokens have
all expired, and their players reconnect with the token the heartbeat renewed. A banned
listener gets no new token, so their stream ends within a window of their token's expiry.

A space starts being fed when nginx says a listener subscribed (`GET /notify/{space}`,
cached by nginx for a second per space) and stops when the space ends (its channels are
deleted, so every stream of it ends) or when no listener has subscribed for a horizon and
two windows, by when every stream of it has been closed by its window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from majlis.signing import PLAYBACK, compact_mac

__all__ = ["FeedSettings", "Feeder", "Fragmenter"]

log = logging.getLogger("majlis.edge.feeder")

_SPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p\d+-(\d+)-\d+\.m4s"')
_PART = re.compile(r'#EXT-X-PART:.*URI="p\d+-(\d+)-\d+\.m4s"')
_UPSTREAM_TOKEN_S = 300
_RETRY_S = 0.5
# A request line and headers from nginx's subrequest: a few hundred bytes.
_MAX_REQUEST = 4096


@dataclass(frozen=True, slots=True)
class FeedSettings:
    upstream: str  # the edge's Varnish: http://127.0.0.1:port
    publisher: str  # nchan's publisher: http://127.0.0.1:port/publish
    playback_key: bytes
    window_s: int
    horizon_s: int
    parts_per_message: int = 1  # fragments sent to listeners together (fewer, larger writes)


class Fragmenter:
    """Cuts a byte stream of top-level MP4 boxes into fragments, each ending with an mdat."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._fragment_end = 0  # bytes of _buffer that are whole boxes

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        fragments: list[bytes] = []
        while len(self._buffer) - self._fragment_end >= 8:
            size, kind = struct.unpack_from(">I4s", self._buffer, self._fragment_end)
            if size == 1:
                if len(self._buffer) - self._fragment_end < 16:
                    break
                (size,) = struct.unpack_from(">Q", self._buffer, self._fragment_end + 8)
            if size < 8:
                raise ValueError(f"a box of {size} bytes: not an MP4 stream")
            if len(self._buffer) - self._fragment_end < size:
                break
            self._fragment_end += size
            if kind == b"mdat":
                fragments.append(bytes(self._buffer[: self._fragment_end]))
                del self._buffer[: self._fragment_end]
                self._fragment_end = 0
        return fragments


class Feeder:
    def __init__(
        self,
        settings: FeedSettings,
        client: httpx.AsyncClient,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._client = client
        self._clock = clock
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wanted: dict[str, float] = {}  # space → when a listener last subscribed
        self._windows: dict[str, set[int]] = {}  # space → windows published and not deleted

    @property
    def spaces(self) -> list[str]:
        return sorted(self._tasks)

    def want(self, space: str) -> None:
        """A listener subscribed to this space: feed it if nobody does yet."""
        self._wanted[space] = self._clock()
        self._windows.setdefault(space, set()).update(self._open_windows())
        task = self._tasks.get(space)
        if task is None or task.done():
            self._tasks[space] = asyncio.create_task(self._feed(space), name=f"feed {space}")

    async def sweep(self) -> None:
        """Close the windows that ended; stop feeding spaces nobody has joined for long."""
        now = self._clock()
        idle = self._settings.horizon_s + 2 * self._settings.window_s
        for space in list(self._windows):
            ended = sorted(w for w in self._windows[space] if w * self._settings.window_s <= now)
            if ended:
                await self._delete(space, ended)
        for space, task in list(self._tasks.items()):
            if task.done() or now - self._wanted.get(space, 0) > idle:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                del self._tasks[space]
                self._wanted.pop(space, None)
                await self._delete(space, sorted(self._windows.get(space, ())))

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()

    # the feed of one space ------------------------------------------------------------
    async def _feed(self, space: str) -> None:
        msn: int | None = None
        while True:
            if msn is None:
                msn = await self._newest_segment(space)
                if msn is None:
                    await self._delete(space, sorted(self._windows.get(space, ())))
                    return  # ended, or never live
            try:
                status = await self._follow(space, msn)
            except (httpx.HTTPError, ValueError) as error:
                log.warning("space %s segment %d: %s", space, msn, error)
                status = 0
            if status == 200:
                msn += 1
                continue
            msn = None
            await asyncio.sleep(_RETRY_S)

    async def _follow(self, space: str, msn: int) -> int:
        """Stream one segment, publishing its fragments as they complete, `parts_per_message`
        at a time (the segment's last ones, however many); its status."""
        fragments = Fragmenter()
        batch: list[bytes] = []
        url = self._url(space, f"s{msn}.m4s")
        async with self._client.stream("GET", url) as response:
            if response.status_code != 200:
                return response.status_code
            async for chunk in response.aiter_raw():
                for fragment in fragments.feed(chunk):
                    batch.append(fragment)
                    if len(batch) >= self._settings.parts_per_message:
                        await self._publish(space, b"".join(batch))
                        batch.clear()
        if batch:
            await self._publish(space, b"".join(batch))
        return 200

    async def _newest_segment(self, space: str) -> int | None:
        """The segment being written, from the playlist; None once the space has ended."""
        while True:
            try:
                response = await self._client.get(self._url(space, "index.m3u8"))
            except httpx.HTTPError as error:
                log.warning("space %s playlist: %s", space, error)
                await asyncio.sleep(_RETRY_S)
                continue
            text = response.text
            if response.status_code != 200:
                # Not live yet (404), or our own token refused: say so, keep trying while
                # someone listens.
                if response.status_code != 404:
                    log.warning("space %s playlist: %d", space, response.status_code)
                await asyncio.sleep(_RETRY_S)
                continue
            if "#EXT-X-ENDLIST" in text:
                return None
            found = _HINT.search(text) or _last(_PART, text)
            if found is not None:
                return int(found.group(1))
            await asyncio.sleep(_RETRY_S)  # live, but no part yet

    # nchan ------------------------------------------------------------------------------
    def _open_windows(self) -> range:
        """The windows a token valid now can subscribe to: from now's to the horizon's,
        and one more for a token checked a moment later than now."""
        window_s = self._settings.window_s
        now = self._clock()
        first = math.ceil(now / window_s)
        return range(first, math.ceil((now + self._settings.horizon_s) / window_s) + 2)

    async def _publish(self, space: str, fragment: bytes) -> None:
        windows = self._open_windows()
        published = self._windows.setdefault(space, set())
        published.update(windows)
        channels = ",".join(f"{space}~{w}" for w in windows)
        response = await self._client.post(self._channels_url(channels), content=fragment)
        if response.status_code >= 300:
            log.warning("publishing to %s: %d", space, response.status_code)

    async def _delete(self, space: str, windows: list[int]) -> None:
        published = self._windows.get(space, set())
        for start in range(0, len(windows), 7):  # nchan takes up to 7 channels per request
            batch = windows[start : start + 7]
            channels = ",".join(f"{space}~{w}" for w in batch)
            with contextlib.suppress(httpx.HTTPError):
                await self._client.delete(self._channels_url(channels))
            published.difference_update(batch)
        if not published:
            self._windows.pop(space, None)

    def _channels_url(self, channels: str) -> str:
        # Not `params=`: httpx would escape the commas, and nginx's $arg_ is not unescaped,
        # so nchan would see one channel named after the whole list.
        return f"{self._settings.publisher}?channels={channels}"

    def _url(self, space: str, name: str) -> str:
        expiry = int(self._clock()) + _UPSTREAM_TOKEN_S
        body = f"{PLAYBACK}.{space}.edge.{expiry}"
        token = f"{body}.{compact_mac(self._settings.playback_key, body)}"
        return f"{self._settings.upstream}/hls/{space}/{token}/{name}"


def _last(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    matches = list(pattern.finditer(text))
    return matches[-1] if matches else None


async def serve_notifications(feeder: Feeder, host: str, port: int) -> asyncio.Server:
    """nginx's subrequest `GET /notify/{space}` on loopback: 204, or 400 for anything else."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            writer.close()
            return
        line = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
        space = line[1].removeprefix("/notify/") if len(line) == 3 else ""
        if line[0] == "GET" and _SPACE.fullmatch(space):
            feeder.want(space)
            writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, host, port, limit=_MAX_REQUEST)


async def run_feeder(settings: FeedSettings, host: str, port: int) -> None:
    """Serve notifications and feed spaces until cancelled."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
    timeout = httpx.Timeout(30.0, connect=2.0)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        feeder = Feeder(settings, client)
        server = await serve_notifications(feeder, host, port)
        try:
            while True:
                await asyncio.sleep(1.0)
                await feeder.sweep()
        finally:
            server.close()
            await feeder.close()

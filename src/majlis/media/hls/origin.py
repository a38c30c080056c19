"""The HLS origin: serves each space's playlist, init segment, parts, segments and replay.

Live spaces are answered from their PlaylistFeed (blocking playlist reload, preload-hinted
parts held until written); spaces without a feed (ended earlier, or whose node is gone)
are answered from their directory alone. Routes:

    GET /{space_id}/index.m3u8[?_HLS_msn=M[&_HLS_part=N]][&_HLS_skip=YES]
    GET /{space_id}/main.m3u8
    GET /{space_id}/replay.m4a
    GET /{space_id}/init.mp4 | s{msn}.m4s | p{life}-{msn}-{part}.m4s
    GET /{space_id}/captions.m3u8 | c{k}.vtt

index.m3u8 is the audio's media playlist, which every client played before captions
existed and may go on playing. main.m3u8 is the multivariant playlist: that audio as its
one variant and, once the space has live captions (media/hls/subtitles.py writes
captions.m3u8), a WebVTT subtitles rendition (EXT-X-MEDIA TYPE=SUBTITLES) that hls.js and
native players show. It is made here from what the directory holds, so every space has
one, captions or not; once the space has ended it lists the audio alone (the rendition
kept only its last segments; replays have their transcript). The captions playlist is a
plain live playlist served from disk (players reload it every target duration; no
blocking reload for text).

A segment of a live space is served while it is being written: asking for the open
segment, or the next one, answers at once and streams its parts as they are written, and
ends with its last part; its bytes are exactly those of the finished file. A player that
chains segment requests this way gets LL-HLS latency from one request per segment instead
of two per part, and an edge collapses the whole audience's requests for a segment into
one origin fetch that it streams to all of them.

_HLS_skip=YES asks for a Playlist Delta Update (RFC 8216bis 6.2.5.1): the segments older
than the CAN-SKIP-UNTIL boundary are replaced by one EXT-X-SKIP tag, so a listener that
reloads a three-hour space four times a second fetches a few kilobytes, not the whole
recording's index. It combines with blocking reload. Only live feeds advertise
CAN-SKIP-UNTIL; an ended playlist, or one served from disk, ignores the directive and is
answered in full, as 6.2.5.1 requires. A live playlist refuses _HLS_skip=v2 (skip date
ranges too): we list no date ranges and do not advertise CAN-SKIP-DATERANGES (6.3.7).

Cache-Control: media files never change under a name (the recording module guarantees
it), so they are immutable. The live playlist without directives changes with every part:
max-age=1, and so does a delta asked for without _HLS_msn. A blocking reload response,
full or delta, may be cached longer (six target durations): its query names the content,
since any playlist that contains part N of segment M remains a correct answer to
"_HLS_msn=M&_HLS_part=N" (an EVENT playlist only grows), and a client that gets an older
copy simply asks for the next part. A delta stays mergeable just as long: it was made
while part N was new (clients ask for deltas only while their copy is younger than half
the skip boundary, 6.3.7), so it skips only segments that every client asking for part N
already holds. Edges can then collapse a whole audience's identical requests into one.
An ended playlist and the replay no longer change.

With an object store (storage_url), a recording's init segment, segments, playlist and
replay that are not on this disk (the space ran on another machine, or its directory is
gone) are streamed from the store with the same headers; an unreachable store is a 503.

Every path component is checked against a strict pattern before it touches the disk, so
no request can name a file outside a space's directory. Bad input gets a 4xx with a JSON
reason, never a 500.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

from majlis.errors import BadRequest, MajlisError, NotFound
from majlis.media.hls.feed import FeedSnapshot, PlaylistFeed
from majlis.media.hls.subtitles import CAPTION_NAME, CAPTIONS_PLAYLIST
from majlis.media.recording.directory import (
    INIT_NAME,
    PART_NAME,
    PLAYLIST_NAME,
    REPLAY_NAME,
    SEGMENT_NAME,
    part_name,
    segment_name,
)
from majlis.media.recording.mirror import object_key
from majlis.media.recording.storage import ObjectStore, StorageError, StoredObject

__all__ = ["SPACE_ID", "SpaceEntry", "SpaceRegistry", "create_origin"]

SPACE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_DECIMAL = re.compile(r"[0-9]{1,10}")
# The enumerated values of _HLS_skip (RFC 8216bis 6.2.5.1); enumerated strings are
# case-sensitive.
_SKIP_SEGMENTS = "YES"
_SKIP_DATERANGES = "v2"

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
MEDIA_TYPE = "audio/mp4"
VTT_TYPE = "text/vtt; charset=utf-8"
MULTIVARIANT_NAME = "main.m3u8"
# The variant's BANDWIDTH (peak bits a second). There is one variant, so nothing is
# chosen by it; it is an upper bound for AAC-LC mono at any configured bitrate.
_BANDWIDTH = 192_000
_CODECS = "mp4a.40.2"  # AAC-LC
IMMUTABLE = "public, max-age=31536000, immutable"
LIVE_PLAYLIST = "public, max-age=1"
FINISHED = "public, max-age=86400"
NO_STORE = "no-store"
# Blocking reload responses stay valid for the query that named them (module docstring).
BLOCKING_RESPONSE_TARGET_DURATIONS = 6
# RFC 8216bis 6.2.5.2: answer 503 after blocking for three target durations.
BLOCKING_TIMEOUT_TARGET_DURATIONS = 3
_ENDLIST = b"#EXT-X-ENDLIST"


@dataclass(frozen=True, slots=True)
class SpaceEntry:
    directory: Path
    feed: PlaylistFeed | None
    store: ObjectStore | None = None  # where files missing from directory may be

    @property
    def space_id(self) -> str:
        return self.directory.name


class SpaceRegistry:
    """Which spaces the origin serves: live ones with their feed, finished ones by
    directory. With a recordings_root, an unregistered id falls back to root/id; with a
    store too, to whatever the store holds for it."""

    def __init__(
        self, recordings_root: Path | None = None, store: ObjectStore | None = None
    ) -> None:
        self._root = recordings_root
        self._store = store
        self._entries: dict[str, SpaceEntry] = {}
        self._lock = threading.Lock()

    def register(self, space_id: str, directory: Path, feed: PlaylistFeed | None = None) -> None:
        if not SPACE_ID.fullmatch(space_id):
            raise ValueError(f"space id {space_id!r} does not match {SPACE_ID.pattern}")
        with self._lock:
            self._entries[space_id] = SpaceEntry(directory, feed)

    def unregister(self, space_id: str) -> None:
        with self._lock:
            self._entries.pop(space_id, None)

    def resolve(self, space_id: str) -> SpaceEntry | None:
        if not SPACE_ID.fullmatch(space_id):
            return None
        with self._lock:
            entry = self._entries.get(space_id)
        if entry is not None:
            return SpaceEntry(entry.directory, entry.feed, self._store)
        if self._root is None:
            return None
        if self._store is not None or (self._root / space_id / PLAYLIST_NAME).is_file():
            return SpaceEntry(self._root / space_id, None, self._store)
        return None


class _Unavailable(Exception):
    """Blocked for too long: 503 with Retry-After."""

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


Handler = Callable[[Request], Awaitable[Response]]


def create_origin(registry: SpaceRegistry, *, blocking_timeout: float | None = None) -> Router:
    """The ASGI app; mount it wherever HLS is served from (e.g. /hls).

    blocking_timeout overrides how long a request may be held (default: three target
    durations of the space's playlist)."""
    origin = _Origin(registry, blocking_timeout)
    routes = [
        Route("/{space_id}/index.m3u8", _json_errors(origin.playlist), methods=["GET"]),
        Route(
            f"/{{space_id}}/{MULTIVARIANT_NAME}", _json_errors(origin.multivariant), methods=["GET"]
        ),
        Route(f"/{{space_id}}/{CAPTIONS_PLAYLIST}", _json_errors(origin.captions), methods=["GET"]),
        Route("/{space_id}/replay.m4a", _json_errors(origin.replay), methods=["GET"]),
        Route("/{space_id}/{name}", _json_errors(origin.media), methods=["GET"]),
    ]
    return Router(routes=routes, redirect_slashes=False, default=_unknown_path)


class _Origin:
    def __init__(self, registry: SpaceRegistry, blocking_timeout: float | None) -> None:
        self._registry = registry
        self._blocking_timeout = blocking_timeout

    async def playlist(self, request: Request) -> Response:
        entry = self._entry(request)
        directive = _directives(request.query_params)
        skip = _skip_directive(request.query_params)
        if entry.feed is None:
            # No CAN-SKIP-UNTIL on disk: _HLS_skip is ignored (RFC 8216bis 6.2.5.1).
            return _disk_playlist(await _read_recording(entry, PLAYLIST_NAME), directive)
        snapshot = entry.feed.snapshot()
        if snapshot.ended:
            # RFC 8216bis 6.2.5.1 and 6.2.5.2: directives are ignored once it has ended.
            return _playlist_response(snapshot.playlist, _playlist_cache(ended=True))
        _refuse_date_range_skip(skip)
        if directive is None:
            body = _playlist_body(snapshot, delta=skip is not None)
            return _playlist_response(body, _playlist_cache(ended=False))
        msn, part = directive
        _refuse_far_ahead(snapshot, msn, part)
        snapshot = await self._wait(entry.feed, snapshot, msn, part)
        cache = _playlist_cache(snapshot.ended, blocking=snapshot.target_duration)
        return _playlist_response(_playlist_body(snapshot, delta=skip is not None), cache)

    async def multivariant(self, request: Request) -> Response:
        entry = self._entry(request)
        ended = await _has_ended(entry)
        # Live captions are for the live space: the rendition keeps only its last
        # segments, so a replay gets the replay transcript instead (services/transcripts).
        captions = not ended and (entry.directory / CAPTIONS_PLAYLIST).is_file()
        return _playlist_response(_multivariant(captions).encode(), _playlist_cache(ended))

    async def captions(self, request: Request) -> Response:
        entry = self._entry(request)
        text = _read(entry.directory / CAPTIONS_PLAYLIST)
        if text is None:
            raise NotFound("this space has no live captions")
        return _playlist_response(text, _playlist_cache(_ENDLIST in text))

    async def media(self, request: Request) -> Response:
        entry = self._entry(request)
        name = request.path_params["name"]
        if CAPTION_NAME.fullmatch(name):
            path = entry.directory / name
            if not path.is_file():
                raise NotFound(f"{name} does not exist (yet)")
            return FileResponse(path, media_type=VTT_TYPE, headers={"Cache-Control": IMMUTABLE})
        segment = SEGMENT_NAME.fullmatch(name)
        feed = entry.feed
        if segment is not None and feed is not None and not (entry.directory / name).is_file():
            return await self._open_segment(entry.directory, feed, int(segment[1]))
        if name == INIT_NAME or segment is not None:
            return await _recording_file(entry, name, headers={"Cache-Control": IMMUTABLE})
        part = PART_NAME.fullmatch(name)
        if part is None:
            raise NotFound(f"{name[:64]!r} is not a file this origin serves")
        path = entry.directory / name
        if not path.is_file() and entry.feed is not None:
            life, msn, index = (int(group) for group in part.groups())
            await self._wait_for_hinted_part(entry.feed, life, msn, index)
        return _media_file(path)

    async def replay(self, request: Request) -> Response:
        entry = self._entry(request)
        if not await _has_ended(entry):
            raise NotFound("the replay is available once the space has ended")
        headers = {
            "Cache-Control": FINISHED,
            # As FileResponse(filename=...) says it; space ids are plain ASCII.
            "Content-Disposition": f'attachment; filename="{entry.space_id}.m4a"',
        }
        try:
            return await _recording_file(entry, REPLAY_NAME, headers)
        except NotFound:
            raise NotFound("this space has no recorded audio") from None

    async def _wait(
        self, feed: PlaylistFeed, snapshot: FeedSnapshot, msn: int, part: int | None
    ) -> FeedSnapshot:
        timeout = self._hold_for(snapshot)
        try:
            async with asyncio.timeout(timeout):
                return await feed.wait_for(msn, part)
        except TimeoutError:
            raise _Unavailable(
                f"segment {msn} part {part} did not appear within {timeout:g} s",
                retry_after=max(1, math.ceil(snapshot.part_target)),
            ) from None

    async def _wait_for_hinted_part(
        self, feed: PlaylistFeed, life: int, msn: int, index: int
    ) -> None:
        """Hold a request for a part that is coming soon (the preload hint, or a few
        ahead), like a blocking reload. Anything else is simply not there: 404 (RFC
        8216bis 6.2.6)."""
        snapshot = feed.snapshot()
        ahead = snapshot.parts_ahead(msn, index)
        upcoming = 0 < ahead <= snapshot.advance_part_limit
        if snapshot.ended or life != snapshot.life or not upcoming:
            return
        await self._wait(feed, snapshot, msn, index)

    async def _open_segment(self, directory: Path, feed: PlaylistFeed, msn: int) -> Response:
        """Stream a segment that is being written (or the next one) as its parts appear."""
        snapshot = feed.snapshot()
        if snapshot.ended or not snapshot.complete_msn < msn <= snapshot.msn + 1:
            raise NotFound(f"segment {msn} does not exist (yet)")
        stream = _SegmentStream(directory, feed, msn, self._hold_for(snapshot))
        first = await stream.next_chunk()  # errors before the answer starts are still 4xx/5xx
        return _StreamingMedia(first, stream)

    def _hold_for(self, snapshot: FeedSnapshot) -> float:
        """How long a request may be held waiting for content (blocking reload, hinted
        part, the next segment)."""
        if self._blocking_timeout is not None:
            return self._blocking_timeout
        return BLOCKING_TIMEOUT_TARGET_DURATIONS * snapshot.target_duration

    def _entry(self, request: Request) -> SpaceEntry:
        space_id = request.path_params["space_id"]
        entry = self._registry.resolve(space_id)
        if entry is None:
            raise NotFound(f"no space {space_id[:64]!r} is served here")
        return entry


def _multivariant(captions: bool) -> str:
    """The multivariant playlist: the audio, and its captions when there are some."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-INDEPENDENT-SEGMENTS"]
    group = ""
    if captions:
        lines.append(
            '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="captions",NAME="Captions",'
            f'DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,URI="{CAPTIONS_PLAYLIST}"'
        )
        group = ',SUBTITLES="captions"'
    lines += [f'#EXT-X-STREAM-INF:BANDWIDTH={_BANDWIDTH},CODECS="{_CODECS}"{group}', PLAYLIST_NAME]
    return "\n".join(lines) + "\n"


def _directives(query: QueryParams) -> tuple[int, int | None] | None:
    """(_HLS_msn, _HLS_part) of a blocking reload, or None for a plain request."""
    msn = _decimal_param(query, "_HLS_msn")
    part = _decimal_param(query, "_HLS_part")
    if part is not None and msn is None:
        raise BadRequest("_HLS_part needs _HLS_msn (RFC 8216bis 6.2.5.2)")
    return None if msn is None else (msn, part)


def _skip_directive(query: QueryParams) -> str | None:
    """The _HLS_skip value (YES or v2), or None when absent."""
    value = _single_param(query, "_HLS_skip")
    if value is not None and value not in (_SKIP_SEGMENTS, _SKIP_DATERANGES):
        raise BadRequest(
            f"_HLS_skip must be {_SKIP_SEGMENTS} or {_SKIP_DATERANGES} "
            f"(RFC 8216bis 6.2.5.1), not {value[:20]!r}"
        )
    return value


def _refuse_date_range_skip(skip: str | None) -> None:
    """A live playlist lists no date ranges and does not advertise CAN-SKIP-DATERANGES,
    so a client asking to skip them has misread it (RFC 8216bis 6.3.7)."""
    if skip == _SKIP_DATERANGES:
        raise BadRequest(
            "_HLS_skip=v2 needs CAN-SKIP-DATERANGES, which this playlist does not "
            "advertise; ask with _HLS_skip=YES (RFC 8216bis 6.3.7)"
        )


def _single_param(query: QueryParams, name: str) -> str | None:
    values = query.getlist(name)
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest(f"{name} is given more than once")
    return values[0]


def _decimal_param(query: QueryParams, name: str) -> int | None:
    value = _single_param(query, name)
    if value is None:
        return None
    if not _DECIMAL.fullmatch(value):
        raise BadRequest(f"{name} must be a decimal integer, not {value[:20]!r}")
    return int(value)


def _refuse_far_ahead(snapshot: FeedSnapshot, msn: int, part: int | None) -> None:
    """RFC 8216bis 6.2.5.2: more than two segments, or the Advance Part Limit, beyond the
    newest is an error right away rather than a long wait."""
    if msn > snapshot.msn + 2:
        raise BadRequest(f"_HLS_msn={msn} is more than two segments past {snapshot.msn}")
    if part is not None and snapshot.parts_ahead(msn, part) > snapshot.advance_part_limit:
        raise BadRequest(
            f"_HLS_part={part} of segment {msn} is more than "
            f"{snapshot.advance_part_limit} parts past the newest"
        )


def _disk_playlist(text: bytes | None, directive: tuple[int, int | None] | None) -> Response:
    if text is None:
        raise NotFound("this space has no playlist")
    ended = _ENDLIST in text
    if directive is not None and not ended:
        # Nothing here produces new segments: answer what is listed, refuse the rest.
        listed = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))
        msn = directive[0]
        if msn > listed + 1:
            raise BadRequest(f"_HLS_msn={msn} is more than two segments past {listed - 1}")
        if msn >= listed:
            raise _Unavailable("this space is not live on this node", retry_after=1)
    return _playlist_response(text, _playlist_cache(ended))


async def _has_ended(entry: SpaceEntry) -> bool:
    if entry.feed is not None:
        return entry.feed.snapshot().ended
    return _ENDLIST in (await _read_recording(entry, PLAYLIST_NAME) or b"")


async def _read_recording(entry: SpaceEntry, name: str) -> bytes | None:
    """A small file of a recording, from disk or else from the store."""
    try:
        return (entry.directory / name).read_bytes()
    except OSError:
        if entry.store is None:
            return None
    try:
        return await entry.store.fetch(object_key(entry.space_id, name))
    except StorageError as error:
        raise _Unavailable(f"the recordings store is unreachable: {error}", 5) from None


async def _recording_file(entry: SpaceEntry, name: str, headers: dict[str, str]) -> Response:
    """A media file of a recording, from disk or else streamed from the store."""
    path = entry.directory / name
    if path.is_file():
        return FileResponse(path, media_type=MEDIA_TYPE, headers=headers)
    if entry.store is None:
        raise NotFound(f"{name} does not exist (yet)")
    try:
        stored = await entry.store.open(object_key(entry.space_id, name))
    except StorageError as error:
        raise _Unavailable(f"the recordings store is unreachable: {error}", 5) from None
    if stored is None:
        raise NotFound(f"{name} does not exist (yet)")
    return _stored_response(stored, headers)


def _stored_response(stored: StoredObject, headers: dict[str, str]) -> Response:
    """What FileResponse would say of the same file (but Range: the whole object)."""
    stat_headers = {
        "Content-Length": str(stored.size),
        "Last-Modified": formatdate(stored.modified, usegmt=True),
    }
    if stored.etag:
        stat_headers["ETag"] = stored.etag
    # A store failing mid-object raises out of the stream, which drops the connection:
    # with Content-Length set, no client or cache takes the short body for the file.
    return StreamingResponse(
        stored.chunks, media_type=MEDIA_TYPE, headers={**headers, **stat_headers}
    )


def _playlist_body(snapshot: FeedSnapshot, *, delta: bool) -> bytes:
    """The delta when asked for and there is one; otherwise the full playlist, which is
    also the answer once ended or while nothing is old enough to skip."""
    if delta and snapshot.delta is not None and not snapshot.ended:
        return snapshot.delta
    return snapshot.playlist


def _playlist_cache(ended: bool, *, blocking: int | None = None) -> str:
    if ended:
        return FINISHED
    if blocking is not None:
        return f"public, max-age={BLOCKING_RESPONSE_TARGET_DURATIONS * blocking}"
    return LIVE_PLAYLIST


def _playlist_response(body: bytes, cache_control: str) -> Response:
    return Response(body, media_type=PLAYLIST_TYPE, headers={"Cache-Control": cache_control})


def _media_file(path: Path) -> Response:
    if not path.is_file():
        raise NotFound(f"{path.name} does not exist (yet)")
    return FileResponse(path, media_type=MEDIA_TYPE, headers={"Cache-Control": IMMUTABLE})


class _Truncated(Exception):
    """The segment stopped growing before it was complete: its media node is gone."""


class _SegmentStream:
    """The bytes of segment msn in order: its parts as they are written, or the rest of the
    finished file once there is one (the file is exactly its parts, concatenated)."""

    def __init__(self, directory: Path, feed: PlaylistFeed, msn: int, hold: float) -> None:
        self._directory = directory
        self._feed = feed
        self._msn = msn
        self._hold = hold
        self._sent = 0
        self._index = 0
        self.done = False

    async def next_chunk(self) -> bytes:
        """The next bytes; sets `done` with the last ones. 503 (before anything was sent)
        or _Truncated (after) when nothing comes for the hold time."""
        deadline = asyncio.get_running_loop().time() + self._hold
        while True:
            whole = _read(self._directory / segment_name(self._msn))
            if whole is not None:
                self.done = True
                return whole[self._sent :]
            part = await self._next_part(deadline)
            if part is not None:
                self._sent += len(part)
                self._index += 1
                snapshot = self._feed.snapshot()
                self.done = self._index == snapshot.parts_per_segment
                return part

    async def _next_part(self, deadline: float) -> bytes | None:
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            if remaining <= 0:
                raise TimeoutError
            async with asyncio.timeout(remaining):
                snapshot = await self._feed.wait_for(self._msn, self._index)
        except TimeoutError:
            if self._sent:
                raise _Truncated from None
            raise _Unavailable(
                f"segment {self._msn} did not start within {self._hold:g} s", retry_after=1
            ) from None
        part = _read(self._directory / part_name(snapshot.life, self._msn, self._index))
        if part is None:
            # Another life's segment, finished or rescued as a file a moment from now.
            await asyncio.sleep(0.01)
        return part


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


class _StreamingMedia(Response):
    """200 at once, then the segment's bytes as they come. If they stop coming, the
    connection is dropped without the final chunk, so no cache keeps a short copy."""

    def __init__(self, first: bytes, stream: _SegmentStream) -> None:
        super().__init__(media_type=MEDIA_TYPE, headers={"Cache-Control": IMMUTABLE})
        self._first = first
        self._stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        chunk = self._first
        try:
            while not self._stream.done:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                chunk = await self._stream.next_chunk()
        except (_Truncated, _Unavailable):
            return
        await send({"type": "http.response.body", "body": chunk, "more_body": False})


def _json_errors(handler: Handler) -> Handler:
    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except MajlisError as error:
            return _error_response(error.status, error.body())
        except _Unavailable as error:
            body: dict[str, object] = {"error": "unavailable", "reason": error.reason}
            return _error_response(503, body, {"Retry-After": str(error.retry_after)})

    return guarded


def _error_response(
    status: int, body: dict[str, object], headers: dict[str, str] | None = None
) -> Response:
    return JSONResponse(
        body, status_code=status, headers={"Cache-Control": NO_STORE, **(headers or {})}
    )


async def _unknown_path(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1000})
        return
    response = _error_response(404, NotFound("no such resource on the HLS origin").body())
    await response(scope, receive, send)

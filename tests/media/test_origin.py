"""The HLS origin: request validation, caching and blocking in-process, then a real
uvicorn server on 127.0.0.1 with a packager pushing in real time and FFmpeg listening."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn

from majlis.media.audio import FRAME_SECONDS, SAMPLE_RATE
from majlis.media.hls.feed import FeedSnapshot, PlaylistFeed
from majlis.media.hls.origin import IMMUTABLE, SpaceRegistry, create_origin
from majlis.media.hls.packager import HlsPackager

from . import hls_rules
from .audio_analysis import assert_tone, decode_with_ffmpeg, frames_of, tone

T0 = 1_700_000_000.0
LEVEL_DB = -9.03
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
LISTEN = ["ffmpeg", "-nostdin", "-v", "error", "-live_start_index", "0"]
AS_PCM = ["-f", "s16le", "-ac", "1", "-ar", str(SAMPLE_RATE), "-"]


def push(packager: HlsPackager, seconds: float, start: float) -> None:
    for index, frame in enumerate(frames_of(tone(1000, seconds))):
        packager.push(frame, start + index * FRAME_SECONDS)
    assert packager.sync()


@dataclass
class Spaces:
    live: HlsPackager
    long: HlsPackager
    root: Path


@pytest.fixture(scope="module")
def spaces(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spaces]:
    """A live space (registered with its feed), an ended one and a crashed one (both
    found on disk under the recordings root). Shared: the tests only read them."""
    tmp_path = tmp_path_factory.mktemp("origin")
    root = tmp_path / "recordings"
    ended = HlsPackager(root / "done", space_started_at=T0)
    push(ended, 2.5, T0)
    ended.end()
    crashed = HlsPackager(tmp_path / "source", space_started_at=T0)
    push(crashed, 2.5, T0)
    assert crashed.sync()
    shutil.copytree(tmp_path / "source", root / "orphan")
    crashed.close()
    live = HlsPackager(tmp_path / "live", space_started_at=T0)
    push(live, 5.0, T0)  # segments 0 and 1 complete, parts of segment 2
    long = HlsPackager(tmp_path / "long", space_started_at=T0)
    push(long, 30.0, T0)  # 14 segments: the oldest ones are past the 12 s skip boundary
    yield Spaces(live, long, root)
    live.end()
    long.end()


@pytest.fixture
async def client(spaces: Spaces) -> AsyncIterator[httpx.AsyncClient]:
    registry = SpaceRegistry(spaces.root)
    registry.register("live", spaces.live.directory, spaces.live.feed)
    registry.register("long", spaces.long.directory, spaces.long.feed)
    app = create_origin(registry, blocking_timeout=0.3)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://origin") as http:
        yield http


def expect_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["reason"]


@pytest.mark.parametrize(
    "path",
    [
        "/nobody/index.m3u8",
        "/live/state.json",
        "/live/segments.jsonl",
        "/live/.lock",
        "/live/s99.m4s",
        "/live/p9-0-0.m4s",
        "/live/s007.m4s",
        "/live/..%2Fstate.json",
        "/live/%2e%2e/done/index.m3u8",
        "/..%2F..%2Fetc%2Fpasswd/index.m3u8",
        "/bad.id/index.m3u8",
        "/live/init.mp4/more",
        "/live",
        "/",
    ],
)
async def test_unknown_things_are_404_with_a_reason(client: httpx.AsyncClient, path: str) -> None:
    expect_error(await client.get(path), 404)


@pytest.mark.parametrize(
    "query",
    [
        "_HLS_msn=abc",
        "_HLS_msn=-1",
        "_HLS_msn=1.5",
        "_HLS_msn=",
        "_HLS_msn=99999999999",
        "_HLS_msn=1&_HLS_msn=2",
        "_HLS_part=1",
        "_HLS_msn=2&_HLS_part=x",
        "_HLS_msn=5",  # more than two segments past the last one (2)
        "_HLS_msn=3&_HLS_part=9",  # past the Advance Part Limit
        "_HLS_skip=NO",
        "_HLS_skip=yes",  # enumerated strings are case-sensitive
        "_HLS_skip=",
        "_HLS_skip=1",
        "_HLS_skip=YES&_HLS_skip=YES",
        "_HLS_skip=v2",  # date ranges: CAN-SKIP-DATERANGES is not advertised
        "_HLS_part=1&_HLS_skip=YES",
        "_HLS_msn=5&_HLS_skip=YES",
    ],
)
async def test_bad_directives_are_400(client: httpx.AsyncClient, query: str) -> None:
    expect_error(await client.get(f"/live/index.m3u8?{query}"), 400)


@pytest.mark.parametrize("skip", ["", "&_HLS_skip=YES"])
async def test_blocking_reload_times_out_with_503(client: httpx.AsyncClient, skip: str) -> None:
    began = time.monotonic()
    response = await client.get(f"/live/index.m3u8?_HLS_msn=3{skip}")
    assert 0.3 <= time.monotonic() - began < 1.0
    expect_error(response, 503)
    assert response.headers["retry-after"] == "1"


async def test_live_space_headers(client: httpx.AsyncClient, spaces: Spaces) -> None:
    snapshot = spaces.live.feed.snapshot()
    plain = await client.get("/live/index.m3u8")
    assert plain.status_code == 200
    assert plain.headers["content-type"] == PLAYLIST_TYPE
    assert plain.headers["cache-control"] == "public, max-age=1"
    assert plain.content == snapshot.playlist
    hls_rules.check(plain.text, ended=False)

    blocking = await client.get(f"/live/index.m3u8?_HLS_msn={snapshot.msn}&_HLS_part=0")
    assert blocking.status_code == 200
    assert blocking.headers["cache-control"] == "public, max-age=12"  # 6 target durations
    segment = await client.get("/live/index.m3u8?_HLS_msn=1")
    assert segment.status_code == 200

    for name in ("init.mp4", "s0.m4s", "p1-2-0.m4s"):
        response = await client.get(f"/live/{name}")
        assert response.status_code == 200, name
        assert response.headers["content-type"] == "audio/mp4"
        assert response.headers["cache-control"] == IMMUTABLE
        assert response.content == (spaces.live.directory / name).read_bytes()
    head = await client.head("/live/s1.m4s")
    assert head.status_code == 200 and head.headers["content-length"]

    expect_error(await client.get("/live/replay.m4a"), 404)  # not until the space ends


async def test_delta_updates(client: httpx.AsyncClient, spaces: Spaces) -> None:
    snapshot = spaces.long.feed.snapshot()
    assert snapshot.delta is not None
    full = snapshot.playlist.decode()

    delta = await client.get("/long/index.m3u8?_HLS_skip=YES")
    assert delta.status_code == 200
    assert delta.headers["content-type"] == PLAYLIST_TYPE
    assert delta.headers["cache-control"] == "public, max-age=1"  # like the plain playlist
    assert delta.content == snapshot.delta
    skipped = hls_rules.check(delta.text, ended=False).skipped
    assert skipped is not None and skipped >= 7
    assert len(delta.content) < len(snapshot.playlist)
    assert hls_rules.merge_delta(full, delta.text) == full

    # with blocking reload, for a part or a whole segment: cached like any blocking answer
    for query in (f"_HLS_msn={snapshot.msn}&_HLS_part={snapshot.part}", "_HLS_msn=3"):
        blocking = await client.get(f"/long/index.m3u8?{query}&_HLS_skip=YES")
        assert blocking.status_code == 200, query
        assert blocking.headers["cache-control"] == "public, max-age=12"
        assert blocking.content == snapshot.delta


async def test_skip_is_ignored_where_the_full_playlist_is_the_answer(
    client: httpx.AsyncClient, spaces: Spaces
) -> None:
    # live, but nothing is old enough to skip yet
    short = await client.get("/live/index.m3u8?_HLS_skip=YES")
    assert short.content == spaces.live.feed.snapshot().playlist
    assert short.headers["cache-control"] == "public, max-age=1"
    # ended, or served from disk without CAN-SKIP-UNTIL (RFC 8216bis 6.2.5.1)
    for path in ("/done/index.m3u8", "/orphan/index.m3u8"):
        plain = await client.get(path)
        for skip in ("YES", "v2"):
            response = await client.get(f"{path}?_HLS_skip={skip}")
            assert response.status_code == 200, (path, skip)
            assert response.content == plain.content
            assert response.headers["cache-control"] == plain.headers["cache-control"]
        expect_error(await client.get(f"{path}?_HLS_skip=maybe"), 400)


async def test_an_ended_feed_answers_skip_in_full() -> None:
    ended = b"#EXTM3U\n#EXT-X-ENDLIST\n"
    feed = PlaylistFeed(_snapshot(playlist=ended, delta=b"#EXTM3U\n", ended=True))
    registry = SpaceRegistry()
    registry.register("space", Path("/nonexistent"), feed)
    transport = httpx.ASGITransport(app=create_origin(registry))
    async with httpx.AsyncClient(transport=transport, base_url="http://origin") as http:
        for query in ("_HLS_skip=YES", "_HLS_skip=v2", "_HLS_msn=9&_HLS_part=2&_HLS_skip=YES"):
            response = await http.get(f"/space/index.m3u8?{query}")
            assert response.status_code == 200, query
            assert response.content == ended
            assert response.headers["cache-control"] == "public, max-age=86400"


async def test_ended_space_from_disk(client: httpx.AsyncClient, spaces: Spaces) -> None:
    playlist = await client.get("/done/index.m3u8?_HLS_msn=999&_HLS_part=3")
    # RFC 8216bis 6.2.5.2: directives are ignored once the playlist has ended
    assert playlist.status_code == 200
    assert playlist.headers["cache-control"] == "public, max-age=86400"
    hls_rules.check(playlist.text, ended=True)

    replay = await client.get("/done/replay.m4a")
    assert replay.status_code == 200
    assert replay.headers["content-type"] == "audio/mp4"
    assert replay.headers["content-disposition"] == 'attachment; filename="done.m4a"'
    assert replay.headers["cache-control"] == "public, max-age=86400"
    assert replay.content == (spaces.root / "done" / "replay.m4a").read_bytes()
    ranged = await client.get("/done/replay.m4a", headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and len(ranged.content) == 100


async def test_orphaned_space_from_disk(client: httpx.AsyncClient) -> None:
    """A recording whose node died: served as it is; nothing here will extend it."""
    plain = await client.get("/orphan/index.m3u8")
    assert plain.status_code == 200
    assert plain.headers["cache-control"] == "public, max-age=1"
    assert (await client.get("/orphan/index.m3u8?_HLS_msn=0")).status_code == 200
    expect_error(await client.get("/orphan/index.m3u8?_HLS_msn=1"), 503)
    expect_error(await client.get("/orphan/index.m3u8?_HLS_msn=9"), 400)
    expect_error(await client.get("/orphan/replay.m4a"), 404)


@pytest.mark.realtime
async def test_a_hinted_part_is_held_until_written(tmp_path: Path) -> None:
    feed = PlaylistFeed(_snapshot(part=2))
    registry = SpaceRegistry()
    registry.register("space", tmp_path, feed)
    app = create_origin(registry, blocking_timeout=2.0)
    transport = httpx.ASGITransport(app=app)

    def write_then_publish() -> None:
        time.sleep(0.2)
        (tmp_path / "p1-0-3.m4s").write_bytes(b"part three")
        feed.publish(_snapshot(part=3))

    writer = threading.Thread(target=write_then_publish)
    async with httpx.AsyncClient(transport=transport, base_url="http://origin") as http:
        writer.start()
        began = time.monotonic()
        response = await http.get("/space/p1-0-3.m4s")
        waited = time.monotonic() - began
        writer.join()
        assert response.status_code == 200 and response.content == b"part three"
        assert 0.15 < waited < 1.0
        # an old life's part, or one far ahead, is not waited for
        for name in ("p2-0-3.m4s", "p1-9-0.m4s"):
            began = time.monotonic()
            expect_error(await http.get(f"/space/{name}"), 404)
            assert time.monotonic() - began < 0.1


def _snapshot(**changes: object) -> FeedSnapshot:
    fields: dict[str, object] = {
        "playlist": b"#EXTM3U\n",
        "life": 1,
        "msn": 0,
        "part": 2,
        "complete_msn": -1,
        "parts_per_segment": 10,
        "target_duration": 2,
        "part_target": 0.21334,
        "ended": False,
    }
    fields.update(changes)
    return FeedSnapshot(**fields)  # type: ignore[arg-type]


def test_registry_rejects_ids_that_could_escape() -> None:
    registry = SpaceRegistry()
    for bad in ("../x", "a/b", "", ".hidden", "x" * 65):
        with pytest.raises(ValueError):
            registry.register(bad, Path("/tmp"))
        assert registry.resolve(bad) is None


# --- a real server ----------------------------------------------------------------


class ServerThread:
    def __init__(self, app: object) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off")  # type: ignore[arg-type]
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]})

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.socket.close()


class RealTimePusher(threading.Thread):
    """The mixer's role: a 1 kHz tone, one 20 ms frame per 20 ms of wall clock."""

    def __init__(self, packager: HlsPackager, *, wall: float | None = None) -> None:
        super().__init__(daemon=True)
        self.packager = packager
        self.wall = wall  # capture time of the first frame; default: when run() starts
        self.stop = threading.Event()

    def run(self) -> None:
        samples = tone(1000, 60.0)
        start = time.monotonic()
        wall = time.time() if self.wall is None else self.wall
        for index, frame in enumerate(frames_of(samples)):
            if self.stop.is_set():
                return
            self.packager.push(frame, wall + index * FRAME_SECONDS)
            delay = start + (index + 1) * FRAME_SECONDS - time.monotonic()
            if delay > 0:
                time.sleep(delay)


@pytest.mark.slow
def test_real_server_with_a_live_packager(tmp_path: Path) -> None:
    packager = HlsPackager(
        tmp_path / "space", space_started_at=time.time(), part_frames=10, parts_per_segment=4
    )  # 213 ms parts, 853 ms segments
    published: dict[tuple[int, int], float] = {}
    original = packager.feed.publish

    def record(snapshot: FeedSnapshot) -> None:
        # noted just before the wake-up goes out, so latencies include publishing itself
        published.setdefault((snapshot.msn, snapshot.part), time.perf_counter())
        original(snapshot)

    packager.feed.publish = record  # type: ignore[method-assign]
    registry = SpaceRegistry()
    registry.register("space", packager.directory, packager.feed)
    pusher = RealTimePusher(packager)
    with ServerThread(create_origin(registry)) as server:
        base = f"http://127.0.0.1:{server.port}/space"
        latencies: list[list[float]] = []

        def measure(http: httpx.Client) -> None:
            latencies.append(_measure_blocking_reload(http, packager, published))
            latencies.append(_measure_hinted_part(http, packager, published))

        def a_segment_is_listed() -> None:
            _wait_until(lambda: packager.feed.snapshot().complete_msn >= 0, 5)

        _ffmpeg_hears_the_tone_while(base, pusher, measure, first=a_segment_is_listed)
        reload_latency, part_latency = latencies

        part_seconds = 10 * 1024 / SAMPLE_RATE
        print(f"blocking reload wake-up after publish: {_summary(reload_latency)}")
        print(f"hinted part wake-up after publish: {_summary(part_latency)}")
        # Typically a millisecond or two; the bound leaves room for a loaded CI machine.
        for latencies in (reload_latency, part_latency):
            assert _median(latencies) < part_seconds / 8
            assert max(latencies) < part_seconds

        packager.end()
        with httpx.Client(base_url=base, timeout=5) as http:
            playlist = http.get("/index.m3u8")
            assert playlist.headers["cache-control"] == "public, max-age=86400"
            hls_rules.check(playlist.text, ended=True)
            replay = http.get("/replay.m4a")
            assert replay.status_code == 200
        replay_path = tmp_path / "downloaded.m4a"
        replay_path.write_bytes(replay.content)
        assert_tone(decode_with_ffmpeg(str(replay_path)), frequency=1000, level_db=LEVEL_DB)


@pytest.mark.slow
def test_real_server_delta_updates_with_blocking_reload(tmp_path: Path) -> None:
    """A listener follows the live edge over real HTTP with blocking reloads that also ask
    for delta updates, merging each into its copy as a player does: the copy is always
    exactly the full playlist the packager published. FFmpeg plays the full one."""
    history = 10.0  # pushed at once, so that there is something to skip from the start
    started = time.time() - history
    packager = HlsPackager(
        tmp_path / "space", space_started_at=started, part_frames=10, parts_per_segment=4
    )  # 213 ms parts, 853 ms segments: target duration 1, skip boundary 6 s
    full_of: dict[bytes, bytes] = {}  # each published delta -> the full playlist beside it
    original = packager.feed.publish

    def record(snapshot: FeedSnapshot) -> None:
        if snapshot.delta is not None:
            full_of[snapshot.delta] = snapshot.playlist
        original(snapshot)

    packager.feed.publish = record  # type: ignore[method-assign]
    push(packager, history, started)
    registry = SpaceRegistry()
    registry.register("space", packager.directory, packager.feed)
    pusher = RealTimePusher(packager, wall=started + history)
    with ServerThread(create_origin(registry)) as server:
        base = f"http://127.0.0.1:{server.port}/space"
        _ffmpeg_hears_the_tone_while(base, pusher, lambda http: _follow_with_deltas(http, full_of))

        packager.end()
        with httpx.Client(base_url=base, timeout=5) as http:
            ended = http.get("/index.m3u8", params={"_HLS_skip": "YES"})
        assert ended.headers["cache-control"] == "public, max-age=86400"
        hls_rules.check(ended.text, ended=True)


def _ffmpeg_hears_the_tone_while(
    base: str,
    pusher: RealTimePusher,
    during: Callable[[httpx.Client], None],
    *,
    first: Callable[[], None] = lambda: None,
) -> None:
    """Push in real time; once `first` returns, FFmpeg plays the live playlist for 3 s
    while `during` makes its own requests. FFmpeg must hear the whole 3 s of tone."""
    pusher.start()
    try:
        first()
        listener = subprocess.Popen(
            [*LISTEN, "-i", f"{base}/index.m3u8", "-t", "3", *AS_PCM],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        with httpx.Client(base_url=base, timeout=5) as http:
            during(http)
        out, err = listener.communicate(timeout=20)
    finally:
        pusher.stop.set()
        pusher.join(5)
    assert listener.returncode == 0, err.decode()
    heard = np.frombuffer(out, dtype="<i2").astype(np.float64)
    assert heard.size == 3 * SAMPLE_RATE
    assert_tone(heard, frequency=1000, level_db=LEVEL_DB)


def _follow_with_deltas(http: httpx.Client, full_of: dict[bytes, bytes]) -> None:
    copy = http.get("/index.m3u8").text
    for _ in range(12):
        hint = hls_rules.parse(copy).hints[0].split("URI=")[1].strip('"')
        _, msn, part = (int(x) for x in hint[1:-4].split("-"))
        query: dict[str, str | int] = {"_HLS_msn": msn, "_HLS_part": part, "_HLS_skip": "YES"}
        response = http.get("/index.m3u8", params=query)
        assert response.status_code == 200
        assert response.headers["cache-control"] == "public, max-age=6"
        assert hls_rules.check(response.text, ended=False).skipped
        assert f'URI="{hint}"' in response.text
        copy = hls_rules.merge_delta(copy, response.text)
        assert copy.encode() == full_of[response.content]


def _measure_blocking_reload(
    http: httpx.Client, packager: HlsPackager, published: dict[tuple[int, int], float]
) -> list[float]:
    """Ask for the part after the newest one; time from its publication to our answer."""
    latencies: list[float] = []
    for _ in range(12):
        newest = packager.feed.snapshot()
        msn, part = newest.msn, newest.part + 1
        if part == newest.parts_per_segment:
            msn, part = msn + 1, 0
        response = http.get("/index.m3u8", params={"_HLS_msn": msn, "_HLS_part": part})
        answered = time.perf_counter()
        assert response.status_code == 200
        assert f'URI="p1-{msn}-{part}.m4s"' in response.text
        hls_rules.check(response.text, ended=False)
        latencies.append(answered - published[(msn, part)])
    return latencies


def _measure_hinted_part(
    http: httpx.Client, packager: HlsPackager, published: dict[tuple[int, int], float]
) -> list[float]:
    latencies: list[float] = []
    for _ in range(8):
        playlist = hls_rules.parse(packager.feed.snapshot().playlist.decode())
        hint = playlist.hints[0].split("URI=")[1].strip('"')
        _, msn, part = (int(x) for x in hint[1:-4].split("-"))
        response = http.get(f"/{hint}")
        answered = time.perf_counter()
        assert response.status_code == 200
        assert response.content == (packager.directory / hint).read_bytes()
        latencies.append(answered - published[(msn, part)])
    return latencies


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def _summary(values: list[float]) -> str:
    ms = sorted(value * 1000 for value in values)
    return f"median {ms[len(ms) // 2]:.1f} ms, max {ms[-1]:.1f} ms over {len(ms)}"


def _wait_until(condition: object, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    assert callable(condition)
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)

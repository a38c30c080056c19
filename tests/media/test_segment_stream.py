"""Open segments streamed as they are written: one request per segment carries a live
space at LL-HLS latency (the delivery an edge multiplies by its whole audience)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from majlis.media.hls.feed import PlaylistFeed
from majlis.media.hls.origin import IMMUTABLE, SpaceRegistry, create_origin
from majlis.media.hls.packager import HlsPackager

from .audio_analysis import assert_tone, decode_with_ffmpeg
from .test_origin import LEVEL_DB, RealTimePusher, ServerThread, _snapshot, _wait_until

PARTS = 4


def _space(tmp_path: Path, *, part: int) -> tuple[PlaylistFeed, str, ServerThread]:
    """Segment 0 with parts 0..part written, served by a real uvicorn on 127.0.0.1."""
    feed = PlaylistFeed(_snapshot(part=part, parts_per_segment=PARTS))
    for index in range(part + 1):
        (tmp_path / f"p1-0-{index}.m4s").write_bytes(f"<part {index}>".encode())
    registry = SpaceRegistry()
    registry.register("space", tmp_path, feed)
    server = ServerThread(create_origin(registry, blocking_timeout=1.0))
    return feed, f"http://127.0.0.1:{server.port}/space", server


def _write_parts(tmp_path: Path, feed: PlaylistFeed, msn: int, parts: range, gap: float) -> None:
    for index in parts:
        time.sleep(gap)
        (tmp_path / f"p1-{msn}-{index}.m4s").write_bytes(f"<part {index}>".encode())
        feed.publish(_snapshot(msn=msn, part=index, parts_per_segment=PARTS))


@pytest.mark.realtime
def test_an_open_segment_streams_each_part_as_it_is_written(tmp_path: Path) -> None:
    feed, base, server = _space(tmp_path, part=1)
    writer = threading.Thread(target=_write_parts, args=(tmp_path, feed, 0, range(2, 4), 0.3))
    arrivals: list[tuple[float, bytes]] = []
    with server, httpx.Client(timeout=5) as http:
        began = time.monotonic()
        with http.stream("GET", f"{base}/s0.m4s") as answer:
            assert answer.status_code == 200
            assert answer.headers["cache-control"] == IMMUTABLE
            writer.start()
            for chunk in answer.iter_raw():
                arrivals.append((time.monotonic() - began, chunk))
        writer.join()
    body = b"".join(chunk for _, chunk in arrivals)
    assert body == b"<part 0><part 1><part 2><part 3>"
    # What existed came at once; each later part came when it was written, not at the end.
    assert arrivals[0][0] < 0.25
    assert b"<part 2>" in b"".join(chunk for at, chunk in arrivals if at < 0.55)
    assert arrivals[-1][0] > 0.5


def test_the_next_segment_is_held_until_its_first_part(tmp_path: Path) -> None:
    feed, base, server = _space(tmp_path, part=PARTS - 1)
    writer = threading.Thread(target=_write_parts, args=(tmp_path, feed, 1, range(PARTS), 0.2))
    with server, httpx.Client(timeout=5) as http:
        writer.start()
        began = time.monotonic()
        answer = http.get(f"{base}/s1.m4s")
        waited = time.monotonic() - began
        writer.join()
    assert answer.status_code == 200, answer.text
    assert answer.content == b"".join(f"<part {i}>".encode() for i in range(PARTS))
    assert waited > 0.5  # it followed the parts to the last one


def test_segments_that_cannot_be_streamed(tmp_path: Path) -> None:
    _, base, server = _space(tmp_path, part=1)
    with server, httpx.Client(timeout=5) as http:
        assert http.get(f"{base}/s2.m4s").status_code == 404  # more than one ahead
        began = time.monotonic()
        never = http.get(f"{base}/s1.m4s")  # the next one, which never starts
        assert never.status_code == 503 and never.headers["retry-after"] == "1"
        assert 0.9 < time.monotonic() - began < 3


def test_a_segment_that_stops_growing_is_cut_off_not_ended(tmp_path: Path) -> None:
    """A media node that dies mid-segment: the answer must not look complete, or an edge
    would cache a short copy for everyone."""
    _, base, server = _space(tmp_path, part=1)
    with server, httpx.Client(timeout=5) as http, pytest.raises(httpx.RemoteProtocolError):
        http.get(f"{base}/s0.m4s")


@pytest.mark.slow
def test_streamed_segments_are_the_recording_byte_for_byte(tmp_path: Path) -> None:
    packager = HlsPackager(
        tmp_path / "space", space_started_at=time.time(), part_frames=10, parts_per_segment=4
    )  # 213 ms parts, 853 ms segments
    registry = SpaceRegistry()
    registry.register("space", packager.directory, packager.feed)
    pusher = RealTimePusher(packager)
    streamed: dict[int, bytes] = {}
    with ServerThread(create_origin(registry)) as server, httpx.Client(timeout=10) as http:
        base = f"http://127.0.0.1:{server.port}/space"
        pusher.start()
        _wait_until(lambda: packager.feed.snapshot().part >= 0, 5)
        first = max(packager.feed.snapshot().msn, 0)
        for msn in range(first, first + 4):  # chained, as a player would
            answer = http.get(f"{base}/s{msn}.m4s")
            assert answer.status_code == 200, answer.text
            streamed[msn] = answer.content
        init = http.get(f"{base}/init.mp4").content
        pusher.stop.set()
        pusher.join(5)
    packager.end()
    for msn, data in streamed.items():
        assert data == (packager.directory / f"s{msn}.m4s").read_bytes()
    joined = tmp_path / "streamed.mp4"
    joined.write_bytes(init + b"".join(streamed.values()))
    assert_tone(decode_with_ffmpeg(str(joined)), frequency=1000, level_db=LEVEL_DB)

"""Recordings kept in an S3-compatible store (moto in server mode): durable before listed,
restore on another machine, the origin serving what only the bucket holds, an outage, and
one longer than the packager's backlog."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import numpy.typing as npt
import pytest

from majlis.media.audio import FRAME_SECONDS, SAMPLE_RATE
from majlis.media.formats.encoder import AAC_FRAME_SAMPLES
from majlis.media.hls.origin import IMMUTABLE, SpaceRegistry, create_origin
from majlis.media.hls.packager import DEFAULT_PARTS_PER_SEGMENT, HlsPackager, finalize_recording
from majlis.media.recording.directory import RecordingDir, SegmentRecord
from majlis.media.recording.storage import PatientStore, S3Store, StorageSettings
from s3_support import TcpProxy

from . import hls_rules
from .audio_analysis import assert_tone, decode_with_pyav, frames_of, rms_db, tone

T0 = 1_700_000_000.0
LEVEL_DB = -9.03


def push(packager: HlsPackager, seconds: float, start: float, *, pace: bool = False) -> None:
    """Push a 1 kHz tone; with pace, in real time (each push must return at once)."""
    began = time.monotonic()
    for index, frame in enumerate(frames_of(tone(1000, seconds))):
        called = time.monotonic()
        packager.push(frame, start + index * FRAME_SECONDS)
        assert time.monotonic() - called < 0.05, "push() waited"
        if pace:
            time.sleep(max(0.0, began + (index + 1) * FRAME_SECONDS - time.monotonic()))


def stored_journal(store: S3Store, space: str) -> list[int]:
    """The msns the store's journal lists."""
    lines = (store.get(f"{space}/journal/0.jsonl") or b"").splitlines()
    return [json.loads(line)["msn"] for line in lines]


def test_a_segment_is_in_the_bucket_before_the_journal_lists_it(
    s3_settings: StorageSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = S3Store(s3_settings)
    missing: list[int] = []
    journalled: list[int] = []
    original = RecordingDir._append_journal

    def check(recording: RecordingDir, record: SegmentRecord) -> None:
        if store.get(f"space/s{record.msn}.m4s") is None:
            missing.append(record.msn)
        journalled.append(record.msn)
        original(recording, record)

    monkeypatch.setattr(RecordingDir, "_append_journal", check)
    packager = HlsPackager(tmp_path / "space", space_started_at=T0, store=PatientStore(store))
    push(packager, 5.0, T0)
    assert packager.sync()
    assert journalled == [0, 1] and not missing
    assert stored_journal(store, "space") == [0, 1]
    packager.end()
    assert stored_journal(store, "space") == [0, 1, 2]
    for name in ("init.mp4", "state.json", "index.m3u8", "replay.m4a"):
        assert store.get(f"space/{name}") == (tmp_path / "space" / name).read_bytes(), name


def test_restore_on_another_machine_continues_the_sequence(
    s3_settings: StorageSettings, tmp_path: Path
) -> None:
    store = PatientStore(S3Store(s3_settings))
    first = HlsPackager(tmp_path / "a" / "space", space_started_at=T0, store=store)
    push(first, 5.0, T0)
    first.close()  # the node drains (a crash is the same, minus the open segment)

    # Another machine: an empty recordings root, the same bucket.
    second = HlsPackager(tmp_path / "b" / "space", space_started_at=T0, store=store)
    restored = tmp_path / "b" / "space"
    assert not (restored / "s0.m4s").exists()  # segments are fetched lazily
    push(second, 3.0, T0 + 10)
    second.end()  # the replay fetches what this disk lacks

    playlist = hls_rules.check((restored / "index.m3u8").read_text(), ended=True)
    uris = [segment.uri for segment in playlist.complete]
    assert uris == [f"s{msn}.m4s" for msn in range(len(uris))]
    assert [segment.discontinuity for segment in playlist.complete].count(True) == 1
    listed = sum(segment.duration or 0.0 for segment in playlist.complete)
    assert listed > 7.5
    replay = decode_with_pyav(restored / "replay.m4a")
    expected = hls_rules.replay_samples(playlist) - AAC_FRAME_SAMPLES
    assert abs(replay.size - expected) <= AAC_FRAME_SAMPLES
    # The first life, fetched from the bucket (a new life starts with encoder priming).
    assert_tone(replay[: 4 * SAMPLE_RATE], frequency=1000, level_db=LEVEL_DB)

    # Back on the first machine, its copy is stale: set aside, the store's one restored.
    finalize_recording(tmp_path / "a" / "space", store)
    back = tmp_path / "a" / "space"
    assert (back / "index.m3u8").read_bytes() == (restored / "index.m3u8").read_bytes()
    assert len(list(back.glob("stale-*/state.json"))) == 1


@pytest.fixture
async def bucket_only(
    s3_settings: StorageSettings, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """An origin whose recordings root is empty: the ended space is only in the bucket."""
    store = S3Store(s3_settings)
    packager = HlsPackager(tmp_path / "made" / "space", space_started_at=T0, store=store)
    push(packager, 3.0, T0)
    packager.end()
    app = create_origin(SpaceRegistry(tmp_path / "empty", store))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://origin") as http:
        yield http


async def test_the_origin_serves_what_only_the_bucket_holds(
    bucket_only: httpx.AsyncClient, tmp_path: Path
) -> None:
    made = tmp_path / "made" / "space"
    for name in ("s0.m4s", "init.mp4"):
        answer = await bucket_only.get(f"/space/{name}")
        assert answer.status_code == 200 and answer.content == (made / name).read_bytes()
        assert answer.headers["cache-control"] == IMMUTABLE
        assert answer.headers["content-type"] == "audio/mp4"
        assert int(answer.headers["content-length"]) == len(answer.content)
        assert answer.headers["etag"] and answer.headers["last-modified"]
    playlist = await bucket_only.get("/space/index.m3u8")
    hls_rules.check(playlist.text, ended=True)
    replay = await bucket_only.get("/space/replay.m4a")
    assert replay.status_code == 200
    assert replay.content == (made / "replay.m4a").read_bytes()
    assert replay.headers["content-disposition"] == 'attachment; filename="space.m4a"'
    replay_file = tmp_path / "served.m4a"
    replay_file.write_bytes(replay.content)
    assert_tone(decode_with_pyav(replay_file), frequency=1000, level_db=LEVEL_DB)
    for path in ("/space/s9.m4s", "/other/index.m3u8", "/other/replay.m4a"):
        assert (await bucket_only.get(path)).status_code == 404, path


@pytest.mark.realtime
def test_an_outage_of_ten_seconds_loses_nothing_and_catches_up(
    s3_settings: StorageSettings, tmp_path: Path
) -> None:
    proxy = TcpProxy(urlsplit(s3_settings.endpoint).port or 0)
    direct = S3Store(s3_settings)
    try:
        through = S3Store(dataclasses.replace(s3_settings, endpoint=proxy.endpoint))
        store = PatientStore(through, max_wait=1.0)
        packager = HlsPackager(tmp_path / "space", space_started_at=T0, store=store)
        push(packager, 3.0, T0)
        assert packager.sync()
        listed_before = packager.feed.snapshot().complete_msn
        proxy.down()
        push(packager, 10.0, T0 + 3.0, pace=True)  # the mixer goes on; push never waits
        # Nothing the store lacks is listed: the writer waits for it.
        assert packager.feed.snapshot().complete_msn <= listed_before + 1
        assert stored_journal(direct, "space") == list(range(listed_before + 1))
        proxy.up()
        assert packager.sync(timeout=30), "the writer did not catch up"
        push(packager, 1.0, T0 + 13.0)
        packager.end()
        playlist = hls_rules.check((tmp_path / "space" / "index.m3u8").read_text(), ended=True)
        count = len(playlist.complete)
        assert stored_journal(direct, "space") == list(range(count))
        for msn in range(count):
            assert (
                direct.get(f"space/s{msn}.m4s") == (tmp_path / "space" / f"s{msn}.m4s").read_bytes()
            )
        # Every frame pushed is in the recording: 14 s, no gap.
        listed = sum(segment.duration or 0.0 for segment in playlist.complete)
        assert abs(listed - 14.0) < 2 * AAC_FRAME_SAMPLES / SAMPLE_RATE
        assert packager.stats().frames_dropped == 0
    finally:
        proxy.close()


@pytest.mark.realtime
def test_an_outage_longer_than_the_backlog_records_silence_of_its_length(
    s3_settings: StorageSettings, tmp_path: Path
) -> None:
    """Memory stays bounded: once `max_backlog_seconds` of audio waits for a writer stuck
    on the store, what comes next is recorded as silence, and the replay keeps the
    event's timeline: 14 s pushed, 14 s recorded, the tone where it was kept."""
    proxy = TcpProxy(urlsplit(s3_settings.endpoint).port or 0)
    try:
        through = S3Store(dataclasses.replace(s3_settings, endpoint=proxy.endpoint))
        store = PatientStore(through, max_wait=1.0)
        packager = HlsPackager(
            tmp_path / "space", space_started_at=T0, store=store, max_backlog_seconds=4.0
        )
        push(packager, 3.0, T0)
        assert packager.sync()
        proxy.down()
        push(packager, 2.0, T0 + 3.0)
        stuck = _stuck_backlog(packager)  # waiting to store the segment it has cut
        push(packager, 8.0, T0 + 5.0)
        stats = packager.stats()
        assert stats.backlog <= 201, stats  # 4 s of frames, and one gap
        assert stats.frames_silenced == 400 - (200 - stuck), (stats, stuck)
        proxy.up()
        assert packager.sync(timeout=30), "the writer did not catch up"
        push(packager, 1.0, T0 + 13.0)
        packager.end()
    finally:
        proxy.close()
    playlist = hls_rules.check((tmp_path / "space" / "index.m3u8").read_text(), ended=True)
    listed = sum(segment.duration or 0.0 for segment in playlist.complete)
    assert abs(listed - 14.0) < 2 * AAC_FRAME_SAMPLES / SAMPLE_RATE
    decoded = decode_with_pyav(tmp_path / "space" / "replay.m4a")
    silent_from = 13.0 - stats.frames_silenced * FRAME_SECONDS

    def between(start: float, end: float) -> npt.NDArray[np.float64]:
        return decoded[round(start * SAMPLE_RATE) : round(end * SAMPLE_RATE)]

    assert_tone(between(0.2, silent_from - 0.1), frequency=1000, level_db=LEVEL_DB)
    assert rms_db(between(silent_from + 0.1, 12.9)) < -70
    assert_tone(between(13.1, 13.9), frequency=1000, level_db=LEVEL_DB)


def _stuck_backlog(packager: HlsPackager) -> int:
    """The backlog once the writer has cut its second segment and stopped taking frames
    (it waits for the store to take that segment)."""
    seen, since = -1, time.monotonic()
    deadline = since + 30
    while time.monotonic() < deadline:
        stats = packager.stats()
        if stats.backlog != seen:
            seen, since = stats.backlog, time.monotonic()
        elif stats.parts_written == 2 * DEFAULT_PARTS_PER_SEGMENT and (
            time.monotonic() - since > 1.0
        ):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"the writer never stopped: backlog {seen}")

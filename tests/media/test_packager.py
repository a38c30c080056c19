"""The packager end to end on disk: tone in, replay and playlists out, durability and
crash-resume. Synthetic capture times everywhere except the SIGKILL test."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from majlis.errors import Conflict, NotFound
from majlis.media.audio import FRAME_SAMPLES, FRAME_SECONDS, SAMPLE_RATE
from majlis.media.formats.encoder import AAC_FRAME_SAMPLES
from majlis.media.formats.fmp4 import parse_fragments
from majlis.media.hls.feed import FeedSnapshot, PlaylistFeed
from majlis.media.hls.packager import (
    DEFAULT_MAX_BACKLOG_SECONDS,
    HlsPackager,
    finalize_recording,
    frames_for_seconds,
)
from majlis.media.hls.playlist import format_date_time
from majlis.media.recording import directory as recording_module
from majlis.media.recording.directory import RecordingDir
from majlis.media.runtime.held import MAX_HELD_SECONDS

from . import hls_rules
from .audio_analysis import (
    assert_tone,
    decode_with_ffmpeg,
    decode_with_pyav,
    ffprobe_duration,
    frames_of,
    rms_db,
    tone,
)

T0 = 1_700_000_000.0
LEVEL_DB = -9.03  # a sine at half of full scale
SRC = Path(__file__).resolve().parents[2] / "src"


def push_tone(packager: HlsPackager, frequency: float, seconds: float, *, start: float) -> int:
    """Push a tone with synthetic capture times; return the number of samples pushed."""
    samples = tone(frequency, seconds)
    for index, frame in enumerate(frames_of(samples)):
        packager.push(frame, start + index * FRAME_SECONDS)
    assert packager.sync()
    return samples.size


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def listed_segments(directory: Path) -> list[str]:
    return hls_rules.parse((directory / "index.m3u8").read_text()).uris()


@pytest.mark.parametrize("frequency", [1000.0, 440.0])
def test_replay_and_playlist_carry_the_tone(tmp_path: Path, frequency: float) -> None:
    packager = HlsPackager(tmp_path, space_started_at=T0)
    pushed = push_tone(packager, frequency, 4.0, start=T0 + 1)
    packager.end()
    replay = tmp_path / "replay.m4a"

    for decoded in (decode_with_pyav(replay), decode_with_ffmpeg(str(replay))):
        # The edit list hides the priming, so the replay starts with the first sample
        # pushed; only the last AAC frame's padding is extra.
        assert pushed <= decoded.size < pushed + AAC_FRAME_SAMPLES
        assert_tone(decoded, frequency=frequency, level_db=LEVEL_DB)
        lag = _best_lag(decoded[:4800], tone(frequency, 0.2).astype(np.float64)[:4800])
        assert abs(lag) <= 2, f"the replay is {lag} samples off the input"
    assert abs(ffprobe_duration(replay) - pushed / SAMPLE_RATE) < AAC_FRAME_SAMPLES / SAMPLE_RATE

    # The HLS rendition itself, read by FFmpeg's HLS demuxer from disk.
    via_hls = decode_with_ffmpeg(str(tmp_path / "index.m3u8"))
    assert pushed <= via_hls.size <= pushed + 2 * AAC_FRAME_SAMPLES
    assert_tone(via_hls, frequency=frequency, level_db=LEVEL_DB)


def _best_lag(decoded: np.ndarray, reference: np.ndarray) -> int:
    lags = range(-20, 21)  # under half a period of 1 kHz, so the peak is unambiguous
    scores = [float(np.dot(np.roll(decoded, -lag), reference)) for lag in lags]
    return list(lags)[int(np.argmax(scores))]


def test_playlists_follow_the_rules_live_and_ended(tmp_path: Path) -> None:
    packager = HlsPackager(tmp_path, space_started_at=T0)
    start = T0 + 0.5
    seen_parts = 0
    for step in range(12):  # 12 x 0.6 s, checking the live playlist after each
        push_tone(packager, 1000, 0.6, start=start + step * 0.6)
        snapshot = packager.feed.snapshot()
        live = hls_rules.check(snapshot.playlist.decode(), ended=False)
        durable = hls_rules.parse((tmp_path / "index.m3u8").read_text())
        assert [s.uri for s in durable.complete] == [s.uri for s in live.complete]
        assert all(not segment.parts for segment in durable.segments)
        assert snapshot.complete_msn == len(live.complete) - 1
        parts = sum(len(segment.parts) for segment in live.segments)
        seen_parts = max(seen_parts, parts)
        hint = live.hints[0].split("URI=")[1].strip('"')
        carry, index = divmod(snapshot.part + 1, 10)
        assert hint == f"p1-{snapshot.msn + carry}-{index}.m4s"
    assert seen_parts >= 30  # three target durations of 213 ms parts
    first = hls_rules.parse(packager.feed.snapshot().playlist.decode()).segments[0]
    assert first.pdt == format_date_time(start - AAC_FRAME_SAMPLES / SAMPLE_RATE)

    packager.end()
    ended_text = packager.feed.snapshot().playlist
    assert ended_text == (tmp_path / "index.m3u8").read_bytes()
    ended = hls_rules.check(ended_text.decode(), ended=True)
    assert len(ended.complete) == 4  # 7.2 s in 2.13 s segments, the last one short
    assert packager.feed.snapshot().ended


def test_nothing_is_listed_before_it_is_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every URI a playlist names exists when the playlist is published or written, and
    every segment it names is already in the fsynced journal."""
    problems: list[str] = []
    original_publish = PlaylistFeed.publish
    original_write = RecordingDir.write_playlist

    def check_publish(feed: PlaylistFeed, snapshot: FeedSnapshot) -> None:
        _check_listed(tmp_path, snapshot.playlist.decode(), problems)
        original_publish(feed, snapshot)

    def check_write(recording: RecordingDir, text: str) -> None:
        _check_listed(tmp_path, text, problems)
        original_write(recording, text)

    monkeypatch.setattr(PlaylistFeed, "publish", check_publish)
    monkeypatch.setattr(RecordingDir, "write_playlist", check_write)
    packager = HlsPackager(tmp_path, space_started_at=T0)
    push_tone(packager, 1000, 5.0, start=T0)
    packager.end()
    assert problems == []


def _check_listed(directory: Path, text: str, problems: list[str]) -> None:
    playlist = hls_rules.parse(text)
    journal = (directory / "segments.jsonl").read_text()
    for segment in playlist.segments:
        names = [part.uri for part in segment.parts]
        if segment.uri is not None:
            names.append(segment.uri)
            if f'"msn":{int(segment.uri[1:-4])},' not in journal:
                problems.append(f"{segment.uri} listed before it was journaled")
        missing = [name for name in names if not (directory / name).exists()]
        problems += [f"{name} listed before it was written" for name in missing]


def test_push_never_waits_for_the_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A disk that does not answer at all: push() still takes every frame (the mixer's
    tick must not wait for a file), and the writer catches up once the disk answers."""
    packager = HlsPackager(tmp_path, space_started_at=T0)
    disk = threading.Event()
    real_write = recording_module.write_durably

    def stuck_write(path: Path, data: bytes) -> None:
        disk.wait()
        real_write(path, data)

    monkeypatch.setattr(recording_module, "write_durably", stuck_write)
    pushed = threading.Event()

    def push_all() -> None:
        for index, frame in enumerate(frames_of(tone(1000, 6.0))):
            packager.push(frame, T0 + index * FRAME_SECONDS)
        pushed.set()

    threading.Thread(target=push_all, daemon=True).start()
    try:
        assert pushed.wait(30.0), "push() waited for a disk that did not answer"
        assert packager.stats().backlog > 0  # the writer really was stuck
    finally:
        disk.set()
    packager.end()
    assert packager.stats().segments_written == 3


def test_push_rejects_frames_of_the_wrong_shape(tmp_path: Path) -> None:
    packager = HlsPackager(tmp_path, space_started_at=T0)
    try:
        bad_frames: list[Any] = [
            np.zeros(FRAME_SAMPLES, dtype=np.float32),
            np.zeros(FRAME_SAMPLES + 1, dtype=np.int16),
            np.zeros((2, FRAME_SAMPLES), dtype=np.int16),
            [0] * FRAME_SAMPLES,
        ]
        for bad in bad_frames:
            with pytest.raises(ValueError):
                packager.push(bad, T0)
    finally:
        packager.end()
    packager.push(np.zeros(FRAME_SAMPLES, dtype=np.int16), T0)  # after end: dropped
    assert packager.stats().frames_dropped == 1


def test_one_packager_per_directory(tmp_path: Path) -> None:
    packager = HlsPackager(tmp_path, space_started_at=T0)
    with pytest.raises(Conflict):
        HlsPackager(tmp_path, space_started_at=T0)
    packager.end()
    with pytest.raises(Conflict):  # an ended recording does not take more audio
        HlsPackager(tmp_path, space_started_at=T0)


def test_layout_is_validated_and_seconds_round_to_aac_frames(tmp_path: Path) -> None:
    assert frames_for_seconds(0.2) == 9
    assert frames_for_seconds(0.25) == 12
    assert frames_for_seconds(0.001) == 1
    with pytest.raises(ValueError):
        HlsPackager(tmp_path, space_started_at=T0, part_frames=0)
    with pytest.raises(ValueError):
        HlsPackager(tmp_path, space_started_at=T0, parts_per_segment=1000)


def test_other_layouts_keep_the_rules(tmp_path: Path) -> None:
    packager = HlsPackager(
        tmp_path, space_started_at=T0, part_frames=frames_for_seconds(0.25), parts_per_segment=16
    )
    push_tone(packager, 1000, 9.0, start=T0)
    live = hls_rules.check(packager.feed.snapshot().playlist.decode(), ended=False)
    assert live.tags["EXT-X-TARGETDURATION"] == "4"  # 16 x 256 ms = 4.1 s
    packager.end()
    hls_rules.check((tmp_path / "index.m3u8").read_text(), ended=True)
    assert_tone(decode_with_pyav(tmp_path / "replay.m4a"), frequency=1000, level_db=LEVEL_DB)


# --- crash and resume -------------------------------------------------------------


def crash_copy(packager: HlsPackager, source: Path, target: Path) -> Path:
    """What the disk holds if the process died right now (SIGKILL: no flush, no close)."""
    assert packager.sync()
    shutil.copytree(source, target)
    packager.close()
    return target


@pytest.mark.parametrize("damage", ["none", "torn_last_part", "no_part_survives"])
def test_resume_rescues_the_segment_the_dead_life_was_writing(tmp_path: Path, damage: str) -> None:
    first = HlsPackager(tmp_path / "a", space_started_at=T0)
    push_tone(first, 1000, 3.3, start=T0 + 1)  # segment 0, then 5 parts of segment 1
    crashed = crash_copy(first, tmp_path / "a", tmp_path / "crashed")
    old_parts = sorted(crashed.glob("p1-1-*.m4s"))
    assert [p.name for p in old_parts] == [f"p1-1-{i}.m4s" for i in range(5)]
    if damage == "torn_last_part":
        old_parts[-1].write_bytes(old_parts[-1].read_bytes()[:-7])
    elif damage == "no_part_survives":
        old_parts[0].unlink()
    hashes = {path.name: digest(path) for path in crashed.glob("*.m4s")}
    before = listed_segments(crashed)
    assert before == ["s0.m4s"]

    second = HlsPackager(crashed, space_started_at=T0)
    push_tone(second, 440, 2.0, start=T0 + 10)
    second.end()

    text = (crashed / "index.m3u8").read_text()
    playlist = hls_rules.check(text, ended=True)
    for name, value in hashes.items():  # nothing that existed changed its bytes
        assert digest(crashed / name) == value, name
    rescued = {"none": 5, "torn_last_part": 4, "no_part_survives": 0}[damage]
    uris = playlist.uris()
    if rescued:
        assert uris[:2] == ["s0.m4s", "s1.m4s"]
        parts = b"".join((crashed / f"p1-1-{i}.m4s").read_bytes() for i in range(rescued))
        assert (crashed / "s1.m4s").read_bytes() == parts
        assert playlist.complete[1].duration == pytest.approx(
            rescued * 10 * 1024 / 48_000, abs=1e-5
        )
        new_life_at = 2
    else:
        new_life_at = 1  # nothing of msn 1 survived, so nothing of it was ever served
    assert [s.discontinuity for s in playlist.complete].index(True) == new_life_at
    assert uris[new_life_at] == f"s{new_life_at}.m4s"
    assert (crashed / f"p2-{new_life_at}-0.m4s").exists()

    # decode time keeps increasing, and jumps with the wall clock at the new life
    starts = [parse_fragments((crashed / uri).read_bytes())[0].base_decode_time for uri in uris]
    assert starts == sorted(starts)
    new_base = starts[new_life_at]
    assert new_base == round((10 - AAC_FRAME_SAMPLES / SAMPLE_RATE) * SAMPLE_RATE)

    # The replay keeps the event's clock: the downtime between the lives is silence of
    # its length (issue 13), so the new life's tone starts where the wall clock says.
    replay = decode_with_pyav(crashed / "replay.m4a")
    life_one = (100 + rescued * 10) * AAC_FRAME_SAMPLES - AAC_FRAME_SAMPLES
    last_old, first_new = playlist.complete[new_life_at - 1], playlist.complete[new_life_at]
    downtime = first_new.pdt_seconds - (last_old.pdt_seconds + last_old.duration)
    assert downtime > 4.0  # the dead life stopped at about T0 + 4.3, the new one began at T0 + 10
    quiet = round(downtime * SAMPLE_RATE / AAC_FRAME_SAMPLES) * AAC_FRAME_SAMPLES
    assert_tone(replay[:life_one], frequency=1000, level_db=LEVEL_DB)
    assert rms_db(replay[life_one + AAC_FRAME_SAMPLES : life_one + quiet - AAC_FRAME_SAMPLES]) < -60
    assert_tone(replay[life_one + quiet + AAC_FRAME_SAMPLES :], frequency=440, level_db=LEVEL_DB)
    onset = life_one + quiet  # where the 440 Hz life begins, on the replay's own clock
    assert abs(onset / SAMPLE_RATE - (first_new.pdt_seconds - T0 - 1)) < 0.05


def test_resume_at_a_segment_boundary_starts_the_next_msn(tmp_path: Path) -> None:
    first = HlsPackager(tmp_path / "a", space_started_at=T0)
    push_tone(first, 1000, 108 * FRAME_SECONDS, start=T0)  # exactly 100 AAC frames out
    crashed = crash_copy(first, tmp_path / "a", tmp_path / "crashed")
    assert not list(crashed.glob("p1-1-*"))
    second = HlsPackager(crashed, space_started_at=T0)
    push_tone(second, 1000, 1.0, start=T0 + 5)
    second.end()
    playlist = hls_rules.check((crashed / "index.m3u8").read_text(), ended=True)
    assert playlist.uris() == ["s0.m4s", "s1.m4s"]
    assert playlist.complete[1].discontinuity


def test_a_torn_journal_line_is_dropped(tmp_path: Path) -> None:
    first = HlsPackager(tmp_path / "a", space_started_at=T0)
    push_tone(first, 1000, 2.5, start=T0)
    crashed = crash_copy(first, tmp_path / "a", tmp_path / "crashed")
    with open(crashed / "segments.jsonl", "ab") as journal:
        journal.write(b'{"msn":1,"life":1,"sta')
    second = HlsPackager(crashed, space_started_at=T0)
    push_tone(second, 1000, 1.0, start=T0 + 4)
    second.end()
    hls_rules.check((crashed / "index.m3u8").read_text(), ended=True)
    lines = (crashed / "segments.jsonl").read_text().splitlines()
    assert [line[:8] for line in lines] == ['{"msn":0', '{"msn":1', '{"msn":2']


def test_close_then_resume_then_finalize(tmp_path: Path) -> None:
    first = HlsPackager(tmp_path, space_started_at=T0)
    push_tone(first, 1000, 1.0, start=T0)
    first.close()  # node shutdown: the partial segment is flushed durably, no ENDLIST
    after_close = hls_rules.parse((tmp_path / "index.m3u8").read_text())
    assert not after_close.ended and len(after_close.complete) == 1
    second = HlsPackager(tmp_path, space_started_at=T0)
    push_tone(second, 1000, 1.0, start=T0 + 3)
    crashed = crash_copy(second, tmp_path, tmp_path.parent / f"{tmp_path.name}-crashed")

    finalize_recording(crashed)  # the node died for good: end what it left
    finalize_recording(crashed)  # idempotent
    playlist = hls_rules.check((crashed / "index.m3u8").read_text(), ended=True)
    assert [s.discontinuity for s in playlist.complete] == [False, True]
    replay = decode_with_pyav(crashed / "replay.m4a")
    # What was listed, and the 2 s between the lives as silence.
    expected = hls_rules.replay_samples(playlist) - AAC_FRAME_SAMPLES
    assert abs(replay.size - expected) <= AAC_FRAME_SAMPLES
    assert replay.size > 3.5 * SAMPLE_RATE
    with pytest.raises(NotFound):
        finalize_recording(tmp_path / "nothing-here")


@pytest.mark.slow
def test_sigkill_mid_segment_then_resume(tmp_path: Path) -> None:
    """A packager process pushing in real time is SIGKILLed; a new one resumes."""
    directory = tmp_path / "space"
    started = time.time()
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    child = subprocess.Popen(
        [
            sys.executable,
            Path(__file__).with_name("packager_child.py"),
            directory,
            str(started),
            "1000",
        ],
        env=env,
        stdout=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        # mid-segment: segment 0 listed and a few parts of segment 1 written
        while not (directory / "p1-1-3.m4s").exists():
            assert child.poll() is None, "the packager process died on its own"
            assert time.monotonic() < deadline, "the packager process made no progress"
            time.sleep(0.01)
        before = listed_segments(directory)
        child.send_signal(signal.SIGKILL)
        child.wait(5)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(5)
        assert child.stdout is not None
        child.stdout.close()
    hashes = {name: digest(directory / name) for name in before}
    old_parts = {p.name: digest(p) for p in directory.glob("p1-*.m4s")}
    assert before == ["s0.m4s"]

    resumed = HlsPackager(directory, space_started_at=started)
    push_tone(resumed, 440, 2.0, start=time.time())
    resumed.end()

    playlist = hls_rules.check((directory / "index.m3u8").read_text(), ended=True)
    uris = playlist.uris()
    assert uris[: len(before)] == before
    assert all(digest(directory / name) == value for name, value in hashes.items())
    assert all(digest(directory / name) == value for name, value in old_parts.items())
    msns = [int(uri[1:-4]) for uri in uris]
    assert msns == list(range(len(msns)))  # strictly increasing, none reused
    discontinuities = [s.discontinuity for s in playlist.complete]
    assert discontinuities.count(True) == 1
    first_new = discontinuities.index(True)
    assert first_new == 2, "the segment the dead process was writing is rescued as s1"
    assert all(p.startswith("p2-") for p in _part_names_of_life(directory, first_new))

    replay = decode_with_pyav(directory / "replay.m4a")
    life_one = sum(s.duration or 0 for s in playlist.complete[:first_new]) - 1024 / SAMPLE_RATE
    split = round(life_one * SAMPLE_RATE)
    assert_tone(replay[:split], frequency=1000, level_db=LEVEL_DB)
    assert_tone(replay[split + AAC_FRAME_SAMPLES :], frequency=440, level_db=LEVEL_DB)


def _part_names_of_life(directory: Path, msn: int) -> list[str]:
    return sorted(path.name for path in directory.glob(f"p*-{msn}-*.m4s"))


# --- the feed -----------------------------------------------------------------------


def snapshot(**changes: object) -> FeedSnapshot:
    fields: dict[str, object] = {
        "playlist": b"#EXTM3U\n",
        "life": 1,
        "msn": 5,
        "part": 3,
        "complete_msn": 4,
        "parts_per_segment": 10,
        "target_duration": 2,
        "part_target": 0.21334,
        "ended": False,
    }
    fields.update(changes)
    return FeedSnapshot(**fields)  # type: ignore[arg-type]


def test_snapshot_answers_blocking_reload_questions() -> None:
    now = snapshot()
    assert now.has(5, 3) and now.has(4, None) and now.has(2, 9)
    assert not now.has(5, 4) and not now.has(5, None)
    # a part index past the segment's last part means part 0 of the next segment
    assert snapshot(msn=6, part=0).has(5, 10)
    assert not snapshot(msn=5, part=9).has(5, 10)
    assert snapshot(ended=True).has(99, 0)
    assert now.parts_ahead(6, 0) == 7
    assert now.advance_part_limit == 14  # 3 s worth of 213 ms parts


@pytest.mark.realtime
async def test_feed_wakes_waiters_from_another_thread() -> None:
    feed = PlaylistFeed(snapshot())
    published_at: list[float] = []

    def publish_later() -> None:
        time.sleep(0.05)
        feed.publish(snapshot(part=4))
        published_at.append(time.perf_counter())

    waiters = [asyncio.create_task(feed.wait_for(5, 4)) for _ in range(20)]
    thread = threading.Thread(target=publish_later)
    thread.start()
    results = await asyncio.wait_for(asyncio.gather(*waiters), 2)
    woke = time.perf_counter()
    thread.join()
    assert all(result.part == 4 for result in results)
    assert woke - published_at[0] < 0.02
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await feed.wait_for(6, 0)


def test_dates_are_utc_with_milliseconds() -> None:
    assert format_date_time(T0) == "2023-11-14T22:13:20.000Z"
    assert format_date_time(T0 + 0.9996) == "2023-11-14T22:13:21.000Z"
    assert format_date_time(T0 - 0.0213) == "2023-11-14T22:13:19.979Z"


def test_a_handover_s_held_mix_fits_in_the_backlog() -> None:
    """A node taking a space over gives its packager everything it held at once: that
    must not be more than the packager lets wait, or the start of it becomes silence."""
    assert MAX_HELD_SECONDS < DEFAULT_MAX_BACKLOG_SECONDS

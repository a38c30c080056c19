"""LL-HLS packager: the mixer's 20 ms PCM frames in; AAC parts, segments, a playlist and a
durable recording out.

The media thread only calls push(), which copies the frame onto a queue and returns: it
never waits for disk or the encoder. What waits is bounded (DEFAULT_MAX_BACKLOG_SECONDS):
beyond it only the count of frames is kept, and they are recorded as silence. One writer
thread per space encodes, cuts parts of part_frames AAC frames (parts_per_segment parts
make a segment), writes them, and publishes each new playlist to `feed` for the origin.

Durability order per segment: segment file fsynced (temp, rename, directory fsync) ->
journal line fsynced -> durable playlist rewritten the same way -> feed updated. With an
object store the segment is also stored before the journal line is written, and the
store's journal updated before the playlist lists it (majlis.media.recording.directory). A part
is written (temp + rename) before any playlist names it. What survives a crash and how
the next packager resumes is described in majlis.media.recording.directory.

Timeline: decode time (tfdt, 48 kHz) counts samples within a life. A new life starts at
the wall-clock offset of its first sample from space_started_at (never before the end of
what is already listed), so decode time keeps increasing across restarts and the gap is
the downtime. EXT-X-PROGRAM-DATE-TIME is the wall clock of a segment's first sample:
the capture time of the life's first frame plus the samples since then. A life that
follows a handover (media/runtime/membership.py) is given frames the old node also heard;
those from before the end of the old life's audio (Life.heard_until) are dropped, so the
moment is recorded once.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from majlis.errors import Conflict
from majlis.media.audio import FRAME_SAMPLES, SAMPLE_RATE
from majlis.media.formats.encoder import (
    AAC_FRAME_SAMPLES,
    DEFAULT_BITRATE,
    AacEncoder,
    AccessUnit,
    silent_frame,
)
from majlis.media.formats.fmp4 import TIMESCALE, fragment
from majlis.media.hls.feed import FeedSnapshot, PlaylistFeed
from majlis.media.hls.playlist import MediaPlaylist, PlaylistPart, PlaylistSegment, PlaylistTiming
from majlis.media.hls.replay import Silence, build_replay
from majlis.media.recording.directory import (
    INIT_NAME,
    PLAYLIST_NAME,
    REPLAY_NAME,
    Life,
    RecordingConfig,
    RecordingDir,
    SegmentRecord,
    part_name,
    segment_name,
)
from majlis.media.recording.storage import ObjectStore

__all__ = [
    "DEFAULT_PARTS_PER_SEGMENT",
    "DEFAULT_PART_FRAMES",
    "HlsPackager",
    "PackagerStats",
    "finalize_recording",
    "frames_for_seconds",
]

log = logging.getLogger(__name__)

# 10 AAC frames = 213 ms parts; 10 parts = 2.13 s segments (target duration 2).
DEFAULT_PART_FRAMES = 10
DEFAULT_PARTS_PER_SEGMENT = 10
_MAX_PART_FRAMES = 94  # about 2 s
_MAX_PARTS_PER_SEGMENT = 100
# A handover's two nodes both hear its speakers for a moment (media/rtc/control.py); the
# new node's frames from before the end of what the old one listed are that moment twice.
# Frames further back than this are not an overlap but a wall clock set back: kept.
MAX_OVERLAP_SECONDS = 30.0
# Downtime longer than an hour is replayed as an hour of silence: a recording resumed a day
# later should not download a day of nothing.
MAX_DOWNTIME_SECONDS = 3600.0
# The writer falls behind when the object store is out (PatientStore waits for it) or the
# machine is too busy to encode. Up to this much audio waits in memory (about 95 KB a
# second); what comes while that much waits is recorded as silence of its length, so
# that a space's memory stays bounded and its timeline true.
DEFAULT_MAX_BACKLOG_SECONDS = 120.0
_WARN_EVERY_S = 60.0


def frames_for_seconds(seconds: float) -> int:
    """A duration in seconds rounded to whole AAC frames (at least one)."""
    return max(1, round(seconds * SAMPLE_RATE / AAC_FRAME_SAMPLES))


@dataclass(frozen=True, slots=True)
class PackagerStats:
    frames_pushed: int
    frames_dropped: int
    overlap_dropped: int  # recorded already by the node that handed the space over
    frames_silenced: int  # came while the writer was too far behind: recorded as silence
    backlog: int
    parts_written: int
    segments_written: int
    clock_drift: float
    failed: bool


@dataclass(frozen=True, slots=True)
class _Stop:
    end: bool


@dataclass(frozen=True, slots=True)
class _Barrier:
    done: threading.Event


class _Gap:
    """Frames that came while the backlog was full: only their count is kept. The media
    thread lengthens the gap until the writer takes it or a frame is queued after it."""

    def __init__(self, capture_time: float) -> None:
        self.capture_time = capture_time
        self._frames = 1
        self._taken = False
        self._lock = threading.Lock()

    def lengthen(self) -> bool:
        """One frame more; False once the writer has taken the gap."""
        with self._lock:
            if not self._taken:
                self._frames += 1
            return not self._taken

    def take(self) -> int:
        with self._lock:
            self._taken = True
            return self._frames


_Item = tuple[npt.NDArray[np.int16], float] | _Gap | _Stop | _Barrier


class HlsPackager:
    """One space's listener stream and recording. push() from the media thread; end() or
    close() from a control thread; `feed` from anywhere."""

    def __init__(
        self,
        directory: Path,
        *,
        space_started_at: float,
        part_frames: int = DEFAULT_PART_FRAMES,
        parts_per_segment: int = DEFAULT_PARTS_PER_SEGMENT,
        bitrate: int = DEFAULT_BITRATE,
        store: ObjectStore | None = None,
        max_backlog_seconds: float = DEFAULT_MAX_BACKLOG_SECONDS,
    ) -> None:
        """store: where the recording is also kept (a PatientStore, so that an outage
        delays the writer instead of failing it); None keeps it on this disk only.
        max_backlog_seconds: how much audio may wait for the writer (see the constant)."""
        _check_layout(part_frames, parts_per_segment)
        if not max_backlog_seconds > 0:
            raise ValueError("max_backlog_seconds must be positive")
        self._max_backlog = max(1, round(max_backlog_seconds * SAMPLE_RATE / FRAME_SAMPLES))
        encoder = AacEncoder(bitrate)
        wanted = RecordingConfig(
            part_frames=part_frames,
            parts_per_segment=parts_per_segment,
            bitrate=bitrate,
            space_started_at=space_started_at,
            audio_specific_config=encoder.audio_specific_config.hex(),
        )
        recording = RecordingDir.open(directory, wanted, store)
        if recording.ended:
            recording.close()
            raise Conflict(f"recording {directory.name} has already ended")
        self._recording = recording
        self._config = recording.config
        self._encoder = (
            encoder if self._config.bitrate == bitrate else AacEncoder(self._config.bitrate)
        )
        try:
            self._pipeline = _Pipeline(recording)
        except BaseException:
            recording.close()
            raise
        self.feed = PlaylistFeed(self._pipeline.snapshot())
        self._pipeline.feed = self.feed
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._stopping = False
        self._stop_lock = threading.Lock()
        self._frames_pushed = 0
        self._frames_dropped = 0
        self._overlap_dropped = 0
        self._frames_silenced = 0
        self._gap: _Gap | None = None  # the newest queued, while nothing follows it
        self._warned_at = -math.inf
        self._failure: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"hls-packager-{directory.name}", daemon=True
        )
        self._thread.start()

    @property
    def directory(self) -> Path:
        return self._recording.directory

    @property
    def failure(self) -> BaseException | None:
        """The error that stopped the writer thread (disk full...), if any."""
        return self._failure

    def push(self, pcm: npt.NDArray[np.int16], capture_time: float) -> None:
        """Queue one mixer frame: 960 int16 mono samples whose first sample was captured at
        capture_time (wall clock). Never blocks. Frames after end()/close() are dropped."""
        if (
            not isinstance(pcm, np.ndarray)
            or pcm.dtype != np.int16
            or pcm.shape != (FRAME_SAMPLES,)
        ):
            raise ValueError(f"push wants an int16 array of shape ({FRAME_SAMPLES},)")
        if self._stopping or self._failure is not None:
            self._frames_dropped += 1
            return
        self._frames_pushed += 1
        if self._queue.qsize() >= self._max_backlog:
            self._silence(float(capture_time))
            return
        self._gap = None
        self._queue.put((pcm.copy(), float(capture_time)))

    def _silence(self, capture_time: float) -> None:
        self._frames_silenced += 1
        if self._gap is not None and self._gap.lengthen():
            return
        now = time.monotonic()
        if now - self._warned_at > _WARN_EVERY_S:
            self._warned_at = now
            log.warning(
                "space %s: the recording is %.0f s behind; recording silence until it "
                "catches up (%d frames so far)",
                self.directory.name,
                self._max_backlog * FRAME_SAMPLES / SAMPLE_RATE,
                self._frames_silenced,
            )
        self._gap = _Gap(capture_time)
        self._queue.put(self._gap)

    def sync(self, timeout: float = 10.0) -> bool:
        """Wait until every frame pushed so far is written and published (tests, tools)."""
        if not self._thread.is_alive():
            return self._failure is None
        barrier = _Barrier(threading.Event())
        self._queue.put(barrier)
        return barrier.done.wait(timeout)

    def end(self, timeout: float = 120.0) -> None:
        """Finish the recording: flush the last partial segment durably, build the replay,
        append EXT-X-ENDLIST. Blocks until done; raises if the writer thread failed."""
        self._stop(_Stop(end=True), timeout)

    def close(self, timeout: float = 60.0) -> None:
        """Stop without ending (node shutdown): flush what is buffered durably; a later
        packager on the same directory resumes the recording."""
        self._stop(_Stop(end=False), timeout)

    def stats(self) -> PackagerStats:
        return PackagerStats(
            frames_pushed=self._frames_pushed,
            frames_dropped=self._frames_dropped,
            overlap_dropped=self._overlap_dropped,
            frames_silenced=self._frames_silenced,
            backlog=self._queue.qsize(),
            parts_written=self._pipeline.parts_written,
            segments_written=self._pipeline.segments_written,
            clock_drift=self._pipeline.clock_drift,
            failed=self._failure is not None,
        )

    def _stop(self, command: _Stop, timeout: float) -> None:
        with self._stop_lock:
            first = not self._stopping
            self._stopping = True
        if first:
            self._queue.put(command)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"packager for {self.directory} did not stop in {timeout} s")
        if self._failure is not None:
            raise RuntimeError(f"packager for {self.directory} failed") from self._failure

    def _run(self) -> None:
        try:
            self._serve_queue()
        except Exception as error:
            log.exception("packager for %s failed; the recording stops here", self.directory)
            self._failure = error
        finally:
            self._recording.close()

    def _serve_queue(self) -> None:
        while True:
            item = self._queue.get()
            if isinstance(item, _Barrier):
                item.done.set()
            elif isinstance(item, _Stop):
                self._finish(item.end)
                return
            elif isinstance(item, _Gap):
                self._pipeline.add_silence(item.capture_time, item.take() * FRAME_SAMPLES)
            else:
                pcm, capture_time = item
                if self._pipeline.recorded_already(capture_time, pcm.size):
                    self._overlap_dropped += 1
                    continue
                self._pipeline.note_capture(capture_time, pcm.size)
                for unit in self._encoder.encode(pcm):
                    self._pipeline.add(unit)

    def _finish(self, end: bool) -> None:
        for unit in self._encoder.flush():
            self._pipeline.add(unit)
        self._pipeline.flush()
        if end:
            _write_ending(self._recording)
        else:
            heard_until = self._pipeline.captured_until
            if heard_until is not None:
                self._recording.close_life(heard_until)
            self._recording.store_file(PLAYLIST_NAME)
        self._pipeline.publish(ended=end, hint=False)


class _Pipeline:
    """Writer-thread state: cuts access units into parts and segments, writes them and
    keeps the playlist. Single-threaded by construction."""

    def __init__(self, recording: RecordingDir) -> None:
        self._recording = recording
        self._config = recording.config
        self._life_id = recording.next_life_id
        self._life: Life | None = None
        self._msn = recording.next_msn
        self._playlist = _playlist_from(recording)
        self._newest = (self._msn, -1)
        self._first_capture: float | None = None
        self._samples_captured = 0
        self._listed_until = _audio_until(recording)
        self.feed: PlaylistFeed | None = None
        self.clock_drift = 0.0
        self.parts_written = 0
        self.segments_written = 0
        # the part being filled, and the parts of the segment being filled
        self._pending: list[bytes] = []
        self._part_start = 0
        self._segment_parts: list[bytes] = []
        self._segment_frames: list[int] = []
        self._segment_start = 0
        self._silent: bytes | None = None
        self._silence_carry = 0  # samples of silence short of a whole AAC frame
        self._playlist.set_preload_hint(part_name(self._life_id, self._msn, 0))
        # The playlist on disk must list what recovery may have just rescued.
        recording.write_playlist(self._playlist.render_recording())
        recording.store_file(PLAYLIST_NAME)

    def recorded_already(self, capture_time: float, samples: int) -> bool:
        """A frame from before this life's first one that is mostly before the end of the
        recording's audio so far: the node that handed the space over recorded that
        moment. (The two nodes' 20 ms ticks are not aligned; keeping the frames from the
        middle on repeats or skips at most half of one.)"""
        until = self._listed_until
        if self._first_capture is not None or until is None:
            return False
        middle = capture_time + samples / SAMPLE_RATE / 2
        return until - MAX_OVERLAP_SECONDS < middle <= until

    @property
    def captured_until(self) -> float | None:
        """Wall clock at the end of the last frame this life was given."""
        if self._first_capture is None or self._life is None:
            return None
        return self._first_capture + self._samples_captured / SAMPLE_RATE

    def note_capture(self, capture_time: float, samples: int) -> None:
        """Track the mixer's clock: the life's wall clock anchor and how far it drifts."""
        if self._first_capture is None:
            self._first_capture = capture_time
        expected = self._first_capture + self._samples_captured / SAMPLE_RATE
        self.clock_drift = capture_time - expected
        self._samples_captured += samples

    def add_silence(self, capture_time: float, samples: int) -> None:
        """Audio nobody could encode in time, as silent AAC frames of the same length
        (none is encoded). Before this life's first frame it is simply not there: the
        life then starts at its first frame's wall clock, and the gap is downtime. The
        encoder still holds up to a frame of what came before: it follows the silence."""
        if self._first_capture is None:
            return
        self.note_capture(capture_time, samples)
        if self._silent is None:
            self._silent = silent_frame(self._config.bitrate)
        self._silence_carry += samples
        whole, self._silence_carry = divmod(self._silence_carry, AAC_FRAME_SAMPLES)
        for _ in range(whole):
            self.add(AccessUnit(data=self._silent, pts=0))

    def add(self, unit: AccessUnit) -> None:
        if self._life is None:
            self._start_life(unit)
        self._pending.append(unit.data)
        if len(self._pending) == self._config.part_frames:
            self._emit_part()

    def flush(self) -> None:
        """Write the partial part and partial segment left at the end of a life."""
        if self._pending:
            self._emit_part()
        if self._segment_parts:
            self._complete_segment()

    def snapshot(self, *, ended: bool = False) -> FeedSnapshot:
        newest_msn, newest_part = self._newest
        delta = self._playlist.render_delta()
        return FeedSnapshot(
            playlist=self._playlist.render_live().encode(),
            life=self._life_id,
            msn=newest_msn,
            part=newest_part,
            complete_msn=self._msn - 1,
            parts_per_segment=self._config.parts_per_segment,
            target_duration=self._config.target_duration,
            part_target=float(_timing(self._config).part_target_text),
            ended=ended,
            delta=None if delta is None else delta.encode(),
        )

    def publish(self, *, ended: bool = False, hint: bool = True) -> None:
        if not hint:
            self._playlist.set_preload_hint(None)
        if ended:
            self._playlist.end()
        if self.feed is not None:
            self.feed.publish(self.snapshot(ended=ended))

    def _start_life(self, first: AccessUnit) -> None:
        first_capture = self._first_capture if self._first_capture is not None else 0.0
        wall_at_base = first_capture + first.pts / SAMPLE_RATE
        since_start = round((wall_at_base - self._config.space_started_at) * TIMESCALE)
        base = max(since_start, self._recording.end_of_media, 0)
        life = Life(
            id=self._life_id,
            first_msn=self._msn,
            base=base,
            wall_at_base=wall_at_base,
            priming=max(0, -first.pts),
        )
        self._recording.add_life(life)
        self._life = life
        self._part_start = base
        self._segment_start = base

    def _emit_part(self) -> None:
        life = self._require_life()
        index = len(self._segment_parts)
        sequence = self._msn * self._config.parts_per_segment + index + 1
        data = fragment(sequence, self._part_start, self._pending)
        self._recording.write_part(part_name(life.id, self._msn, index), data)
        self._segment_parts.append(data)
        self._segment_frames.append(len(self._pending))
        self._part_start += len(self._pending) * AAC_FRAME_SAMPLES
        self._pending = []
        self.parts_written += 1
        self._newest = (self._msn, index)
        self._playlist.set_open_segment(self._open_segment(life))
        self._playlist.set_preload_hint(self._next_part_uri(life, index))
        self.publish()
        if index + 1 == self._config.parts_per_segment:
            self._complete_segment()

    def _complete_segment(self) -> None:
        life = self._require_life()
        record = SegmentRecord(
            msn=self._msn,
            life=life.id,
            start=self._segment_start,
            pdt=life.wall_clock(self._segment_start),
            parts=tuple(self._segment_frames),
        )
        discontinuity = _starts_life(self._last_record(), record.life)
        self._recording.add_segment(record, b"".join(self._segment_parts))
        self._playlist.append_segment(_playlist_segment(record, discontinuity, with_parts=True))
        self._playlist.set_open_segment(None)
        self._recording.write_playlist(self._playlist.render_recording())
        self.segments_written += 1
        self._msn += 1
        self._segment_parts = []
        self._segment_frames = []
        self._segment_start = self._part_start
        self.publish()

    def _open_segment(self, life: Life) -> PlaylistSegment:
        frames = sum(self._segment_frames)
        return PlaylistSegment(
            uri=None,
            duration=frames * AAC_FRAME_SAMPLES / TIMESCALE,
            program_date_time=life.wall_clock(self._segment_start),
            discontinuity=_starts_life(self._last_record(), life.id),
            parts=_parts(life.id, self._msn, self._segment_frames),
        )

    def _next_part_uri(self, life: Life, index: int) -> str:
        if index + 1 < self._config.parts_per_segment:
            return part_name(life.id, self._msn, index + 1)
        return part_name(life.id, self._msn + 1, 0)

    def _last_record(self) -> SegmentRecord | None:
        segments = self._recording.segments
        return segments[-1] if segments else None

    def _require_life(self) -> Life:
        if self._life is None:
            raise RuntimeError("no life has started: no audio was encoded yet")
        return self._life


def _audio_until(recording: RecordingDir) -> float | None:
    """Wall clock where the recording's audio so far ends: where its last life said it
    did when it closed cleanly, else the end of its last listed segment."""
    if not recording.segments:
        return None
    last = recording.segments[-1]
    life = next((life for life in recording.lives if life.id == last.life), None)
    if life is not None and life.heard_until is not None:
        return life.heard_until
    return last.pdt + last.duration


def finalize_recording(directory: Path, store: ObjectStore | None = None) -> None:
    """End a recording whose packager died without end() (idempotent). Recovers the
    segment it was writing, then writes EXT-X-ENDLIST and the replay. Raises NotFound
    when directory (and store) holds no recording, Conflict when a packager still
    writes it."""
    recording = RecordingDir.open(directory, None, store)
    try:
        _write_ending(recording)
    finally:
        recording.close()


def _write_ending(recording: RecordingDir) -> None:
    """Commit the end in state.json first, then write what derives from it, so a crash
    in between is repaired by finalize_recording rather than resumed."""
    if not recording.ended:
        recording.mark_ended()
    # The replay is written (and stored) atomically, so one that exists is complete.
    if recording.segments and not recording.has(REPLAY_NAME):
        build_replay(
            recording.path(REPLAY_NAME),
            # Segments of a recording restored here are fetched from the store.
            [recording.local_segment(record.msn) for record in recording.segments],
            bytes.fromhex(recording.config.audio_specific_config),
            priming=recording.lives[0].priming if recording.lives else 0,
            silence=Silence(downtime(recording.segments), silent_frame(recording.config.bitrate)),
        )
        recording.store_file(REPLAY_NAME)
    playlist = _playlist_from(recording)
    playlist.end()
    recording.write_playlist(playlist.render_recording())
    recording.store_file(PLAYLIST_NAME)


def _check_layout(part_frames: int, parts_per_segment: int) -> None:
    if not 1 <= part_frames <= _MAX_PART_FRAMES:
        raise ValueError(f"part_frames must be within 1..{_MAX_PART_FRAMES}")
    if not 1 <= parts_per_segment <= _MAX_PARTS_PER_SEGMENT:
        raise ValueError(f"parts_per_segment must be within 1..{_MAX_PARTS_PER_SEGMENT}")


def _timing(config: RecordingConfig) -> PlaylistTiming:
    return PlaylistTiming(target_duration=config.target_duration, part_target=config.part_seconds)


def _playlist_from(recording: RecordingDir) -> MediaPlaylist:
    """The playlist of what the recording lists. Parts of earlier lives are left out: a
    power loss may have taken part files that were never fsynced, and a listed part must
    be downloadable; their segments are."""
    playlist = MediaPlaylist(_timing(recording.config), map_uri=INIT_NAME)
    before: SegmentRecord | None = None
    for record in recording.segments:
        discontinuity = _starts_life(before, record.life)
        playlist.append_segment(_playlist_segment(record, discontinuity, with_parts=False))
        before = record
    return playlist


def _playlist_segment(
    record: SegmentRecord, discontinuity: bool, *, with_parts: bool
) -> PlaylistSegment:
    return PlaylistSegment(
        uri=segment_name(record.msn),
        duration=record.duration,
        program_date_time=record.pdt,
        discontinuity=discontinuity,
        parts=_parts(record.life, record.msn, record.parts) if with_parts else (),
    )


def _parts(life: int, msn: int, frames: list[int] | tuple[int, ...]) -> tuple[PlaylistPart, ...]:
    return tuple(
        PlaylistPart(part_name(life, msn, index), count * AAC_FRAME_SAMPLES / TIMESCALE)
        for index, count in enumerate(frames)
    )


def _starts_life(before: SegmentRecord | None, life: int) -> bool:
    """EXT-X-DISCONTINUITY goes before the first segment of every life but the first."""
    return before is not None and before.life != life


def downtime(segments: Sequence[SegmentRecord]) -> list[int]:
    """AAC frames of silence to put before each segment: where a new life starts, the
    wall-clock time between the last life's end and its start. Within a life, none."""
    frames = [0] * len(segments)
    for i in range(1, len(segments)):
        before, segment = segments[i - 1], segments[i]
        if segment.life == before.life:
            continue
        gap = min(segment.pdt - (before.pdt + before.duration), MAX_DOWNTIME_SECONDS)
        frames[i] = max(0, round(gap * SAMPLE_RATE / AAC_FRAME_SAMPLES))
    return frames

"""The durable side of a space's recording: one directory per space.

Layout (every name is fixed or built from integers, which is what the origin accepts):

- init.mp4            the fMP4 init segment; written once, never changes.
- s{msn}.m4s          a complete segment, durable before it is listed anywhere.
- p{life}-{msn}-{i}.m4s  LL-HLS parts; atomic (temp + rename) but not fsynced: they only
                      matter live, and recovery checks them before trusting them.
- state.json          config and lives, rewritten atomically and durably.
- segments.jsonl      append-only journal, one fsynced line per listed segment: the
                      source of truth for what the playlist lists.
- index.m3u8          the durable playlist (complete segments, ENDLIST once ended).
- replay.m4a          the single-file replay, written when the space ends.
- .lock               flock held by the one packager writing here.

A "life" is one packager run on the directory. A node that dies (even by SIGKILL) leaves
the directory consistent; the next packager opens a new life.

Resume rule, for the segment the dead life was in the middle of (msn K): its parts may
have been served (and cached by edges), so they must keep their bytes and the audio they
carry belongs in the recording. Recovery therefore turns the longest valid run of parts
p{L}-K-0.. into a shorter segment s{K} (or adopts s{K} if the dead life had written it
but not journaled it; it is then the same bytes), lists it, and the new life starts at
K+1 behind an EXT-X-DISCONTINUITY. Only when no valid part of K survives does the new
life start at K itself: after a process crash that means nothing of K was ever written,
so nothing of it was served (only a power loss can take parts that were, since parts are
not fsynced). Parts carry the life in their name, so a URI of an old life never names
new bytes, whatever happens to msn K.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from majlis.errors import Conflict, NotFound
from majlis.media.encoder import AAC_FRAME_SAMPLES
from majlis.media.fmp4 import TIMESCALE, Fragment, Mp4FormatError, init_segment, parse_fragments

__all__ = [
    "INIT_NAME",
    "PART_NAME",
    "PLAYLIST_NAME",
    "REPLAY_NAME",
    "SEGMENT_NAME",
    "Life",
    "RecordingConfig",
    "RecordingDir",
    "SegmentRecord",
    "durable_file",
    "part_name",
    "segment_name",
    "write_atomically",
    "write_durably",
]

log = logging.getLogger(__name__)

INIT_NAME = "init.mp4"
PLAYLIST_NAME = "index.m3u8"
REPLAY_NAME = "replay.m4a"
STATE_NAME = "state.json"
JOURNAL_NAME = "segments.jsonl"
LOCK_NAME = ".lock"
_NUMBER = r"(0|[1-9][0-9]{0,11})"
SEGMENT_NAME = re.compile(rf"s{_NUMBER}\.m4s")
PART_NAME = re.compile(rf"p([1-9][0-9]{{0,8}})-{_NUMBER}-(0|[1-9][0-9]{{0,3}})\.m4s")
_STATE_FORMAT = 1


def segment_name(msn: int) -> str:
    return f"s{msn}.m4s"


def part_name(life: int, msn: int, index: int) -> str:
    return f"p{life}-{msn}-{index}.m4s"


@dataclass(frozen=True, slots=True)
class RecordingConfig:
    """Fixed for the whole recording: the first packager's choice wins on resume, since
    the target duration and part target of a playlist must never change."""

    part_frames: int
    parts_per_segment: int
    bitrate: int
    space_started_at: float
    audio_specific_config: str  # hex

    @property
    def part_samples(self) -> int:
        return self.part_frames * AAC_FRAME_SAMPLES

    @property
    def part_seconds(self) -> float:
        return self.part_samples / TIMESCALE

    @property
    def segment_seconds(self) -> float:
        return self.part_seconds * self.parts_per_segment

    @property
    def target_duration(self) -> int:
        # Segments never exceed the configured length, and EXTINF rounded to the nearest
        # second must not exceed the target (RFC 8216bis 4.4.3.1).
        return max(1, math.floor(self.segment_seconds + 0.5))


@dataclass(frozen=True, slots=True)
class Life:
    """One packager run. Decode time `base` (tfdt of its first sample) was at wall-clock
    time wall_at_base; priming is the encoder's leading silence in samples."""

    id: int
    first_msn: int
    base: int
    wall_at_base: float
    priming: int

    def wall_clock(self, decode_time: int) -> float:
        return self.wall_at_base + (decode_time - self.base) / TIMESCALE


@dataclass(frozen=True, slots=True)
class SegmentRecord:
    """A listed segment: its first decode time, program date time and part sizes (in AAC
    frames), enough to rebuild its playlist entry and part URIs."""

    msn: int
    life: int
    start: int
    pdt: float
    parts: tuple[int, ...]

    @property
    def frames(self) -> int:
        return sum(self.parts)

    @property
    def end(self) -> int:
        return self.start + self.frames * AAC_FRAME_SAMPLES

    @property
    def duration(self) -> float:
        return self.frames * AAC_FRAME_SAMPLES / TIMESCALE


@contextlib.contextmanager
def durable_file(path: Path) -> Iterator[BinaryIO]:
    """Write path through a temp file; on success fsync it, rename it into place and fsync
    the directory, so that after the block the file survives power loss. On error the
    temp file is removed and path is untouched."""
    temp = path.with_name(f".{path.name}.tmp")
    try:
        with open(temp, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    _fsync_directory(path.parent)


def write_durably(path: Path, data: bytes) -> None:
    with durable_file(path) as handle:
        handle.write(data)


def write_atomically(path: Path, data: bytes) -> None:
    """Temp file and rename: readers see all of the file or none of it (no fsync)."""
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_bytes(data)
    os.replace(temp, path)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class RecordingDir:
    """The durable state of one recording, owned by one packager at a time (flock).

    open() recovers whatever a dead packager left. Every method does disk I/O: call
    them from the packager's writer thread, never from the media thread.
    """

    def __init__(
        self,
        directory: Path,
        lock: IO[bytes],
        config: RecordingConfig,
        lives: list[Life],
        segments: list[SegmentRecord],
        ended: bool,
    ) -> None:
        self.directory = directory
        self.config = config
        self.lives = lives
        self.segments = segments
        self.ended = ended
        self._lock = lock
        self._journal: IO[bytes] | None = None

    @classmethod
    def open(cls, directory: Path, config: RecordingConfig | None) -> RecordingDir:
        """Lock, load and recover the recording in directory.

        With a config, a missing recording is created (an existing one keeps its own
        config); without one, the recording must exist."""
        if config is None and not (directory / STATE_NAME).is_file():
            raise NotFound(f"no recording in {directory}")
        directory.mkdir(parents=True, exist_ok=True)
        lock = _acquire_lock(directory)
        try:
            _remove_temp_files(directory)
            state = _load_state(directory)
            if state is None and config is not None:
                _create(directory, config)
                state = _load_state(directory)
            if state is None:
                raise NotFound(f"no recording in {directory}")
            stored, lives, ended = state
            if config is not None:
                _warn_if_config_differs(stored, config)
            segments = _load_journal(directory / JOURNAL_NAME)
            recording = cls(directory, lock, stored, lives, segments, ended)
            if not ended:
                recording._rescue_open_segment()
            return recording
        except BaseException:
            lock.close()
            raise

    @property
    def next_msn(self) -> int:
        return self.segments[-1].msn + 1 if self.segments else 0

    @property
    def next_life_id(self) -> int:
        return max((life.id for life in self.lives), default=0) + 1

    @property
    def end_of_media(self) -> int:
        """Decode time just after the last listed segment (0 when there is none)."""
        return self.segments[-1].end if self.segments else 0

    def path(self, name: str) -> Path:
        return self.directory / name

    def add_life(self, life: Life) -> None:
        """Durably record a life before any of its parts reach the disk."""
        self.lives.append(life)
        self._save_state()

    def write_part(self, name: str, data: bytes) -> None:
        write_atomically(self.path(name), data)

    def add_segment(self, record: SegmentRecord, data: bytes) -> None:
        """Make the segment durable, then journal it: only then may a playlist list it."""
        write_durably(self.path(segment_name(record.msn)), data)
        self._append_journal(record)
        self.segments.append(record)

    def write_playlist(self, text: str) -> None:
        write_durably(self.path(PLAYLIST_NAME), text.encode())

    def mark_ended(self) -> None:
        self.ended = True
        self._save_state()

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        self._lock.close()

    def _save_state(self) -> None:
        state = {
            "format": _STATE_FORMAT,
            "config": asdict(self.config),
            "lives": [asdict(life) for life in self.lives],
            "ended": self.ended,
        }
        write_durably(self.path(STATE_NAME), json.dumps(state, indent=1).encode())

    def _append_journal(self, record: SegmentRecord) -> None:
        if self._journal is None:
            self._journal = open(self.path(JOURNAL_NAME), "ab")  # noqa: SIM115 (kept open)
        line = json.dumps(asdict(record), separators=(",", ":")) + "\n"
        self._journal.write(line.encode())
        self._journal.flush()
        os.fsync(self._journal.fileno())

    def _rescue_open_segment(self) -> None:
        """Apply the resume rule (module docstring) to the segment a dead life left open."""
        if not self.lives:
            return
        life = self.lives[-1]
        msn = self.next_msn
        if msn < life.first_msn:
            return
        data = self._surviving_segment(life, msn)
        if data is None:
            return
        fragments = _contiguous_prefix(parse_fragments(data))
        data = data[: fragments[-1].end]
        start = fragments[0].base_decode_time
        record = SegmentRecord(
            msn=msn,
            life=life.id,
            start=start,
            pdt=life.wall_clock(start),
            parts=tuple(fragment.sample_count for fragment in fragments),
        )
        log.info("recording %s: rescued segment %d of life %d", self.directory, msn, life.id)
        self.add_segment(record, data)

    def _surviving_segment(self, life: Life, msn: int) -> bytes | None:
        written = self.path(segment_name(msn))
        with contextlib.suppress(OSError, Mp4FormatError):
            data = written.read_bytes()
            if parse_fragments(data):
                return data
        parts: list[bytes] = []
        for index in range(self.config.parts_per_segment):
            part = self._valid_part(part_name(life.id, msn, index))
            if part is None:
                break
            parts.append(part)
        return b"".join(parts) if parts else None

    def _valid_part(self, name: str) -> bytes | None:
        try:
            data = self.path(name).read_bytes()
            if len(parse_fragments(data)) == 1:
                return data
        except (OSError, Mp4FormatError):
            pass
        return None


def _contiguous_prefix(fragments: list[Fragment]) -> list[Fragment]:
    """Fragments up to the first gap in decode time (a torn sequence is cut, not glued)."""
    kept = fragments[:1]
    for fragment in fragments[1:]:
        previous = kept[-1]
        if fragment.base_decode_time != previous.base_decode_time + previous.sample_count * (
            AAC_FRAME_SAMPLES
        ):
            break
        kept.append(fragment)
    return kept


def _acquire_lock(directory: Path) -> IO[bytes]:
    handle = open(directory / LOCK_NAME, "ab")  # noqa: SIM115 (held for the packager's life)
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise Conflict(f"recording {directory.name} is being written by another packager") from None
    return handle


def _remove_temp_files(directory: Path) -> None:
    for temp in directory.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            temp.unlink()


def _create(directory: Path, config: RecordingConfig) -> None:
    write_durably(directory / INIT_NAME, init_segment(bytes.fromhex(config.audio_specific_config)))
    write_durably(directory / JOURNAL_NAME, b"")
    state = {"format": _STATE_FORMAT, "config": asdict(config), "lives": [], "ended": False}
    write_durably(directory / STATE_NAME, json.dumps(state, indent=1).encode())


def _load_state(directory: Path) -> tuple[RecordingConfig, list[Life], bool] | None:
    try:
        raw = (directory / STATE_NAME).read_bytes()
    except FileNotFoundError:
        return None
    state: dict[str, Any] = json.loads(raw)
    if state.get("format") != _STATE_FORMAT:
        raise Conflict(f"recording {directory.name} has an unknown state format")
    config = RecordingConfig(**state["config"])
    lives = [Life(**life) for life in state["lives"]]
    return config, lives, bool(state["ended"])


def _load_journal(path: Path) -> list[SegmentRecord]:
    """Read the journal; a torn last line (power loss mid-append) is cut off the file."""
    data = path.read_bytes() if path.exists() else b""
    records: list[SegmentRecord] = []
    good = 0
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        try:
            fields = json.loads(line)
            records.append(SegmentRecord(**{**fields, "parts": tuple(fields["parts"])}))
        except (ValueError, TypeError, KeyError):
            break
        good += len(line)
    if good != len(data):
        log.warning("recording journal %s: dropping %d torn bytes", path, len(data) - good)
        with open(path, "r+b") as handle:
            handle.truncate(good)
            os.fsync(handle.fileno())
    return records


def _warn_if_config_differs(stored: RecordingConfig, wanted: RecordingConfig) -> None:
    fields = ("part_frames", "parts_per_segment", "bitrate", "audio_specific_config")
    changed = [name for name in fields if getattr(stored, name) != getattr(wanted, name)]
    if "audio_specific_config" in changed:
        # init.mp4 is immutable and shared by every life: a different codec config
        # cannot be appended to this recording.
        raise Conflict("the encoder's AudioSpecificConfig differs from the recording's")
    if changed:
        log.warning("recording keeps its original %s", ", ".join(changed))

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

With an object store (storage_url) every file but the parts is also stored under
`{space}/` (majlis.media.recording.mirror): a segment before it is journalled, state.json whenever
it changes, the journal in chunks, init.mp4, and index.m3u8 and replay.m4a when a life
closes or the recording ends. open() restores a recording the local disk lacks (its space
moved here from another machine), or whose local copy is stale (the space ran elsewhere
since), from the store; segments are fetched when needed. And it uploads what the store
missed (a node stopped during an outage).

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
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, Any, BinaryIO

from majlis.errors import Conflict, NotFound
from majlis.media.formats.encoder import AAC_FRAME_SAMPLES
from majlis.media.formats.fmp4 import (
    TIMESCALE,
    Fragment,
    Mp4FormatError,
    init_segment,
    parse_fragments,
)
from majlis.media.recording.mirror import RecordingMirror
from majlis.media.recording.storage import ObjectStore

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
    "recording_held",
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
    time wall_at_base; priming is the encoder's leading silence in samples. heard_until,
    set when the life closes cleanly (a handover), is the wall clock at the end of the
    last audio it was given: its last AAC frame is padded past that, so it, not the end of
    the listed media, tells the next life where the audio it must keep begins."""

    id: int
    first_msn: int
    base: int
    wall_at_base: float
    priming: int
    heard_until: float | None = None

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
        mirror: RecordingMirror | None = None,
    ) -> None:
        self.directory = directory
        self.config = config
        self.lives = lives
        self.segments = segments
        self._encoded: list[bytes] = []  # journal lines of segments[:len], kept for the store
        self.ended = ended
        self._lock = lock
        self._journal: IO[bytes] | None = None
        self._mirror = mirror

    @classmethod
    def open(
        cls, directory: Path, config: RecordingConfig | None, store: ObjectStore | None = None
    ) -> RecordingDir:
        """Lock, load and recover the recording in directory (and in store, if any).

        With a config, a missing recording is created (an existing one keeps its own
        config); without one, the recording must exist."""
        mirror = None if store is None else RecordingMirror(store, directory.name)
        if config is None and not _exists(directory, mirror):
            raise NotFound(f"no recording in {directory}")
        directory.mkdir(parents=True, exist_ok=True)
        lock = _acquire_lock(directory)
        try:
            _remove_temp_files(directory)
            if mirror is not None:
                _restore_if_behind(directory, mirror)
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
            recording = cls(directory, lock, stored, lives, segments, ended, mirror)
            recording._catch_up()
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
        """Make the segment durable (on disk and in the store), then journal it: only then
        may a playlist list it."""
        write_durably(self.path(segment_name(record.msn)), data)
        if self._mirror is not None:
            self._mirror.put(segment_name(record.msn), data)
        self._append_journal(record)
        self.segments.append(record)
        if self._mirror is not None:
            self._mirror.store_journal(self._journal_lines(), len(self.segments) - 1)

    def write_playlist(self, text: str) -> None:
        write_durably(self.path(PLAYLIST_NAME), text.encode())

    def store_file(self, name: str) -> None:
        """Copy a local file to the store (no-op without one). The playlist is stored only
        when a life opens, closes or ends: storing it per segment would upload a long
        recording's whole index every 2 s, and open() rebuilds it from the journal."""
        if self._mirror is not None:
            self._mirror.put(name, self.path(name))

    def has(self, name: str) -> bool:
        """Whether the file is on disk or in the store."""
        if self.path(name).exists():
            return True
        return self._mirror is not None and self._mirror.exists(name)

    def local_segment(self, msn: int) -> Path:
        """The path of a listed segment, fetched from the store first if this disk lacks it
        (the recording was restored here)."""
        path = self.path(segment_name(msn))
        if path.exists() or self._mirror is None:
            return path
        data = self._mirror.get(segment_name(msn))
        if data is None:
            raise NotFound(f"segment {msn} of {self.directory.name} is in no store")
        write_atomically(path, data)
        return path

    def close_life(self, heard_until: float) -> None:
        """Durably note where the current life's audio ended (Life.heard_until)."""
        if self.lives:
            self.lives[-1] = replace(self.lives[-1], heard_until=heard_until)
            self._save_state()

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
        self.store_file(STATE_NAME)

    def _journal_lines(self) -> list[bytes]:
        """The whole journal, encoded. Segments are only ever appended, so only the new
        ones are encoded: re-encoding all of them per segment cost 22 ms an hour into a
        recording, on the thread that shares the GIL with the mixer."""
        encoded = self._encoded
        encoded.extend(_journal_line(record) for record in self.segments[len(encoded) :])
        return encoded

    def _catch_up(self) -> None:
        """Store what the store lacks: everything, the first time a recording is opened
        with a store; the tail, after a node stopped while the store was unreachable."""
        mirror = self._mirror
        if mirror is None:
            return
        stored = len(_parse_journal(mirror.load_journal())[0])
        if stored > len(self.segments):
            log.warning("recording %s: the store lists more than this disk", self.directory)
            return
        if not mirror.exists(INIT_NAME):
            self.store_file(INIT_NAME)
        self.store_file(STATE_NAME)
        for record in self.segments[stored:]:
            self.store_file(segment_name(record.msn))
        if stored < len(self.segments):
            mirror.store_journal(self._journal_lines(), stored)
            log.info(
                "recording %s: stored %d segments the store lacked",
                self.directory,
                len(self.segments) - stored,
            )

    def _append_journal(self, record: SegmentRecord) -> None:
        if self._journal is None:
            self._journal = open(self.path(JOURNAL_NAME), "ab")  # noqa: SIM115 (kept open)
        self._journal.write(_journal_line(record))
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
        stored = self._mirror.get(segment_name(msn)) if self._mirror is not None else None
        with contextlib.suppress(Mp4FormatError):
            # Stored but not journalled by a life that died on another machine.
            if stored is not None and parse_fragments(stored):
                return stored
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


@contextlib.contextmanager
def recording_held(directory: Path) -> Iterator[None]:
    """Hold the recording in `directory` as its packager would, for a moment (to delete
    it); Conflict while a packager writes it, or finishes it."""
    handle = _acquire_lock(directory)
    try:
        yield
    finally:
        handle.close()


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
    return _parse_state(raw, directory.name)


def _parse_state(raw: bytes, name: str) -> tuple[RecordingConfig, list[Life], bool]:
    state: dict[str, Any] = json.loads(raw)
    if state.get("format") != _STATE_FORMAT:
        raise Conflict(f"recording {name} has an unknown state format")
    config = RecordingConfig(**state["config"])
    lives = [Life(**life) for life in state["lives"]]
    return config, lives, bool(state["ended"])


def _exists(directory: Path, mirror: RecordingMirror | None) -> bool:
    """Whether there is a recording here or in the store."""
    if (directory / STATE_NAME).is_file():
        return True
    return mirror is not None and mirror.exists(STATE_NAME)


def _restore_if_behind(directory: Path, mirror: RecordingMirror) -> None:
    """Take the store's copy when this disk has none, or a stale one: the space ran on
    another machine since (the store knows a life this disk does not, or has ended it).
    A stale copy is set aside in a subdirectory, never deleted, and never served."""
    stored_raw = mirror.get(STATE_NAME)
    if stored_raw is None:
        return
    local = _load_state(directory)
    if local is not None:
        _, stored_lives, stored_ended = _parse_state(stored_raw, directory.name)
        _, local_lives, local_ended = local
        diverged = local_lives[: len(stored_lives)] != stored_lives
        if not diverged and (local_ended or not stored_ended):
            return
        aside = _set_aside(directory)
        log.warning(
            "recording %s: the store's copy is newer; local copy moved to %s", directory, aside
        )
    _restore(directory, mirror, stored_raw)


def _restore(directory: Path, mirror: RecordingMirror, state: bytes) -> None:
    """state.json goes last: until it is there, the next open() restores again."""
    config, _, _ = _parse_state(state, directory.name)
    init = mirror.get(INIT_NAME) or init_segment(bytes.fromhex(config.audio_specific_config))
    write_durably(directory / INIT_NAME, init)
    journal = mirror.load_journal()
    records, good = _parse_journal(journal)
    write_durably(directory / JOURNAL_NAME, journal[:good])
    playlist = mirror.get(PLAYLIST_NAME)
    if playlist is not None:
        write_durably(directory / PLAYLIST_NAME, playlist)
    write_durably(directory / STATE_NAME, state)
    log.info("recording %s: restored from the store (%d segments)", directory, len(records))


def _set_aside(directory: Path) -> Path:
    aside = directory / f"stale-{time.time_ns()}"
    aside.mkdir()
    for path in directory.iterdir():
        if path.is_file() and path.name != LOCK_NAME:
            path.rename(aside / path.name)
    return aside


def _journal_line(record: SegmentRecord) -> bytes:
    return (json.dumps(asdict(record), separators=(",", ":")) + "\n").encode()


def _parse_journal(data: bytes) -> tuple[list[SegmentRecord], int]:
    """The records of whole, valid lines up to the first bad one, and their byte length."""
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
    return records, good


def _load_journal(path: Path) -> list[SegmentRecord]:
    """Read the journal; a torn last line (power loss mid-append) is cut off the file."""
    data = path.read_bytes() if path.exists() else b""
    records, good = _parse_journal(data)
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

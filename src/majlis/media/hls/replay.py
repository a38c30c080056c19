"""The replay download: a whole recording as one classic (non-fragmented) .m4a file.

Concatenating init.mp4 and the segments would give a valid fragmented MP4, but it carries
no duration (players and ffprobe must scan every fragment), seeking without an index is
poor in browsers, and the jumps in decode time between lives of the packager would show
up as gaps. So the replay is remuxed, without re-encoding: a moov with full sample tables
(one chunk per fragment) followed by one mdat holding every AAC frame in order. The time
between two lives (a crash, a failover) is filled with frames of silence, so that a
position in the replay is the event's clock (captions and clips rely on it), and an edit
list hides the encoder's priming at the start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from majlis.media.formats.fmp4 import SAMPLE_DURATION, SampleTables, movie_header, parse_fragments
from majlis.media.recording.directory import durable_file

__all__ = ["ReplayInfo", "Silence", "build_replay", "classic_start", "write_replay"]

_U32_MAX = 0xFFFFFFFF
_SILENCE = -2  # a chunk source that is no segment: frames of silence


@dataclass(frozen=True, slots=True)
class ReplayInfo:
    samples: int
    size: int


@dataclass(slots=True)
class _Layout:
    """Where every chunk's sample bytes are, in its segment file and in the replay."""

    sample_sizes: list[int]
    chunk_sample_counts: list[int]
    # (segment index, start offset in that file, byte count) per chunk
    chunk_sources: list[tuple[int, int, int]]


@dataclass(frozen=True, slots=True)
class Silence:
    """Frames of silence to play before some segments: before[i] frames ahead of segment
    i (missing entries: none), each `frame`, an AAC frame that decodes to silence."""

    before: Sequence[int] = ()
    frame: bytes = b""


def build_replay(
    target: Path,
    segment_paths: Sequence[Path],
    audio_specific_config: bytes,
    *,
    priming: int,
    silence: Silence = Silence(),
) -> ReplayInfo:
    """Write the replay durably to target (temp file, fsync, rename)."""
    with durable_file(target) as handle:
        return write_replay(
            handle, segment_paths, audio_specific_config, priming=priming, silence=silence
        )


def write_replay(
    out: BinaryIO,
    segment_paths: Sequence[Path],
    audio_specific_config: bytes,
    *,
    priming: int,
    silence: Silence = Silence(),
) -> ReplayInfo:
    """Stream the replay into out. Segments are read twice so memory stays small."""
    layout = _read_layout(segment_paths, silence)
    tables = SampleTables(
        sample_sizes=layout.sample_sizes,
        chunk_sample_counts=layout.chunk_sample_counts,
        chunk_offsets=_payload_offsets([size for _, _, size in layout.chunk_sources]),
    )
    start = classic_start(audio_specific_config, tables, skip_samples=priming)
    out.write(start)
    _copy_samples(out, segment_paths, layout, silence.frame)
    total = len(layout.sample_sizes) * SAMPLE_DURATION
    return ReplayInfo(
        samples=total - min(max(priming, 0), total),
        size=len(start) + sum(layout.sample_sizes),
    )


def classic_start(
    audio_specific_config: bytes,
    tables: SampleTables,
    *,
    skip_samples: int,
    play_samples: int | None = None,
) -> bytes:
    """ftyp + moov + mdat header of a classic .m4a: what comes before its samples.

    tables.chunk_offsets count from the start of the mdat payload (the samples that
    follow, chunk after chunk); the moov gets them as file offsets. skip_samples and
    play_samples are movie_header's edit list.
    """
    mdat_header = _mdat_header(sum(tables.sample_sizes))
    header = _header(audio_specific_config, tables, len(mdat_header), skip_samples, play_samples)
    return header + mdat_header


def _read_layout(segment_paths: Sequence[Path], silence: Silence) -> _Layout:
    layout = _Layout(sample_sizes=[], chunk_sample_counts=[], chunk_sources=[])
    for index, path in enumerate(segment_paths):
        quiet = silence.before[index] if index < len(silence.before) else 0
        if quiet > 0 and silence.frame:
            layout.sample_sizes.extend([len(silence.frame)] * quiet)
            layout.chunk_sample_counts.append(quiet)
            layout.chunk_sources.append((_SILENCE, 0, quiet * len(silence.frame)))
        for fragment in parse_fragments(path.read_bytes()):
            layout.sample_sizes.extend(fragment.sample_sizes)
            layout.chunk_sample_counts.append(fragment.sample_count)
            layout.chunk_sources.append((index, fragment.data_start, fragment.data_size))
    return layout


def _payload_offsets(chunk_sizes: Sequence[int]) -> list[int]:
    """Where each chunk starts in the mdat payload, the chunks being back to back."""
    offsets: list[int] = []
    position = 0
    for size in chunk_sizes:
        offsets.append(position)
        position += size
    return offsets


def _header(
    asc: bytes,
    relative: SampleTables,
    mdat_header_size: int,
    skip_samples: int,
    play_samples: int | None,
) -> bytes:
    """moov whose chunk offsets point into the mdat right after it.

    The offsets depend on the header's own size, which depends on whether 32-bit offsets
    suffice, so the header is built until its size stops changing (twice at most).
    """
    header_size = 0
    while True:
        first = header_size + mdat_header_size
        tables = SampleTables(
            sample_sizes=relative.sample_sizes,
            chunk_sample_counts=relative.chunk_sample_counts,
            chunk_offsets=[first + offset for offset in relative.chunk_offsets],
        )
        header = movie_header(asc, tables, skip_samples=skip_samples, play_samples=play_samples)
        if len(header) == header_size:
            return header
        header_size = len(header)


def _mdat_header(payload_size: int) -> bytes:
    if payload_size + 8 <= _U32_MAX:
        return (payload_size + 8).to_bytes(4, "big") + b"mdat"
    # size 1 announces a 64-bit largesize after the type
    return (1).to_bytes(4, "big") + b"mdat" + (payload_size + 16).to_bytes(8, "big")


def _copy_samples(
    out: BinaryIO, segment_paths: Sequence[Path], layout: _Layout, silent: bytes
) -> None:
    current = -1
    data = b""
    for index, start, size in layout.chunk_sources:
        if index == _SILENCE:
            out.write(silent * (size // len(silent)))
            continue
        if index != current:
            data = segment_paths[index].read_bytes()
            current = index
        out.write(data[start : start + size])

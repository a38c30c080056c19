"""ISO-BMFF (MP4) boxes for one mono AAC track: the CMAF-style init segment, one movie
fragment per LL-HLS part, a reader for those fragments, and the header of a classic
(non-fragmented) file for the replay download.

We write the boxes ourselves because FFmpeg's HLS muxer cannot cut LL-HLS parts and we
want exact control of every decode time. Layouts follow ISO/IEC 14496-12 (boxes) and
14496-14 (esds). Only what one audio track needs is written, and the reader accepts only
what this writer produces.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from majlis.media.audio import SAMPLE_RATE

__all__ = [
    "SAMPLE_DURATION",
    "TIMESCALE",
    "TRACK_ID",
    "Fragment",
    "Mp4FormatError",
    "SampleTables",
    "box",
    "fragment",
    "full_box",
    "init_segment",
    "iter_boxes",
    "movie_header",
    "parse_fragments",
]

TIMESCALE = SAMPLE_RATE
TRACK_ID = 1
# Every AAC-LC access unit decodes to 1024 samples.
SAMPLE_DURATION = 1024

_U32_MAX = 0xFFFFFFFF
_IDENTITY_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)
# ISO 639-2 "und", packed as three 5-bit letters.
_LANGUAGE_UND = ((ord("u") - 0x60) << 10) | ((ord("n") - 0x60) << 5) | (ord("d") - 0x60)

# tfhd: default-base-is-moof | default-sample-flags | default-sample-duration.
_TFHD_FLAGS = 0x020000 | 0x000020 | 0x000008
# trun: data-offset-present | sample-size-present.
_TRUN_FLAGS = 0x000001 | 0x000200
# sample_depends_on = 2: an AAC frame never depends on another one.
_SAMPLE_FLAGS_INDEPENDENT = 0x02000000

# MPEG-4 systems descriptor tags and codes used by esds.
_ES_DESCRIPTOR = 0x03
_DECODER_CONFIG = 0x04
_DECODER_SPECIFIC_INFO = 0x05
_SL_CONFIG = 0x06
_OBJECT_TYPE_MPEG4_AUDIO = 0x40
_STREAM_TYPE_AUDIO = 0x05
# Largest AAC frame a decoder must buffer: 6144 bits per channel.
_AAC_BUFFER_BYTES = 6144 // 8


class Mp4FormatError(ValueError):
    """Bytes that are not the fragments this module writes."""


@dataclass(frozen=True, slots=True)
class Fragment:
    """A parsed moof+mdat pair. Offsets are into the buffer that was parsed."""

    sequence: int
    base_decode_time: int
    sample_sizes: tuple[int, ...]
    data_start: int
    end: int

    @property
    def sample_count(self) -> int:
        return len(self.sample_sizes)

    @property
    def data_size(self) -> int:
        return sum(self.sample_sizes)


@dataclass(frozen=True, slots=True)
class SampleTables:
    """Sample tables of a non-fragmented track: one chunk per run of samples."""

    sample_sizes: Sequence[int]
    chunk_sample_counts: Sequence[int]
    chunk_offsets: Sequence[int]


def box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def init_segment(audio_specific_config: bytes) -> bytes:
    """ftyp + moov with empty sample tables and mvex: the EXT-X-MAP of the playlist.

    Every time field is zero so the bytes depend on the codec config alone: a node that
    resumes a recording rebuilds the very same init segment.
    """
    ftyp = _ftyp(b"iso6", [b"iso6", b"cmfc", b"mp41"])
    empty = SampleTables(sample_sizes=(), chunk_sample_counts=(), chunk_offsets=())
    mvex = box(b"mvex", _trex())
    return ftyp + _moov(audio_specific_config, 0, empty, extra=mvex, edit=None)


def movie_header(
    audio_specific_config: bytes,
    tables: SampleTables,
    *,
    skip_samples: int,
    play_samples: int | None = None,
) -> bytes:
    """ftyp + moov of a classic MP4 whose mdat follows, for players that want one file.

    skip_samples and play_samples become an edit list: the skip hides the encoder's
    priming silence (or a clip's pre-roll), and play_samples (default: all the rest) ends
    the presentation inside the last frame, so that a clip lasts exactly what was asked.
    """
    ftyp = _ftyp(b"M4A ", [b"M4A ", b"mp42", b"isom"])
    total = len(tables.sample_sizes) * SAMPLE_DURATION
    skip = min(max(skip_samples, 0), total)
    play = total - skip if play_samples is None else min(max(play_samples, 0), total - skip)
    return ftyp + _moov(audio_specific_config, total, tables, extra=b"", edit=(play, skip))


def fragment(sequence: int, base_decode_time: int, samples: Sequence[bytes]) -> bytes:
    """One moof+mdat carrying the given AAC access units back to back."""
    if not samples:
        raise ValueError("a fragment needs at least one sample")
    sizes = [len(sample) for sample in samples]
    mfhd = full_box(b"mfhd", 0, 0, struct.pack(">I", sequence))
    tfhd = full_box(
        b"tfhd",
        0,
        _TFHD_FLAGS,
        struct.pack(">III", TRACK_ID, SAMPLE_DURATION, _SAMPLE_FLAGS_INDEPENDENT),
    )
    tfdt = full_box(b"tfdt", 1, 0, struct.pack(">Q", base_decode_time))
    trun_size = 12 + 8 + 4 * len(sizes)
    moof_size = 8 + len(mfhd) + 8 + len(tfhd) + len(tfdt) + trun_size
    # The first sample sits right after the moof and the 8-byte mdat header.
    trun = full_box(
        b"trun",
        0,
        _TRUN_FLAGS,
        struct.pack(">Ii", len(sizes), moof_size + 8),
        struct.pack(f">{len(sizes)}I", *sizes),
    )
    moof = box(b"moof", mfhd, box(b"traf", tfhd, tfdt, trun))
    return moof + box(b"mdat", *samples)


def iter_boxes(
    data: bytes, start: int = 0, end: int | None = None
) -> Iterator[tuple[bytes, int, int]]:
    """Yield (type, payload start, box end) for the boxes in data[start:end]."""
    limit = len(data) if end is None else end
    offset = start
    while offset < limit:
        if limit - offset < 8:
            raise Mp4FormatError(f"truncated box header at byte {offset}")
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:
            if limit - offset < 16:
                raise Mp4FormatError(f"truncated large box header at byte {offset}")
            (size,) = struct.unpack_from(">Q", data, offset + 8)
            header = 16
        elif size == 0:
            size = limit - offset
        if size < header or offset + size > limit:
            raise Mp4FormatError(f"box {kind!r} at byte {offset} overruns its container")
        yield kind, offset + header, offset + size
        offset += size


def parse_fragments(data: bytes) -> list[Fragment]:
    """Read back a concatenation of fragments written by fragment()."""
    fragments: list[Fragment] = []
    boxes = iter_boxes(data)
    for kind, payload, end in boxes:
        if kind != b"moof":
            raise Mp4FormatError(f"expected moof, found {kind!r}")
        mdat = next(boxes, None)
        if mdat is None or mdat[0] != b"mdat":
            raise Mp4FormatError("a moof is not followed by its mdat")
        fragments.append(_read_fragment(data, payload - 8, payload, end, mdat))
    return fragments


def _read_fragment(
    data: bytes, moof_start: int, payload: int, moof_end: int, mdat: tuple[bytes, int, int]
) -> Fragment:
    children = {kind: (start, end) for kind, start, end in iter_boxes(data, payload, moof_end)}
    if b"mfhd" not in children or b"traf" not in children:
        raise Mp4FormatError("moof lacks mfhd or traf")
    (sequence,) = struct.unpack_from(">I", data, children[b"mfhd"][0] + 4)
    traf = {kind: (start, end) for kind, start, end in iter_boxes(data, *children[b"traf"])}
    if not {b"tfhd", b"tfdt", b"trun"} <= traf.keys():
        raise Mp4FormatError("traf lacks tfhd, tfdt or trun")
    (tfhd_flags,) = struct.unpack_from(">I", data, traf[b"tfhd"][0])
    if tfhd_flags & 0xFFFFFF != _TFHD_FLAGS:
        raise Mp4FormatError(f"unexpected tfhd flags {tfhd_flags & 0xFFFFFF:#x}")
    base_decode_time = _read_tfdt(data, traf[b"tfdt"][0])
    sizes, data_offset = _read_trun(data, traf[b"trun"][0])
    _, mdat_payload, mdat_end = mdat
    if moof_start + data_offset != mdat_payload or mdat_payload + sum(sizes) != mdat_end:
        raise Mp4FormatError("trun sizes do not match the mdat that follows")
    return Fragment(sequence, base_decode_time, sizes, mdat_payload, mdat_end)


def _read_tfdt(data: bytes, start: int) -> int:
    version = data[start]
    if version == 1:
        return int(struct.unpack_from(">Q", data, start + 4)[0])
    return int(struct.unpack_from(">I", data, start + 4)[0])


def _read_trun(data: bytes, start: int) -> tuple[tuple[int, ...], int]:
    (version_flags,) = struct.unpack_from(">I", data, start)
    if version_flags & 0xFFFFFF != _TRUN_FLAGS:
        raise Mp4FormatError(f"unexpected trun flags {version_flags & 0xFFFFFF:#x}")
    count, data_offset = struct.unpack_from(">Ii", data, start + 4)
    if count == 0 or start + 12 + 4 * count > len(data):
        raise Mp4FormatError("trun sample count is empty or overruns the buffer")
    sizes = struct.unpack_from(f">{count}I", data, start + 12)
    return tuple(int(size) for size in sizes), int(data_offset)


def _ftyp(major: bytes, compatible: list[bytes]) -> bytes:
    return box(b"ftyp", major, struct.pack(">I", 0), *compatible)


def _moov(
    asc: bytes,
    duration: int,
    tables: SampleTables,
    *,
    extra: bytes,
    edit: tuple[int, int] | None,
) -> bytes:
    # mdhd holds the media's length; mvhd and tkhd the presented length, after the edit.
    presented = duration if edit is None else edit[0]
    edts = b"" if edit is None else box(b"edts", _elst(*edit))
    trak = box(b"trak", _tkhd(presented), edts, _mdia(asc, duration, tables))
    return box(b"moov", _mvhd(presented), trak, extra)


def _times(duration: int) -> tuple[int, bytes]:
    """Version and packed (creation, modification) times sized for the duration."""
    if duration > _U32_MAX:
        return 1, struct.pack(">QQ", 0, 0)
    return 0, struct.pack(">II", 0, 0)


def _duration_field(version: int, duration: int) -> bytes:
    return struct.pack(">Q", duration) if version == 1 else struct.pack(">I", duration)


def _mvhd(duration: int) -> bytes:
    version, times = _times(duration)
    return full_box(
        b"mvhd",
        version,
        0,
        times,
        struct.pack(">I", TIMESCALE),
        _duration_field(version, duration),
        struct.pack(">IH", 0x00010000, 0x0100),
        bytes(10),
        _IDENTITY_MATRIX,
        bytes(24),
        struct.pack(">I", TRACK_ID + 1),
    )


def _tkhd(duration: int) -> bytes:
    version, times = _times(duration)
    # flags: track enabled | track in movie
    return full_box(
        b"tkhd",
        version,
        0x000003,
        times,
        struct.pack(">II", TRACK_ID, 0),
        _duration_field(version, duration),
        bytes(8),
        struct.pack(">hhhH", 0, 0, 0x0100, 0),
        _IDENTITY_MATRIX,
        struct.pack(">II", 0, 0),
    )


def _elst(segment_duration: int, media_time: int) -> bytes:
    version = 1 if segment_duration > _U32_MAX else 0
    entry = (
        struct.pack(">Qq", segment_duration, media_time)
        if version == 1
        else struct.pack(">Ii", segment_duration, media_time)
    )
    return full_box(b"elst", version, 0, struct.pack(">I", 1), entry, struct.pack(">hh", 1, 0))


def _mdia(asc: bytes, duration: int, tables: SampleTables) -> bytes:
    version, times = _times(duration)
    mdhd = full_box(
        b"mdhd",
        version,
        0,
        times,
        struct.pack(">I", TIMESCALE),
        _duration_field(version, duration),
        struct.pack(">HH", _LANGUAGE_UND, 0),
    )
    hdlr = full_box(b"hdlr", 0, 0, struct.pack(">I4s", 0, b"soun"), bytes(12), b"SoundHandler\0")
    smhd = full_box(b"smhd", 0, 0, struct.pack(">hH", 0, 0))
    dinf = box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1)))
    minf = box(b"minf", smhd, dinf, _stbl(asc, tables))
    return box(b"mdia", mdhd, hdlr, minf)


def _stbl(asc: bytes, tables: SampleTables) -> bytes:
    stsd = full_box(b"stsd", 0, 0, struct.pack(">I", 1), _mp4a(asc))
    count = len(tables.sample_sizes)
    stts_entries = struct.pack(">II", count, SAMPLE_DURATION) if count else b""
    stts = full_box(b"stts", 0, 0, struct.pack(">I", 1 if count else 0), stts_entries)
    stsc = _stsc(tables.chunk_sample_counts)
    sizes = np.asarray(tables.sample_sizes, dtype=">u4").tobytes()
    stsz = full_box(b"stsz", 0, 0, struct.pack(">II", 0, count), sizes)
    return box(b"stbl", stsd, stts, stsc, stsz, _chunk_offsets(tables.chunk_offsets))


def _stsc(chunk_sample_counts: Sequence[int]) -> bytes:
    """Run-length entries: a new entry only where the samples-per-chunk count changes."""
    entries: list[bytes] = []
    previous = -1
    for index, count in enumerate(chunk_sample_counts):
        if count != previous:
            entries.append(struct.pack(">III", index + 1, count, 1))
            previous = count
    return full_box(b"stsc", 0, 0, struct.pack(">I", len(entries)), *entries)


def _chunk_offsets(offsets: Sequence[int]) -> bytes:
    if offsets and max(offsets) > _U32_MAX:
        packed = np.asarray(offsets, dtype=">u8").tobytes()
        return full_box(b"co64", 0, 0, struct.pack(">I", len(offsets)), packed)
    packed = np.asarray(offsets, dtype=">u4").tobytes()
    return full_box(b"stco", 0, 0, struct.pack(">I", len(offsets)), packed)


def _mp4a(asc: bytes) -> bytes:
    # AudioSampleEntry: reserved(6) data_reference_index(2) reserved(8) channelcount(2)
    # samplesize(2) pre_defined(2) reserved(2) samplerate(16.16 fixed point).
    entry = struct.pack(">6xH8xHHHHI", 1, 1, 16, 0, 0, SAMPLE_RATE << 16)
    return box(b"mp4a", entry, _esds(asc))


def _esds(asc: bytes) -> bytes:
    # avgBitrate 0 means "variable"; leaving both rates at zero keeps the init segment
    # independent of the configured bit rate, so it never changes across lives.
    decoder_config = _descriptor(
        _DECODER_CONFIG,
        struct.pack(">BB", _OBJECT_TYPE_MPEG4_AUDIO, (_STREAM_TYPE_AUDIO << 2) | 1),
        _AAC_BUFFER_BYTES.to_bytes(3, "big"),
        struct.pack(">II", 0, 0),
        _descriptor(_DECODER_SPECIFIC_INFO, asc),
    )
    sl_config = _descriptor(_SL_CONFIG, b"\x02")
    es = _descriptor(_ES_DESCRIPTOR, struct.pack(">HB", TRACK_ID, 0), decoder_config, sl_config)
    return full_box(b"esds", 0, 0, es)


def _descriptor(tag: int, *payload: bytes) -> bytes:
    body = b"".join(payload)
    size = len(body)
    # Size in 7-bit groups, most significant first, continuation bit on all but the last.
    groups = [size & 0x7F]
    size >>= 7
    while size:
        groups.append(0x80 | (size & 0x7F))
        size >>= 7
    return bytes([tag, *reversed(groups)]) + body


def _trex() -> bytes:
    return full_box(
        b"trex",
        0,
        0,
        struct.pack(">IIIII", TRACK_ID, 1, SAMPLE_DURATION, 0, _SAMPLE_FLAGS_INDEPENDENT),
    )

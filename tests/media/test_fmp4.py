"""The AAC encoder and our ISO-BMFF writer, checked by box layout and by FFmpeg reading
what we wrote."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from majlis.media.audio import FRAME_SAMPLES
from majlis.media.formats.encoder import AAC_FRAME_SAMPLES, AacEncoder, AccessUnit
from majlis.media.formats.fmp4 import (
    Mp4FormatError,
    SampleTables,
    fragment,
    init_segment,
    iter_boxes,
    movie_header,
    parse_fragments,
)

from .audio_analysis import assert_tone, decode_with_ffmpeg, decode_with_pyav, frames_of, tone


def encode(samples: np.ndarray) -> tuple[bytes, list[AccessUnit]]:
    encoder = AacEncoder()
    units: list[AccessUnit] = []
    for frame in frames_of(samples):
        units += encoder.encode(frame)
    units += encoder.flush()
    return encoder.audio_specific_config, units


def tree(data: bytes, start: int = 0, end: int | None = None) -> dict[bytes, tuple[int, int]]:
    return {kind: (payload, stop) for kind, payload, stop in iter_boxes(data, start, end)}


def path_to(data: bytes, *kinds: bytes) -> tuple[int, int]:
    start, end = 0, len(data)
    for kind in kinds:
        start, end = tree(data, start, end)[kind]
    return start, end


class TestEncoder:
    def test_access_units_are_contiguous_with_sample_accurate_pts(self) -> None:
        _, units = encode(tone(1000, 1.0))
        pts = [unit.pts for unit in units]
        # FFmpeg's priming frame decodes to the silence before the first sample.
        assert pts[0] == -AAC_FRAME_SAMPLES
        assert pts == list(range(-AAC_FRAME_SAMPLES, pts[-1] + 1, AAC_FRAME_SAMPLES))
        samples_in = 50 * FRAME_SAMPLES
        assert pts[-1] < samples_in <= pts[-1] + AAC_FRAME_SAMPLES
        assert all(0 < len(unit.data) < 768 for unit in units)

    def test_audio_specific_config_is_aac_lc_48k_mono(self) -> None:
        asc = AacEncoder().audio_specific_config
        bits = int.from_bytes(asc[:2], "big")
        assert bits >> 11 == 2  # audioObjectType: AAC LC
        assert (bits >> 7) & 0xF == 3  # samplingFrequencyIndex: 48000
        assert (bits >> 3) & 0xF == 1  # channelConfiguration: mono

    def test_bit_rate_is_configurable(self) -> None:
        seconds = 4.0
        low = sum(len(u.data) for u in _encode_at(32_000, seconds)) * 8 / seconds
        high = sum(len(u.data) for u in _encode_at(128_000, seconds)) * 8 / seconds
        assert low < high
        assert 0.6 * 32_000 < low < 1.4 * 32_000

    def test_rejects_silly_bit_rates(self) -> None:
        with pytest.raises(ValueError):
            AacEncoder(1_000)


def _encode_at(bitrate: int, seconds: float) -> list[AccessUnit]:
    rng = np.random.default_rng(1)
    noise = (rng.standard_normal(round(seconds / 0.02) * FRAME_SAMPLES) * 6000).astype(np.int16)
    encoder = AacEncoder(bitrate)
    units: list[AccessUnit] = []
    for frame in frames_of(noise):
        units += encoder.encode(frame)
    return units + encoder.flush()


class TestInitSegment:
    def test_box_layout(self) -> None:
        asc = AacEncoder().audio_specific_config
        init = init_segment(asc)
        assert list(tree(init)) == [b"ftyp", b"moov"]
        assert list(tree(init, *path_to(init, b"moov"))) == [b"mvhd", b"trak", b"mvex"]
        stbl = path_to(init, b"moov", b"trak", b"mdia", b"minf", b"stbl")
        assert list(tree(init, *stbl)) == [b"stsd", b"stts", b"stsc", b"stsz", b"stco"]
        hdlr, _ = path_to(init, b"moov", b"trak", b"mdia", b"hdlr")
        assert init[hdlr + 8 : hdlr + 12] == b"soun"
        mdhd, _ = path_to(init, b"moov", b"trak", b"mdia", b"mdhd")
        assert struct.unpack_from(">I", init, mdhd + 12)[0] == 48_000
        trex, _ = path_to(init, b"moov", b"mvex", b"trex")
        assert struct.unpack_from(">II", init, trex + 4) == (1, 1)
        # the AudioSpecificConfig travels in stsd -> mp4a -> esds
        stsd, stsd_end = stbl_child(init, stbl, b"stsd")
        assert asc in init[stsd:stsd_end]
        for table in (b"stts", b"stsc", b"stco"):
            start, _ = stbl_child(init, stbl, table)
            assert struct.unpack_from(">I", init, start + 4)[0] == 0

    def test_is_deterministic(self) -> None:
        asc = AacEncoder().audio_specific_config
        assert init_segment(asc) == init_segment(AacEncoder().audio_specific_config)


def stbl_child(data: bytes, stbl: tuple[int, int], kind: bytes) -> tuple[int, int]:
    return tree(data, *stbl)[kind]


class TestFragments:
    def test_round_trip_with_64_bit_decode_time(self) -> None:
        base = 2**33 + 5  # needs tfdt version 1
        samples = [bytes([index]) * (10 + index) for index in range(7)]
        data = fragment(42, base, samples)
        tfdt, _ = path_to(data, b"moof", b"traf", b"tfdt")
        assert data[tfdt] == 1  # version 1: 64-bit baseMediaDecodeTime
        (parsed,) = parse_fragments(data)
        assert parsed.sequence == 42
        assert parsed.base_decode_time == base
        assert parsed.sample_sizes == tuple(len(sample) for sample in samples)
        assert data[parsed.data_start : parsed.end] == b"".join(samples)

    def test_concatenated_fragments_parse_in_order(self) -> None:
        first = fragment(1, 0, [b"a" * 5, b"b" * 6])
        second = fragment(2, 2048, [b"c" * 7])
        parsed = parse_fragments(first + second)
        assert [f.base_decode_time for f in parsed] == [0, 2048]
        assert parsed[1].data_start == len(first) + len(second) - 7

    @pytest.mark.parametrize(
        "mangle",
        [
            lambda data: data[:-1],
            lambda data: data[: len(data) // 2],
            lambda data: data[:8] + b"xxxx" + data[12:],
            lambda data: b"\x00\x00\x00\x08free" + data,
            lambda data: data + b"\x00\x00",
        ],
    )
    def test_rejects_damaged_fragments(self, mangle: object) -> None:
        data = fragment(1, 0, [b"a" * 50, b"b" * 60])
        assert callable(mangle)
        with pytest.raises(Mp4FormatError):
            parse_fragments(mangle(data))

    def test_ffmpeg_decodes_init_plus_fragments(self, tmp_path: Path) -> None:
        asc, units = encode(tone(1000, 2.0))
        base = 48_000 * 7  # the stream starts 7 s into the timeline
        data = init_segment(asc)
        decode_time = base
        for number, start in enumerate(range(0, len(units), 10)):
            chunk = [unit.data for unit in units[start : start + 10]]
            data += fragment(number + 1, decode_time, chunk)
            decode_time += len(chunk) * AAC_FRAME_SAMPLES
        path = tmp_path / "stream.mp4"
        path.write_bytes(data)
        with av.open(str(path)) as container:
            first = next(container.decode(audio=0))
            assert first.pts == base
        decoded = decode_with_pyav(path)
        assert decoded.size == len(units) * AAC_FRAME_SAMPLES
        assert_tone(decoded[AAC_FRAME_SAMPLES:], frequency=1000, level_db=-6.02 - 3.01)
        assert_tone(decode_with_ffmpeg(str(path)), frequency=1000, level_db=-9.03)


class TestMovieHeader:
    def test_classic_file_with_edit_list(self, tmp_path: Path) -> None:
        asc, units = encode(tone(440, 1.5))
        payload = b"".join(unit.data for unit in units)
        sizes = [len(unit.data) for unit in units]
        header = b""
        for _ in range(2):  # the offset depends on the header's own size
            tables = SampleTables(sizes, [len(sizes)], [len(header) + 8])
            header = movie_header(asc, tables, skip_samples=AAC_FRAME_SAMPLES)
        path = tmp_path / "replay.m4a"
        path.write_bytes(header + struct.pack(">I4s", len(payload) + 8, b"mdat") + payload)
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "stream=duration", "-of", "csv=p=0", path],
            capture_output=True,
            text=True,
            check=True,
        )
        expected = (len(units) - 1) * AAC_FRAME_SAMPLES / 48_000
        assert abs(float(probe.stdout) - expected) < 0.001
        decoded = decode_with_pyav(path)
        # The edit list drops the priming frame: sample-aligned with the input.
        assert decoded.size == (len(units) - 1) * AAC_FRAME_SAMPLES
        assert_tone(decoded, frequency=440, level_db=-9.03)

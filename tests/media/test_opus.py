"""Opus on the media loop: the mix-minus encoder, the ingest decoder, RTP timestamps."""

from __future__ import annotations

import asyncio

import av
import numpy as np
import pytest
from aiortc.codecs.opus import OpusEncoder as AiortcOpusEncoder
from aiortc.rtp import RtpPacket

from majlis.media.audio import FRAME_SAMPLES, SAMPLE_RATE
from majlis.media.formats.convert import TIME_BASE, Pcm, mono_to_frame
from majlis.media.formats.opus import (
    FrameGrouper,
    OpusDecoder,
    OpusEncoder,
    OpusError,
    RtpTimeline,
    ticks_for_ptime,
)
from majlis.media.mixing.mixminus import MixMinusTrack
from majlis.media.rtc.ingest import ReorderWindow
from majlis.media.rtc.tone import tone_samples

from .audio_analysis import frames_of, tone_dbfs


def test_a_tone_survives_our_encoder_and_decoder_at_its_level() -> None:
    tone = tone_samples(440.0, -20.0, 0, SAMPLE_RATE)  # one second
    encoder, decoder = OpusEncoder(), OpusDecoder()
    out = []
    for index, frame in enumerate(frames_of(tone)):
        packet = encoder.encode(frame, index * FRAME_SAMPLES)
        assert packet.pts == index * FRAME_SAMPLES and packet.time_base == TIME_BASE
        # 32 kb/s VBR: about 80 bytes per 20 ms, never a runaway.
        assert packet.size < 400
        out.append(decoder.decode(bytes(packet)))
    decoded = np.concatenate(out)
    assert decoded.dtype == np.int16 and decoded.size == SAMPLE_RATE
    steady = decoded[SAMPLE_RATE // 4 :]
    assert tone_dbfs(steady, 440.0) == pytest.approx(-20.0, abs=1.0)
    # Nothing much anywhere else: coding noise stays 30 dB under the tone.
    assert tone_dbfs(steady, 1_320.0, band=200.0) < -50.0


def test_decoder_downmixes_a_stereo_stream_like_browsers_send() -> None:
    tone = tone_samples(660.0, -20.0, 0, SAMPLE_RATE)
    stereo = AiortcOpusEncoder()
    decoder = OpusDecoder()
    out: list[np.ndarray] = []
    for index, frame in enumerate(frames_of(tone)):
        payloads, _ = stereo.encode(mono_to_frame(frame, index * FRAME_SAMPLES, stereo=True))
        out.extend(decoder.decode(payload) for payload in payloads)
    decoded = np.concatenate(out)
    assert decoded.size >= SAMPLE_RATE - 2 * FRAME_SAMPLES
    assert tone_dbfs(decoded[SAMPLE_RATE // 4 :], 660.0) == pytest.approx(-20.0, abs=1.0)


def test_decoder_takes_an_empty_payload_and_refuses_garbage() -> None:
    decoder = OpusDecoder()
    assert decoder.decode(b"").size == 0
    # TOC byte for a code-3 packet with a frame count of 0: invalid by RFC 6716.
    with pytest.raises(OpusError, match="corrupted"):
        decoder.decode(b"\x03\x00")


def test_encoder_refuses_settings_outside_opus() -> None:
    with pytest.raises(ValueError, match="bit rate"):
        OpusEncoder(bitrate=1_000)
    with pytest.raises(ValueError, match="complexity"):
        OpusEncoder(complexity=11)
    with pytest.raises(ValueError, match="application"):
        OpusEncoder(application="music")
    with pytest.raises(OpusError, match="cannot encode"):
        OpusEncoder().encode(np.zeros(1_000, dtype=np.int16), 0)  # not an Opus frame size


def test_rtp_timeline_counts_from_the_first_packet_across_wraparound() -> None:
    timeline = RtpTimeline()
    start = 2**32 - 2 * FRAME_SAMPLES
    stamps = [(start + i * FRAME_SAMPLES) % 2**32 for i in range(5)]
    assert [timeline.position(ts) for ts in stamps] == [i * FRAME_SAMPLES for i in range(5)]
    # A late packet from before the wrap still lands where it belongs.
    assert timeline.position(stamps[1]) == FRAME_SAMPLES


def test_reorder_window_hands_payloads_in_order_to_its_consumer() -> None:
    delivered: list[tuple[int, bytes]] = []
    window = ReorderWindow(lambda timestamp, payload: delivered.append((timestamp, payload)))
    for seq in (0, 1, 3, 2, 4, 5):
        packet = RtpPacket(sequence_number=seq, timestamp=seq * FRAME_SAMPLES)
        packet._data = bytes([seq])  # type: ignore[attr-defined]
        # aiortc is handed nothing: its decoder thread stays idle.
        assert window.add(packet) == (False, None)
    # 2 came after 3 had gone out: it is dropped as late and the window grows to hold one,
    # so 5 waits there for a possible 6.
    assert [payload[0] for _, payload in delivered] == [0, 1, 3, 4]
    assert [timestamp for timestamp, _ in delivered] == [i * FRAME_SAMPLES for i in (0, 1, 3, 4)]
    assert window.late == 1 and window.window == 1


async def test_encoded_mix_minus_track_hands_aiortc_ready_packets() -> None:
    track = MixMinusTrack("alice", encoder=OpusEncoder())
    tone = tone_samples(440.0, -20.0, 0, 3 * FRAME_SAMPLES)
    for tick, frame in enumerate(frames_of(tone), start=7):
        track.deliver(tick, frame)
    packets = [await asyncio.wait_for(track.recv(), 1.0) for _ in range(3)]
    encoded = [packet for packet in packets if isinstance(packet, av.Packet)]
    assert [packet.pts for packet in encoded] == [0, 960, 1920]
    # What aiortc's sender does with a packet: its RTP timestamp offset comes from the pts.
    stamps = [AiortcOpusEncoder().pack(packet)[1] for packet in encoded]
    assert stamps == [0, 960, 1920]
    track.stop()


async def test_two_tick_packets_never_span_a_gap() -> None:
    track = MixMinusTrack("alice", encoder=OpusEncoder(), ticks_per_packet=2)
    frames = frames_of(tone_samples(440.0, -20.0, 0, 5 * FRAME_SAMPLES))
    # Ticks 10, 11, then 13 (12 was dropped), 14, 15, 16.
    for tick, frame in zip((10, 11, 13, 14, 15), frames, strict=True):
        track.deliver(tick, frame)
    packets = [await asyncio.wait_for(track.recv(), 1.0) for _ in range(2)]
    track.deliver(16, frames[0])  # the queue holds 5 ticks: deliver after reading some
    packets.append(await asyncio.wait_for(track.recv(), 1.0))
    encoded = [packet for packet in packets if isinstance(packet, av.Packet)]
    decoder = OpusDecoder()
    lengths = [decoder.decode(bytes(packet)).size for packet in encoded]
    assert [packet.pts for packet in encoded] == [0, 3 * FRAME_SAMPLES, 5 * FRAME_SAMPLES]
    assert lengths == [2 * FRAME_SAMPLES] * 3

    # A gap inside a packet: the tick before it goes out alone, the one after starts anew.
    track.deliver(18, frames[1])
    track.deliver(20, frames[2])  # 19 was dropped
    alone = await asyncio.wait_for(track.recv(), 1.0)
    track.deliver(21, frames[3])
    after = await asyncio.wait_for(track.recv(), 1.0)
    assert isinstance(alone, av.Packet) and isinstance(after, av.Packet)
    assert alone.pts == 8 * FRAME_SAMPLES and decoder.decode(bytes(alone)).size == FRAME_SAMPLES
    assert after.pts == 10 * FRAME_SAMPLES
    assert decoder.decode(bytes(after)).size == 2 * FRAME_SAMPLES
    track.stop()


def test_frames_are_never_packed_without_an_encoder() -> None:
    with pytest.raises(ValueError, match="ticks per packet"):
        MixMinusTrack("alice", ticks_per_packet=2)


def test_a_requested_ptime_becomes_20_to_60_ms_packets() -> None:
    assert [ticks_for_ptime(ms) for ms in (None, 10, 20, 30, 40, 60, 120)] == [1, 1, 1, 2, 2, 3, 3]


async def test_frame_grouper_counts_positions_in_samples() -> None:
    frames = frames_of(tone_samples(440.0, -20.0, 0, 6 * FRAME_SAMPLES))
    # pts 0, 960, (a lost frame), 2880, 3840, 4800, (a lost frame), 6720.
    feed = iter(zip((0, 960, 2880, 3840, 4800, 6720), frames, strict=True))

    async def next_frame() -> tuple[int, Pcm]:
        return next(feed)

    grouper = FrameGrouper(next_frame, step=FRAME_SAMPLES)
    taken = [await grouper.next(2) for _ in range(3)] + [await grouper.next(1)]
    assert [(pts, samples.size) for pts, samples in taken] == [
        (0, 2 * FRAME_SAMPLES),
        (2880, 2 * FRAME_SAMPLES),
        (4800, FRAME_SAMPLES),  # 5760 is missing: 4800 goes alone, 6720 is held
        (6720, FRAME_SAMPLES),
    ]
    assert np.array_equal(taken[1][1], np.concatenate(frames[2:4]))


def test_an_encoder_continues_exactly_from_a_copied_state() -> None:
    frames = frames_of(tone_samples(440.0, -20.0, 0, 8 * FRAME_SAMPLES))
    first, second = OpusEncoder(), OpusEncoder()
    for frame in frames[:5]:
        first.encode_bytes(frame)
        second.encode_bytes(frames[7])  # a different history
    assert second.encode_bytes(frames[5]) != first.encode_bytes(frames[5])
    second.copy_state_from(first)
    expected = [first.encode_bytes(frame) for frame in frames[6:]]
    assert [second.encode_bytes(frame) for frame in frames[6:]] == expected


async def test_an_aligned_grouper_cuts_the_same_packets_whenever_it_starts() -> None:
    frames = frames_of(tone_samples(440.0, -20.0, 0, 5 * FRAME_SAMPLES))
    feed = iter(zip((3, 4, 5, 6, 7), frames, strict=True))

    async def next_frame() -> tuple[int, Pcm]:
        return next(feed)

    grouper = FrameGrouper(next_frame, aligned=True)
    taken = [await grouper.next(2) for _ in range(3)]
    assert [(first, samples.size // FRAME_SAMPLES) for first, samples in taken] == [
        (3, 1),
        (4, 2),
        (6, 2),
    ]

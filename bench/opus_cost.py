"""CPU per 20 ms frame of the Opus paths a speaker's audio takes through the media node.

Side by side in one process pinned to CPU 1, interleaved over `--rounds` rounds (medians):
aiortc's own encoder (96 kb/s stereo through a resampler, what its sender does with a
frame) against `majlis.media.formats.opus.OpusEncoder` in each application mode, and PyAV's
libopus decoder against ours. The signal is what a mix-minus carries in
bench/space_cpu.py: twelve tones at -30 dBFS each.

    .venv/bin/python bench/opus_cost.py --rounds 5

Prints JSON: µs of process CPU time per 20 ms frame, median over rounds, per path.
"""

from __future__ import annotations

import argparse
import fractions
import json
import os
import statistics
import time
from collections.abc import Callable

import av
import numpy as np
from aiortc.codecs.opus import OpusEncoder as AiortcOpusEncoder

from majlis.media.audio import FRAME_SAMPLES, SAMPLE_RATE
from majlis.media.formats.convert import mono_to_frame
from majlis.media.formats.opus import OpusDecoder, OpusEncoder

FRAMES = 250  # 5 s


def twelve_tones() -> list[np.ndarray]:
    t = np.arange(FRAMES * FRAME_SAMPLES) / SAMPLE_RATE
    amplitude = 32767 * 10 ** (-30 / 20)
    mix = sum(amplitude * np.sin(2 * np.pi * (350 + 50 * k) * t) for k in range(12))
    pcm = np.asarray(mix).astype(np.int16)
    return [pcm[i : i + FRAME_SAMPLES] for i in range(0, pcm.size, FRAME_SAMPLES)]


def cpu_per_frame(work: Callable[[int], object]) -> float:
    started = time.process_time()
    for index in range(FRAMES):
        work(index)
    return (time.process_time() - started) / FRAMES * 1e6


def paths(frames: list[np.ndarray]) -> dict[str, Callable[[], Callable[[int], object]]]:
    packets = [bytes(OpusEncoder().encode(frame, 0)) for frame in frames]

    def aiortc_encode() -> Callable[[int], object]:
        encoder = AiortcOpusEncoder()
        return lambda i: encoder.encode(mono_to_frame(frames[i], i * 960, stereo=True))

    def ours(application: str) -> Callable[[], Callable[[int], object]]:
        def make() -> Callable[[int], object]:
            encoder = OpusEncoder(application=application)
            return lambda i: encoder.encode(frames[i], i * 960)

        return make

    def pyav_decode() -> Callable[[int], object]:
        context = av.CodecContext.create("libopus", "r")
        context.format, context.layout, context.sample_rate = "s16", "mono", SAMPLE_RATE

        def decode(i: int) -> object:
            packet = av.Packet(packets[i])
            packet.pts, packet.time_base = i * 960, fractions.Fraction(1, SAMPLE_RATE)
            return [frame.to_ndarray() for frame in context.decode(packet)]

        return decode

    def our_decode() -> Callable[[int], object]:
        decoder = OpusDecoder()
        return lambda i: decoder.decode(packets[i])

    return {
        "encode: aiortc (96 kb/s stereo, resampler)": aiortc_encode,
        "encode: ours, voip (SILK/hybrid)": ours("voip"),
        "encode: ours, audio": ours("audio"),
        "encode: ours, lowdelay (CELT, the default)": ours("lowdelay"),
        "decode: PyAV libopus, mono": pyav_decode,
        "decode: ours (ctypes libopus, mono)": our_decode,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.rounds < 1:
        raise SystemExit("--rounds ≥ 1")
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    frames = twelve_tones()
    makers = paths(frames)
    samples: dict[str, list[float]] = {name: [] for name in makers}
    for _ in range(args.rounds):
        for name, make in makers.items():
            samples[name].append(cpu_per_frame(make()))
    result = {
        "benchmark": "opus_cost",
        "rounds": args.rounds,
        "us_per_20ms_frame_median": {
            name: round(statistics.median(values), 1) for name, values in samples.items()
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

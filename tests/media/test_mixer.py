"""Mixer on its own media loop, fed by real-time ToneTracks; checks are made on output samples."""

from __future__ import annotations

import asyncio
import fractions
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import av
import numpy as np
import pytest
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError

from majlis.media.audio import FRAME_SAMPLES, FRAME_SECONDS, SAMPLE_RATE
from majlis.media.formats.convert import TIME_BASE, MonoConverter, Reframer, mono_to_frame
from majlis.media.mixing.levels import SILENCE_DB
from majlis.media.mixing.limiter import Limiter
from majlis.media.mixing.mixer import Mixer
from majlis.media.mixing.mixminus import MixMinusTrack
from majlis.media.rtc.tone import ToneTrack, tone_samples
from majlis.media.runtime.loop import MediaLoop
from majlis.plane import Levels

from .audio_analysis import tone_dbfs

FULL_SCALE = 32767.0


def frame_tone_dbfs(frame: np.ndarray, frequency: float) -> float:
    """The amplitude of one 20 ms frame's component at `frequency` (projection, Hann)."""
    n = np.arange(frame.size)
    window = np.hanning(frame.size)
    phasor = np.exp(-2j * math.pi * frequency * n / SAMPLE_RATE)
    amplitude = 2.0 * abs(np.sum(frame * window * phasor)) / np.sum(window)
    return 20.0 * math.log10(max(amplitude, 1e-9) / FULL_SCALE)


@dataclass
class Capture:
    """What the mixer handed out, appended from the media thread."""

    mixes: list[tuple[float, np.ndarray]] = field(default_factory=list)
    produced: list[float] = field(default_factory=list)  # time.time() when each mix came out
    levels: list[Levels] = field(default_factory=list)
    threads: set[str] = field(default_factory=set)
    mix_minus: dict[str, list[tuple[float, np.ndarray]]] = field(default_factory=dict)

    def on_mix(self, pcm: np.ndarray, wall: float) -> None:
        self.threads.add(threading.current_thread().name)
        self.mixes.append((wall, pcm))
        self.produced.append(time.time())

    def mix_since(self, seconds: float) -> np.ndarray:
        frames = round(seconds / FRAME_SECONDS)
        return np.concatenate([pcm for _, pcm in self.mixes[-frames:]])

    def heard_by(self, speaker_id: str, seconds: float) -> np.ndarray:
        frames = round(seconds / FRAME_SECONDS)
        return np.concatenate([pcm for _, pcm in self.mix_minus[speaker_id][-frames:]])


@pytest.fixture
def media_loop() -> Iterator[MediaLoop]:
    loop = MediaLoop()
    loop.start()
    yield loop
    loop.stop()


def start_mixer(media_loop: MediaLoop, capture: Capture) -> Mixer:
    mixer = Mixer(on_mix=capture.on_mix, on_levels=capture.levels.append)
    media_loop.submit(mixer.start).result()
    return mixer


def add_tones(media_loop: MediaLoop, mixer: Mixer, tones: dict[str, tuple[float, float]]) -> None:
    def add() -> None:
        for speaker_id, (frequency, level) in tones.items():
            mixer.add_input(speaker_id, ToneTrack(frequency, level))

    media_loop.submit(add).result()


def listen(media_loop: MediaLoop, mixer: Mixer, capture: Capture, speaker_id: str) -> None:
    """Read the speaker's mix-minus track on the media loop, like aiortc's sender would."""

    async def read(track: MixMinusTrack, frames: list[tuple[float, np.ndarray]]) -> None:
        try:
            while True:
                frame = await track.recv()
                # Received stereo with equal channels: keep the left one.
                frames.append((time.time(), frame.to_ndarray()[0, ::2].copy()))
        except MediaStreamError:
            pass

    async def start() -> None:
        frames = capture.mix_minus.setdefault(speaker_id, [])
        track = mixer.mix_minus_track(speaker_id)
        asyncio.get_running_loop().create_task(read(track, frames))

    media_loop.call(start()).result()


def stop_mixer(media_loop: MediaLoop, mixer: Mixer) -> None:
    media_loop.call(mixer.stop()).result()


# --- one shared run: three speakers, two of them listening to their mix-minus ----------------


@pytest.fixture(scope="module")
def three_tones() -> Iterator[tuple[Mixer, Capture]]:
    loop = MediaLoop()
    loop.start()
    capture = Capture()
    mixer = start_mixer(loop, capture)
    add_tones(loop, mixer, {"a": (440.0, -20.0), "b": (660.0, -20.0), "c": (880.0, -20.0)})
    listen(loop, mixer, capture, "a")
    listen(loop, mixer, capture, "b")
    time.sleep(1.5)
    stop_mixer(loop, mixer)
    loop.stop()
    yield mixer, capture


def test_listener_mix_has_each_unmuted_tone_at_its_level(
    three_tones: tuple[Mixer, Capture],
) -> None:
    mixer, capture = three_tones
    mix = capture.mix_since(0.8)
    for frequency in (440.0, 660.0, 880.0):
        assert tone_dbfs(mix, frequency) == pytest.approx(-20.0, abs=1.5)
    # Three tones at -20 dBFS peak well below the threshold: the limiter must not touch them.
    assert mixer.limiter.limited_frames == 0
    # Nothing else in the mix (a dropped frame's phase jump splatters a little).
    assert tone_dbfs(mix, 1_100.0) < -50.0


def test_mix_minus_carries_the_others_and_not_oneself(three_tones: tuple[Mixer, Capture]) -> None:
    _, capture = three_tones
    heard_by_a = capture.heard_by("a", 0.8)
    heard_by_b = capture.heard_by("b", 0.8)
    assert tone_dbfs(heard_by_a, 660.0) == pytest.approx(-20.0, abs=1.5)
    assert tone_dbfs(heard_by_a, 880.0) == pytest.approx(-20.0, abs=1.5)
    assert tone_dbfs(heard_by_a, 440.0) < -20.0 - 30.0
    assert tone_dbfs(heard_by_b, 440.0) == pytest.approx(-20.0, abs=1.5)
    assert tone_dbfs(heard_by_b, 660.0) < -20.0 - 30.0


def test_levels_are_published_a_few_times_a_second(three_tones: tuple[Mixer, Capture]) -> None:
    _, capture = three_tones
    assert 5 <= len(capture.levels) <= 10  # 1.5 s at one report per 200 ms
    last = capture.levels[-1]
    for speaker_id in ("a", "b", "c"):
        level, speaking = last[speaker_id]
        # RMS of a -20 dBFS sine is 3 dB below its peak.
        assert level == pytest.approx(-23.0, abs=1.0)
        assert speaking is True


def test_mixer_clock_runs_on_the_media_thread(three_tones: tuple[Mixer, Capture]) -> None:
    _, capture = three_tones
    assert capture.threads == {"majlis-media"}


def test_tick_lateness_is_recorded(three_tones: tuple[Mixer, Capture]) -> None:
    mixer, capture = three_tones
    stats = mixer.stats()
    print(f"\ntick stats, 3 speakers: {stats}")
    # Ticks the host stalled us out of (over 200 ms) still reach the sink, as silence.
    assert stats.ticks + stats.skipped == len(capture.mixes)
    assert stats.ticks >= 70
    assert 0.0 <= stats.late_p50_ms <= stats.late_p99_ms <= stats.late_max_ms
    assert stats.late_p50_ms < 5.0
    # Ticks follow an absolute schedule with no holes: capture times 20 ms apart exactly.
    steps = np.diff([wall for wall, _ in capture.mixes]) / FRAME_SECONDS
    assert np.allclose(steps, 1.0, atol=1e-4)


def test_a_stalled_clock_loses_no_time_in_the_mix(media_loop: MediaLoop) -> None:
    """A machine that stalls the media thread for half a second: the sink still gets one
    frame per 20 ms of wall clock (silence for the skipped ticks), so the recording keeps
    its length and its timestamps."""
    fake = {"now": 1000.0}
    capture = Capture()

    def monotonic() -> float:
        fake["now"] += 0.001  # time moves a little with every look
        return fake["now"]

    mixer = Mixer(on_mix=capture.on_mix, monotonic=monotonic)

    async def stall_and_run() -> None:
        mixer.start()
        await asyncio.sleep(0.05)
        fake["now"] += 0.5  # the stall
        await asyncio.sleep(0.05)
        await mixer.stop()

    media_loop.call(stall_and_run()).result(10)
    stats = mixer.stats()
    assert stats.skipped >= 20
    assert stats.ticks + stats.skipped == len(capture.mixes)
    walls = np.array([wall for wall, _ in capture.mixes])
    assert np.allclose(np.diff(walls), FRAME_SECONDS, atol=1e-6)
    assert (walls[-1] - walls[0]) >= 0.5
    # The stall counts as lateness in full, not from where the clock caught up.
    assert stats.late_max_ms >= 400  # not capped near MAX_CATCH_UP (200 ms)


def test_a_mixer_whose_ticks_run_late_says_so(media_loop: MediaLoop) -> None:
    """Its recent lateness is what its node announces: from 20 ms, no new spaces."""
    fake = {"now": 1000.0}

    def monotonic() -> float:
        fake["now"] += 0.015  # each look finds the clock further on than a tick allows
        return fake["now"]

    mixer = Mixer(on_mix=Capture().on_mix, monotonic=monotonic)
    assert mixer.recent_lateness() == 0.0  # no tick yet

    async def run() -> None:
        mixer.start()
        await asyncio.sleep(0.1)
        await mixer.stop()

    media_loop.call(run()).result(10)
    assert mixer.stats().ticks >= 10
    assert mixer.recent_lateness() >= 0.020


# --- mute ------------------------------------------------------------------------------------


def test_mute_removes_the_tone_within_100ms_from_mix_and_mix_minus(media_loop: MediaLoop) -> None:
    capture = Capture()
    mixer = start_mixer(media_loop, capture)
    add_tones(media_loop, mixer, {"a": (440.0, -20.0), "b": (660.0, -20.0)})
    listen(media_loop, mixer, capture, "b")
    time.sleep(0.6)
    muted_at = time.time()
    mixer.set_muted("a", True)  # from this (non-media) thread on purpose
    # Long enough for the speaking flag's 400 ms hold plus one whole 200 ms level window,
    # whatever the phase of the mute against the windows.
    time.sleep(0.9)
    unmuted_at = time.time()
    mixer.set_muted("a", False)
    time.sleep(0.4)
    stop_mixer(media_loop, mixer)

    # A frame's wall time is its tick's scheduled start: the tick runs at or after it (later
    # when the host is busy), so frames stamped after the call were mixed after it, and
    # frames that came out before the unmute call were mixed before it.
    present = [
        (wall, produced, frame_tone_dbfs(pcm, 440.0) > -40.0)
        for (wall, pcm), produced in zip(capture.mixes, capture.produced, strict=True)
    ]
    before = [on for wall, _, on in present if wall < muted_at - 0.1]
    assert before and all(before[-10:])
    while_muted = [on for wall, out, on in present if wall > muted_at + 0.002 and out < unmuted_at]
    assert len(while_muted) >= 15
    assert not any(while_muted)
    # So the last frame carrying the tone ends within 100 ms (in fact 20 ms) of the call.
    last_on = max(wall for wall, out, on in present if out < unmuted_at and on)
    assert last_on + FRAME_SECONDS - muted_at <= 0.100
    # 660 Hz from b is untouched throughout.
    assert all(frame_tone_dbfs(pcm, 660.0) > -23.0 for wall, pcm in capture.mixes[-30:])
    # b's mix-minus (stamped when b read it) has no trace of a while a is muted.
    heard = [pcm for got, pcm in capture.mix_minus["b"] if muted_at + 0.15 <= got < unmuted_at]
    assert len(heard) >= 15
    assert all(frame_tone_dbfs(pcm, 440.0) < -60.0 for pcm in heard)
    # Unmuting brings a back on the next tick as well.
    back = min(wall for wall, _, on in present if wall > unmuted_at + 0.002 and on)
    assert back - unmuted_at <= 0.100
    # Levels report a muted speaker as silent, never as speaking.
    during = [levels["a"] for levels in capture.levels if "a" in levels][-1]
    assert during[1] is True  # unmuted again at the end
    assert any(levels.get("a") == (SILENCE_DB, False) for levels in capture.levels)


# --- limiter ---------------------------------------------------------------------------------


def test_thirteen_full_scale_speakers_never_clip(media_loop: MediaLoop) -> None:
    capture = Capture()
    mixer = start_mixer(media_loop, capture)
    tones = {f"s{i}": (300.0 + 97.0 * i, 0.0) for i in range(13)}
    add_tones(media_loop, mixer, tones)
    listen(media_loop, mixer, capture, "s0")
    time.sleep(1.2)
    stop_mixer(media_loop, mixer)
    stats = mixer.stats()
    print(f"\ntick stats, 13 speakers: {stats}")

    mix = capture.mix_since(1.0)
    assert mixer.limiter.limited_frames > 0
    assert int(np.abs(mix.astype(np.int32)).max()) < 32767
    assert np.abs(mix).max() <= mixer.limiter.threshold + 1
    assert mixer.limiter.hard_clipped == 0
    assert np.abs(capture.heard_by("s0", 0.8)).max() < 32767
    # Each speaker is still there, just quieter.
    for frequency, _ in list(tones.values())[:3]:
        assert tone_dbfs(mix, frequency) > -40.0
    # 13 speakers cost well under the 20 ms tick.
    assert stats.cost_p50_ms < 2.0


def sine(frequency: float, amplitude: float, seconds: float) -> np.ndarray:
    n = np.arange(int(seconds * SAMPLE_RATE))
    return amplitude * np.sin(2.0 * math.pi * frequency * n / SAMPLE_RATE)


def run_limiter(limiter: Limiter, signal: np.ndarray) -> np.ndarray:
    frames = signal.reshape(-1, FRAME_SAMPLES).astype(np.float32)
    return np.concatenate([limiter.process(["mix"], frame[None, :])[0] for frame in frames])


def harmonics_db(signal: np.ndarray, fundamental: float) -> float:
    """Strongest of harmonics 2..6 relative to the fundamental, in dB."""
    base = tone_dbfs(signal, fundamental)
    return max(tone_dbfs(signal, fundamental * k) for k in range(2, 7)) - base


def test_limiter_on_thirteen_in_phase_full_scale_sines_is_smooth() -> None:
    limiter = Limiter()
    loud = sine(440.0, 13 * FULL_SCALE, 2.0)
    out = run_limiter(limiter, loud)
    assert np.abs(out).max() <= limiter.threshold + 1
    assert limiter.hard_clipped == 0
    steady = out[SAMPLE_RATE:]
    # Gain reduction, not clipping: harmonics stay far down (a hard clip puts them at ~-10 dB).
    assert harmonics_db(steady, 440.0) < -40.0
    clipped = np.clip(loud, -FULL_SCALE, FULL_SCALE)[SAMPLE_RATE:]
    assert harmonics_db(clipped, 440.0) > -20.0
    assert tone_dbfs(steady, 440.0) == pytest.approx(-1.0, abs=0.5)


def test_limiter_is_transparent_below_threshold_and_recovers() -> None:
    limiter = Limiter()
    quiet = sine(1_000.0, 0.5 * FULL_SCALE, 0.2)
    out = run_limiter(limiter, quiet)
    # Exactly the input, one 48-sample lookahead block later.
    assert np.array_equal(out[48:], np.rint(quiet[:-48]).astype(np.int16))
    run_limiter(limiter, sine(1_000.0, 4 * FULL_SCALE, 0.2))
    assert limiter.gain("mix") < 0.3
    run_limiter(limiter, quiet[: 3 * FRAME_SAMPLES])
    assert limiter.gain("mix") < 0.5  # slow release …
    run_limiter(limiter, sine(1_000.0, 0.5 * FULL_SCALE, 1.0))
    assert limiter.gain("mix") > 0.99  # … but it does come back


# --- inputs ----------------------------------------------------------------------------------


def test_remove_input_stops_the_track_at_once_and_leaves_the_mix(media_loop: MediaLoop) -> None:
    capture = Capture()
    mixer = start_mixer(media_loop, capture)
    track = ToneTrack(440.0, -20.0)
    media_loop.submit(mixer.add_input, "a", track).result()
    time.sleep(0.4)
    assert frame_tone_dbfs(capture.mixes[-1][1], 440.0) > -23.0
    removed_at = time.time()
    assert media_loop.submit(mixer.remove_input, "a").result() is True
    assert track.readyState == "ended"
    time.sleep(0.1)
    stop_mixer(media_loop, mixer)
    after = [pcm for wall, pcm in capture.mixes if wall >= removed_at + FRAME_SECONDS]
    assert after and all(frame_tone_dbfs(pcm, 440.0) < -60.0 for pcm in after)


def test_silent_input_at_another_rate_reads_as_not_speaking(media_loop: MediaLoop) -> None:
    capture = Capture()
    mixer = start_mixer(media_loop, capture)
    # aiortc's AudioStreamTrack: silence as 8 kHz mono frames, i.e. through the resampler.
    media_loop.submit(mixer.add_input, "quiet", AudioStreamTrack()).result()
    add_tones(media_loop, mixer, {"loud": (500.0, -20.0)})
    time.sleep(0.7)
    stop_mixer(media_loop, mixer)
    last = capture.levels[-1]
    assert last["quiet"] == (SILENCE_DB, False)
    assert last["loud"][1] is True
    stats = mixer.input_stats("quiet")
    assert stats is None  # stop() removed every input


def test_media_loop_runs_work_from_other_threads_and_loops(media_loop: MediaLoop) -> None:
    async def where() -> str:
        return threading.current_thread().name

    assert media_loop.call(where()).result() == "majlis-media"
    assert media_loop.submit(lambda: threading.current_thread().name).result() == "majlis-media"

    async def from_another_loop() -> str:
        return await media_loop.run(where())

    assert asyncio.run(from_another_loop()) == "majlis-media"
    with pytest.raises(ZeroDivisionError):
        media_loop.submit(lambda: 1 // 0).result()


# --- frames in and out -----------------------------------------------------------------------


def test_converter_downmixes_packed_stereo_like_aiortcs_decoder() -> None:
    left = np.arange(960, dtype=np.int16)
    right = np.full(960, 1_000, dtype=np.int16)
    interleaved = np.stack((left, right), axis=1).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(interleaved, format="s16", layout="stereo")
    frame.sample_rate = SAMPLE_RATE
    frame.pts = 4_800
    frame.time_base = TIME_BASE
    [(pts, mono)] = MonoConverter().convert(frame)
    assert pts == 4_800
    assert mono.dtype == np.int16 and mono.shape == (960,)
    assert np.array_equal(mono, (left.astype(np.int32) + 1_000) // 2)


def test_converter_resamples_other_rates_and_reframer_makes_960_sample_frames() -> None:
    converter = MonoConverter()
    reframer = Reframer()
    frames = []
    for index in range(20):  # 10 ms of 44.1 kHz float stereo each
        samples = np.full((2, 441), 0.25, dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="stereo")
        frame.sample_rate = 44_100
        frame.pts = index * 441
        frame.time_base = fractions.Fraction(1, 44_100)
        for pts, mono in converter.convert(frame):
            frames.extend(reframer.push(pts, mono))
    assert len(frames) >= 9
    assert all(pcm.shape == (960,) for _, pcm in frames)
    assert [pts for pts, _ in frames] == [i * 960 for i in range(len(frames))]
    assert abs(int(frames[-1][1][500]) - round(0.25 * 32768)) <= 2


def test_reframer_pads_a_gap_and_restarts_at_the_new_pts() -> None:
    reframer = Reframer()
    half = np.ones(480, dtype=np.int16)
    assert reframer.push(0, half) == []
    [(pts, pcm)] = reframer.push(480, half)
    assert pts == 0 and pcm.sum() == 960
    assert reframer.push(960, half) == []
    # 480 samples lost: the partial frame is padded with silence and framing restarts.
    [(pts, pcm)] = reframer.push(1_920, half)
    assert pts == 960 and pcm.sum() == 480
    [(pts, _)] = reframer.push(2_400, half)
    assert pts == 1_920


def test_output_frames_suit_aiortcs_opus_encoder() -> None:
    pcm = np.arange(960, dtype=np.int16)
    for stereo, layout in ((False, "mono"), (True, "stereo")):
        frame = mono_to_frame(pcm, 1_920, stereo=stereo)
        assert frame.format.name == "s16" and frame.layout.name == layout
        assert frame.sample_rate == SAMPLE_RATE and frame.samples == 960
        assert frame.pts == 1_920 and frame.time_base == TIME_BASE
        assert np.array_equal(frame.to_ndarray()[0, :: 2 if stereo else 1], pcm)


def test_tone_bursts_gate_on_and_off() -> None:
    samples = tone_samples(1_000.0, -6.0, 0, SAMPLE_RATE, burst=(0.1, 0.4))
    on = samples[: int(0.1 * SAMPLE_RATE)]
    off = samples[int(0.1 * SAMPLE_RATE) : int(0.5 * SAMPLE_RATE)]
    assert np.abs(on).max() == pytest.approx(32767 * 10 ** (-6 / 20), rel=0.01)
    assert not off.any()


def test_speakers_handed_over_start_as_deep_as_they_were_played() -> None:
    """A node standing by for a handover starts each expected speaker's buffer at the
    depth the other node played it (within the buffer's bounds), once: a later
    reconnect starts at the usual depth again."""
    mixer = Mixer(on_mix=Capture().on_mix)
    mixer.expect_delays({"deep": 0.15, "deeper": 0.5, "shallow": 0.001})
    depths = {name: mixer.add_feed(name).buffer.target_delay for name in ("deep", "deeper")}
    depths |= {name: mixer.add_feed(name).buffer.target_delay for name in ("shallow", "new")}
    assert depths == {"deep": 0.15, "deeper": 0.2, "shallow": 0.04, "new": 0.06}
    assert mixer.add_feed("deep").buffer.target_delay == 0.06
    # Before playout starts, what it reports is where each buffer will start.
    assert mixer.playout_delays() == {"deep": 0.06, "deeper": 0.2, "shallow": 0.04, "new": 0.06}

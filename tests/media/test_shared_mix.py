"""Muted speakers hear the listener mix encoded once, and switching in and out of that
shared stream leaves no seam in what their decoder plays."""

from __future__ import annotations

import numpy as np

from majlis.media.audio import FRAME_SAMPLES, SAMPLE_RATE
from majlis.media.formats.convert import Pcm
from majlis.media.formats.opus import OpusDecoder
from majlis.media.mixing.mixer import Mixer
from majlis.media.mixing.shared_mix import SHARE_AFTER_TICKS
from majlis.media.rtc.tone import tone_samples

from .audio_analysis import tone_dbfs

# Not a whole number of cycles in any number of ticks below 100: a stale encoder state
# never lines up with the tone by luck.
HOST_HZ = 437.0


class Frames:
    """Stands in for a speaker's jitter buffer: the next 20 ms of a steady signal."""

    def __init__(self, frequency: float | None) -> None:
        self.frequency = frequency
        self.position = 0

    def pull(self, now: float) -> Pcm:
        if self.frequency is None:
            return np.zeros(FRAME_SAMPLES, dtype=np.int16)
        samples = tone_samples(self.frequency, -20.0, self.position, FRAME_SAMPLES)
        self.position += FRAME_SAMPLES
        return samples


def off_tone_db(frame: np.ndarray, frequency: float) -> float:
    """Level (dBFS) of everything in a 20 ms frame but the tone: a click shows up here."""
    window = np.hanning(frame.size)
    spectrum = np.fft.rfft(frame.astype(np.float64) / 32768.0 * window)
    freqs = np.fft.rfftfreq(frame.size, 1 / SAMPLE_RATE)
    off = np.abs(freqs - frequency) > 150.0
    power = 2 * np.sum(np.abs(spectrum[off]) ** 2) / (frame.size**2 * 0.375)
    return float(10 * np.log10(max(power, 1e-20)))


async def test_muted_speakers_share_one_encoding_without_a_seam() -> None:
    """The host speaks HOST_HZ throughout. b speaks 660 Hz, is muted at tick 20 (so shares
    from tick 30) and unmuted at 60; c is muted from the start; d, silent, never is."""
    mixer = Mixer()
    sources = {"host": Frames(HOST_HZ), "b": Frames(660.0), "c": Frames(None), "d": Frames(None)}
    for speaker_id, source in sources.items():
        mixer.add_feed(speaker_id).buffer = source  # type: ignore[assignment]
    tracks = {s: mixer.mix_minus_track(s, encoded=True) for s in ("b", "c", "d")}
    mixer.set_muted("c", True)
    mute_at, unmute_at, ticks = 20, 60, 100
    packets: dict[str, list[bytes]] = {s: [] for s in tracks}
    for tick in range(ticks):
        if tick in (mute_at, unmute_at):
            mixer.set_muted("b", tick == mute_at)
        mixer.tick(tick, tick * 0.02, 1_000.0 + tick * 0.02)
        if tick % 2 == 1:
            for speaker_id, track in tracks.items():
                packet = await track.recv()
                packets[speaker_id].append(bytes(packet))  # type: ignore[arg-type]

    # While both were muted (long enough), b and c got the very same packets, and each
    # shared packet was encoded once: c's 50, less the 5 before it had been muted 200 ms.
    joined = (mute_at + SHARE_AFTER_TICKS) // 2
    for i in range(joined, unmute_at // 2):
        assert packets["b"][i] == packets["c"][i]
    assert packets["b"][joined - 1] != packets["c"][joined - 1]  # b's own, until then
    assert mixer.shared_mix.encoded == ticks // 2 - SHARE_AFTER_TICKS // 2

    # Decoded as a browser would, b's stream joins (tick 30) and leaves (tick 60) the
    # shared one without a seam: every 20 ms frame is the host's tone at its level, b's own
    # voice is never in it, and nothing else rises where the stream switched.
    decoder = OpusDecoder()
    heard = np.concatenate([decoder.decode(p) for p in packets["b"]]).reshape(-1, FRAME_SAMPLES)
    frames = heard[3:]
    levels = [tone_dbfs(frame, HOST_HZ) for frame in frames]
    assert -23.0 < float(np.median(levels)) < -19.0
    assert max(levels) - min(levels) < 1.0, (min(levels), max(levels))
    assert max(tone_dbfs(frame, 660.0) for frame in frames) < -60.0
    off = [off_tone_db(frame, HOST_HZ) for frame in frames]
    steady = float(np.median(off))
    around_switches = [off[t - 3 + k] for t in (30, 60) for k in range(-2, 4)]
    assert max(around_switches) < steady + 6.0, (around_switches, steady)
    for track in tracks.values():
        track.stop()

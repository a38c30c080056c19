"""Audio checks for end-to-end tests: tone levels over time, gaps, WAV and HLS decoding."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

RATE = 48000
Floats = npt.NDArray[np.float64]


def read_wav(path: Path) -> Floats:
    with wave.open(str(path)) as w:
        if w.getframerate() != RATE:
            raise AssertionError(f"{path} is {w.getframerate()} Hz")
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
        return data.reshape(-1, w.getnchannels()).mean(axis=1) / 32768.0


def decode(data: bytes) -> Floats:
    """Decode an audio file held in memory to mono float at 48 kHz."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
    out: list[Floats] = []
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(audio=0):
            for chunk in resampler.resample(frame):
                out.append(chunk.to_ndarray().reshape(-1).astype(np.float64))
    return np.concatenate(out) if out else np.zeros(0)


def tone_db(samples: Floats, frequency: float, band: float = 15.0) -> float:
    """RMS level in dBFS of the component at `frequency` (± `band` Hz)."""
    if len(samples) == 0:
        return -200.0
    window = np.hanning(len(samples))
    spectrum = np.fft.rfft(samples * window)
    freqs = np.fft.rfftfreq(len(samples), 1 / RATE)
    in_band = (freqs > frequency - band) & (freqs < frequency + band)
    # Parseval with the Hann window's power gain (3/8).
    power = 2 * np.sum(np.abs(spectrum[in_band]) ** 2) / (len(samples) ** 2 * 0.375)
    return float(10 * np.log10(max(power, 1e-20)))


def tone_track(
    samples: Floats,
    frequency: float,
    window: float = 0.02,
    hop: float = 0.005,
    band: float = 100.0,
) -> Floats:
    """Level of `frequency` (dBFS, ± `band` Hz) in windows starting every `hop` seconds.
    Short windows need a wide band; a narrow band on long windows ignores clicks."""
    size, step = int(window * RATE), int(hop * RATE)
    starts = range(0, max(0, len(samples) - size), step)
    return np.array([tone_db(samples[i : i + size], frequency, band) for i in starts])


def longest_gap(samples: Floats, threshold_db: float = -50.0, window: float = 0.005) -> float:
    """Longest run of windows quieter than threshold, in seconds."""
    size = int(window * RATE)
    count = len(samples) // size
    if count == 0:
        return 0.0
    blocks = samples[: count * size].reshape(count, size)
    rms = np.sqrt(np.mean(blocks**2, axis=1)) + 1e-12
    quiet = 20 * np.log10(rms) < threshold_db
    longest = run = 0
    for q in quiet:
        run = run + 1 if q else 0
        longest = max(longest, run)
    return longest * window

"""Tone generation and decoded-audio checks for the listener-side tests.

Decoding goes through two implementations we did not write: PyAV (libav* linked into
the wheel) and the ffmpeg command-line tool.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from majlis.media.audio import FRAME_SAMPLES, FRAME_SECONDS, SAMPLE_RATE

FULL_SCALE = 32767.0
Floats = npt.NDArray[np.float64]


def tone(frequency: float, seconds: float, *, amplitude: float = 0.5) -> npt.NDArray[np.int16]:
    """A sine as int16, a whole number of mixer frames long."""
    frames = round(seconds / FRAME_SECONDS)
    t = np.arange(frames * FRAME_SAMPLES) / SAMPLE_RATE
    return np.round(amplitude * FULL_SCALE * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def frames_of(samples: npt.NDArray[np.int16]) -> list[npt.NDArray[np.int16]]:
    return [samples[i : i + FRAME_SAMPLES] for i in range(0, samples.size, FRAME_SAMPLES)]


def tone_dbfs(samples: npt.NDArray[np.generic], frequency: float, band: float = 15.0) -> float:
    """Amplitude (dBFS, a full-scale sine = 0) of the energy within ±band Hz of frequency.

    Band energy rather than the peak bin, so a phase jump (a dropped or concealed frame)
    does not read as a level change."""
    x = samples.astype(np.float64)
    window = np.hanning(x.size)
    spectrum = np.abs(np.fft.rfft(x * window)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1.0 / SAMPLE_RATE)
    energy = spectrum[np.abs(freqs - frequency) <= band].sum()
    amplitude = math.sqrt(4.0 * energy / (x.size * np.sum(window**2)))
    return 20.0 * math.log10(max(amplitude, 1e-9) / FULL_SCALE)


def decode_with_pyav(path: Path) -> Floats:
    """Mono samples scaled like int16 (full scale 32767)."""
    chunks: list[Floats] = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            array = frame.to_ndarray().astype(np.float64)
            chunks.append(array.reshape(-1) if array.shape[0] == 1 else array.mean(axis=0))
    return np.concatenate(chunks) * FULL_SCALE


def decode_with_ffmpeg(
    source: str, *, extra: list[str] | None = None, timeout: float = 30
) -> Floats:
    """Decode anything ffmpeg reads (file or URL) to mono 48 kHz samples."""
    command = ["ffmpeg", "-nostdin", "-v", "error", *(extra or []), "-i", source]
    command += ["-f", "s16le", "-ac", "1", "-ar", str(SAMPLE_RATE), "-"]
    result = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise AssertionError(f"ffmpeg failed: {result.stderr.decode(errors='replace')}")
    return np.frombuffer(result.stdout, dtype="<i2").astype(np.float64)


def ffprobe_duration(path: Path) -> float:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(result.stdout.strip())


def ffprobe_json(path: Path) -> dict[str, object]:
    """ffprobe's view of a media file: its format and streams."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        check=True,
        timeout=30,
    )
    probed: dict[str, object] = json.loads(result.stdout)
    return probed


def dominant_frequency(samples: Floats) -> float:
    """Peak of the Hann-windowed spectrum, refined by parabolic interpolation."""
    window = np.hanning(samples.size)
    spectrum = np.abs(np.fft.rfft((samples - samples.mean()) * window))
    peak = int(np.argmax(spectrum[1:-1])) + 1
    left, centre, right = np.log(spectrum[peak - 1 : peak + 2] + 1e-12)
    offset = 0.5 * (left - right) / (left - 2 * centre + right)
    return float((peak + offset) * SAMPLE_RATE / samples.size)


def rms_db(samples: Floats) -> float:
    rms = math.sqrt(float(np.mean(np.square(samples))))
    return 20 * math.log10(max(rms, 1e-9) / FULL_SCALE)


def quietest_window_db(samples: Floats, window_seconds: float = 0.01) -> float:
    """RMS of the quietest window: a gap or dropout shows up as a very low value."""
    size = round(window_seconds * SAMPLE_RATE)
    count = samples.size // size
    windows = samples[: count * size].reshape(count, size)
    rms = np.sqrt(np.mean(np.square(windows), axis=1))
    return 20 * math.log10(max(float(rms.min()), 1e-9) / FULL_SCALE)


def assert_tone(
    decoded: Floats,
    *,
    frequency: float,
    level_db: float,
    trim_seconds: float = 0.1,
) -> None:
    """Dominant frequency within 2 %, level within 1 dB, and no gap in between."""
    trim = round(trim_seconds * SAMPLE_RATE)
    middle = decoded[trim:-trim]
    assert middle.size > SAMPLE_RATE // 2, f"only {decoded.size} samples decoded"
    found = dominant_frequency(middle)
    assert abs(found - frequency) <= 0.02 * frequency, f"dominant {found:.1f} Hz"
    level = rms_db(middle)
    assert abs(level - level_db) <= 1.0, f"level {level:.2f} dBFS, expected {level_db:.2f}"
    quietest = quietest_window_db(middle)
    assert quietest >= level_db - 3.0, f"a 10 ms window drops to {quietest:.1f} dBFS"

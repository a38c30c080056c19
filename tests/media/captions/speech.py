"""Test audio for captions: espeak-ng sentences and tones as 48 kHz int16, cut into frames.

Speech is made by espeak-ng (a program we did not write) and brought to 48 kHz by PyAV,
so the transcriber and the segmenter are tried on real synthesized voices, not on our own
signals.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import av
import numpy as np
import numpy.typing as npt
import pytest

from majlis.media.audio import FRAME_SAMPLES, SAMPLE_RATE

Int16 = npt.NDArray[np.int16]
IN_CI = os.environ.get("CI", "").lower() == "true"


def missing(what: str) -> NoReturn:
    """Skip for want of a tool or a package; under CI=true fail instead, loudly."""
    if IN_CI:
        pytest.fail(f"{what}, and CI=true: the captions tests must run")
    pytest.skip(what)


def espeak(text: str, workdir: Path, *, voice: str = "en-us", words_per_minute: int = 150) -> Int16:
    """`text` spoken by espeak-ng, 48 kHz mono int16."""
    if shutil.which("espeak-ng") is None:
        missing("espeak-ng is not installed (apt-get install espeak-ng)")
    key = hashlib.sha256(f"{voice}|{words_per_minute}|{text}".encode()).hexdigest()[:16]
    path = workdir / f"speech-{key}.wav"
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(path), text],
        check=True,
        capture_output=True,
    )
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    chunks: list[Int16] = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            chunks += [
                f.to_ndarray().reshape(-1).astype(np.int16) for f in resampler.resample(frame)
            ]
    chunks += [f.to_ndarray().reshape(-1).astype(np.int16) for f in resampler.resample(None)]
    return np.concatenate(chunks)


def silence(seconds: float) -> Int16:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.int16)


def tone(seconds: float, frequency: float = 440.0, amplitude: float = 0.3) -> Int16:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return np.round(amplitude * 32767 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def sound_bounds(samples: Int16, threshold: float = 0.02) -> tuple[float, float]:
    """Seconds from the start to the first and past the last sample louder than threshold."""
    loud = np.flatnonzero(np.abs(samples.astype(np.float64)) / 32768.0 > threshold)
    return loud[0] / SAMPLE_RATE, (loud[-1] + 1) / SAMPLE_RATE


def frames(samples: Int16) -> list[Int16]:
    """20 ms frames; the last is padded with silence."""
    padded = np.concatenate([samples, np.zeros(-samples.size % FRAME_SAMPLES, dtype=np.int16)])
    return [padded[i : i + FRAME_SAMPLES] for i in range(0, padded.size, FRAME_SAMPLES)]

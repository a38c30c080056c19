"""48 kHz to 16 kHz: streaming equals one pass, speech frequencies pass, aliases do not, and
output sample j stands for input sample 3j exactly."""

from __future__ import annotations

import numpy as np
import pytest

from majlis.media.audio import FRAME_SAMPLES, SAMPLE_RATE
from majlis.media.captions.resample import MODEL_RATE, Decimator, Pcm, to_model_rate


def sine(frequency: float, seconds: float = 1.0, rate: int = SAMPLE_RATE) -> Pcm:
    t = np.arange(round(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def level_db(samples: Pcm) -> float:
    middle = samples[samples.size // 4 : -samples.size // 4]  # away from the edges
    return float(20 * np.log10(np.sqrt(np.mean(np.square(middle, dtype=np.float64)))))


def test_streaming_in_frames_equals_one_pass() -> None:
    x = np.random.default_rng(7).normal(0, 0.1, SAMPLE_RATE).astype(np.float32)
    decimator = Decimator()
    streamed = [decimator.push(x[i : i + FRAME_SAMPLES]) for i in range(0, x.size, FRAME_SAMPLES)]
    streamed.append(decimator.flush())
    whole = to_model_rate(x, SAMPLE_RATE)
    assert whole.size == x.size // 3
    np.testing.assert_allclose(np.concatenate(streamed), whole, atol=1e-6)


def test_a_flushed_decimator_starts_a_new_stream() -> None:
    x = sine(300.0, 0.1)
    decimator = Decimator()
    first = np.concatenate([decimator.push(x), decimator.flush()])
    again = np.concatenate([decimator.push(x), decimator.flush()])
    np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize("frequency", [200.0, 1000.0, 4000.0, 6500.0])
def test_speech_frequencies_pass_unchanged(frequency: float) -> None:
    x = sine(frequency)
    assert level_db(to_model_rate(x, SAMPLE_RATE)) == pytest.approx(level_db(x), abs=0.1)


@pytest.mark.parametrize("frequency", [9500.0, 12000.0, 20000.0])
def test_what_would_alias_is_removed(frequency: float) -> None:
    x = sine(frequency)
    assert level_db(to_model_rate(x, SAMPLE_RATE)) < level_db(x) - 50


def test_output_sample_j_stands_for_input_sample_3j() -> None:
    x = np.zeros(SAMPLE_RATE // 10, dtype=np.float32)
    x[3 * 1000] = 1.0
    assert int(np.argmax(to_model_rate(x, SAMPLE_RATE))) == 1000


def test_16k_passes_through_and_other_rates_are_refused() -> None:
    x = sine(440.0, 0.1, MODEL_RATE)
    np.testing.assert_array_equal(to_model_rate(x, MODEL_RATE), x)
    with pytest.raises(ValueError, match="44100"):
        to_model_rate(x, 44_100)

"""Cutting one speaker's frames into utterances.

Tone bursts with a level detector pin the segmenter's own logic down to the window; espeak-ng
speech with Silero tries it as it runs. Frames are timed on a capture clock that starts far
from zero, as a real one does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from majlis.media.audio import FRAME_SECONDS
from majlis.media.captions.segmenter import Segmenter, SegmenterSettings, Utterance
from majlis.media.captions.vad import EnergyVad, SileroModel

from .speech import Int16, espeak, frames, silence, sound_bounds, tone

T0 = 1_700_000_000.0  # capture clock at the first frame
TOLERANCE = 0.1


def segment(
    segmenter: Segmenter, samples: Int16, t0: float = T0, *, as_float: bool = False
) -> list[Utterance]:
    out: list[Utterance] = []
    for i, frame in enumerate(frames(samples)):
        pushed = frame.astype(np.float32) / np.float32(32768) if as_float else frame
        out += segmenter.push(pushed, t0 + i * FRAME_SECONDS)
    return out + segmenter.flush()


def spans(utterances: list[Utterance]) -> list[tuple[float, float]]:
    return [(u.start - T0, u.end - T0) for u in utterances]


def assert_spans(utterances: list[Utterance], expected: list[tuple[float, float]]) -> None:
    assert len(utterances) == len(expected), spans(utterances)
    for got, want in zip(spans(utterances), expected, strict=True):
        assert got == pytest.approx(want, abs=TOLERANCE), spans(utterances)


def energy(settings: SegmenterSettings | None = None) -> Segmenter:
    return Segmenter(EnergyVad(), settings)


# tone bursts: the segmenter's logic -------------------------------------------------------


@pytest.mark.parametrize("as_float", [False, True])
def test_bursts_separated_by_silence_are_separate_utterances(as_float: bool) -> None:
    audio = np.concatenate([silence(0.5), tone(1.0), silence(1.0), tone(0.7), silence(0.8)])
    utterances = segment(energy(), audio, as_float=as_float)
    assert_spans(utterances, [(0.5, 1.5), (2.5, 3.2)])
    first = utterances[0]
    assert not first.continues
    # the audio is padded around the speech: 0.2 s before, 0.1 s after
    assert first.audio_start == pytest.approx(first.start - 0.2, abs=0.04)
    assert first.pcm.dtype == np.float32
    assert first.pcm.size / 16_000 == pytest.approx(first.end + 0.1 - first.audio_start, abs=0.04)


def test_a_gap_shorter_than_the_hangover_does_not_split() -> None:
    audio = np.concatenate([silence(0.5), tone(1.0), silence(0.15), tone(1.0), silence(0.5)])
    assert_spans(segment(energy(), audio), [(0.5, 2.65)])


def test_a_click_is_not_an_utterance() -> None:
    audio = np.concatenate([silence(0.5), tone(0.05), silence(1.0)])
    assert segment(energy(), audio) == []


def test_speech_open_at_the_end_of_the_stream_ends_there() -> None:
    audio = np.concatenate([silence(0.3), tone(1.23)])
    assert_spans(segment(energy(), audio), [(0.3, 1.53)])


def test_long_speech_is_cut_at_the_maximum_and_carries_on() -> None:
    audio = np.concatenate([silence(0.5), tone(23.0), silence(1.0)])
    utterances = segment(energy(), audio)
    assert_spans(utterances, [(0.5, 10.5), (10.5, 20.5), (20.5, 23.5)])
    assert [u.continues for u in utterances] == [True, True, False]
    # contiguous: nothing lost or heard twice between the pieces
    assert utterances[0].end == utterances[1].start == utterances[1].audio_start
    assert sum(u.pcm.size for u in utterances[1:]) / 16_000 == pytest.approx(13.1, abs=0.05)


def test_a_long_utterance_is_cut_at_its_last_pause() -> None:
    audio = np.concatenate([silence(0.5), tone(7.0), silence(0.2), tone(6.0), silence(1.0)])
    utterances = segment(energy(), audio)
    assert_spans(utterances, [(0.5, 7.6), (7.6, 13.7)])
    assert [u.continues for u in utterances] == [True, False]


def test_settings_shape_the_cuts() -> None:
    settings = SegmenterSettings(max_utterance=3.0, hangover=0.5, min_pause=0.2)
    audio = np.concatenate([silence(0.5), tone(2.0), silence(0.4), tone(2.0), silence(1.0)])
    # the 0.4 s gap is under the hangover; the pause is past half of 3 s, so the cut is there
    assert_spans(segment(energy(settings), audio), [(0.5, 2.7), (2.7, 4.9)])


def test_times_follow_a_jump_in_the_capture_clock() -> None:
    segmenter = energy()
    out: list[Utterance] = []
    # one second of silence, then the capture clock jumps 5 s ahead (frames lost upstream)
    for i, frame in enumerate(frames(silence(1.0))):
        out += segmenter.push(frame, T0 + i * FRAME_SECONDS)
    audio = np.concatenate([silence(0.5), tone(1.0), silence(1.0)])
    out += segment(segmenter, audio, T0 + 6.0)
    assert_spans(out, [(6.5, 7.5)])


def test_a_segmenter_is_reusable_after_flush() -> None:
    segmenter = energy()
    audio = np.concatenate([silence(0.5), tone(1.0), silence(1.0)])
    assert spans(segment(segmenter, audio)) == spans(segment(segmenter, audio))


@pytest.mark.parametrize(
    "bad",
    [
        {"post_pad": 0.5},
        {"min_pause": 0.3},
        {"release": 0.6},
        {"max_utterance": 0.5},
        {"hangover": 0.0},
    ],
)
def test_settings_that_cannot_work_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SegmenterSettings(**bad)


def test_frames_must_be_mono_int16_or_float() -> None:
    with pytest.raises(ValueError, match="mono"):
        energy().push(np.zeros((960, 2), dtype=np.int16), T0)
    with pytest.raises(TypeError, match="int32"):
        energy().push(np.zeros(960, dtype=np.int32), T0)  # type: ignore[arg-type]


# real speech with Silero ------------------------------------------------------------------

FIRST = "Live captions help everyone follow the conversation."
SECOND = "Please welcome our next speaker to the stage."


def test_sentences_separated_by_silence_are_two_utterances(
    silero: SileroModel, workdir: Path
) -> None:
    first, second = espeak(FIRST, workdir), espeak(SECOND, workdir)
    audio = np.concatenate([silence(0.7), first, silence(1.5), second, silence(1.0)])
    second_at = 0.7 + first.size / 48_000 + 1.5
    a, b = sound_bounds(first), sound_bounds(second)
    utterances = segment(Segmenter(silero.stream()), audio)
    assert_spans(utterances, [(0.7 + a[0], 0.7 + a[1]), (second_at + b[0], second_at + b[1])])
    assert not any(u.continues for u in utterances)


def test_silero_hears_no_speech_in_tones_or_noise(silero: SileroModel) -> None:
    noise = np.random.default_rng(3).normal(0, 0.05 * 32767, 48_000).astype(np.int16)
    audio = np.concatenate([silence(0.5), tone(1.5), silence(0.5), noise, silence(0.5)])
    assert segment(Segmenter(silero.stream()), audio) == []

"""The faster-whisper transcriber on espeak-ng speech, with the real tiny.en model, offline.

Bounds are generous: tiny.en on a synthetic voice is not perfect, and these tests are about
the plumbing (rates, timings, languages), not about the model's accuracy; the bench measures
that.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from majlis.media.audio import FRAME_SECONDS
from majlis.media.captions.model import ModelNotFound
from majlis.media.captions.segmenter import Segmenter, Utterance
from majlis.media.captions.transcriber import (
    Segment,
    Transcript,
    UnsupportedLanguage,
    WhisperTranscriber,
    Word,
)
from majlis.media.captions.vad import SileroModel
from majlis.media.captions.wer import word_error_rate

from .speech import espeak, frames, silence, sound_bounds

MAX_WER = 0.3
SENTENCE = "We will take questions from the audience after the talk."


def test_a_sentence_at_48_khz_is_transcribed_with_word_times(
    whisper: WhisperTranscriber, workdir: Path
) -> None:
    speech = espeak(SENTENCE, workdir)
    duration = speech.size / 48_000
    transcript = whisper.transcribe(
        speech.astype(np.float32) / np.float32(32768), language="en", sample_rate=48_000
    )
    assert transcript.language == "en"
    assert word_error_rate(SENTENCE, transcript.text) <= MAX_WER, transcript.text
    words = [w for s in transcript.segments for w in s.words]
    assert len(words) >= 8
    times = [t for w in words for t in (w.start, w.end)]
    assert times == sorted(times)
    assert times[0] >= 0.0 and times[-1] <= duration
    start, end = sound_bounds(speech)
    assert times[0] == pytest.approx(start, abs=0.5)
    assert times[-1] == pytest.approx(end, abs=0.5)


def test_utterances_from_the_segmenter_are_captioned_on_the_capture_clock(
    whisper: WhisperTranscriber, silero: SileroModel, workdir: Path
) -> None:
    said = [
        "Live captions help everyone follow the conversation.",
        "Thank you all for joining this space tonight.",
    ]
    first, second = (espeak(text, workdir) for text in said)
    audio = np.concatenate([silence(0.6), first, silence(1.2), second, silence(0.8)])
    t0 = 5_000.0
    segmenter = Segmenter(silero.stream())
    utterances: list[Utterance] = []
    for i, frame in enumerate(frames(audio)):
        utterances += segmenter.push(frame, t0 + i * FRAME_SECONDS)
    utterances += segmenter.flush()
    assert len(utterances) == 2

    for text, utterance in zip(said, utterances, strict=True):
        transcript = whisper.transcribe(utterance.pcm, language="en").shifted(utterance.audio_start)
        assert word_error_rate(text, transcript.text) <= MAX_WER, transcript.text
        audio_end = utterance.audio_start + utterance.pcm.size / 16_000
        for segment in transcript.segments:
            assert utterance.audio_start <= segment.start <= segment.end <= audio_end
        assert transcript.segments[0].start == pytest.approx(utterance.start, abs=0.5)
        assert transcript.segments[-1].end == pytest.approx(utterance.end, abs=0.5)


def test_an_english_only_model_refuses_arabic(whisper: WhisperTranscriber) -> None:
    assert not whisper.multilingual
    assert whisper.supports("en") and whisper.supports(None)
    assert not whisper.supports("ar")
    with pytest.raises(UnsupportedLanguage, match=r"English-only.*'ar'"):
        whisper.transcribe(np.zeros(16_000, dtype=np.float32), language="ar")


def test_no_audio_is_no_text(whisper: WhisperTranscriber) -> None:
    assert whisper.transcribe(np.zeros(0, dtype=np.float32), language="en").segments == ()


def test_a_directory_that_is_no_model_is_refused_before_loading(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match=r"model\.bin"):
        WhisperTranscriber(tmp_path)


def test_a_transcript_moves_onto_another_clock() -> None:
    transcript = Transcript(
        "en",
        (
            Segment(
                "hello there",
                0.1,
                0.9,
                (Word("hello", 0.1, 0.4, 0.9), Word("there", 0.5, 0.9, 0.8)),
            ),
            Segment("bye", 1.0, 1.2),
        ),
    )
    moved = transcript.shifted(100.0)
    assert moved.text == "hello there bye"
    assert [(s.start, s.end) for s in moved.segments] == [(100.1, 100.9), (101.0, 101.2)]
    assert [(w.text, w.start, w.end) for w in moved.segments[0].words] == [
        ("hello", 100.1, 100.4),
        ("there", 100.5, 100.9),
    ]

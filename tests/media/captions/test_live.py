"""Live captions: espeak-ng speech pushed as the mixer pushes the mix, lines out.

The frames are fed at the captioner's pace, not the wall clock's: each half second of
audio is pushed, then the test waits (on an event, not a sleep) until the captioner has
heard it, as it would when the mixer hands it 20 ms every 20 ms and it keeps up.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from majlis.media.audio import FRAME_SECONDS
from majlis.media.captions.live import Caption, LiveCaptioner, LiveSettings
from majlis.media.captions.resample import Pcm
from majlis.media.captions.transcriber import Segment, Transcript, WhisperTranscriber, Word
from majlis.media.captions.vad import EnergyVad, SileroModel
from majlis.media.captions.wer import word_error_rate

from .speech import espeak, frames, silence, sound_bounds, tone

T0 = 1_700_000_000.0
CHUNK_FRAMES = 25  # half a second
LONG = (
    "Our first speaker tonight has spent many years building bridges and roads "
    "in small mountain villages across the north of the country."
)


class Recorder:
    """A CaptionSink that keeps every line with how far the captioner had heard then."""

    def __init__(self) -> None:
        self.captions: list[tuple[Caption, float]] = []
        self.heard = 0.0
        self._changed = threading.Condition()

    def caption(self, caption: Caption) -> None:
        self.captions.append((caption, self.heard))

    def heard_until(self, capture_time: float) -> None:
        with self._changed:
            self.heard = capture_time
            self._changed.notify_all()

    def wait_heard(self, capture_time: float, timeout: float = 60.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: self.heard >= capture_time, timeout):
                raise TimeoutError(f"heard {self.heard}, waited for {capture_time}")


def feed(captioner: LiveCaptioner, sink: Recorder, audio: np.ndarray, start: float) -> None:
    pieces = frames(audio)
    for first in range(0, len(pieces), CHUNK_FRAMES):
        chunk = pieces[first : first + CHUNK_FRAMES]
        for i, frame in enumerate(chunk):
            captioner.push(frame, start + (first + i) * FRAME_SECONDS)
        sink.wait_heard(start + (first + len(chunk)) * FRAME_SECONDS - 1e-6)


def test_a_long_sentence_is_captioned_while_it_is_still_being_said(
    whisper: WhisperTranscriber, silero: SileroModel, workdir: Path
) -> None:
    speech = espeak(LONG, workdir)
    audio = np.concatenate([silence(1.0), speech, silence(1.5)])
    sound_start, sound_end = sound_bounds(audio)
    sink = Recorder()
    captioner = LiveCaptioner(whisper, silero.stream(), sink, LiveSettings(language="en"))
    feed(captioner, sink, audio, T0)
    captioner.stop()

    text = " ".join(caption.text for caption, _ in sink.captions)
    assert word_error_rate(LONG, text) <= 0.35, text
    first, heard_then = sink.captions[0]
    # Its first words were published before the sentence was over: interim results.
    assert heard_then < T0 + sound_end - 1.0, (heard_then - T0, sound_end)
    assert first.start == pytest.approx(T0 + sound_start, abs=0.5)
    # Lines are in order and never overlap: committed words are never published twice.
    for (before, _), (after, _) in zip(sink.captions, sink.captions[1:], strict=False):
        assert before.end <= after.start + 0.05
    assert captioner.stats().dropped == 0


def test_lines_are_attributed_to_who_was_speaking(
    whisper: WhisperTranscriber, silero: SileroModel, workdir: Path
) -> None:
    said = ("The weather is cold today.", "Yes and it will rain tomorrow.")
    sink = Recorder()
    captioner = LiveCaptioner(whisper, silero.stream(), sink, LiveSettings(language="en"))
    start = T0
    for speaker, text in zip(("alice", "bob"), said, strict=True):
        audio = np.concatenate([silence(0.5), espeak(text, workdir), silence(1.0)])
        lo, hi = sound_bounds(audio)
        # The mixer's reports: this speaker loud while their sound lasts, the other quiet.
        pieces = frames(audio)
        for index, frame in enumerate(pieces):
            at = start + index * FRAME_SECONDS
            captioner.push(frame, at)
            if index % 10 == 0:
                talking = start + lo <= at <= start + hi
                other = "bob" if speaker == "alice" else "alice"
                captioner.levels({speaker: (-20.0, talking), other: (-90.0, False)})
            if index % CHUNK_FRAMES == CHUNK_FRAMES - 1:
                sink.wait_heard(at + FRAME_SECONDS - 1e-6)
        start += len(pieces) * FRAME_SECONDS
    captioner.stop()
    speakers = [caption.speaker for caption, _ in sink.captions]
    assert speakers, "no captions"
    assert speakers[0] == "alice" and speakers[-1] == "bob", sink.captions
    assert set(speakers) == {"alice", "bob"}


class Blocking:
    """A transcriber that holds its first call until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def supports(self, language: str | None) -> bool:
        return True

    def transcribe(self, pcm: Pcm, *, language: str | None, sample_rate: int = 16000) -> Transcript:
        self.entered.set()
        self.release.wait(30)
        return Transcript("en", (Segment("hello", 0.0, 0.5, (Word("hello", 0.0, 0.5, 1.0),)),))


class Silent:
    def caption(self, caption: Caption) -> None:
        pass

    def heard_until(self, capture_time: float) -> None:
        pass


def test_a_captioner_that_falls_behind_drops_frames_and_never_blocks_the_mixer() -> None:
    transcriber = Blocking()
    settings = LiveSettings(interim_every=0.2, queue_seconds=0.2)  # room for 10 frames
    captioner = LiveCaptioner(transcriber, EnergyVad(), Silent(), settings)
    loud = frames(tone(10.0))
    at = T0
    for frame in loud:  # until the captioner is stuck in its first transcription
        captioner.push(frame, at)
        at += FRAME_SECONDS
        if transcriber.entered.wait(0.005):
            break
    assert transcriber.entered.is_set()
    before = captioner.stats().dropped
    for frame in loud[:100]:  # push() returns at once, whatever the captioner is doing
        captioner.push(frame, at)
        at += FRAME_SECONDS
    stats = captioner.stats()
    assert stats.dropped - before >= 100 - 10
    transcriber.release.set()
    captioner.stop()
    assert not captioner.stats().failed


def test_audio_is_silence_until_speech_and_levels_alone_caption_nothing() -> None:
    sink = Recorder()
    captioner = LiveCaptioner(Blocking(), EnergyVad(), sink)
    for index, frame in enumerate(frames(silence(1.0))):
        captioner.push(frame, T0 + index * FRAME_SECONDS)
        captioner.levels({"alice": (-20.0, True)})
    sink.wait_heard(T0 + 1.0 - 1e-6)
    captioner.stop()
    assert sink.captions == []
    assert captioner.stats().frames == round(1.0 / FRAME_SECONDS)


class Languages:
    """A transcriber that notes the language of each call and hears nothing."""

    def __init__(self) -> None:
        self.asked: list[str | None] = []

    def supports(self, language: str | None) -> bool:
        return True

    def transcribe(self, pcm: Pcm, *, language: str | None, sample_rate: int = 16000) -> Transcript:
        self.asked.append(language)
        return Transcript(language or "", ())


def test_the_language_can_change_while_captioning() -> None:
    transcriber = Languages()
    sink = Recorder()
    captioner = LiveCaptioner(transcriber, EnergyVad(), sink, LiveSettings(interim_every=0.2))
    feed(captioner, sink, tone(1.0), T0)
    captioner.set_language("ar")
    feed(captioner, sink, tone(1.0), T0 + 1.0)
    captioner.stop()
    assert transcriber.asked[0] == "en" and transcriber.asked[-1] == "ar", transcriber.asked

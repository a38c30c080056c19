"""Live captions of one space: the listener mix in, timed and attributed lines out.

The mixer's clock must never wait for speech to text. `push` and `levels` are called on
the media loop at every tick; each only puts an item on a bounded queue and returns
(a full queue drops the frame and counts it: captions fall behind, the mix never does).
Everything else happens in the captioner's own thread: Silero VAD cuts the mix into
utterances (Segmenter, on the mix's capture clock), and faster-whisper transcribes them.

A thread, not a process: CTranslate2 and onnxruntime release the GIL while they compute,
which is nearly all of the work, so the mixer's ticks wait at most for the short Python
stretches between calls. That is measured, not assumed: bench/captions.py --live runs
the real mixer with and without a captioner beside it and reports the mixer's tick
lateness in both (docs/benchmarks.md, "Live captions"). A process would also cost a copy
of every frame across a pipe, and the model's memory once per process.

Delay: a whole utterance transcribed once it ends puts its first words on screen several
seconds after they were said (3.5–5 s measured on 5–8 s sentences). So while an
utterance is open it is transcribed again whenever `interim_every` seconds more of it
have been heard, and the words two successive transcriptions agree on are published at
once (agreement.py); when it closes, its last transcription publishes the rest. An
utterance is cut at `max_utterance` (at a pause when there is one), which bounds the
cost of each transcription. When transcription is slower than speech, the interim
transcriptions simply come less often: the loop takes every queued frame before it
transcribes again.

Times are capture times of the mix (wall clock seconds, the clock of the HLS stream's
EXT-X-PROGRAM-DATE-TIME), so lines line up with the audio wherever they are shown.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from majlis.media.audio import FRAME_SECONDS
from majlis.media.captions.agreement import Agreement, TimedWord
from majlis.media.captions.resample import MODEL_RATE
from majlis.media.captions.segmenter import Segmenter, SegmenterSettings, Utterance
from majlis.media.captions.speakers import SpeakerTimeline
from majlis.media.captions.transcriber import Transcriber, Transcript
from majlis.media.captions.vad import VoiceActivity
from majlis.plane import Levels

__all__ = ["Caption", "CaptionSink", "LiveCaptioner", "LiveSettings", "LiveStats"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Caption:
    """Words said from `start` to `end` (capture clock), by `speaker` ("" if unknown)."""

    start: float
    end: float
    text: str
    speaker: str


class CaptionSink(Protocol):
    """Where lines go; called on the captioner's thread, in order."""

    def caption(self, caption: Caption) -> None:
        """Newly committed words: never revised later."""
        ...

    def heard_until(self, capture_time: float) -> None:
        """Every frame captured before `capture_time` has been through the captioner."""
        ...


@dataclass(frozen=True, slots=True)
class LiveSettings:
    # Seconds of new audio in the open utterance before it is transcribed again: each
    # transcription costs ~0.4 s of a core with tiny.en (Whisper's 30 s window), so this
    # is the price of early words. Measured (docs/benchmarks.md, "Live captions"): 0.5 s
    # puts lines in the rendition 2.5 s (p95) after their first word, 1.0 s 3.2 s.
    interim_every: float = 0.5
    max_utterance: float = 8.0
    queue_seconds: float = 10.0  # how far the mixer may get ahead before frames drop
    language: str | None = "en"  # None: the model detects it, utterance by utterance

    def __post_init__(self) -> None:
        if self.interim_every <= 0.0 or self.queue_seconds <= 0.0:
            raise ValueError("interim_every and queue_seconds must be positive")


@dataclass(frozen=True, slots=True)
class LiveStats:
    frames: int
    dropped: int  # frames the queue had no room for
    transcriptions: int
    # Wall time in Whisper (CTranslate2 computes in threads of its own, so this thread's
    # CPU time would miss it); with one Whisper thread, about its CPU time.
    transcribe_seconds: float
    failed: bool


@dataclass(frozen=True, slots=True)
class _Frame:
    pcm: npt.NDArray[np.int16]
    capture_time: float


@dataclass(frozen=True, slots=True)
class _Levels:
    capture_time: float
    levels: Levels


class _Stop:
    pass


_Item = _Frame | _Levels | _Stop


class LiveCaptioner:
    """`push` and `levels` on the media loop; `stop` from any other thread."""

    def __init__(
        self,
        transcriber: Transcriber,
        vad: VoiceActivity,
        sink: CaptionSink,
        settings: LiveSettings | None = None,
        *,
        name: str = "captions",
    ) -> None:
        self._settings = settings or LiveSettings()
        s = self._settings
        self._language = s.language  # set_language() changes it from any thread
        self._transcriber = transcriber
        self._segmenter = Segmenter(vad, SegmenterSettings(max_utterance=s.max_utterance))
        self._sink = sink
        self._agreement = Agreement()
        self._speakers = SpeakerTimeline()
        self._queue: queue.Queue[_Item] = queue.Queue(
            maxsize=max(1, round(s.queue_seconds / FRAME_SECONDS))
        )
        self._last_capture = 0.0  # media loop: the newest frame's time, for level reports
        self._frames = 0
        self._dropped = 0
        self._transcriptions = 0
        self._transcribe_seconds = 0.0
        self._failed = False
        self._heard = 0.0
        self._open_audio_start: float | None = None  # the open utterance, by its audio start
        self._interim_heard = 0.0  # how much of it the last transcription had
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # media loop ----------------------------------------------------------------------------

    def push(self, pcm: npt.NDArray[np.int16], capture_time: float) -> None:
        """One 20 ms frame of the mix; never blocks."""
        self._last_capture = capture_time
        self._frames += 1
        self._offer(_Frame(pcm.copy(), capture_time))

    def levels(self, levels: Levels) -> None:
        """The mixer's level report, stamped with the newest frame's capture time (the
        mixer reports levels on the tick whose frame it has just handed out)."""
        self._offer(_Levels(self._last_capture + FRAME_SECONDS, dict(levels)))

    def _offer(self, item: _Item) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._dropped += 1

    # any thread ----------------------------------------------------------------------------

    def stats(self) -> LiveStats:
        return LiveStats(
            self._frames,
            self._dropped,
            self._transcriptions,
            self._transcribe_seconds,
            self._failed,
        )

    def set_language(self, language: str | None) -> None:
        """The language of the next transcriptions (None: detected); any thread."""
        self._language = language

    def stop(self, timeout: float = 30.0) -> None:
        """Caption what is queued, close the open utterance, and end the thread."""
        if not self._thread.is_alive():
            return
        try:
            self._queue.put(_Stop(), timeout=timeout)
        except queue.Full:
            log.error("captioner %s: no room to stop it; abandoning it", self._thread.name)
            return
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("captioner %s did not stop within %g s", self._thread.name, timeout)

    # the captioner's thread ----------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                stopping = self._take(self._queue.get())
                while not stopping:  # every frame that queued up meanwhile, first
                    try:
                        stopping = self._take(self._queue.get_nowait())
                    except queue.Empty:
                        break
                if stopping:
                    for utterance in self._segmenter.flush():
                        self._final(utterance)
                    self._sink.heard_until(self._heard)
                    return
                self._interim()
                self._sink.heard_until(self._heard)
        except Exception:
            log.exception("captioner %s failed; captions stop here", self._thread.name)
            self._failed = True
            while True:  # keep draining, so that stop() is not left waiting on a full queue
                if isinstance(self._queue.get(), _Stop):
                    return

    def _take(self, item: _Item) -> bool:
        if isinstance(item, _Stop):
            return True
        if isinstance(item, _Levels):
            self._speakers.add(item.capture_time, item.levels)
            return False
        for utterance in self._segmenter.push(item.pcm, item.capture_time):
            self._final(utterance)
        self._heard = item.capture_time + FRAME_SECONDS
        return False

    def _interim(self) -> None:
        utterance = self._segmenter.pending()
        if utterance is None:
            return
        if utterance.audio_start != self._open_audio_start:
            self._open_audio_start, self._interim_heard = utterance.audio_start, 0.0
        heard = utterance.pcm.size / MODEL_RATE
        if heard - self._interim_heard < self._settings.interim_every:
            return
        self._interim_heard = heard
        self._publish(self._agreement.interim(self._words(utterance)))

    def _final(self, utterance: Utterance) -> None:
        self._open_audio_start = None
        self._publish(self._agreement.final(self._words(utterance)))

    def _words(self, utterance: Utterance) -> list[TimedWord]:
        started = time.perf_counter()
        transcript = self._transcriber.transcribe(utterance.pcm, language=self._language)
        self._transcribe_seconds += time.perf_counter() - started
        self._transcriptions += 1
        return _timed_words(transcript.shifted(utterance.audio_start))

    def _publish(self, words: list[TimedWord]) -> None:
        if not words:
            return
        start, end = words[0].start, words[-1].end
        text = " ".join(word.text for word in words)
        self._sink.caption(Caption(start, end, text, self._speakers.who(start, end)))


def _timed_words(transcript: Transcript) -> list[TimedWord]:
    """Whisper's words, or each segment as one word when it gave no word times."""
    words: list[TimedWord] = []
    for segment in transcript.segments:
        if segment.words:
            words += [TimedWord(w.text, w.start, w.end) for w in segment.words if w.text]
        else:
            words.append(TimedWord(segment.text, segment.start, segment.end))
    return words

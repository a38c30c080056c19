"""Speech to timed text: the `Transcriber` seam and its faster-whisper implementation.

A transcriber takes one utterance (mono float32, 16 kHz or 48 kHz) and returns its text in
segments and words, timed in seconds from the first sample it was given; `Transcript.shifted`
moves them onto the capture clock (by the utterance's `audio_start`).

`transcribe` blocks for a good fraction of the utterance's length on one core: callers run it
off the event loop and off the media thread. CTranslate2 releases the GIL while it decodes.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from majlis.media.captions.model import ModelNotFound, check_model_dir
from majlis.media.captions.resample import MODEL_RATE, Pcm, to_model_rate

__all__ = [
    "Segment",
    "Transcriber",
    "Transcript",
    "UnsupportedLanguage",
    "WhisperSettings",
    "WhisperTranscriber",
    "Word",
]


_MIN_TOKENS = 16  # timestamps and punctuation around even one short word
_MAX_TOKENS = 400  # not Whisper's 448: the prompt's few tokens count against the same limit


class UnsupportedLanguage(ValueError):
    """The model cannot transcribe the language asked for (an English-only model, say)."""


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True, slots=True)
class Segment:
    text: str
    start: float
    end: float
    words: tuple[Word, ...] = ()


@dataclass(frozen=True, slots=True)
class Transcript:
    language: str  # as given, or as the model detected it
    segments: tuple[Segment, ...]

    @property
    def text(self) -> str:
        return " ".join(segment.text for segment in self.segments if segment.text)

    def shifted(self, offset: float) -> Transcript:
        """The same transcript with `offset` added to every time."""

        def move(item: Any) -> Any:
            return replace(item, start=item.start + offset, end=item.end + offset)

        return Transcript(
            self.language,
            tuple(replace(move(s), words=tuple(move(w) for w in s.words)) for s in self.segments),
        )


class Transcriber(Protocol):
    def supports(self, language: str | None) -> bool:
        """Whether `transcribe` takes this language ("en", "ar", ...; None: detect it)."""
        ...

    def transcribe(
        self, pcm: Pcm, *, language: str | None, sample_rate: int = MODEL_RATE
    ) -> Transcript:
        """One utterance's text, timed from its first sample."""
        ...


@dataclass(frozen=True, slots=True)
class WhisperSettings:
    # One thread: the machine's cores belong to the mixers first; scale by running more
    # transcribers (processes), not by widening one.
    threads: int = 1
    compute_type: str = "int8"  # the fastest on CPU; the model's float16 weights convert on load
    beam_size: int = 2
    word_timestamps: bool = True
    # Whisper retries a decoding that loops or rambles at higher temperatures; each retry
    # costs a whole decoding, so live captions allow one.
    temperatures: tuple[float, ...] = (0.0, 0.4)
    # A decoding stuck in a loop runs on to Whisper's 448 tokens, seconds of CPU whatever the
    # utterance's length; real speech stays well under this many tokens a second, Arabic
    # (more tokens a word than English in Whisper's byte-level vocabulary) included.
    max_tokens_per_second: float = 15.0


class WhisperTranscriber:
    """faster-whisper on CPU: the model is loaded once, here, and used for every utterance."""

    def __init__(self, model_dir: Path, settings: WhisperSettings | None = None) -> None:
        self._settings = settings or WhisperSettings()
        # faster-whisper would download from a hub for anything but a complete directory.
        model_dir = check_model_dir(model_dir)
        try:
            # Imported here: captions are optional, and the rest of the media plane must not
            # pay for CTranslate2 (or need it installed) to import this package.
            from faster_whisper import WhisperModel  # type: ignore[import-untyped]
        except ImportError as exc:
            raise ModelNotFound("captions need faster-whisper: pip install faster-whisper") from exc
        # faster-whisper logs every call at INFO ("Processing audio with duration ..."):
        # live captions transcribe twice a second, which would bury the server's own log.
        logging.getLogger("faster_whisper").setLevel(logging.WARNING)
        self._model: Any = WhisperModel(
            str(model_dir),
            device="cpu",
            compute_type=self._settings.compute_type,
            cpu_threads=self._settings.threads,
            num_workers=1,
            local_files_only=True,
        )
        self._languages = frozenset(str(code) for code in self._model.supported_languages)

    @property
    def multilingual(self) -> bool:
        return len(self._languages) > 1

    def supports(self, language: str | None) -> bool:
        return language is None or language in self._languages

    def transcribe(
        self, pcm: Pcm, *, language: str | None, sample_rate: int = MODEL_RATE
    ) -> Transcript:
        if not self.supports(language):
            kind = "multilingual" if self.multilingual else "English-only"
            raise UnsupportedLanguage(
                f"the caption model ({kind}) cannot transcribe {language!r}: "
                "configure a multilingual model for it"
            )
        audio = to_model_rate(pcm, sample_rate)
        duration = audio.size / MODEL_RATE
        if not audio.size:
            return Transcript(language or "", ())
        s = self._settings
        segments, info = self._model.transcribe(
            audio,
            language=language,
            task="transcribe",
            beam_size=s.beam_size,
            best_of=s.beam_size,
            temperature=list(s.temperatures),
            # Utterances are independent: carrying text over lets one misheard word, or a
            # hallucination on noise, leak into the next speaker's captions.
            condition_on_previous_text=False,
            word_timestamps=s.word_timestamps,
            vad_filter=False,  # the segmenter already cut this utterance out of silence
            max_new_tokens=min(
                _MIN_TOKENS + math.ceil(s.max_tokens_per_second * duration), _MAX_TOKENS
            ),
        )

        def clamp(t: Any) -> float:  # numpy floats, and a little past the end at times
            return min(max(float(t), 0.0), duration)

        out = []
        for segment in segments:  # a generator: decoding happens as it is consumed
            text = str(segment.text).strip()
            if not text:
                continue
            words = tuple(
                Word(str(w.word).strip(), clamp(w.start), clamp(w.end), float(w.probability))
                for w in segment.words or ()
            )
            out.append(Segment(text, clamp(segment.start), clamp(segment.end), words))
        return Transcript(str(info.language), tuple(out))

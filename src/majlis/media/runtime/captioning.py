"""A node's live captions: the speech models, loaded once, and each space's captioner,
its WebVTT rendition and its latest lines for the state document.

The models are loaded on the first space that needs them, in a thread (a fraction of a
second, reading ~75 MB), never on the media loop, and shared by every space of the node:
one Whisper model, whose calls CTranslate2 runs one at a time (num_workers=1), so the
node's captioning costs at most a core whatever the number of spaces; each space has its
own thread, queue and VAD state. A space whose transcriptions fall behind drops frames
(counted), never the mixer's time.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from majlis.media.captions.live import Caption, LiveCaptioner, LiveSettings, LiveStats
from majlis.media.captions.transcriber import UnsupportedLanguage, WhisperTranscriber
from majlis.media.captions.vad import SileroModel
from majlis.media.hls.subtitles import Cue, SubtitleTrack
from majlis.media.runtime.subtitle_clock import SubtitleClock
from majlis.plane import Levels
from majlis.types import Language, TranscriptLine

__all__ = ["RECENT_LINES", "CaptionModels", "SpaceCaptions", "SpeechModels"]

log = logging.getLogger(__name__)

RECENT_LINES = 3  # lines in the state document


@dataclass(frozen=True, slots=True)
class SpeechModels:
    whisper: WhisperTranscriber
    silero: SileroModel


class CaptionModels:
    """The node's speech models, loaded on first use."""

    def __init__(self, model_dir: Path) -> None:
        self._model_dir = model_dir
        self._loaded: SpeechModels | None = None
        self._loading = asyncio.Lock()

    async def loaded(self) -> SpeechModels:
        async with self._loading:
            if self._loaded is None:
                self._loaded = await asyncio.to_thread(self._load)
            return self._loaded

    def _load(self) -> SpeechModels:
        return SpeechModels(WhisperTranscriber(self._model_dir), SileroModel())


LinesSink = Callable[[list[TranscriptLine]], None]


class SpaceCaptions:
    """One space's live captions. `push` and `levels` on the media loop (they only
    queue); `close` off it (it waits for the captioner to finish)."""

    def __init__(
        self,
        models: SpeechModels,
        directory: Path,
        *,
        space_started_at: float,
        segment_seconds: float,
        language: Language = "auto",
        on_lines: LinesSink | None = None,
        live: LiveSettings | None = None,
    ) -> None:
        """UnsupportedLanguage when the model cannot transcribe `language`."""
        self._whisper = models.whisper
        model_language = self._model_language(language)
        self.track = SubtitleTrack(
            directory, space_started_at=space_started_at, segment_seconds=segment_seconds
        )
        self._on_lines = on_lines
        self._recent: deque[Caption] = deque(maxlen=RECENT_LINES)
        self._heard = space_started_at
        self.captioner = LiveCaptioner(
            models.whisper,
            models.silero.stream(),
            self,
            replace(live or LiveSettings(), language=model_language),
            name=f"captions-{directory.name}",
        )
        self._clock = SubtitleClock(self.track, name=f"subtitles-{directory.name}")

    # media loop ----------------------------------------------------------------------------
    def push(self, pcm: npt.NDArray[np.int16], capture_time: float) -> None:
        self._clock.tick(capture_time)
        self.captioner.push(pcm, capture_time)

    def levels(self, levels: Levels) -> None:
        self.captioner.levels(levels)

    def stats(self) -> LiveStats:
        return self.captioner.stats()

    def set_language(self, language: Language) -> None:
        """The space's language, from the next transcription on; UnsupportedLanguage when
        the model cannot transcribe it."""
        self.captioner.set_language(self._model_language(language))

    def _model_language(self, language: Language) -> str | None:
        """What Whisper is told. "auto": an English-only model is told English (detection
        would only cost time), a multilingual one detects it utterance by utterance."""
        if language == "auto":
            return None if self._whisper.multilingual else "en"
        if not self._whisper.supports(language):
            kind = "multilingual" if self._whisper.multilingual else "English-only"
            raise UnsupportedLanguage(
                f"the caption model ({kind}) cannot transcribe {language!r}: configure a "
                "multilingual model for it (docs/captions.md)"
            )
        return language

    # off the media loop --------------------------------------------------------------------
    def close(self, *, end: bool) -> None:
        """Caption what is queued; with `end`, close the rendition for good."""
        self.captioner.stop()
        self._clock.stop()
        if end:
            self.track.end(max(self._heard, self._clock.time or self._heard))

    # the captioner's thread (CaptionSink) --------------------------------------------------
    def caption(self, caption: Caption) -> None:
        self.track.add(Cue(caption.start, caption.end, caption.text, caption.speaker))
        self._recent.append(caption)
        if self._on_lines is not None:
            try:
                self._on_lines(
                    [TranscriptLine(c.start, c.end, c.text, c.speaker) for c in self._recent]
                )
            except Exception:
                log.exception("publishing caption lines failed")

    def heard_until(self, capture_time: float) -> None:
        self._heard = capture_time  # the rendition's segments follow the audio's clock

"""An ended space's replay (.m4a) as transcript lines on the replay's clock.

The replay is decoded with PyAV to the media plane's 48 kHz mono 20 ms frames, cut into
utterances by the `Segmenter` (Silero VAD), and each utterance is transcribed. It is streamed:
a replay of hours is never held whole in memory, only the utterance being heard.

The replay is the listener mix, so no line knows its speaker yet: `speaker` stays empty
until the live transcriber (which segments each speaker's own track) feeds it.

Everything here blocks for a good fraction of the replay's length: callers run it off the
event loop, one replay at a time per process.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from majlis.media.audio import FRAME_SAMPLES, FRAME_SECONDS, SAMPLE_RATE
from majlis.media.captions.segmenter import Segmenter, SegmenterSettings, Utterance
from majlis.media.captions.transcriber import Transcriber
from majlis.media.captions.vad import VoiceActivity

__all__ = ["ReplayLine", "TranscriptionStopped", "replay_frames", "transcribe_replay"]

Int16 = npt.NDArray[np.int16]

# How often (in frames: 2 s) a long transcription looks whether it should stop.
_STOP_CHECK_FRAMES = 100


class TranscriptionStopped(Exception):
    """`stopped` said so: the process is shutting down."""


@dataclass(frozen=True, slots=True)
class ReplayLine:
    """Seconds from the start of the replay; `speaker` is empty when nobody is known."""

    start: float
    end: float
    text: str
    speaker: str = ""


def replay_frames(replay: bytes | Path) -> Iterator[Int16]:
    """The replay's audio as 20 ms frames of 48 kHz mono int16, from its first sample (the
    edit list has hidden the encoder's priming); the last frame is padded with silence."""
    source = io.BytesIO(replay) if isinstance(replay, bytes) else str(replay)
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    pending = np.zeros(0, dtype=np.int16)
    with av.open(source, mode="r") as container:
        decoded = container.decode(audio=0)
        for chunk in _resampled(resampler, decoded):
            pending = np.concatenate([pending, chunk])
            whole = pending.size - pending.size % FRAME_SAMPLES
            for i in range(0, whole, FRAME_SAMPLES):
                yield pending[i : i + FRAME_SAMPLES]
            pending = pending[whole:]
    if pending.size:
        yield np.concatenate([pending, np.zeros(FRAME_SAMPLES - pending.size, dtype=np.int16)])


def _resampled(resampler: av.AudioResampler, decoded: Iterator[av.AudioFrame]) -> Iterator[Int16]:
    for frame in decoded:
        for out in resampler.resample(frame):
            yield out.to_ndarray().reshape(-1).astype(np.int16, copy=False)
    for out in resampler.resample(None):
        yield out.to_ndarray().reshape(-1).astype(np.int16, copy=False)


def transcribe_replay(
    replay: bytes | Path,
    *,
    vad: VoiceActivity,
    transcriber: Transcriber,
    language: str | None,
    settings: SegmenterSettings | None = None,
    stopped: Callable[[], bool] = lambda: False,
) -> list[ReplayLine]:
    """One line per utterance heard in the replay, in order; `language` None detects it.
    Raises av.FFmpegError for bytes that are not audio, UnsupportedLanguage for a language
    the model lacks, TranscriptionStopped as soon as `stopped()` is true."""
    segmenter = Segmenter(vad, settings)
    lines: list[ReplayLine] = []
    for index, frame in enumerate(replay_frames(replay)):
        if index % _STOP_CHECK_FRAMES == 0 and stopped():
            raise TranscriptionStopped("stopped before the end of the replay")
        for utterance in segmenter.push(frame, index * FRAME_SECONDS):
            lines += _line(utterance, transcriber, language)
    for utterance in segmenter.flush():
        lines += _line(utterance, transcriber, language)
    return lines


def _line(utterance: Utterance, transcriber: Transcriber, language: str | None) -> list[ReplayLine]:
    # The utterance's own times, not Whisper's: the VAD's edges are exact to a window,
    # while a small model's timestamps drift by a word or two.
    text = transcriber.transcribe(utterance.pcm, language=language).text.strip()
    return [ReplayLine(utterance.start, utterance.end, text)] if text else []

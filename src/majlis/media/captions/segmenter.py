"""One speaker's 20 ms frames cut into utterances, with times on the capture clock.

A segmenter runs per speaker, on that speaker's own decoded track before mixing: which
segmenter an utterance came from is who said it, with no diarisation to guess at.

Speech starts at the first window whose voice probability reaches `threshold` and goes on
while it stays above `release` (hysteresis, as Silero's own segmenter does); it ends after
`hangover` of non-speech. Live captions cannot wait for a monologue to end, so an utterance
that reaches `max_utterance` is cut: at its latest pause of at least `min_pause` if that
lies in its second half, so a word is not split, else where it stands; the rest of the
speech carries on as the next utterance, flagged as a continuation.

Times: every frame comes with the capture time of its first sample, and each 16 kHz sample
is timed from the latest frame at or before it, so a jump in capture times (a gap the
jitter buffer did not conceal) moves the clock instead of skewing every later utterance.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from majlis.media.captions.resample import FACTOR, MODEL_RATE, Decimator, Pcm
from majlis.media.captions.vad import VoiceActivity

__all__ = ["Frame", "Segmenter", "SegmenterSettings", "Utterance"]

Frame = npt.NDArray[np.int16] | npt.NDArray[np.float32]

_INT16_SCALE = 32768.0  # int16 to [-1, 1), as Whisper's own loader scales
_TRIM_SLACK = MODEL_RATE  # drop old audio a second at a time, not on every frame


@dataclass(frozen=True, slots=True)
class SegmenterSettings:
    """Seconds, and voice probabilities from 0 to 1."""

    threshold: float = 0.5
    release: float = 0.35
    hangover: float = 0.3
    min_speech: float = 0.15  # shorter detections are clicks and coughs, not captions
    max_utterance: float = 10.0
    min_pause: float = 0.1
    # Audio kept around the speech for the transcriber: the detector fires a window late
    # and Whisper does better with a little lead-in; the utterance's times stay the speech's.
    pre_pad: float = 0.2
    post_pad: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 < self.release <= self.threshold <= 1.0:
            raise ValueError("need 0 < release <= threshold <= 1")
        if min(self.hangover, self.max_utterance, self.min_pause) <= 0.0:
            raise ValueError("hangover, max_utterance and min_pause must be positive")
        if min(self.min_speech, self.pre_pad, self.post_pad) < 0.0:
            raise ValueError("min_speech, pre_pad and post_pad cannot be negative")
        if self.post_pad > self.hangover:
            raise ValueError("post_pad cannot exceed hangover: that audio is not heard yet")
        if self.min_pause >= self.hangover:
            raise ValueError("min_pause must be shorter than hangover, or no pause is seen")
        if self.max_utterance <= 2 * self.hangover:
            raise ValueError("max_utterance must be well over hangover")


@dataclass(frozen=True, slots=True, eq=False)
class Utterance:
    """Speech from `start` to `end` (capture clock, seconds); `pcm` is 16 kHz mono float32
    from `audio_start`, padded around the speech; `continues` when it was cut at
    max_utterance and the next utterance carries on from `end`."""

    start: float
    end: float
    audio_start: float
    pcm: Pcm
    continues: bool = False

    @property
    def duration(self) -> float:
        return self.end - self.start


class Segmenter:
    """Feed one stream's frames in capture order with `push`; `flush` at its end."""

    # Positions are 16 kHz sample indices from the start of the stream.
    _decimator: Decimator
    _audio: Pcm  # retained 16 kHz audio
    _audio_base: int  # position of _audio[0]
    _received: int  # 48 kHz samples pushed
    _anchor_index: list[float]  # position of each retained frame's first sample
    _anchor_time: list[float]  # and its capture time
    _next: int  # position of the next window to judge
    _limit: int | None  # the end of the real audio, once flushed
    _onset: int | None  # start of the open utterance
    _continued: bool  # the open utterance carries on from a cut
    _speech_end: int  # end of its latest speech window
    _silent: int  # windows of non-speech since then
    _pause: int | None  # middle of its latest pause of min_pause or more

    def __init__(self, vad: VoiceActivity, settings: SegmenterSettings | None = None) -> None:
        self._vad = vad
        self._settings = settings or SegmenterSettings()
        s, window = self._settings, vad.window
        self._window = window
        self._hangover_windows = math.ceil(s.hangover * MODEL_RATE / window)
        self._pause_windows = math.ceil(s.min_pause * MODEL_RATE / window)
        self._min_speech = round(s.min_speech * MODEL_RATE)
        self._max = round(s.max_utterance * MODEL_RATE)
        self._pre_pad = round(s.pre_pad * MODEL_RATE)
        self._post_pad = round(s.post_pad * MODEL_RATE)
        self._reset()

    def push(self, frame: Frame, capture_time: float) -> list[Utterance]:
        """One frame (48 kHz mono int16 or float32) captured at `capture_time`: the
        utterances it completes, usually none."""
        samples = _as_float(frame)
        self._anchor_index.append(self._received / FACTOR)
        self._anchor_time.append(capture_time)
        self._received += samples.size
        self._append(self._decimator.push(samples))
        out = self._run_windows()
        self._trim()
        return out

    def flush(self) -> list[Utterance]:
        """The stream has ended: whatever speech is still open. The segmenter starts anew."""
        self._append(self._decimator.flush())
        end = self._audio_base + self._audio.size
        if end > self._next:  # zeros make up the last window; times stop at the real end
            self._append(np.zeros((self._next - end) % self._window, dtype=np.float32))
        self._limit = end
        out = self._run_windows()
        if self._onset is not None and (last := self._close()) is not None:
            out.append(last)
        self._reset()
        return out

    def pending(self) -> Utterance | None:
        """The utterance still open, as heard so far (speech to its latest speech window,
        audio to the newest judged window), for live captions' interim transcriptions;
        None in silence. The segmenter's state is not changed."""
        if self._onset is None:
            return None
        audio_from = self._onset if self._continued else self._onset - self._pre_pad
        return self._utterance(
            self._onset, self._speech_end, audio_from, self._next, continues=True
        )

    # state ---------------------------------------------------------------------------------

    def _reset(self) -> None:
        self._decimator = Decimator()
        self._vad.reset()
        self._audio = np.zeros(0, dtype=np.float32)
        self._audio_base = 0
        self._received = 0
        self._anchor_index = []
        self._anchor_time = []
        self._next = 0
        self._limit = None
        self._onset = None
        self._continued = False
        self._speech_end = 0
        self._silent = 0
        self._pause = None

    def _append(self, samples: Pcm) -> None:
        if samples.size:
            self._audio = np.concatenate([self._audio, samples])

    def _run_windows(self) -> list[Utterance]:
        out: list[Utterance] = []
        available = self._audio_base + self._audio.size
        while self._next + self._window <= available:
            start = self._next - self._audio_base
            p = self._vad.probability(self._audio[start : start + self._window])
            self._next += self._window
            if (utterance := self._step(self._next - self._window, p)) is not None:
                out.append(utterance)
        return out

    def _step(self, at: int, p: float) -> Utterance | None:
        s, end = self._settings, at + self._window
        if self._onset is None:
            if p >= s.threshold:
                self._onset, self._continued = at, False
                self._speech_end, self._silent, self._pause = end, 0, None
            return None
        if p >= s.threshold or (p >= s.release and self._silent == 0):
            if self._silent >= self._pause_windows:
                self._pause = self._speech_end + (at - self._speech_end) // 2
            self._speech_end, self._silent = end, 0
        else:
            self._silent += 1
            if self._silent >= self._hangover_windows:
                return self._close()
        if end - self._onset >= self._max:
            return self._cut(end)
        return None

    def _close(self) -> Utterance | None:
        """The open utterance ends at its last speech, padded with the silence after it."""
        assert self._onset is not None
        onset, end, continued = self._onset, self._speech_end, self._continued
        self._onset = None
        if end - onset < self._min_speech and not continued:
            return None
        audio_from = onset if continued else onset - self._pre_pad
        return self._utterance(onset, end, audio_from, min(end + self._post_pad, self._next))

    def _cut(self, end: int) -> Utterance | None:
        """The open utterance is max_utterance long: end it now and carry on in a new one."""
        assert self._onset is not None
        onset = self._onset
        if self._silent:  # already in a pause: as good as the end of the speech
            return self._close()
        cut = end
        if self._pause is not None and self._pause - onset >= self._max // 2:
            cut = self._pause
        audio_from = onset if self._continued else onset - self._pre_pad
        utterance = self._utterance(onset, cut, audio_from, cut, continues=True)
        self._onset, self._continued, self._pause = cut, True, None
        return utterance

    def _utterance(
        self, start: int, end: int, audio_from: int, audio_to: int, *, continues: bool = False
    ) -> Utterance:
        if self._limit is not None:
            end, audio_to = min(end, self._limit), min(audio_to, self._limit)
        audio_from = max(audio_from, self._audio_base)
        pcm = self._audio[audio_from - self._audio_base : audio_to - self._audio_base].copy()
        return Utterance(
            start=self._time(start),
            end=self._time(end),
            audio_start=self._time(audio_from),
            pcm=pcm,
            continues=continues,
        )

    def _time(self, position: float) -> float:
        i = max(bisect.bisect_right(self._anchor_index, position) - 1, 0)
        return self._anchor_time[i] + (position - self._anchor_index[i]) / MODEL_RATE

    def _trim(self) -> None:
        """Forget audio and frame times that no utterance can reach any more."""
        keep = self._next if self._onset is None else self._onset
        keep -= self._pre_pad
        if keep - self._audio_base >= _TRIM_SLACK:
            self._audio = self._audio[keep - self._audio_base :].copy()
            self._audio_base = keep
        stale = bisect.bisect_right(self._anchor_index, self._audio_base) - 1
        if stale > 0:
            del self._anchor_index[:stale]
            del self._anchor_time[:stale]


def _as_float(frame: Frame) -> Pcm:
    if frame.ndim != 1:
        raise ValueError(f"frames are mono: one dimension, not {frame.shape}")
    if frame.dtype == np.int16:
        return frame.astype(np.float32) / np.float32(_INT16_SCALE)
    if np.issubdtype(frame.dtype, np.floating):
        return frame.astype(np.float32, copy=False)
    raise TypeError(f"frames are int16 or float32, not {frame.dtype}")

"""Which words of a growing utterance's transcription are settled enough to publish.

Live captions transcribe an utterance again and again while it is spoken (live.py). The
last words of each hypothesis change as more audio arrives; earlier ones rarely do. A word
is committed once two successive hypotheses agree on it (LocalAgreement-2, the policy of
whisper_streaming, Macháček et al. 2023), and a committed word is never taken back: a
WebVTT segment, once listed, is immutable. When the utterance closes, its last
transcription commits whatever is left.

Hypotheses are aligned by time, not by position: Whisper may rephrase words that are
already committed, so each new hypothesis is cut where the committed words end (a word
belongs after that point when its middle does) and only the rest is compared.
"""

from __future__ import annotations

from dataclasses import dataclass

from majlis.media.captions.wer import normalize

__all__ = ["Agreement", "TimedWord"]


@dataclass(frozen=True, slots=True)
class TimedWord:
    """A word with its times on the capture clock (seconds)."""

    text: str
    start: float
    end: float

    @property
    def middle(self) -> float:
        return (self.start + self.end) / 2


class Agreement:
    """One utterance at a time: `interim` for each hypothesis of it while it grows, `final`
    for its last; each returns the words newly committed, in order."""

    def __init__(self) -> None:
        self._committed_until = float("-inf")
        self._previous: list[TimedWord] = []

    def interim(self, words: list[TimedWord]) -> list[TimedWord]:
        tail = self._uncommitted(words)
        agreed = 0
        for old, new in zip(self._previous, tail, strict=False):
            if normalize(old.text) != normalize(new.text):
                break
            agreed += 1
        committed = tail[:agreed]
        self._previous = tail[agreed:]
        if committed:
            self._committed_until = committed[-1].end
        return committed

    def final(self, words: list[TimedWord]) -> list[TimedWord]:
        """The utterance is over: the rest of its last hypothesis; the next one starts afresh."""
        committed = self._uncommitted(words)
        self._committed_until = float("-inf")
        self._previous = []
        return committed

    def _uncommitted(self, words: list[TimedWord]) -> list[TimedWord]:
        return [w for w in words if w.middle > self._committed_until and normalize(w.text)]

"""Who said a line: the speakers the mixer heard over the line's time.

Live captions transcribe the listener mix, in which voices are already summed; the mixer
measures every speaker's own level before summing and reports it a few times a second
(media/mixing/levels.py). A line is attributed to the speaker who was loudest while
flagged as speaking during it. Two people talking over each other get one line, said by
the louder; that is what a listener hears too.
"""

from __future__ import annotations

from collections import deque

from majlis.plane import Levels

__all__ = ["SpeakerTimeline"]

# A report averages the level since the one before it (about 0.2 s), and the speaking
# flag holds 0.4 s after the voice drops, so reports are looked at a little around a line.
_BEFORE, _AFTER = 0.2, 0.5


class SpeakerTimeline:
    """Level reports with their capture times; one writer (the captioner's thread)."""

    def __init__(self, keep_seconds: float = 60.0) -> None:
        self._keep = keep_seconds
        self._reports: deque[tuple[float, Levels]] = deque()

    def add(self, capture_time: float, levels: Levels) -> None:
        self._reports.append((capture_time, levels))
        while self._reports and self._reports[0][0] < capture_time - self._keep:
            self._reports.popleft()

    def who(self, start: float, end: float) -> str:
        """The speaker heard most from `start` to `end` (capture clock); "" if nobody was."""
        score: dict[str, float] = {}
        for time, levels in self._reports:
            if start - _BEFORE <= time <= end + _AFTER:
                for speaker, (db, speaking) in levels.items():
                    if speaking:
                        score[speaker] = score.get(speaker, 0.0) + 10.0 ** (db / 20.0)
        return max(score, key=lambda speaker: score[speaker], default="")

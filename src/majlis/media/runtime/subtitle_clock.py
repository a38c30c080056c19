"""The live captions rendition's clock: its segments are listed as the audio passes them.

A player looks for the subtitles segment at its playhead, and does not go back for one
listed after the playhead passed it (hls.js). Listing a segment when the captioner has
heard past it would put the rendition as far behind the audio as the captioner runs,
seconds on a busy node, and players would show nothing. So a segment is listed when the
mix passes its end, whatever the captioner has done by then; words captioned later go
in a later segment with their own times (media/hls/subtitles.py).

The media loop only notes the time (a comparison per frame and, once a segment, an
Event); the files are written in this clock's own thread, never on the media loop.
"""

from __future__ import annotations

import logging
import math
import threading

from majlis.media.hls.subtitles import SubtitleTrack

__all__ = ["SubtitleClock"]

log = logging.getLogger(__name__)


class SubtitleClock:
    def __init__(self, track: SubtitleTrack, *, name: str) -> None:
        self._track = track
        self._first: float | None = None  # the first frame's: the rendition opens there
        self._time: float | None = None  # the newest frame's capture time
        self._next = -math.inf  # the next segment boundary, on the capture clock
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def time(self) -> float | None:
        """The newest frame's capture time, None before the first."""
        return self._time

    # media loop ----------------------------------------------------------------------------
    def tick(self, capture_time: float) -> None:
        """A frame of the mix captured at `capture_time`; never blocks on a file."""
        if self._first is None:
            self._first = capture_time
        self._time = capture_time
        if capture_time >= self._next:
            self._next = self._track.segment_end(capture_time)
            self._wake.set()

    # off the media loop --------------------------------------------------------------------
    def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("subtitle clock %s did not stop within %g s", self._thread.name, timeout)

    def _run(self) -> None:
        opened = False
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            first, time = self._first, self._time
            if first is None or time is None:
                continue
            try:
                if not opened:  # at the first frame, however late this thread woke
                    self._track.advance(first)
                    opened = True
                self._track.advance(time)
            except OSError:
                log.exception("writing the captions rendition failed; it will try again")

"""Live captions as an HLS subtitles rendition: WebVTT segments and their media playlist.

Files, beside the audio in the space's recording directory:

    captions.m3u8   the subtitles media playlist: the newest WINDOW segments (a sliding
                    live playlist; EXT-X-ENDLIST once the space ends)
    c{k}.vtt        segment k: the cues published while the captions' clock was in
                    [space start + k·D, space start + (k+1)·D), D the segment duration

The multivariant playlist that joins this rendition to the audio (main.m3u8) is made by
the origin (origin.py), so that a space without captions is served the same way.

Numbering comes from the space's clock (k above), so it keeps increasing across restarts
and handovers, like the audio's. A segment is written when the audio has passed its end
(media/runtime/subtitle_clock.py says why not when the captioner has). A cue goes into
the segment being filled when it is published, with its own times:
its words were said a little earlier, maybe in a segment already listed (which is
immutable), and players place cues by their times, not by the segment that carried them.

A cue therefore often reaches a player after its words: the captioner needs a second or
two to agree on them, the segment is listed when it ends, and a player polls the
playlist about once a target duration. A live player sits only a second or so behind
the live edge, so a cue ending when its words end would already be over when it
arrives, and the player would never show it. Its end is therefore at least the moment a
player polling once a segment could have it (the end of the segment carrying it, plus
one segment), plus the time to read it (LINGER_SECONDS): late, as a live broadcast's
captions are, but on screen. Its start stays when the words began.

Cue times are the audio's media time: seconds since the space started, which is what the
fMP4 audio's decode times count (media/hls/packager.py: a life's base is its first
sample's wall-clock offset from the space's start). X-TIMESTAMP-MAP says so in each
segment: LOCAL (the cue clock) at the segment's start maps to the same instant in 90 kHz
units (MPEGTS, modulo 2^33), which is how hls.js and Apple's players put WebVTT cues on
an fMP4 timeline. EXT-X-PROGRAM-DATE-TIME on every segment is its start on the wall clock,
the same clock as the audio playlist's.

Caption files are not fsynced nor copied to the object store: they matter while the
space is live; replays have their own transcript (services/transcripts.py).
"""

from __future__ import annotations

import math
import re
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from majlis.media.hls.playlist import format_date_time
from majlis.media.recording.directory import write_atomically

__all__ = [
    "CAPTIONS_PLAYLIST",
    "CAPTION_NAME",
    "Cue",
    "SubtitleTrack",
    "caption_name",
    "render_cue_time",
]

CAPTIONS_PLAYLIST = "captions.m3u8"
CAPTION_NAME = re.compile(r"c(0|[1-9][0-9]{0,11})\.vtt")
WINDOW = 30  # segments listed: a minute at 2 s, plenty for a player to join the edge
# A cue stays on screen this much longer than its last word, so it can be read.
LINGER_SECONDS = 1.5
_MPEGTS_RATE = 90_000
_MPEGTS_WRAP = 2**33


def caption_name(index: int) -> str:
    return f"c{index}.vtt"


@dataclass(frozen=True, slots=True)
class Cue:
    """Words said from `start` to `end` (wall clock seconds) by `speaker` ("" unknown)."""

    start: float
    end: float
    text: str
    speaker: str = ""


@dataclass(frozen=True, slots=True)
class _Listed:
    index: int
    duration: float


class SubtitleTrack:
    """One space's captions rendition. Thread-safe: the captioner adds cues while the
    subtitle clock advances the segments."""

    def __init__(self, directory: Path, *, space_started_at: float, segment_seconds: float) -> None:
        if segment_seconds <= 0.0:
            raise ValueError("segment_seconds must be positive")
        self._directory = directory
        self._origin = space_started_at
        self._duration = segment_seconds
        self._target = max(1, math.ceil(segment_seconds))
        self._open: int | None = None  # the segment being filled
        self._cues: list[Cue] = []
        self._listed: deque[_Listed] = deque(maxlen=WINDOW)
        self._ended = False
        self._lock = threading.Lock()

    @property
    def listed(self) -> list[int]:
        with self._lock:
            return [segment.index for segment in self._listed]

    def segment_end(self, capture_time: float) -> float:
        """When the segment holding `capture_time` ends (wall clock)."""
        index = math.floor((capture_time - self._origin) / self._duration)
        return self._origin + (index + 1) * self._duration

    def add(self, cue: Cue) -> None:
        with self._lock:
            self._cues.append(cue)

    def advance(self, capture_time: float) -> None:
        """The audio has reached `capture_time` (wall clock): write every segment that
        ends by then."""
        with self._lock:
            self._advance(capture_time)

    def _advance(self, capture_time: float) -> None:
        if self._ended:
            return
        index = math.floor((capture_time - self._origin) / self._duration)
        if self._open is None:
            self._open = index
            return
        wrote = False
        while self._open < index:
            self._write(self._open, self._duration)
            self._open += 1
            wrote = True
        if wrote:
            self._write_playlist()

    def end(self, capture_time: float) -> None:
        """The space has ended at `capture_time`: the last, shorter segment and EXT-X-ENDLIST."""
        with self._lock:
            self._end(capture_time)

    def _end(self, capture_time: float) -> None:
        if self._ended:
            return
        self._advance(capture_time)
        if self._open is not None:
            rest = capture_time - (self._origin + self._open * self._duration)
            if rest > 0.0 or self._cues:
                self._write(self._open, max(rest, 0.001))
        self._ended = True
        self._write_playlist()

    def _write(self, index: int, duration: float) -> None:
        cues, self._cues = self._cues, []
        start = self._origin + index * self._duration
        write_atomically(self._directory / caption_name(index), self._vtt(start, cues).encode())
        self._listed.append(_Listed(index, duration))

    def _vtt(self, segment_start: float, cues: list[Cue]) -> str:
        local = segment_start - self._origin
        mpegts = round(local * _MPEGTS_RATE) % _MPEGTS_WRAP
        lines = ["WEBVTT", f"X-TIMESTAMP-MAP=MPEGTS:{mpegts},LOCAL:{render_cue_time(local)}", ""]
        reachable = local + 2 * self._duration  # see the module's docstring
        for cue in cues:
            start = max(cue.start - self._origin, 0.0)
            end = max(cue.end - self._origin, reachable) + LINGER_SECONDS
            lines.append(f"{render_cue_time(start)} --> {render_cue_time(end)}")
            voice = f"<v {_escape(cue.speaker)}>" if cue.speaker else ""
            lines += [voice + _escape(cue.text), ""]
        return "\n".join(lines) + "\n"

    def _write_playlist(self) -> None:
        if not self._listed:
            return
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:3",
            f"#EXT-X-TARGETDURATION:{self._target}",
            f"#EXT-X-MEDIA-SEQUENCE:{self._listed[0].index}",
        ]
        for segment in self._listed:
            start = self._origin + segment.index * self._duration
            lines += [
                f"#EXT-X-PROGRAM-DATE-TIME:{format_date_time(start)}",
                f"#EXTINF:{segment.duration:.3f},",
                caption_name(segment.index),
            ]
        if self._ended:
            lines.append("#EXT-X-ENDLIST")
        text = "\n".join(lines) + "\n"
        write_atomically(self._directory / CAPTIONS_PLAYLIST, text.encode())


def render_cue_time(seconds: float) -> str:
    """hh:mm:ss.ttt, as WebVTT wants (hours may exceed two digits)."""
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def _escape(text: str) -> str:
    # WebVTT cue text: & and < begin entities and tags, and --> would end the cue line
    # early in some parsers; a newline would end the cue.
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(text.split())

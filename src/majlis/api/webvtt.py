"""Transcript lines as a WebVTT file (W3C WebVTT: the cue syntax players and browsers read)."""

from __future__ import annotations

from majlis.types import TranscriptLine

__all__ = ["render_webvtt", "timestamp"]


def timestamp(seconds: float) -> str:
    """hh:mm:ss.ttt, rounded to the millisecond (hours may exceed two digits)."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def _cue_text(text: str) -> str:
    # A blank line ends a cue and `-->` would be read as timings; `<` opens a tag and `&` an
    # entity, so the spoken text is escaped as the spec says (&amp; &lt; &gt;).
    flat = " ".join(text.split())
    return flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_webvtt(lines: list[TranscriptLine]) -> str:
    out = ["WEBVTT", ""]
    for number, line in enumerate(lines, start=1):
        end = max(line.end, line.start + 0.001)  # a cue must end after it starts
        text = _cue_text(line.text)
        if line.speaker:
            text = f"<v {_cue_text(line.speaker)}>{text}"
        out += [str(number), f"{timestamp(line.start)} --> {timestamp(end)}", text, ""]
    return "\n".join(out)

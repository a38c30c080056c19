"""`majlis listen --captions`: a live space's captions as lines of text, `speaker: text`.

The captions are read as any HLS player reads them: the multivariant playlist (main.m3u8,
beside the audio's index.m3u8) names the WebVTT subtitles rendition (its EXT-X-MEDIA
TYPE=SUBTITLES URI, captions.m3u8), whose segments are fetched once each as they are
listed and their cues printed in the order they arrive. Requests go through the
listener's token relay, so a renewed playback token and a server that is briefly gone
are handled as for the audio.

Whether a space can have captions, and why not, is the state document's to say
(`captions`, `captions_reason`): a space that cannot is refused before anything plays
(`CaptionsUnavailable`), one whose host has turned them off is waited for, with a line
on stderr each time that changes.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TextIO, get_args

from majlis.client.api import ApiClient, ApiError
from majlis.types import CaptionsReason

__all__ = [
    "CaptionFollower",
    "CaptionsUnavailable",
    "Cue",
    "check_captions",
    "parse_cues",
    "segment_uris",
    "subtitles_uri",
]

POLL_SECONDS = 1.0  # a segment is 1 s by default: polling faster finds nothing new
BACKLOG_SEGMENTS = 3  # of what is listed when we start, the newest few are printed

# GET a path beside the audio's playlist ("/main.m3u8"): status, content type, body.
Fetch = Callable[[str], Awaitable[tuple[int, str, bytes]]]

_SUBTITLES = re.compile(r"^#EXT-X-MEDIA:(?=.*\bTYPE=SUBTITLES\b).*\bURI=\"([^\"]+)\"", re.M)
_VOICE = re.compile(r"^<v(?:\.[^ >]*)? ([^>]*)>")
_TAG = re.compile(r"</?[^>]*>")


class CaptionsUnavailable(Exception):
    """The space has no live captions to follow; the message says why."""


@dataclass(frozen=True, slots=True)
class Cue:
    start: float  # seconds of the audio's media time
    end: float
    speaker: str  # the voice tag's name (a user id), "" without one
    text: str


@dataclass(frozen=True, slots=True)
class _Captions:
    """The state document's word on captions."""

    state: Literal["on", "off", "unavailable", "ended"]
    reason: CaptionsReason | None = None


def subtitles_uri(multivariant: str) -> str | None:
    """The subtitles rendition's URI in a multivariant playlist; None when it lists none."""
    found = _SUBTITLES.search(multivariant)
    return None if found is None else found.group(1)


def segment_uris(playlist: str) -> list[str]:
    """A media playlist's segment URIs, in order."""
    return [line.strip() for line in playlist.splitlines() if line.strip() and line[0] != "#"]


def parse_cues(vtt: str) -> list[Cue]:
    """The cues of a WebVTT segment: the header block (WEBVTT, X-TIMESTAMP-MAP) skipped,
    voice tags read as the speaker, other tags dropped, entities unescaped."""
    cues = []
    for block in re.split(r"\n\s*\n", vtt.replace("\r\n", "\n"))[1:]:
        rows = block.strip("\n").split("\n")
        timing = next((i for i, row in enumerate(rows) if " --> " in row), None)
        if timing is None:
            continue  # a NOTE, STYLE or REGION block
        start, _, rest = rows[timing].partition(" --> ")
        end = rest.split()[0] if rest.split() else ""
        body = " ".join(row.strip() for row in rows[timing + 1 :] if row.strip())
        voice = _VOICE.match(body)
        speaker = "" if voice is None else _unescape(voice.group(1).strip())
        text = _unescape(_TAG.sub("", body[voice.end() if voice else 0 :])).strip()
        try:
            cues.append(Cue(_seconds(start), _seconds(end), speaker, text))
        except ValueError:
            continue  # not a cue timing after all
    return cues


def _seconds(stamp: str) -> float:
    parts = stamp.strip().split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"not a WebVTT time: {stamp!r}")
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + float(part)
    return seconds


def _unescape(text: str) -> str:
    return (
        text.replace("&lt;", "<").replace("&gt;", ">").replace("&nbsp;", " ").replace("&amp;", "&")
    )


class CaptionFollower:
    """Prints a live space's caption lines as they are listed, until the space ends."""

    def __init__(
        self,
        api: ApiClient,
        space_id: str,
        fetch: Fetch,
        *,
        out: TextIO | None = None,
        notes: TextIO | None = None,
        poll: float = POLL_SECONDS,
    ) -> None:
        self._api = api
        self._space_id = space_id
        self._fetch = fetch
        self._out = out or sys.stdout
        self._notes = notes or sys.stderr
        self._poll = poll
        self._seen: set[str] = set()
        self._started = False  # the first listing read: older segments are skipped
        self._names: dict[str, str] = {}
        self._said: _Captions | None = None

    async def follow(self) -> None:
        """Print lines until the space ends (or the task is cancelled)."""
        while True:
            ended = await self._round()
            if ended:
                return
            await asyncio.sleep(self._poll)

    async def _round(self) -> bool:
        """Read what is new; True once the space has ended."""
        uri = subtitles_uri(await self._text("/main.m3u8"))
        playlist = None if uri is None else await self._text(f"/{uri}", missing_ok=True)
        if playlist:
            for name in self._new(segment_uris(playlist)):
                for cue in parse_cues(await self._text(f"/{name}")):
                    await self._print(cue)
        if playlist and "#EXT-X-ENDLIST" not in playlist:
            self._say(_Captions("on"))
            return False
        # None listed, or the rendition ended: the host turned captions off, the space
        # ended, or nothing has been said yet. The state document says which.
        captions = await _state(self._api, self._space_id)
        if captions.state == "unavailable":
            raise CaptionsUnavailable(_unavailable(captions.reason))
        self._say(captions)
        return captions.state == "ended"

    def _new(self, names: list[str]) -> list[str]:
        fresh = [name for name in names if name not in self._seen]
        self._seen.update(fresh)
        if not self._started:
            # Joining a space in progress: a few seconds of what was just said, not the
            # playlist's whole window.
            self._started = True
            fresh = fresh[-BACKLOG_SEGMENTS:]
        if len(self._seen) > 1000:
            self._seen = set(names)
        return fresh

    async def _print(self, cue: Cue) -> None:
        if not cue.text:
            return
        if cue.speaker and cue.speaker not in self._names:
            await self._learn_names()
        who = self._names.get(cue.speaker, cue.speaker)
        print(f"{who}: {cue.text}" if who else cue.text, file=self._out, flush=True)

    async def _learn_names(self) -> None:
        """Speakers by display name, from the state document's stage."""
        document = await _document(self._api, self._space_id)
        for speaker in document.get("speakers") or []:
            name = speaker.get("display_name") or speaker.get("username")
            if speaker.get("user_id") and name:
                self._names[str(speaker["user_id"])] = str(name)

    def _say(self, captions: _Captions) -> None:
        """A line on stderr when the captions' state changes (not at every poll)."""
        if captions == self._said:
            return
        first = self._said is None
        self._said = captions
        if captions.state == "off":
            note = "captions are off: the host has turned them off (waiting for them)"
        elif captions.state == "ended":
            note = "the space has ended"
        elif first or captions.state == "on":
            note = "captions are on" if first else "captions are on again"
        else:
            return
        print(f"majlis: {note}", file=self._notes, flush=True)

    async def _text(self, path: str, *, missing_ok: bool = False) -> str:
        status, _, body = await self._fetch(path)
        if status == 404 and missing_ok:
            return ""
        if status >= 400:
            reason = body.decode("utf-8", "replace").strip()[:200]
            raise CaptionsUnavailable(f"the server refused {path.lstrip('/')} ({status}): {reason}")
        return body.decode("utf-8")


async def check_captions(api: ApiClient, space_id: str) -> None:
    """Before listening: CaptionsUnavailable if the space cannot have live captions."""
    captions = await _state(api, space_id)
    if captions.state == "unavailable":
        raise CaptionsUnavailable(_unavailable(captions.reason))
    if captions.state == "ended":
        raise CaptionsUnavailable(
            "a replay has no live captions; its transcript is at "
            f"/api/v1/spaces/{space_id}/transcript"
        )


async def _state(api: ApiClient, space_id: str) -> _Captions:
    document = await _document(api, space_id)
    space = document.get("space") or {}
    if space.get("state") == "ended":
        return _Captions("ended")
    state = document.get("captions")
    if state == "on" or state == "off":
        return _Captions(state)
    if state == "unavailable":
        said = document.get("captions_reason")
        reason = next((known for known in get_args(CaptionsReason) if known == said), None)
        return _Captions("unavailable", reason)
    raise CaptionsUnavailable(f"the server says nothing of captions ({state!r})")


async def _document(api: ApiClient, space_id: str) -> dict[str, Any]:
    try:
        document: dict[str, Any] = await api.call("GET", f"/api/v1/spaces/{space_id}/state")
    except ApiError as error:
        raise CaptionsUnavailable(
            f"the server refused the space's state ({error.status}): {error.reason}"
        ) from None
    return document


def _unavailable(reason: CaptionsReason | None) -> str:
    if reason == "language":
        return (
            "this space has no live captions: the server's caption model does not know its language"
        )
    if reason == "no_model":
        return "this space has no live captions: the server has no caption model"
    return "this space has no live captions"

"""Clips cut from what an HLS origin serves: the `ClipAudio` the control plane uses.

The origin is this server's own (embedded) or the cluster's, which forwards to whichever
node holds the space or reads the bucket; asking it in-process (ASGI, no socket) means a
clip is cut from the same bytes listeners get, wherever the recording lives.
"""

from __future__ import annotations

import asyncio

import httpx
from starlette.types import ASGIApp

from majlis.errors import BadRequest, NotFound, Overloaded
from majlis.media.formats.fmp4 import SAMPLE_DURATION, TIMESCALE
from majlis.media.hls.clip import ClipRangeError, Listing, cut_clip, parse_listing, segments_for

__all__ = ["OriginClips"]

_BASE = "http://origin"
_RETRY_MS = 2000
# The first segment's date is that of the encoder's priming frame, which the replay hides:
# replay position p is the listing's position p + PRIMING_S (FFmpeg's AAC encoder primes
# with one frame).
PRIMING_S = SAMPLE_DURATION / TIMESCALE


class OriginClips:
    def __init__(self, origin: ASGIApp) -> None:
        self._http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=origin), base_url=_BASE, timeout=30
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def recorded(self, space_id: str) -> float:
        listing = await self._listing(space_id)
        return 0.0 if listing is None else max(0.0, listing.length - PRIMING_S)

    async def cut(self, space_id: str, start: float, duration: float) -> bytes:
        listing = await self._listing(space_id)
        if listing is None:
            raise NotFound("this space has no recording", code="no_recording")
        start += PRIMING_S
        try:
            chosen = segments_for(listing, start, duration)
        except ClipRangeError as error:
            raise BadRequest(str(error), code="bad_range") from None
        init = await self._fetch(space_id, listing.init_uri)
        bodies = await asyncio.gather(*(self._fetch(space_id, s.uri) for s in chosen))
        pairs = list(zip(chosen, bodies, strict=True))
        # Remuxing a minute is a few milliseconds of byte copying, but off the event loop.
        return await asyncio.to_thread(cut_clip, init, pairs, listing.origin, start, duration)

    async def _listing(self, space_id: str) -> Listing | None:
        answer = await self._http.get(f"/{space_id}/index.m3u8")
        if answer.status_code == 404:
            return None
        _check(answer)
        try:
            return parse_listing(answer.content)
        except ValueError:
            return None  # nothing listed yet (a space that has just gone live)

    async def _fetch(self, space_id: str, uri: str) -> bytes:
        answer = await self._http.get(f"/{space_id}/{uri}")
        _check(answer)
        return answer.content


def _check(answer: httpx.Response) -> None:
    if answer.status_code != 200:
        raise Overloaded(
            f"the recording could not be read ({answer.status_code}); try again", _RETRY_MS
        )

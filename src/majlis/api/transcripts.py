"""HTTP for replay transcripts: as JSON (with the job's state) and as WebVTT."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from majlis.api.http import caller_of, json_response
from majlis.api.models import TranscriptBody
from majlis.api.routing import Endpoint
from majlis.api.webvtt import render_webvtt
from majlis.services.auth import Authenticator
from majlis.services.spaces import Spaces
from majlis.services.transcripts import Transcripts
from majlis.types import Visibility

__all__ = ["TranscriptRoutes"]

ONE = "/api/v1/spaces/{space_id}/transcript"
# A pending transcript changes within seconds; a done one never does (short anyway: cheap).
_CACHE = "public, max-age=5"


class TranscriptRoutes:
    def __init__(self, transcripts: Transcripts, spaces: Spaces, auth: Authenticator) -> None:
        self._transcripts = transcripts
        self._spaces = spaces
        self._auth = auth

    def endpoints(self) -> list[Endpoint]:
        tag = "transcripts"
        return [
            Endpoint(
                "GET",
                ONE,
                self.get,
                "An ended space's transcript: its state and, once done, its lines",
                tag,
                answer=TranscriptBody,
                auth="optional",
                errors=(400, 401, 403, 404, 409, 429),
            ),
            Endpoint(
                "GET",
                f"{ONE}.vtt",
                self.vtt,
                "An ended space's finished transcript as WebVTT",
                tag,
                content_type="text/vtt",
                auth="optional",
                errors=(400, 401, 403, 404, 409, 429),
            ),
        ]

    async def _cache(self, request: Request) -> str:
        """The answer's Cache-Control, once the caller may read it: a private space's
        transcript is for its guests alone."""
        space = await self._spaces.get_cached(request.path_params["space_id"])
        if space.visibility is not Visibility.PRIVATE:
            return _CACHE
        caller = await caller_of(request, self._auth)
        await self._spaces.require_admitted(space, caller.member)
        return "private, no-store"

    async def get(self, request: Request) -> Response:
        cache = await self._cache(request)
        state, lines = await self._transcripts.get(request.path_params["space_id"])
        body = {
            "state": state.status,
            "error": state.error,
            "lines": [
                {"start": ln.start, "end": ln.end, "speaker": ln.speaker, "text": ln.text}
                for ln in lines
            ],
        }
        return json_response(body, headers={"Cache-Control": cache})

    async def vtt(self, request: Request) -> Response:
        cache = await self._cache(request)
        lines = await self._transcripts.lines(request.path_params["space_id"])
        return Response(
            render_webvtt(lines), media_type="text/vtt", headers={"Cache-Control": cache}
        )

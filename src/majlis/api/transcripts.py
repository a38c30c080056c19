"""HTTP for replay transcripts: as JSON (with the job's state) and as WebVTT."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from majlis.api.http import json_response
from majlis.api.models import TranscriptBody
from majlis.api.routing import Endpoint
from majlis.api.webvtt import render_webvtt
from majlis.services.transcripts import Transcripts

__all__ = ["TranscriptRoutes"]

ONE = "/api/v1/spaces/{space_id}/transcript"
# A pending transcript changes within seconds; a done one never does (short anyway: cheap).
_CACHE = "public, max-age=5"


class TranscriptRoutes:
    def __init__(self, transcripts: Transcripts) -> None:
        self._transcripts = transcripts

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
                auth="none",
                errors=(400, 404, 409, 429),
            ),
            Endpoint(
                "GET",
                f"{ONE}.vtt",
                self.vtt,
                "An ended space's finished transcript as WebVTT",
                tag,
                content_type="text/vtt",
                auth="none",
                errors=(400, 404, 409, 429),
            ),
        ]

    async def get(self, request: Request) -> Response:
        state, lines = await self._transcripts.get(request.path_params["space_id"])
        body = {
            "state": state.status,
            "error": state.error,
            "lines": [
                {"start": ln.start, "end": ln.end, "speaker": ln.speaker, "text": ln.text}
                for ln in lines
            ],
        }
        return json_response(body, headers={"Cache-Control": _CACHE})

    async def vtt(self, request: Request) -> Response:
        lines = await self._transcripts.lines(request.path_params["space_id"])
        return Response(
            render_webvtt(lines),
            media_type="text/vtt",
            headers={"Cache-Control": _CACHE},
        )

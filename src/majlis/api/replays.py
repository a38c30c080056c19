"""HTTP for a replay: where it plays (with a token for a private space), and its deletion
(the host of an ended space)."""

from __future__ import annotations

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from majlis.api.http import caller_of, json_response
from majlis.api.routing import Endpoint
from majlis.services.auth import Authenticator
from majlis.services.replays import Replays

__all__ = ["ReplayRoutes", "ReplayUrlsBody"]

ONE = "/api/v1/spaces/{space_id}/replay"


class ReplayUrlsBody(BaseModel):
    playlist_url: str = Field(description="HLS of the replay")
    audio_url: str = Field(description="the whole replay as one .m4a file")
    expires_at: float | None = Field(
        description="when the playback token in the URLs expires; null: no token (open)"
    )


class ReplayRoutes:
    def __init__(self, replays: Replays, auth: Authenticator) -> None:
        self._replays = replays
        self._auth = auth

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint(
                "GET",
                ONE,
                self.where,
                "Where an ended space's replay plays: a private space's URLs carry a token "
                "for its guests",
                "spaces",
                answer=ReplayUrlsBody,
                auth="optional",
                errors=(400, 401, 403, 404, 409, 429),
            ),
            Endpoint(
                "DELETE",
                ONE,
                self.delete,
                "Delete an ended space's replay: its recording, transcript and clips (host "
                "only; it cannot be undone)",
                "spaces",
                ok=204,
                auth="user",
                errors=(400, 404, 409, 429, 503),
            ),
        ]

    async def where(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        urls = await self._replays.where(caller, request.path_params["space_id"])
        body = ReplayUrlsBody(
            playlist_url=urls.playlist_url, audio_url=urls.audio_url, expires_at=urls.expires_at
        )
        private = urls.expires_at is not None
        cache = "private, no-store" if private else "public, max-age=60"
        return json_response(body.model_dump(), headers={"Cache-Control": cache})

    async def delete(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        await self._replays.delete(caller, request.path_params["space_id"])
        return Response(status_code=204)
